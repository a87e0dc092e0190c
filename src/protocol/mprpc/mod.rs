//! Our wire format: framing, encoding and decoding (`frame`, `decoder`, `body`),
//! the server half (`server`: requests in, replies out) and the client half
//! (`client`: requests out, replies in), behind `Protocol`.
//!
//! # Frame layout
//!
//! Every frame starts with a fixed 8-byte header, then `body_len` bytes of body.
//! All integers are big-endian.
//!
//! ```text
//!  0      2         3        4                8
//!  +------+---------+--------+----------------+---------------------+
//!  | "MP" | version | kind   | body_len (u32) | body ...            |
//!  +------+---------+--------+----------------+---------------------+
//! ```
//!
//! * `magic` is the two bytes `M` `P`. A connection whose first byte is not
//!   `M` is not speaking this protocol; garbage is recognised at once instead
//!   of after a bogus length has been waited for.
//! * `version` is 1 ([`VERSION_NO_METADATA`]) or 2 ([`VERSION`]): a
//!   version 2 request or response carries metadata (see below); every
//!   other frame, and every request or response without metadata, is
//!   written as version 1, byte for byte the original layout, so a frame
//!   without metadata costs nothing extra and peers that only know version
//!   1 read everything but metadata. Version 3 ([`VERSION_STREAMS`]) is
//!   written on stream frames only; a peer that only knows versions 1 and
//!   2 closes a connection that opens a stream (it never sees one unless
//!   a stream is opened). Version 4 ([`VERSION_STREAM_METADATA`]) is the
//!   same for stream frames that carry reply metadata (see "Reply
//!   metadata on streams"); it is written only to and by a peer that
//!   asked for it, so a version 3 peer never sees one. Other versions are
//!   a protocol error.
//! * `kind` is 1 = request, 2 = response, 3 = cancel, 4 = auth; 5 to 10
//!   are stream frames (versions 3 and 4, see "Streams" below).
//! * `body_len` is bounded by the configured max frame size, so no peer can
//!   make us buffer without bound. A request or response over the limit fails
//!   alone: its id is read, its body is skipped as it arrives (never
//!   buffered), and the call gets `ResourceExhausted`; the connection and the
//!   other calls on it carry on. Any other frame over the limit is a protocol
//!   error for that connection only (it is closed, with a logged reason).
//!
//! ## Request body (kind 1)
//!
//! ```text
//! version 1: request_id u64 | timeout_ms u32 | service_len u8 | method_len u8 |
//!            service (utf-8) | method (utf-8) | payload (the protobuf request)
//! version 2: request_id u64 | timeout_ms u32 | service_len u8 | method_len u8 |
//!            meta_len u32 | service | method | payload | metadata (meta_len bytes)
//! ```
//!
//! `timeout_ms` is the caller's remaining time budget (0 = none): the server
//! derives the call's deadline from it and skips calls that have already
//! expired. Many requests may be in flight on one connection; `request_id`
//! matches replies to them, and replies may arrive in any order.
//!
//! ## Response body (kind 2)
//!
//! ```text
//! version 1: request_id u64 | status u8 | error_len u16 | error text (utf-8) | payload
//! version 2: request_id u64 | status u8 | error_len u16 | meta_len u32 |
//!            error text | payload | metadata (meta_len bytes)
//! ```
//!
//! `status` is a [`crate::Code`]; on `Ok` the payload is the protobuf
//! response, otherwise the error text says why. A server answers a version
//! 2 request with a version 2 response (its `meta_len` may be 0) and a
//! version 1 request with a version 1 response, so an old client never
//! sees a frame it cannot read (reply metadata is not sent to it).
//!
//! ## Metadata block (version 2)
//!
//! ```text
//! entry*: key_len u8 | value_len u16 | key (utf-8) | value (utf-8)
//! ```
//!
//! The block sits at the end of the body, after the payload, so a server
//! can encode the response message in place and append the reply metadata
//! its handler set once the handler has returned. Keys and values are
//! checked as UTF-8 when the frame is decoded (a bad block closes the
//! connection, like any malformed frame); the block is a zero-copy slice
//! of the read buffer, like the payload ([`crate::Metadata`]). A trace id
//! travels as the entry `trace-id` (16 hex digits, [`crate::call::trace`]).
//!
//! ## Cancel body (kind 3)
//!
//! ```text
//! request_id u64
//! ```
//!
//! Sent by a client that gave up on a call; the server drops the reply if it
//! has not been sent yet. It is advisory: a reply may still arrive.
//!
//! ## Auth body (kind 4)
//!
//! ```text
//! token (at most 1024 bytes)
//! ```
//!
//! A client whose channel has an auth token sends this once, as the first
//! frame of each connection (before its first request, in the same write).
//! A provider configured with `auth_token` compares it, in constant time,
//! with each of its tokens; until a frame with a right token has arrived,
//! every request is answered `Unauthenticated` (status 12) and the
//! connection is closed after the reply, as it is after a wrong token.
//! A provider without `auth_token` ignores the frame. A client without a
//! token sends no auth frame (only a provider older than this kind, given
//! a token it could not check anyway, closes the connection on the
//! unknown kind).
//!
//! # Streams (version 3)
//!
//! A stream is a call whose request, reply or both are a sequence of
//! messages (`rpc Watch(Req) returns (stream Event)`). It is opened by the
//! client with a stream id from the same space as its call ids, so streams
//! and unary calls share one connection, multiplexed by id. Integers are
//! big-endian, as above; every stream frame has header version 3.
//!
//! ```text
//! kind 5, open:    stream_id u64 | timeout_ms u32 | shape u8 | window u32 |
//!                  service_len u8 | method_len u8 | meta_len u32 |
//!                  service | method | payload | metadata (meta_len bytes)
//! kind 6, message: stream_id u64 | payload (one protobuf message)
//! kind 7, end:     stream_id u64 | status u8 | error_len u16 | error text
//! kind 8, reset:   stream_id u64 | status u8 | error_len u16 | error text
//! kind 9, credit:  stream_id u64 | credit u32
//! ```
//!
//! Version 4 adds (see "Reply metadata on streams"):
//!
//! ```text
//! kind 5, open:    as in version 3 (the caller reads reply metadata)
//! kind 7, end:     stream_id u64 | status u8 | error_len u16 | meta_len u32 |
//!                  error text | metadata (meta_len bytes)
//! kind 10, headers: stream_id u64 | metadata (the rest of the body)
//! ```
//!
//! * `shape` is 1 = server stream (the open's payload is the request
//!   message), 2 = client stream, 3 = bidirectional (the payload is empty;
//!   the client's messages follow as kind 6).
//! * `timeout_ms` is the budget for the whole stream (0 = none): when it
//!   runs out the server resets the stream `DeadlineExceeded`.
//! * The metadata block is as in version 2 (the trace id travels in it).
//! * **Flow control** counts messages. The open's `window` is how many
//!   messages the client takes before it grants more; a server stream's
//!   handler waits when it has used them up. A credit frame grants
//!   `credit` more (a reader grants as it consumes). The server grants the
//!   client's direction the same way, with a credit frame after the open;
//!   a client sends nothing before it has credit, and a peer that sends
//!   past its credit has its stream reset `ResourceExhausted`.
//! * **End** (kind 7): its sender sends nothing more. From a client it is
//!   a half-close (status 0); from a server it ends the stream with the
//!   handler's outcome (a client stream's reply is its last message).
//! * **Reset** (kind 8) ends the stream both ways at once with a status:
//!   a client cancels with `Cancelled`; a server resets on a deadline, an
//!   oversized message or shutdown. Frames of a stream that has ended are
//!   dropped (one may cross the reset on the wire).
//! * An open or message over the frame size limit fails its stream alone
//!   (reset `ResourceExhausted`), as an oversized request does.
//! * **Reply metadata on streams** (version 4) mirrors a version 2
//!   request's: a client whose caller asks for reply metadata writes its
//!   open as version 4 (the layout of version 3), and only then may the
//!   server send the stream's reply metadata. What the handler set before
//!   its first message goes out as a headers frame (kind 10) just before
//!   that message; what it set later (all of it, if it sent no message)
//!   goes in the end frame, written as version 4 with `meta_len` after
//!   `error_len` and the block after the text, like a version 2
//!   response's. A headers frame is sent at most once, and only with
//!   entries; an end without metadata is the version 3 frame, byte for
//!   byte. Every other stream frame (message, reset, credit; and every
//!   client's end) is version 3 whatever the open's version. A version 3
//!   open gets only version 3 frames, so a client of before this version
//!   reads everything it is sent; a version 4 open sent to a provider of
//!   before it closes that connection (an unsupported version), which is
//!   why a client writes one only when its caller asked.
//! * A stream method called as a unary request is answered
//!   `Unimplemented`, and so is an open of a unary method. The seed's
//!   format has no streams: a stream cannot be opened in it.
//!
//! # Zero copy
//!
//! [`Decoder::decode`] works on the connection's `BytesMut` read buffer in the
//! tokio-util `Decoder` style: `Ok(None)` means "need more bytes" (a partial
//! frame), and calling it again after `Ok(Some(_))` yields the next frame
//! already in the buffer (sticky packets). Service, method and payload are
//! `Bytes` slices of the read buffer: no copy is made.
//!
//! # The seed's format
//!
//! A provider also speaks the seed's (a 4-byte little-endian header size,
//! then `RpcHeader`; one call per connection): [`super::seed`], told apart
//! from ours by a stream's first two bytes
//! ([`WireFormat::detect`](super::WireFormat::detect)). Everything about
//! our bytes is in this module (frame layout, offsets, in-place patching),
//! so no other module knows where a field sits.

