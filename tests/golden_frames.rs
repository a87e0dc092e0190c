//! Golden bytes for every frame of our protocol and of the seed's.
//!
//! Each vector below is written by hand from the layout documented in
//! `src/protocol/mprpc/mod.rs` (ours) and `src/protocol/seed/mod.rs` (the
//! seed's), one commented line per field: none is produced by our encoder.
//! Every vector is checked twice: the decoder must read every field back,
//! and the encoder must write exactly these bytes. A mistake made the same way on
//! both sides (which a round trip through our own encoder cannot see)
//! fails here.

use bytes::{Bytes, BytesMut};
use mprpc::call::trace::TraceId;
use mprpc::protocol::mprpc::{
    encode_auth, encode_cancel, encode_request, encode_request_meta, encode_response,
    encode_response_meta, Decoder, Frame, Request, RequestHead, RequestMeta, Response,
};
use mprpc::protocol::seed;
use mprpc::{Code, Metadata};

/// Concatenates the commented pieces a vector is written in.
fn bytes(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Decodes exactly one frame that uses every byte of `wire`.
fn decode_one(wire: &[u8]) -> Frame {
    let mut buf = BytesMut::from(wire);
    let frame = Decoder::default()
        .decode(&mut buf)
        .expect("a golden vector decodes")
        .expect("a golden vector is a whole frame");
    assert!(buf.is_empty(), "{} bytes left after the frame", buf.len());
    frame
}

fn decode_request(wire: &[u8]) -> Request {
    match decode_one(wire) {
        Frame::Request(request) => request,
        other => panic!("expected a request, got {other:?}"),
    }
}

fn decode_response(wire: &[u8]) -> Response {
    match decode_one(wire) {
        Frame::Response(response) => response,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn entries(metadata: &Metadata) -> Vec<(&str, &str)> {
    metadata.iter().collect()
}

const ECHO_SAY: RequestHead<'static> = RequestHead {
    id: 0x0102_0304_0506_0708,
    timeout_ms: 1500,
    service: "Echo",
    method: "Say",
};

/// A version 1 request: no metadata, the original layout.
fn request_v1() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[1],                      // version 1
        &[1],                      // kind 1 = request
        &[0, 0, 0, 25],            // body_len = 14 + 4 + 3 + 4
        &[1, 2, 3, 4, 5, 6, 7, 8], // request_id
        &[0, 0, 0x05, 0xdc],       // timeout_ms = 1500
        &[4],                      // service_len
        &[3],                      // method_len
        b"Echo",                   // service
        b"Say",                    // method
        &[0x0a, 0x02, b'h', b'i'], // payload
    ])
}

/// The `user` entry of the metadata block: key_len u8 | value_len u16 | key | value.
const USER_ANN: &[u8] = b"\x04\x00\x03userann";
/// The `trace-id` entry for trace id 0xdeadbeef: 16 lower-case hex digits.
const TRACE_DEADBEEF: &[u8] = b"\x08\x00\x10trace-id00000000deadbeef";

/// A version 2 request carrying metadata and a trace id.
fn request_v2_metadata_and_trace() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[2],                      // version 2
        &[1],                      // kind 1 = request
        &[0, 0, 0, 66],            // body_len = 14 + 4 + 4 + 3 + 4 + 37
        &[1, 2, 3, 4, 5, 6, 7, 8], // request_id
        &[0, 0, 0x05, 0xdc],       // timeout_ms = 1500
        &[4],                      // service_len
        &[3],                      // method_len
        &[0, 0, 0, 37],            // meta_len = 10 + 27
        b"Echo",                   // service
        b"Say",                    // method
        &[0x0a, 0x02, b'h', b'i'], // payload
        USER_ANN,                  // metadata: user = ann (10 bytes)
        TRACE_DEADBEEF,            // metadata: trace-id (27 bytes)
    ])
}

