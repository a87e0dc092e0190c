//! The wire formats, one module each with both halves, behind one
//! interface: `Protocol` (brpc's `Protocol` and its `policy/*_protocol`).
//!
//! * [`mprpc`] — our framed, multiplexed format (its layout is documented
//!   there): the codec (`frame`, `decoder`, `body`), the server half (`server`)
//!   and the client half (`client`).
//! * [`seed`] — the seed's (C++ mprpc's) format, one call per short
//!   connection: its codec, server half and client half.
//!
//! The server reads a connection in whatever format its first bytes name
//! ([`WireFormat::detect`]) by handing the connection, as a `Session`, to
//! that format's `Protocol::process`; it runs handlers itself and has the
//! call's format pack the reply (`Protocol::begin_reply`,
//! `Protocol::end_reply`, `Protocol::write_reply`). A client packs a
//! call with `Protocol::pack_request`, sends it on a connection used as
//! `Protocol::connections` says, and reads the reply with
//! `Protocol::parse_reply`. Neither side matches on a format: adding one
//! is a module here and a [`WireFormat`] variant.

pub mod mprpc;
pub mod seed;

mod error;
pub(crate) mod names;

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};

pub use error::ProtocolError;
use mprpc::{Request, RequestHead, RequestMeta};

use crate::server::close::CloseReason;
use crate::{Code, Metadata, Status};

/// How to talk to a provider: which wire format it speaks. A consumer's
/// [`Endpoint`](crate::Endpoint) says it; a server decides per connection
/// from the first bytes it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum WireFormat {
    /// Our framed, multiplexed protocol ([`mprpc`]).
    #[default]
    Mprpc,
    /// The seed's format: one call per short connection ([`seed`]).
    Seed,
}

impl WireFormat {
    /// The format a stream speaks, from its first bytes; `None` until two
    /// have arrived. Ours start with "MP"; a seed header size would have to
    /// be 20557 bytes to look like that.
    pub fn detect(first: &[u8]) -> Option<WireFormat> {
        if first.len() < mprpc::MAGIC.len() {
            return None;
        }
        Some(if first.starts_with(&mprpc::MAGIC) {
            WireFormat::Mprpc
        } else {
            WireFormat::Seed
        })
    }

    /// Every format, in [`index`](Self::index) order.
    pub(crate) const ALL: [WireFormat; 2] = [WireFormat::Mprpc, WireFormat::Seed];

    /// How many formats there are.
    pub(crate) const COUNT: usize = WireFormat::ALL.len();

    /// The format's place among the [`COUNT`](Self::COUNT), for per-format
    /// tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The format's name, as the admin pages show it: "mprpc" or "seed".
    pub fn name(self) -> &'static str {
        self.protocol().name()
    }

    /// The implementation of this format.
    pub(crate) fn protocol(self) -> &'static dyn Protocol {
        match self {
            WireFormat::Mprpc => &mprpc::Mprpc,
            WireFormat::Seed => &seed::Seed,
        }
    }
}

/// One wire format, both halves. Implementations are stateless (unit
/// structs): what a connection must remember between reads is in its
/// [`ReadState`], the rest in the [`Session`].
pub(crate) trait Protocol: Sync {
    /// Its name on the admin pages and in logs.
    fn name(&self) -> &'static str;

    // --- server half ---------------------------------------------------

    /// Decodes every complete request in the session's input and hands
    /// each to the session (brpc's parse + process_request), until the
    /// input is used up, backpressure pauses reading or the format says
    /// the connection is done.
    fn process(&self, session: &mut dyn Session) -> Progress;

    /// Starts the reply of call `to` in `out` before its handler runs; the
    /// handler then appends the encoded response message.
    fn begin_reply(&self, to: ReplyTo, out: &mut BytesMut) -> ReplyStart;

    /// Finishes a reply begun by [`begin_reply`](Self::begin_reply) whose
    /// handler succeeded, with the reply `metadata` the handler set.
    fn end_reply(&self, started: ReplyStart, metadata: &Metadata, out: &mut BytesMut);

