//! The mprpc wire protocol: framing, encoding and decoding.
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
//! * `version` is [`VERSION`] (1). Other versions are a protocol error.
//! * `kind` is 1 = request, 2 = response, 3 = cancel, 4 = auth.
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
//! request_id u64 | timeout_ms u32 | service_len u8 | method_len u8 |
//! service (utf-8) | method (utf-8) | payload (the protobuf request)
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
//! request_id u64 | status u8 | error_len u16 | error text (utf-8) | payload
//! ```
//!
//! `status` is a [`crate::Code`]; on `Ok` the payload is the protobuf
//! response, otherwise the error text says why.
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
//! A provider without `auth_token` ignores the frame. Nothing else changed:
//! a client without a token sends no auth frame, so the version stays 1
//! (only a provider older than this kind, given a token it could not check
//! anyway, closes the connection on the unknown kind).
//!
//! # Zero copy
//!
//! [`Decoder::decode`] works on the connection's `BytesMut` read buffer in the
//! tokio-util `Decoder` style: `Ok(None)` means "need more bytes" (a partial
//! frame), and calling it again after `Ok(Some(_))` yields the next frame
//! already in the buffer (sticky packets). Service, method and payload are
//! `Bytes` slices of the read buffer: no copy is made.
//!
//! # Wire formats
//!
//! A provider may speak ours or the seed's (a 4-byte little-endian header
//! size, then `RpcHeader`; one call per connection); [`WireFormat`] names them and
//! [`WireFormat::detect`] tells them apart by a stream's first two bytes.
//! Everything about the seed's bytes lives in [`seed`]; everything about
//! ours in this module (frame layout, offsets, in-place patching), so no
//! other module knows where a field sits.

mod decoder;
mod format;
mod frame;
pub mod seed;

/// The seed's format under its old module name.
pub use seed as legacy;

pub use decoder::{skip_body, Decoder, ProtocolError};
pub use format::WireFormat;
pub use frame::{
    check_names, encode_auth, encode_cancel, encode_request, encode_response, encode_response_with,
    request_parts, request_service, set_request_timeout, Frame, FrameKind, NameTooLong, Oversized,
    Request, RequestHead, Response,
};

/// The two bytes every frame starts with.
pub const MAGIC: [u8; 2] = *b"MP";
/// The protocol version this build speaks.
pub const VERSION: u8 = 1;
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
