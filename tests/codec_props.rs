//! Property tests of the framing: any split or concatenation of valid
//! frames (both versions, metadata, trace ids, cancel and auth; and the
//! seed's format) decodes to exactly the fields that were encoded, and
//! arbitrary bytes never panic or make a decoder reserve more than its
//! frame limit.
//!
//! A failure's minimal case is saved in
//! `tests/proptest-regressions/codec_props.txt` (committed) and replayed
//! first by every later run.

use bytes::BytesMut;
use mprpc::protocol::mprpc::{
    encode_auth, encode_cancel, encode_request_meta, encode_response_meta, Decoder, Frame,
    RequestHead, RequestMeta,
};
use mprpc::protocol::seed;
use mprpc::{Code, Metadata, TraceId};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Where proptest keeps the minimal failing cases (relative to the crate
/// root, which is the working directory of `cargo test`).
const REGRESSIONS: &str = "tests/proptest-regressions/codec_props.txt";

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..ProptestConfig::default()
    }
}

#[derive(Debug, Clone)]
enum Spec {
    Request {
        id: u64,
        timeout: u32,
        service: String,
        method: String,
        payload: Vec<u8>,
        metadata: Vec<(String, String)>,
        trace: Option<u64>,
        reply_metadata: bool,
    },
    Response {
        id: u64,
        code: u8,
        error: String,
        payload: Vec<u8>,
        /// Written as version 2 (else version 1, which drops `metadata`).
        with_metadata: bool,
        metadata: Vec<(String, String)>,
    },
    Cancel {
        id: u64,
    },
    Auth {
        token: Vec<u8>,
    },
}

fn metadata_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[a-z][a-z0-9-]{0,12}", ".{0,24}"), 0..4)
}

fn spec() -> impl Strategy<Value = Spec> {
    let request = (
        (any::<u64>(), any::<u32>(), ".{0,20}", ".{0,20}"),
        prop::collection::vec(any::<u8>(), 0..300),
        metadata_pairs(),
        prop::option::of(any::<u64>()),
        any::<bool>(),
    )
        .prop_map(
            |((id, timeout, service, method), payload, metadata, trace, reply_metadata)| {
                Spec::Request {
                    id,
                    timeout,
                    service,
                    method,
                    payload,
                    metadata,
                    trace,
                    reply_metadata,
                }
            },
        );
    let response = (
        any::<u64>(),
        0u8..=13,
        ".{0,30}",
        prop::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
        metadata_pairs(),
    )
        .prop_map(
            |(id, code, error, payload, with_metadata, metadata)| Spec::Response {
                id,
                code,
                error,
                payload,
                with_metadata,
                metadata,
            },
        );
    prop_oneof![
        3 => request,
        3 => response,
        1 => any::<u64>().prop_map(|id| Spec::Cancel { id }),
        1 => prop::collection::vec(any::<u8>(), 0..=1024).prop_map(|token| Spec::Auth { token }),
    ]
}

fn to_metadata(pairs: &[(String, String)]) -> Metadata {
    Metadata::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .expect("generated entries fit the wire")
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
                metadata,
                trace,
                reply_metadata,
            } => {
                let metadata = to_metadata(metadata);
                let head = RequestHead {
                    id: *id,
                    timeout_ms: *timeout,
                    service,
                    method,
                };
                let meta = RequestMeta {
                    metadata: &metadata,
                    trace: trace.map(TraceId),
                    reply_metadata: *reply_metadata,
                };
                encode_request_meta(head, meta, payload, &mut buf)
            }
            Spec::Response {
                id,
                code,
                error,
                payload,
                with_metadata,
                metadata,
            } => encode_response_meta(
                *id,
                Code::from_u8(*code),
                error,
                payload,
                *with_metadata,
                &to_metadata(metadata),
                &mut buf,
            ),
            Spec::Cancel { id } => encode_cancel(*id, &mut buf),
            Spec::Auth { token } => encode_auth(token, &mut buf),
        }
    }
    buf
}

/// The metadata entries a decoded request must carry: the caller's, then
/// the trace id it sent (16 hex digits).
fn expected_request_metadata(
    pairs: &[(String, String)],
    trace: Option<u64>,
) -> Vec<(String, String)> {
    let mut entries: Vec<_> = to_metadata(pairs)
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if let Some(trace) = trace {
        entries.push(("trace-id".to_owned(), format!("{trace:016x}")));
    }
    entries
}