    /// Writes the whole reply of call `to`: `Ok` with the encoded response
    /// message, or `Err` with the failure's code and text (a format that
    /// cannot say "error" logs it and writes nothing).
    fn write_reply(
        &self,
        to: ReplyTo,
        result: Result<&[u8], (Code, &str)>,
        metadata: &Metadata,
        out: &mut BytesMut,
    );

    // --- client half ---------------------------------------------------

    /// How a client uses connections for calls in this format.
    fn connections(&self) -> Connections;

    /// Appends one call's request to `dst` (brpc's pack_request). The
    /// caller has checked the names ([`mprpc::check_names`]). What the
    /// format cannot carry (ids, timeouts, metadata in the seed's) is left
    /// out.
    fn pack_request(
        &self,
        head: RequestHead<'_>,
        meta: RequestMeta<'_>,
        payload: &[u8],
        dst: &mut BytesMut,
    );

    /// Takes the next reply off the front of `input` (brpc's parse on the
    /// client side): `Ok(None)` until one is complete; `eof` says the
    /// provider has closed (a format whose replies end with the close
    /// completes one only then, and bytes left over in a format that
    /// frames its replies are an error). Replies larger than `max` bytes
    /// fail their call alone where the format can tell which call it was.
    fn parse_reply(
        &self,
        input: &mut BytesMut,
        state: &mut ReadState,
        max: usize,
        eof: bool,
    ) -> Result<Option<Reply>, ProtocolError>;

    /// A whole stream message frame (within `max`) at the front of
    /// `input`, taken off as its stream's id and the message's bytes:
    /// `None` for anything else, which [`parse_reply`](Self::parse_reply)
    /// then reads. The client's fast path for the runs of message frames
    /// a server stream sends (no [`Reply`] per message); formats without
    /// streams have none.
    fn take_stream_message(&self, input: &mut BytesMut, max: usize) -> Option<(u64, Bytes)> {
        let _ = (input, max);
        None
    }

    /// A whole successful reply with no error text or metadata (within
    /// `max`) at the front of `input`, taken off as its call's id and
    /// payload: `None` for anything else, which
    /// [`parse_reply`](Self::parse_reply) then reads. The client's fast
    /// path for the common unary reply (no [`Reply`] built); formats may
    /// have none.
    fn take_ok_reply(&self, input: &mut BytesMut, max: usize) -> Option<(u64, Bytes)> {
        let _ = (input, max);
        None
    }
}

/// How a client uses connections for a format (brpc's connection type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connections {
    /// Many calls in flight on one persistent connection, replies matched
    /// by id.
    Multiplexed,
    /// One call per connection: connect, send, read the reply until the
    /// provider closes.
    OnePerCall,
}

/// A reply as a client reads it, in any format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The call it answers (0 in a format without ids, which has one call
    /// per connection).
    pub(crate) id: u64,
    /// The encoded response message, or why the call failed.
    pub(crate) result: Result<Bytes, Status>,
    /// The reply's metadata (empty where the format has none).
    pub(crate) metadata: Metadata,
    /// Not a call's reply but a frame of stream `id` (formats with
    /// streams only); a message's bytes are in `result`.
    pub(crate) stream: Option<StreamEvent>,
}

/// What a stream frame a client reads tells its stream. Small and inline
/// (no allocation per message): a message's bytes travel in the reply's
/// `result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamEvent {
    /// One message of the stream (its bytes: the reply's `result`).
    Message,
    /// The server takes this many more messages.
    Credit(u32),
    /// The server ended (end frame) or reset the stream with this status
    /// (an end's trailing metadata: the reply's `metadata`).
    End(Status),
    /// The server's headers: its reply metadata set before its first
    /// message (in the reply's `metadata`).
    Headers,
}

/// What a connection's reader keeps between reads, for any format.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ReadState {
    /// Bytes of an oversized message still to drop as they arrive (its
    /// call was failed alone; its body is never buffered).
    pub(crate) skip: usize,
    /// The input length below which the message arriving cannot be
    /// complete: decoding it again is not worth trying before.
    pub(crate) needed: usize,
}

/// Which call a reply answers and how: its id, and whether its caller
/// reads reply metadata.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplyTo {
    pub(crate) id: u64,
    pub(crate) with_metadata: bool,
}

