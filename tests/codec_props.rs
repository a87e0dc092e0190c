//! Property tests of the framing: any split or concatenation of valid
//! frames decodes to the same frames, and arbitrary bytes never panic or
//! make the decoder reserve more than the frame limit.

use bytes::BytesMut;
use mprpc::codec::legacy;
use mprpc::codec::{encode_cancel, encode_request, encode_response, Decoder, Frame, RequestHead};
use mprpc::Code;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Spec {
    Request {
        id: u64,
        timeout: u32,
        service: String,
        method: String,
        payload: Vec<u8>,
    },
    Response {
        id: u64,
        code: u8,
        error: String,
        payload: Vec<u8>,
    },
    Cancel {
        id: u64,
    },
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u32>(),
            "[A-Za-z]{0,20}",
            "[A-Za-z]{0,20}",
            prop::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(id, timeout, service, method, payload)| Spec::Request {
                id,
                timeout,
                service,
                method,
                payload
            }),
        (
            any::<u64>(),
            0u8..=10,
            ".{0,30}",
            prop::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(id, code, error, payload)| Spec::Response {
                id,
                code,
                error,
                payload
            }),
        any::<u64>().prop_map(|id| Spec::Cancel { id }),
    ]
}

fn encode(specs: &[Spec]) -> BytesMut {
    let mut buf = BytesMut::new();
    for s in specs {
        match s {
            Spec::Request {
                id,
                timeout,
                service,
                method,
                payload,
            } => encode_request(
                RequestHead {
                    id: *id,
                    timeout_ms: *timeout,
                    service,
                    method,
                },
                payload,
                &mut buf,
            ),
            Spec::Response {
                id,
                code,
                error,
                payload,
            } => encode_response(*id, Code::from_u8(*code), error, payload, &mut buf),
            Spec::Cancel { id } => encode_cancel(*id, &mut buf),
        }
    }
    buf
}

fn decode_in_chunks(whole: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let decoder = Decoder::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (whole.len() + 1)).collect();
    points.sort_unstable();
    points.push(whole.len());
    for end in points {
        buf.extend_from_slice(&whole[start..end.max(start)]);
        start = end.max(start);
        while let Some(f) = decoder.decode(&mut buf).expect("valid stream") {
            frames.push(f);
        }
    }
    assert!(buf.is_empty(), "nothing left over");
    frames
}

proptest! {
    #[test]
    fn any_split_of_valid_frames_decodes_the_same(
        specs in prop::collection::vec(spec(), 1..12),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let whole = encode(&specs);
        let at_once = decode_in_chunks(&whole, &[]);
        prop_assert_eq!(at_once.len(), specs.len());
        prop_assert_eq!(decode_in_chunks(&whole, &cuts), at_once);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        prefix_magic in any::<bool>(),
    ) {
        let decoder = Decoder::new(4096);
        let mut buf = BytesMut::new();
        if prefix_magic {
            buf.extend_from_slice(b"MP\x01");
        }
        buf.extend_from_slice(&bytes);
        // Decode until an error or "need more"; never loop forever.
        for _ in 0..10_000 {
            match decoder.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        prop_assert!(buf.capacity() <= 4096 + 8 + 2048 + 64, "capacity {}", buf.capacity());

        let mut buf = BytesMut::from(&bytes[..]);
        let _ = legacy::decode_request(&mut buf, 4096);
        prop_assert!(buf.capacity() <= 2 * 4096 + 2048 + 64);
    }
}
