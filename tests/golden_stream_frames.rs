//! Golden bytes for every stream frame (kinds 5 to 9 in protocol version
//! 3; an open, an end with trailers and headers, kind 10, in version 4).
//!
//! As in `golden_frames.rs`, each vector is written by hand from the
//! layout documented in `src/protocol/mprpc/mod.rs` ("Streams"), one
//! commented line per field, and checked both ways: the decoder reads
//! every field back and the encoder writes exactly these bytes. Then the
//! frames, mixed with unary ones of versions 1 and 2, are decoded all in
//! one read and split at every byte.

use bytes::{Bytes, BytesMut};
use mprpc::call::trace::TraceId;
use mprpc::protocol::mprpc::{
    encode_request, encode_response, encode_stream_credit, encode_stream_end,
    encode_stream_end_meta, encode_stream_headers, encode_stream_message, encode_stream_open,
    encode_stream_reset, Decoder, Frame, RequestHead, RequestMeta, StreamFrame, StreamOpen,
    StreamShape,
};
use mprpc::protocol::ProtocolError;
use mprpc::{Code, Metadata};

fn bytes(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn encoded(write: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut buf = BytesMut::new();
    write(&mut buf);
    buf.to_vec()
}

/// Decodes exactly one stream frame that uses every byte of `wire`.
fn decode_stream(wire: &[u8]) -> StreamFrame {
    let mut buf = BytesMut::from(wire);
    let frame = Decoder::default()
        .decode(&mut buf)
        .expect("a golden vector decodes")
        .expect("a golden vector is a whole frame");
    assert!(buf.is_empty(), "{} bytes left after the frame", buf.len());
    match frame {
        Frame::Stream(frame) => frame,
        other => panic!("expected a stream frame, got {other:?}"),
    }
}

fn decode_open(wire: &[u8]) -> StreamOpen {
    match decode_stream(wire) {
        StreamFrame::Open(open) => open,
        other => panic!("expected an open, got {other:?}"),
    }
}

/// A server stream's open with metadata (user = ann) and its request.
fn open_server_stream() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[3],                      // version 3
        &[5],                      // kind 5 = stream open
        &[0, 0, 0, 46],            // body_len = 23 + 4 + 5 + 4 + 10
        &[1, 2, 3, 4, 5, 6, 7, 8], // stream_id
        &[0, 0, 0x05, 0xdc],       // timeout_ms = 1500
        &[1],                      // shape 1 = server stream
        &[0, 0, 0, 64],            // window = 64 messages
        &[4],                      // service_len
        &[5],                      // method_len
        &[0, 0, 0, 10],            // meta_len
        b"Echo",                   // service
        b"Watch",                  // method
        &[0x0a, 0x02, b'h', b'i'], // payload: the request message
        b"\x04\x00\x03userann",    // metadata: user = ann
    ])
}

/// A bidirectional stream's open: no deadline, no payload, no metadata.
fn open_bidi() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[3],                      // version 3
        &[5],                      // kind 5 = stream open
        &[0, 0, 0, 25],            // body_len = 23 + 1 + 1
        &[0, 0, 0, 0, 0, 0, 0, 9], // stream_id = 9
        &[0, 0, 0, 0],             // timeout_ms = 0: none
        &[3],                      // shape 3 = bidirectional
        &[0, 0, 0, 16],            // window = 16
        &[1],                      // service_len
        &[1],                      // method_len
        &[0, 0, 0, 0],             // meta_len = 0
        b"S",                      // service
        b"M",                      // method
    ])
}

fn message() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[3],                      // version 3
        &[6],                      // kind 6 = stream message
        &[0, 0, 0, 10],            // body_len = 8 + 2
        &[0, 0, 0, 0, 0, 0, 0, 5], // stream_id = 5
        &[0x08, 0x01],             // payload
    ])
}

fn end_ok() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[3],                      // version 3
        &[7],                      // kind 7 = stream end
        &[0, 0, 0, 11],            // body_len = 11
        &[0, 0, 0, 0, 0, 0, 0, 5], // stream_id = 5
        &[0],                      // status 0 = Ok
        &[0, 0],                   // error_len
    ])
}

fn end_failed() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[3],                      // version 3
        &[7],                      // kind 7 = stream end
        &[0, 0, 0, 23],            // body_len = 11 + 12
        &[0, 0, 0, 0, 0, 0, 0, 6], // stream_id = 6
        &[8],                      // status 8 = Application
        &[0, 12],                  // error_len
        b"no such user",           // error text
    ])
}

fn reset() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[3],                      // version 3
        &[8],                      // kind 8 = stream reset
        &[0, 0, 0, 15],            // body_len = 11 + 4
        &[0, 0, 0, 0, 0, 0, 0, 7], // stream_id = 7
        &[6],                      // status 6 = Cancelled
        &[0, 4],                   // error_len
        b"gone",                   // error text
    ])
}