/// A version 2 request with an empty block: the caller only asks for a
/// version 2 reply (it reads reply metadata).
fn request_v2_empty_metadata() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[2],                      // version 2
        &[1],                      // kind 1 = request
        &[0, 0, 0, 29],            // body_len = 14 + 4 + 4 + 3 + 4
        &[1, 2, 3, 4, 5, 6, 7, 8], // request_id
        &[0, 0, 0x05, 0xdc],       // timeout_ms = 1500
        &[4],                      // service_len
        &[3],                      // method_len
        &[0, 0, 0, 0],             // meta_len = 0
        b"Echo",                   // service
        b"Say",                    // method
        &[0x0a, 0x02, b'h', b'i'], // payload
    ])
}

/// A version 1 `Ok` response.
fn response_v1_ok() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[1],                      // version 1
        &[2],                      // kind 2 = response
        &[0, 0, 0, 13],            // body_len = 11 + 2
        &[0, 0, 0, 0, 0, 0, 0, 5], // request_id = 5
        &[0],                      // status 0 = Ok
        &[0, 0],                   // error_len
        &[0x08, 0x01],             // payload
    ])
}

/// A version 1 error response: text, no payload.
fn response_v1_error() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[1],                      // version 1
        &[2],                      // kind 2 = response
        &[0, 0, 0, 25],            // body_len = 11 + 14
        &[0, 0, 0, 0, 0, 0, 0, 6], // request_id = 6
        &[2],                      // status 2 = UnknownMethod
        &[0, 14],                  // error_len
        b"no such method",         // error text
    ])
}

/// The `server` entry of a reply's metadata block.
const SERVER_A1: &[u8] = b"\x06\x00\x02servera1";

/// A version 2 `Ok` response carrying reply metadata.
fn response_v2_ok_metadata() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[2],                      // version 2
        &[2],                      // kind 2 = response
        &[0, 0, 0, 28],            // body_len = 11 + 4 + 2 + 11
        &[0, 0, 0, 0, 0, 0, 0, 5], // request_id = 5
        &[0],                      // status 0 = Ok
        &[0, 0],                   // error_len
        &[0, 0, 0, 11],            // meta_len
        &[0x08, 0x01],             // payload
        SERVER_A1,                 // metadata: server = a1
    ])
}

/// A version 2 error response without metadata (meta_len 0).
fn response_v2_error() -> Vec<u8> {
    bytes(&[
        b"MP",                           // magic
        &[2],                            // version 2
        &[2],                            // kind 2 = response
        &[0, 0, 0, 23],                  // body_len = 11 + 4 + 8
        &[0, 0, 0, 0, 0, 0, 0x01, 0x00], // request_id = 256
        &[4],                            // status 4 = DeadlineExceeded
        &[0, 8],                         // error_len
        &[0, 0, 0, 0],                   // meta_len = 0
        b"too late",                     // error text
    ])
}

/// A cancel for call 0x0102030405060708 (always written as version 1).
fn cancel() -> Vec<u8> {
    bytes(&[
        b"MP",                     // magic
        &[1],                      // version 1
        &[3],                      // kind 3 = cancel
        &[0, 0, 0, 8],             // body_len
        &[1, 2, 3, 4, 5, 6, 7, 8], // request_id
    ])
}

/// An auth frame (always written as version 1).
fn auth() -> Vec<u8> {
    bytes(&[
        b"MP",         // magic
        &[1],          // version 1
        &[4],          // kind 4 = auth
        &[0, 0, 0, 6], // body_len
        b"s3cret",     // token
    ])
}

/// The same frame with its version byte set to 2 (cancel and auth carry
/// no metadata, so a version 2 header changes nothing in their bodies).
fn as_version_2(mut wire: Vec<u8>) -> Vec<u8> {
    wire[2] = 2;
    wire
}

fn encoded(write: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut buf = BytesMut::new();
    write(&mut buf);
    buf.to_vec()
}