impl ReplyTo {
    /// The reply to `request`.
    pub(crate) fn of(request: &Request) -> ReplyTo {
        ReplyTo {
            id: request.id,
            with_metadata: request.replies_with_metadata,
        }
    }
}

/// A reply being written: where it starts in the output, and where its
/// format patches a length once the handler has written the message.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReplyStart {
    pub(crate) at: usize,
    pub(crate) meta_len_at: Option<usize>,
}

/// What processing a connection's input left it as.
#[derive(Debug)]
pub(crate) enum Progress {
    /// Waiting for more bytes.
    Open,
    /// Reading paused by backpressure until the output drains.
    Paused,
    /// The connection reads nothing more (its one call arrived, or it is
    /// refused and closes once the reply is out).
    Done,
    /// The input is invalid or asks for a close.
    Close(CloseReason),
}

/// One connection being served, as a format's server half sees it: its
/// bytes, its standing with the server, and where its calls go. The server
/// implements it; a format never sees the reactor, the dispatcher or the
/// connection table.
pub(crate) trait Session {
    /// The undecoded input and what its reader keeps between reads.
    fn input(&mut self) -> (&mut BytesMut, &mut ReadState);
    /// Where replies go.
    fn output(&mut self) -> &mut BytesMut;
    /// The largest request body the server accepts, in bytes.
    fn max_frame(&self) -> usize;
    /// The peer's address, for logs.
    fn peer(&self) -> SocketAddr;
    /// Whether the server requires an auth token on every connection.
    fn needs_auth(&self) -> bool;
    /// Why calls on this connection are refused (`None`: they are not):
    /// no token yet, or a wrong one.
    fn unauthenticated(&self) -> Option<&'static str>;
    /// The connection presents `token` (checked in constant time).
    fn present_token(&mut self, token: &[u8]);
    /// The server is draining: new calls are refused.
    fn shutting_down(&self) -> bool;
    /// A call with this id is in flight on the connection.
    fn has_call(&self, id: u64) -> bool;
    /// Whether the server publishes `service` with `method`.
    fn serves(&self, service: &[u8], method: &[u8]) -> bool;
    /// Runs `request` (inline, on the pool or as a future), its reply
    /// packed in `format`; the request comes back when no published
    /// service has its name.
    fn dispatch(&mut self, request: Request, format: WireFormat) -> Result<(), Request>;
    /// The caller gave up on call `id`.
    fn cancel(&mut self, id: u64);
    /// Starts the stream `open` asks for (its format has streams); `Err`
    /// with the status to reset it with when no published service has its
    /// name.
    fn open_stream(&mut self, open: mprpc::StreamOpen) -> Result<(), Status>;
    /// A frame of an open stream (message, end, reset or credit); frames
    /// of streams not open are dropped.
    fn stream_frame(&mut self, frame: mprpc::StreamFrame);
    /// Reads nothing more; the connection closes once its reply is out.
    fn close_after_reply(&mut self);
    /// Pauses reading if the connection is over its backpressure limits;
    /// returns whether reading is paused.
    fn pause_if_over(&mut self) -> bool;
    /// Counts a message refused for its size or form.
    fn count_rejected(&mut self);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_bytes_decide() {
        assert_eq!(WireFormat::detect(b""), None);
        assert_eq!(WireFormat::detect(b"M"), None);
        assert_eq!(WireFormat::detect(b"MP\x01"), Some(WireFormat::Mprpc));
        assert_eq!(
            WireFormat::detect(b"M\x00\x00\x00"),
            Some(WireFormat::Seed),
            "a 77-byte seed header starts with 'M'"
        );
    }

    #[test]
    fn each_format_has_its_protocol_and_place() {
        for (index, format) in WireFormat::ALL.into_iter().enumerate() {
            assert_eq!(format.index(), index);
        }
        assert_eq!(WireFormat::Mprpc.name(), "mprpc");
        assert_eq!(WireFormat::Seed.name(), "seed");
        let packs = |format: WireFormat| format.protocol().connections();
        assert_eq!(packs(WireFormat::Mprpc), Connections::Multiplexed);
        assert_eq!(packs(WireFormat::Seed), Connections::OnePerCall);
    }
}