fn credit() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[3],                      // version 3
        &[9],                      // kind 9 = stream credit
        &[0, 0, 0, 12],            // body_len
        &[0, 0, 0, 0, 0, 0, 0, 5], // stream_id = 5
        &[0, 0, 0, 32],            // credit = 32 messages
    ])
}

/// A bidirectional stream's open whose caller reads reply metadata:
/// `open_bidi`'s bytes in a version 4 header.
fn open_bidi_v4() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[4],                      // version 4: the caller reads reply metadata
        &[5],                      // kind 5 = stream open
        &[0, 0, 0, 25],            // body_len = 23 + 1 + 1
        &[0, 0, 0, 0, 0, 0, 0, 9], // stream_id = 9
        &[0, 0, 0, 0],             // timeout_ms = 0: none
        &[3],                      // shape 3 = bidirectional
        &[0, 0, 0, 16],            // window = 16
        &[1],                      // service_len
        &[1],                      // method_len
        &[0, 0, 0, 0],             // meta_len = 0
        b"S",                      // service
        b"M",                      // method
    ])
}

/// A server's headers: region = eu.
fn headers() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[4],                      // version 4
        &[10],                     // kind 10 = stream headers
        &[0, 0, 0, 19],            // body_len = 8 + 11
        &[0, 0, 0, 0, 0, 0, 0, 5], // stream_id = 5
        b"\x06\x00\x02regioneu",   // metadata: region = eu
    ])
}

/// A server's end with trailers: Application "bad", rows = 3.
fn end_with_trailers() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[4],                      // version 4
        &[7],                      // kind 7 = stream end
        &[0, 0, 0, 26],            // body_len = 15 + 3 + 8
        &[0, 0, 0, 0, 0, 0, 0, 6], // stream_id = 6
        &[8],                      // status 8 = Application
        &[0, 3],                   // error_len
        &[0, 0, 0, 8],             // meta_len
        b"bad",                    // error text
        b"\x04\x00\x01rows3",      // metadata: rows = 3
    ])
}

const WATCH: RequestHead<'static> = RequestHead {
    id: 0x0102_0304_0506_0708,
    timeout_ms: 1500,
    service: "Echo",
    method: "Watch",
};

#[test]
fn open_server_stream_golden() {
    let open = decode_open(&open_server_stream());
    assert_eq!((open.id, open.timeout_ms), (0x0102_0304_0506_0708, 1500));
    assert_eq!((open.shape, open.window), (StreamShape::Server, 64));
    assert_eq!((open.service(), open.method()), ("Echo", "Watch"));
    assert_eq!(&open.payload[..], b"\x0a\x02hi");
    let entries: Vec<_> = open.metadata.iter().collect();
    assert_eq!(entries, [("user", "ann")]);

    let user = Metadata::from_pairs([("user", "ann")]).unwrap();
    let meta = RequestMeta {
        metadata: &user,
        trace: None,
        reply_metadata: false,
    };
    let ours =
        encoded(|buf| encode_stream_open(WATCH, StreamShape::Server, 64, meta, b"\x0a\x02hi", buf));
    assert_eq!(ours, open_server_stream());
}

#[test]
fn open_bidi_golden() {
    let open = decode_open(&open_bidi());
    assert_eq!((open.id, open.timeout_ms), (9, 0));
    assert_eq!((open.shape, open.window), (StreamShape::Bidi, 16));
    assert_eq!((open.service(), open.method()), ("S", "M"));
    assert!(open.payload.is_empty() && open.metadata.is_empty());

    let none = Metadata::new();
    let meta = RequestMeta {
        metadata: &none,
        trace: None,
        reply_metadata: false,
    };
    let head = RequestHead {
        id: 9,
        timeout_ms: 0,
        service: "S",
        method: "M",
    };
    let ours = encoded(|buf| encode_stream_open(head, StreamShape::Bidi, 16, meta, b"", buf));
    assert_eq!(ours, open_bidi());
}

#[test]
fn an_open_carries_the_trace_id_in_its_metadata() {
    let none = Metadata::new();
    let meta = RequestMeta {
        metadata: &none,
        trace: Some(TraceId(0xdead_beef)),
        reply_metadata: false,
    };
    let wire = encoded(|buf| encode_stream_open(WATCH, StreamShape::Client, 8, meta, b"", buf));
    let open = decode_open(&wire);
    assert_eq!(open.shape, StreamShape::Client);
    assert_eq!(open.metadata.get("trace-id"), Some("00000000deadbeef"));
}