fn assert_echo_say(request: &Request) {
    assert_eq!(request.id, 0x0102_0304_0506_0708);
    assert_eq!(request.timeout_ms, 1500);
    assert_eq!(request.service(), "Echo");
    assert_eq!(request.method(), "Say");
    assert_eq!(&request.payload[..], b"\x0a\x02hi");
}

#[test]
fn request_v1_golden() {
    let request = decode_request(&request_v1());
    assert_echo_say(&request);
    assert!(request.metadata.is_empty());
    assert!(
        !request.replies_with_metadata,
        "a v1 caller gets v1 replies"
    );

    let ours = encoded(|buf| encode_request(ECHO_SAY, b"\x0a\x02hi", buf));
    assert_eq!(ours, request_v1());
    let no_meta = Metadata::new();
    let meta = RequestMeta {
        metadata: &no_meta,
        trace: None,
        reply_metadata: false,
    };
    let ours = encoded(|buf| encode_request_meta(ECHO_SAY, meta, b"\x0a\x02hi", buf));
    assert_eq!(ours, request_v1(), "nothing to carry: version 1");
}

#[test]
fn request_v2_metadata_and_trace_id_golden() {
    let request = decode_request(&request_v2_metadata_and_trace());
    assert_echo_say(&request);
    assert_eq!(
        entries(&request.metadata),
        [("user", "ann"), ("trace-id", "00000000deadbeef")]
    );
    assert!(request.replies_with_metadata);

    let metadata = Metadata::from_pairs([("user", "ann")]).unwrap();
    let meta = RequestMeta {
        metadata: &metadata,
        trace: Some(TraceId(0xdead_beef)),
        reply_metadata: true,
    };
    assert_eq!(meta.extra_len(), 4 + 37);
    let ours = encoded(|buf| encode_request_meta(ECHO_SAY, meta, b"\x0a\x02hi", buf));
    assert_eq!(ours, request_v2_metadata_and_trace());
}

#[test]
fn request_v2_trace_id_alone_golden() {
    let wire = bytes(&[
        b"MP",                     // magic
        &[2],                      // version 2
        &[1],                      // kind 1 = request
        &[0, 0, 0, 47],            // body_len = 14 + 4 + 1 + 1 + 27
        &[0, 0, 0, 0, 0, 0, 0, 9], // request_id = 9
        &[0, 0, 0, 0],             // timeout_ms = 0: no deadline
        &[1],                      // service_len
        &[1],                      // method_len
        &[0, 0, 0, 27],            // meta_len
        b"S",                      // service
        b"M",                      // method
        TRACE_DEADBEEF,            // metadata: trace-id only
    ]);
    let request = decode_request(&wire);
    assert_eq!((request.id, request.timeout_ms), (9, 0));
    assert_eq!((request.service(), request.method()), ("S", "M"));
    assert!(request.payload.is_empty());
    assert_eq!(
        entries(&request.metadata),
        [("trace-id", "00000000deadbeef")]
    );
    assert_eq!(
        TraceId::parse(request.metadata.get("trace-id").unwrap()),
        Some(TraceId(0xdead_beef))
    );

    let none = Metadata::new();
    let meta = RequestMeta {
        metadata: &none,
        trace: Some(TraceId(0xdead_beef)),
        reply_metadata: false,
    };
    let head = RequestHead {
        id: 9,
        timeout_ms: 0,
        service: "S",
        method: "M",
    };
    assert_eq!(
        encoded(|buf| encode_request_meta(head, meta, b"", buf)),
        wire
    );
}

#[test]
fn request_v2_empty_metadata_golden() {
    let request = decode_request(&request_v2_empty_metadata());
    assert_echo_say(&request);
    assert!(request.metadata.is_empty());
    assert!(request.replies_with_metadata, "a v2 caller gets v2 replies");

    let none = Metadata::new();
    let meta = RequestMeta {
        metadata: &none,
        trace: None,
        reply_metadata: true,
    };
    let ours = encoded(|buf| encode_request_meta(ECHO_SAY, meta, b"\x0a\x02hi", buf));
    assert_eq!(ours, request_v2_empty_metadata());
}