fn entries(metadata: &Metadata) -> Vec<(String, String)> {
    metadata
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Checks every field of a decoded frame against what was encoded.
fn assert_decoded_as(spec: &Spec, frame: &Frame) -> Result<(), TestCaseError> {
    match (spec, frame) {
        (
            Spec::Request {
                id,
                timeout,
                service,
                method,
                payload,
                metadata,
                trace,
                reply_metadata,
            },
            Frame::Request(got),
        ) => {
            prop_assert_eq!(got.id, *id);
            prop_assert_eq!(got.timeout_ms, *timeout);
            prop_assert_eq!(got.service(), service.as_str());
            prop_assert_eq!(got.method(), method.as_str());
            prop_assert_eq!(&got.payload[..], &payload[..]);
            prop_assert_eq!(
                entries(&got.metadata),
                expected_request_metadata(metadata, *trace)
            );
            let v2 = !metadata.is_empty() || trace.is_some() || *reply_metadata;
            prop_assert_eq!(got.replies_with_metadata, v2);
        }
        (
            Spec::Response {
                id,
                code,
                error,
                payload,
                with_metadata,
                metadata,
            },
            Frame::Response(got),
        ) => {
            prop_assert_eq!(got.id, *id);
            prop_assert_eq!(got.code, Code::from_u8(*code));
            prop_assert_eq!(got.error_str(), error.as_str());
            prop_assert_eq!(&got.payload[..], &payload[..]);
            let sent = if *with_metadata {
                entries(&to_metadata(metadata))
            } else {
                Vec::new() // a version 1 reply cannot carry it
            };
            prop_assert_eq!(entries(&got.metadata), sent);
        }
        (Spec::Cancel { id }, Frame::Cancel { id: got }) => prop_assert_eq!(got, id),
        (Spec::Auth { token }, Frame::Auth { token: got }) => {
            prop_assert_eq!(&got[..], &token[..])
        }
        (spec, frame) => prop_assert!(false, "{spec:?} decoded as {frame:?}"),
    }
    Ok(())
}

/// The sorted, in-range cut points `cuts` stands for in a stream of `len`.
fn cut_points(cuts: &[usize], len: usize) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
    points.sort_unstable();
    points.push(len);
    points
}

fn decode_in_chunks(whole: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let decoder = Decoder::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut start = 0;
    for end in cut_points(cuts, whole.len()) {
        buf.extend_from_slice(&whole[start..end.max(start)]);
        start = end.max(start);
        while let Some(f) = decoder.decode(&mut buf).expect("valid stream") {
            frames.push(f);
        }
    }
    assert!(buf.is_empty(), "nothing left over");
    frames
}

/// A seed-format request: (service, method, args).
type SeedSpec = (String, String, Vec<u8>);

fn seed_spec() -> impl Strategy<Value = SeedSpec> {
    (
        ".{0,40}",
        ".{0,40}",
        prop::collection::vec(any::<u8>(), 0..400),
    )
}

/// Feeds one seed request to its decoder cut at `cuts`: every prefix
/// short of the whole request must ask for more, the whole must decode.
fn decode_seed_in_chunks(whole: &[u8], cuts: &[usize]) -> seed::SeedRequest {
    let mut buf = BytesMut::new();
    let mut start = 0;
    for end in cut_points(cuts, whole.len()) {
        buf.extend_from_slice(&whole[start..end.max(start)]);
        start = end.max(start);
        let decoded = seed::decode_request(&mut buf, 1 << 20).expect("valid seed request");
        if let Some(request) = decoded {
            assert_eq!(start, whole.len(), "decoded before the last byte");
            assert!(buf.is_empty(), "nothing left over");
            return request;
        }
    }
    panic!("a whole seed request never decoded")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_split_of_valid_frames_decodes_to_the_encoded_fields(
        specs in prop::collection::vec(spec(), 1..12),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let whole = encode(&specs);
        let at_once = decode_in_chunks(&whole, &[]);
        prop_assert_eq!(at_once.len(), specs.len());
        for (spec, frame) in specs.iter().zip(&at_once) {
            assert_decoded_as(spec, frame)?;
        }
        prop_assert_eq!(decode_in_chunks(&whole, &cuts), at_once);
    }

    #[test]
    fn any_split_of_a_valid_seed_request_decodes_to_its_fields(
        (service, method, args) in seed_spec(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut whole = BytesMut::new();
        seed::encode_request(&service, &method, &args, &mut whole);
        let request = decode_seed_in_chunks(&whole, &cuts);
        prop_assert_eq!(request.service_str(), service.as_str());
        prop_assert_eq!(request.method_str(), method.as_str());
        prop_assert_eq!(&request.args[..], &args[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        prefix in prop::sample::select(vec![&b""[..], b"MP\x01", b"MP\x02"]),
    ) {
        let decoder = Decoder::new(4096);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(prefix);
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
        let _ = seed::decode_request(&mut buf, 4096);
        prop_assert!(buf.capacity() <= 2 * 4096 + 2048 + 64);
    }
}