#[test]
fn message_golden() {
    assert_eq!(
        decode_stream(&message()),
        StreamFrame::Message {
            id: 5,
            payload: Bytes::from_static(b"\x08\x01")
        }
    );
    assert_eq!(
        encoded(|buf| encode_stream_message(5, b"\x08\x01", buf)),
        message()
    );
}

#[test]
fn end_and_reset_golden() {
    let ok = decode_stream(&end_ok());
    assert_eq!(
        ok,
        StreamFrame::End {
            id: 5,
            status: Code::Ok,
            error: Bytes::new(),
            metadata: Metadata::new(),
        }
    );
    assert_eq!(ok.status().unwrap().code(), Code::Ok);
    assert_eq!(
        encoded(|buf| encode_stream_end(5, Code::Ok, "", buf)),
        end_ok()
    );

    let failed = decode_stream(&end_failed());
    let status = failed.status().unwrap();
    assert_eq!((failed.id(), status.code()), (6, Code::Application));
    assert_eq!(status.message(), "no such user");
    assert_eq!(
        encoded(|buf| encode_stream_end(6, Code::Application, "no such user", buf)),
        end_failed()
    );

    let reset_frame = decode_stream(&reset());
    assert!(matches!(reset_frame, StreamFrame::Reset { id: 7, .. }));
    assert_eq!(reset_frame.status().unwrap().code(), Code::Cancelled);
    assert_eq!(
        encoded(|buf| encode_stream_reset(7, Code::Cancelled, "gone", buf)),
        reset()
    );
}

#[test]
fn reply_metadata_frames_golden() {
    // The open: version 4 exactly when the caller reads reply metadata.
    let open = decode_open(&open_bidi_v4());
    assert!(open.replies_with_metadata);
    assert_eq!(
        (open.id, open.shape, open.window),
        (9, StreamShape::Bidi, 16)
    );
    assert!(!decode_open(&open_bidi()).replies_with_metadata);
    let none = Metadata::new();
    let meta = RequestMeta {
        metadata: &none,
        trace: None,
        reply_metadata: true,
    };
    let head = RequestHead {
        id: 9,
        timeout_ms: 0,
        service: "S",
        method: "M",
    };
    let ours = encoded(|buf| encode_stream_open(head, StreamShape::Bidi, 16, meta, b"", buf));
    assert_eq!(ours, open_bidi_v4());

    let region = Metadata::from_pairs([("region", "eu")]).unwrap();
    assert_eq!(
        decode_stream(&headers()),
        StreamFrame::Headers {
            id: 5,
            metadata: region.clone()
        }
    );
    assert_eq!(
        encoded(|buf| encode_stream_headers(5, &region, buf)),
        headers()
    );

    let rows = Metadata::from_pairs([("rows", "3")]).unwrap();
    let end = decode_stream(&end_with_trailers());
    assert_eq!(
        end,
        StreamFrame::End {
            id: 6,
            status: Code::Application,
            error: Bytes::from_static(b"bad"),
            metadata: rows.clone(),
        }
    );
    assert_eq!(end.status().unwrap().message(), "bad");
    assert_eq!(
        encoded(|buf| encode_stream_end_meta(6, Code::Application, "bad", &rows, buf)),
        end_with_trailers()
    );
    // Without trailers the end is the version 3 frame, byte for byte.
    assert_eq!(
        encoded(|buf| encode_stream_end_meta(5, Code::Ok, "", &Metadata::new(), buf)),
        end_ok()
    );
}

#[test]
fn credit_golden() {
    assert_eq!(
        decode_stream(&credit()),
        StreamFrame::Credit { id: 5, credit: 32 }
    );
    assert_eq!(encoded(|buf| encode_stream_credit(5, 32, buf)), credit());
}

/// Every stream frame, between unary frames as a build before streams
/// wrote them (versions 1 and 2).
fn mixed() -> (Vec<u8>, usize) {
    let mut wire = BytesMut::new();
    let head = RequestHead {
        id: 1,
        timeout_ms: 0,
        service: "S",
        method: "Get",
    };
    encode_request(head, b"xy", &mut wire);
    for frame in [
        open_server_stream(),
        open_bidi(),
        message(),
        end_ok(),
        end_failed(),
        reset(),
        credit(),
        open_bidi_v4(),
        headers(),
        end_with_trailers(),
    ] {
        wire.extend_from_slice(&frame);
        encode_response(1, Code::Ok, "", b"ok", &mut wire);
    }
    // A version 2 request from golden_frames.rs (metadata user = ann).
    wire.extend_from_slice(
        b"MP\x02\x01\x00\x00\x00\x20\0\0\0\0\0\0\0\x02\0\0\0\0\x01\x01\0\0\0\x0aSM\x01\x02\x04\x00\x03userann",
    );
    (wire.to_vec(), 1 + 10 * 2 + 1)
}