#[test]
fn response_v1_ok_golden() {
    let reply = decode_response(&response_v1_ok());
    assert_eq!((reply.id, reply.code), (5, Code::Ok));
    assert!(reply.error.is_empty());
    assert_eq!(&reply.payload[..], b"\x08\x01");
    assert!(reply.metadata.is_empty());

    assert_eq!(
        encoded(|buf| encode_response(5, Code::Ok, "", b"\x08\x01", buf)),
        response_v1_ok()
    );
    let server = Metadata::from_pairs([("server", "a1")]).unwrap();
    assert_eq!(
        encoded(|buf| encode_response_meta(5, Code::Ok, "", b"\x08\x01", false, &server, buf)),
        response_v1_ok(),
        "a v1 caller's reply drops the metadata"
    );
}

#[test]
fn response_v1_error_golden() {
    let reply = decode_response(&response_v1_error());
    assert_eq!((reply.id, reply.code), (6, Code::UnknownMethod));
    assert_eq!(reply.error_str(), "no such method");
    assert!(reply.payload.is_empty());
    assert!(reply.metadata.is_empty());

    assert_eq!(
        encoded(|buf| encode_response(6, Code::UnknownMethod, "no such method", b"", buf)),
        response_v1_error()
    );
}

#[test]
fn response_v2_ok_with_metadata_golden() {
    let reply = decode_response(&response_v2_ok_metadata());
    assert_eq!((reply.id, reply.code), (5, Code::Ok));
    assert!(reply.error.is_empty());
    assert_eq!(&reply.payload[..], b"\x08\x01");
    assert_eq!(entries(&reply.metadata), [("server", "a1")]);

    let server = Metadata::from_pairs([("server", "a1")]).unwrap();
    assert_eq!(
        encoded(|buf| encode_response_meta(5, Code::Ok, "", b"\x08\x01", true, &server, buf)),
        response_v2_ok_metadata()
    );
}

#[test]
fn response_v2_error_golden() {
    let reply = decode_response(&response_v2_error());
    assert_eq!((reply.id, reply.code), (256, Code::DeadlineExceeded));
    assert_eq!(reply.error_str(), "too late");
    assert!(reply.payload.is_empty());
    assert!(reply.metadata.is_empty());

    let none = Metadata::new();
    assert_eq!(
        encoded(|buf| encode_response_meta(
            256,
            Code::DeadlineExceeded,
            "too late",
            b"",
            true,
            &none,
            buf
        )),
        response_v2_error()
    );
}

#[test]
fn cancel_golden_in_both_versions() {
    for wire in [cancel(), as_version_2(cancel())] {
        assert_eq!(
            decode_one(&wire),
            Frame::Cancel {
                id: 0x0102_0304_0506_0708
            },
            "version {}",
            wire[2]
        );
    }
    assert_eq!(
        encoded(|buf| encode_cancel(0x0102_0304_0506_0708, buf)),
        cancel()
    );
}

#[test]
fn auth_golden_in_both_versions() {
    for wire in [auth(), as_version_2(auth())] {
        assert_eq!(
            decode_one(&wire),
            Frame::Auth {
                token: Bytes::from_static(b"s3cret")
            },
            "version {}",
            wire[2]
        );
    }
    assert_eq!(encoded(|buf| encode_auth(b"s3cret", buf)), auth());
}

#[test]
fn golden_frames_back_to_back_decode_in_order() {
    let stream = [
        auth(),
        request_v1(),
        request_v2_metadata_and_trace(),
        cancel(),
        response_v2_ok_metadata(),
        response_v1_error(),
    ]
    .concat();
    let mut buf = BytesMut::from(&stream[..]);
    let decoder = Decoder::default();
    let kinds: Vec<&str> = std::iter::from_fn(|| decoder.decode(&mut buf).unwrap())
        .map(|frame| match frame {
            Frame::Auth { .. } => "auth",
            Frame::Request(r) if r.replies_with_metadata => "request v2",
            Frame::Request(_) => "request v1",
            Frame::Cancel { .. } => "cancel",
            Frame::Response(r) if r.metadata.is_empty() => "response v1",
            Frame::Response(_) => "response v2",
            Frame::Oversized(_) => "oversized",
            Frame::Stream(_) => "stream",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "auth",
            "request v1",
            "request v2",
            "cancel",
            "response v2",
            "response v1"
        ]
    );
    assert!(buf.is_empty());
}