mod body;
mod client;
mod credit;
mod decoded;
mod decoder;
mod frame;
mod server;
mod stream;

use bytes::{Bytes, BytesMut};

pub(crate) use credit::SendCredit;
pub use decoded::{Frame, Oversized};
pub use decoder::{skip_body, Decoder};
pub(crate) use frame::{begin_response, end_response, set_request_timeout};
pub use frame::{
    check_names, encode_auth, encode_cancel, encode_request, encode_request_meta, encode_response,
    encode_response_meta, FrameKind, NameTooLong, Request, RequestHead, RequestMeta, Response,
};
pub(crate) use stream::put_stream_message_head;
pub use stream::{
    encode_stream_credit, encode_stream_end, encode_stream_end_meta, encode_stream_headers,
    encode_stream_message, encode_stream_open, encode_stream_reset, StreamFrame, StreamKind,
    StreamOpen, StreamShape, END_FIXED_LEN, END_META_FIXED_LEN, MESSAGE_HEAD_LEN, OPEN_FIXED_LEN,
};

use super::{
    Connections, Progress, Protocol, ProtocolError, ReadState, Reply, ReplyStart, ReplyTo, Session,
};
use crate::{Code, Metadata};

/// The two bytes every frame starts with.
pub const MAGIC: [u8; 2] = *b"MP";
/// The newest protocol version this build speaks: frames that carry
/// metadata.
pub const VERSION: u8 = 2;
/// The version of frames without metadata (the original layout); written
/// whenever there is no metadata to carry, and always read.
pub const VERSION_NO_METADATA: u8 = 1;
/// The version of stream frames (kinds 5 to 9), and only of them.
pub const VERSION_STREAMS: u8 = 3;
/// The version of stream frames that carry reply metadata (an open whose
/// caller reads it, an end with trailers, headers), and only of them.
pub const VERSION_STREAM_METADATA: u8 = 4;
/// Size of the fixed frame header.
pub const HEADER_LEN: usize = 8;
/// Default limit on a frame's body: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;
/// Fixed part of a request body: id, timeout, two name lengths.
pub const REQUEST_FIXED_LEN: usize = 8 + 4 + 1 + 1;
/// The longest service or method name a request can carry (one length byte).
pub const MAX_NAME_LEN: usize = 255;
/// The longest auth token an auth frame carries.
pub const MAX_TOKEN_LEN: usize = 1024;
/// Fixed part of a response body: id, status, error length.
pub const RESPONSE_FIXED_LEN: usize = 8 + 1 + 2;