fn decode_all(buf: &mut BytesMut) -> Vec<Frame> {
    let decoder = Decoder::default();
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(buf).expect("a valid stream") {
        frames.push(frame);
    }
    frames
}

#[test]
fn stream_and_unary_frames_in_one_read_all_decode() {
    let (wire, count) = mixed();
    let frames = decode_all(&mut BytesMut::from(&wire[..]));
    assert_eq!(frames.len(), count);
    let streams = frames
        .iter()
        .filter(|f| matches!(f, Frame::Stream(_)))
        .count();
    assert_eq!(streams, 10);
    let Some(Frame::Request(last)) = frames.last() else {
        panic!("the version 2 request decodes after the stream frames");
    };
    assert_eq!(last.metadata.get("user"), Some("ann"));
}

#[test]
fn split_at_every_byte_decodes_the_same() {
    let (wire, _) = mixed();
    let whole = decode_all(&mut BytesMut::from(&wire[..]));
    for split in 0..=wire.len() {
        let mut buf = BytesMut::from(&wire[..split]);
        let mut got = decode_all(&mut buf);
        buf.extend_from_slice(&wire[split..]);
        got.extend(decode_all(&mut buf));
        assert_eq!(got, whole, "split at {split}");
        assert!(buf.is_empty());
    }
}

#[test]
fn malformed_stream_frames_are_refused_for_their_reason() {
    for (wire, expected) in [
        (
            bytes(&[b"MP\x03\x05\x00\x00\x00\x05", b"short"]),
            ProtocolError::Malformed("stream open shorter than its fixed part"),
        ),
        (
            {
                let mut open = open_bidi();
                open[20] = 4; // shape 4
                open
            },
            ProtocolError::Malformed("unknown stream shape"),
        ),
        (
            bytes(&[b"MP\x03\x06\x00\x00\x00\x03", b"abc"]),
            ProtocolError::Malformed("stream message shorter than its id"),
        ),
        (
            bytes(&[b"MP\x03\x07\x00\x00\x00\x0c", &[0; 8], &[0, 0, 5], b"x"]),
            ProtocolError::Malformed("stream end or reset text does not fill the body"),
        ),
        (
            bytes(&[b"MP\x03\x09\x00\x00\x00\x08", &[0; 8]]),
            ProtocolError::Malformed("stream credit body is not 12 bytes"),
        ),
        (
            {
                let mut old = message();
                old[2] = 1; // a stream frame in a version 1 header
                old
            },
            ProtocolError::Malformed("a stream frame needs protocol version 3"),
        ),
        (
            bytes(&[b"MP\x03\x01\x00\x00\x00\x00"]),
            ProtocolError::Malformed("protocol versions 3 and 4 are for stream frames only"),
        ),
        (
            {
                let mut v3 = headers();
                v3[2] = 3; // headers in a version 3 header
                v3
            },
            ProtocolError::Malformed("a stream headers frame needs protocol version 4"),
        ),
        (
            {
                let mut v4 = message();
                v4[2] = 4; // a message in a version 4 header
                v4
            },
            ProtocolError::Malformed(
                "only a stream open, end or headers frame has protocol version 4",
            ),
        ),
        (
            bytes(&[b"MP\x04\x07\x00\x00\x00\x0b", &[0; 8], &[0, 0, 0]]),
            ProtocolError::Malformed("stream end shorter than its fixed part"),
        ),
        (
            {
                let mut end = end_with_trailers();
                end[22] = 9; // meta_len 9 > what is left
                end
            },
            ProtocolError::Malformed("stream end text and metadata do not fill the body"),
        ),
        (
            {
                let mut end = end_with_trailers();
                end[26] = 9; // the entry's key_len overruns the block
                end
            },
            ProtocolError::Malformed("metadata entry overruns its block"),
        ),
    ] {
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(
            Decoder::default().decode(&mut buf),
            Err(expected),
            "{wire:?}"
        );
    }
}

#[test]
fn an_oversized_stream_message_fails_its_stream_alone() {
    let decoder = Decoder::new(64);
    let mut wire = BytesMut::new();
    encode_stream_message(11, &[7u8; 500], &mut wire);
    encode_stream_message(12, b"small", &mut wire);
    let Some(Frame::Oversized(o)) = decoder.decode(&mut wire).unwrap() else {
        panic!("an oversized message is reported, not buffered");
    };
    assert_eq!((o.id, o.len), (11, 508));
    assert!(mprpc::protocol::mprpc::skip_body(&mut wire, &mut {
        o.unread
    }));
    assert_eq!(
        decoder.decode(&mut wire).unwrap(),
        Some(Frame::Stream(StreamFrame::Message {
            id: 12,
            payload: Bytes::from_static(b"small")
        }))
    );
}
