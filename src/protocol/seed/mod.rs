//! The seed's (C++ mprpc's) wire format, kept so we interoperate with it:
//! its codec (`codec`), the server half (`server`: one request in, the bare
//! reply out, then the close) and the client half (`client`: the reply is
//! everything read until the provider closes), behind `Protocol`.
//!
//! ```text
//! request:  header_size u32 (host order: little-endian on x86)
//!           | RpcHeader (protobuf, header_size bytes)
//!           | args (protobuf request, RpcHeader.args_size bytes)
//! reply:    the bare protobuf response, then the provider closes
//! ```
//!
//! `RpcHeader` is `message RpcHeader { bytes service_name = 1; bytes
//! method_name = 2; uint32 args_size = 3; }` in package `mprpc`. One call per
//! TCP connection. Proto3 omits `args_size` when it is 0 (an empty request).
//! The format has no call ids, deadlines or metadata: a call made in it has
//! an empty [`Metadata`] on the server and a trace id made up there.
//!
//! A server tells it from ours by a connection's first two bytes
//! ([`WireFormat::detect`](super::WireFormat::detect)).

mod client;
mod codec;
mod server;

use bytes::BytesMut;

pub use codec::{
    decode_reply, decode_reply_eof, decode_request, decode_request_incremental, encode_request,
    headers_decoded, RpcHeader, SeedRequest,
};

use super::mprpc::{RequestHead, RequestMeta};
use super::{
    Connections, Progress, Protocol, ProtocolError, ReadState, Reply, ReplyStart, ReplyTo, Session,
};
use crate::{Code, Metadata};

/// The seed's format as a [`Protocol`].
#[derive(Debug)]
pub(crate) struct Seed;

impl Protocol for Seed {
    fn name(&self) -> &'static str {
        "seed"
    }

    fn process(&self, session: &mut dyn Session) -> Progress {
        server::process(session)
    }

    /// The reply is the bare message: nothing comes before it.
    fn begin_reply(&self, _to: ReplyTo, out: &mut BytesMut) -> ReplyStart {
        ReplyStart {
            at: out.len(),
            meta_len_at: None,
        }
    }

    /// Nothing follows the message either (the format has no metadata).
    fn end_reply(&self, _started: ReplyStart, _metadata: &Metadata, _out: &mut BytesMut) {}

    /// A failed call has no reply in this format: it is logged and the
    /// connection closes empty-handed, which the seed's client reads as
    /// failure.
    fn write_reply(
        &self,
        _to: ReplyTo,
        result: Result<&[u8], (Code, &str)>,
        _metadata: &Metadata,
        out: &mut BytesMut,
    ) {
        match result {
            Ok(message) => out.extend_from_slice(message),
            Err((code, why)) => tracing::warn!(
                code = code.as_str(),
                why,
                "seed-format call failed; closing without a reply"
            ),
        }
    }

    fn connections(&self) -> Connections {
        Connections::OnePerCall
    }

    fn pack_request(
        &self,
        head: RequestHead<'_>,
        _meta: RequestMeta<'_>,
        payload: &[u8],
        dst: &mut BytesMut,
    ) {
        encode_request(head.service, head.method, payload, dst)
    }

    fn parse_reply(
        &self,
        input: &mut BytesMut,
        _state: &mut ReadState,
        max: usize,
        eof: bool,
    ) -> Result<Option<Reply>, ProtocolError> {
        client::parse_reply(input, max, eof)
    }
}