// --- The seed's format ------------------------------------------------------

/// A seed request: `UserServiceRpc.Login` with a 200-byte argument, so
/// `args_size` takes a two-byte varint (200 = 0xc8 0x01).
fn seed_login_200() -> Vec<u8> {
    bytes(&[
        &[0x1a, 0, 0, 0],    // header_size = 26, little-endian
        &[0x0a, 14],         // field 1 (service_name), length 14
        b"UserServiceRpc",   //   service name
        &[0x12, 5],          // field 2 (method_name), length 5
        b"Login",            //   method name
        &[0x18, 0xc8, 0x01], // field 3 (args_size) = 200, varint
        &[0xab; 200],        // args
    ])
}

/// A seed request with empty args: proto3 omits `args_size` = 0.
fn seed_empty_args() -> Vec<u8> {
    bytes(&[
        &[0x0b, 0, 0, 0], // header_size = 11, little-endian
        &[0x0a, 4],       // field 1 (service_name), length 4
        b"Ping",          //   service name
        &[0x12, 3],       // field 2 (method_name), length 3
        b"Now",           //   method name
    ])
}

/// Captured from a real C++ mprpc consumer: GetFriendList, userid 1000.
fn seed_captured_from_cpp() -> Vec<u8> {
    bytes(&[
        &[0x23, 0, 0, 0],    // header_size = 35, little-endian
        &[0x0a, 0x10],       // field 1 (service_name), length 16
        b"FriendServiceRpc", //   service name
        &[0x12, 0x0d],       // field 2 (method_name), length 13
        b"GetFriendList",    //   method name
        &[0x18, 0x03],       // field 3 (args_size) = 3
        &[0x08, 0xe8, 0x07], // args: userid (field 1) = 1000
    ])
}

fn seed_roundtrip(wire: &[u8], service: &str, method: &str, args: &[u8]) {
    let mut buf = BytesMut::from(wire);
    let request = seed::decode_request(&mut buf, 1024)
        .expect("a golden seed vector decodes")
        .expect("a golden seed vector is whole");
    assert!(buf.is_empty());
    assert_eq!(request.service_str(), service);
    assert_eq!(request.method_str(), method);
    assert_eq!(&request.args[..], args);
    let ours = encoded(|buf| seed::encode_request(service, method, args, buf));
    assert_eq!(ours, wire, "{service}.{method}");
}

#[test]
fn seed_request_captured_from_cpp_golden() {
    seed_roundtrip(
        &seed_captured_from_cpp(),
        "FriendServiceRpc",
        "GetFriendList",
        b"\x08\xe8\x07",
    );
}

#[test]
fn seed_request_with_a_multi_byte_args_size_golden() {
    seed_roundtrip(&seed_login_200(), "UserServiceRpc", "Login", &[0xab; 200]);
}

#[test]
fn seed_request_with_empty_args_golden() {
    seed_roundtrip(&seed_empty_args(), "Ping", "Now", b"");
}

#[test]
fn seed_reply_is_the_bare_message_until_close() {
    // The seed's reply: the response message alone (here field 1 = 1),
    // ended by the provider's close.
    let mut buf = BytesMut::from(&[0x08, 0x01][..]);
    assert_eq!(seed::decode_reply(&buf, 16), Ok(()));
    assert_eq!(
        seed::decode_reply_eof(&mut buf, 16),
        Ok(Some(Bytes::from_static(&[0x08, 0x01])))
    );
}