/// Our format as a [`Protocol`].
#[derive(Debug)]
pub(crate) struct Mprpc;

impl Protocol for Mprpc {
    fn name(&self) -> &'static str {
        "mprpc"
    }

    fn process(&self, session: &mut dyn Session) -> Progress {
        server::process(session)
    }

    fn begin_reply(&self, to: ReplyTo, out: &mut BytesMut) -> ReplyStart {
        begin_response(to.id, Code::Ok, "", to.with_metadata, out)
    }

    fn end_reply(&self, started: ReplyStart, metadata: &Metadata, out: &mut BytesMut) {
        end_response(started, metadata, out)
    }

    fn write_reply(
        &self,
        to: ReplyTo,
        result: Result<&[u8], (Code, &str)>,
        metadata: &Metadata,
        out: &mut BytesMut,
    ) {
        let (code, why, payload) = match result {
            Ok(payload) => (Code::Ok, "", payload),
            Err((code, why)) => (code, why, &[][..]),
        };
        encode_response_meta(to.id, code, why, payload, to.with_metadata, metadata, out)
    }

    fn connections(&self) -> Connections {
        Connections::Multiplexed
    }

    fn pack_request(
        &self,
        head: RequestHead<'_>,
        meta: RequestMeta<'_>,
        payload: &[u8],
        dst: &mut BytesMut,
    ) {
        encode_request_meta(head, meta, payload, dst)
    }

    fn parse_reply(
        &self,
        input: &mut BytesMut,
        state: &mut ReadState,
        max: usize,
        eof: bool,
    ) -> Result<Option<Reply>, ProtocolError> {
        client::parse_reply(input, state, max, eof)
    }

    fn take_stream_message(&self, input: &mut BytesMut, max: usize) -> Option<(u64, Bytes)> {
        client::stream_message(input, max)
    }

    #[inline]
    fn take_ok_reply(&self, input: &mut BytesMut, max: usize) -> Option<(u64, Bytes)> {
        client::ok_reply(input, max)
    }
}
