//! The per-protocol half of the load engine: how one call is written and
//! how its reply is recognised, for every server loadgen drives.
//!
//! The engine (`crate::engine`) owns sockets, the send schedule, the
//! per-connection window and the latency stamps; a [`Protocol`] only turns
//! "one more call" into bytes and bytes back into "call `id` finished".
//! Keeping that split is what makes the comparison fair: every server is
//! loaded by the same code, and only these small encoders/decoders differ.

use bytes::BytesMut;

pub mod grpc;
pub mod mprpc;
pub mod resp;
pub mod seed;
pub mod thrift;

/// One decoded reply: which call it answers and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The id [`Protocol::encode`] returned for the call.
    pub id: u64,
    /// `None` for success, else a short error name for the report.
    pub error: Option<String>,
}

impl Reply {
    pub fn ok(id: u64) -> Reply {
        Reply { id, error: None }
    }
    pub fn err(id: u64, error: impl Into<String>) -> Reply {
        Reply {
            id,
            error: Some(error.into()),
        }
    }
}

/// A wire protocol as the engine sees it. `Conn` is the per-connection
/// codec state (sequence numbers, HTTP/2 windows, ...).
pub trait Protocol: Send + Sync {
    type Conn: Send;

    /// Fresh state for a new connection.
    fn new_conn(&self) -> Self::Conn;

    /// One call per TCP connection, its reply read until the server closes
    /// (the seed's format). The engine then opens a connection per call.
    fn per_call_connection(&self) -> bool {
        false
    }

    /// Bytes a new connection starts with (the HTTP/2 preface).
    fn start(&self, _conn: &mut Self::Conn, _out: &mut BytesMut) {}

    /// Whether the protocol itself allows one more call now (HTTP/2 flow
    /// control and stream limits); the engine's window is checked apart.
    fn can_send(&self, _conn: &Self::Conn) -> bool {
        true
    }

    /// Appends one call to `out`; returns its id.
    fn encode(&self, conn: &mut Self::Conn, out: &mut BytesMut) -> u64;

    /// Takes one reply off the front of `buf` (`Ok(None)`: more bytes
    /// needed). Control frames the protocol must answer (HTTP/2 SETTINGS
    /// and PING acks, window updates) are appended to `out`. An `Err` is a
    /// broken connection.
    fn decode(
        &self,
        conn: &mut Self::Conn,
        buf: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<Option<Reply>, String>;

    /// The server closed the connection with `buf` unread: the reply of a
    /// per-call connection, or an error for the others.
    fn decode_eof(&self, _conn: &mut Self::Conn, _buf: &mut BytesMut) -> Result<Reply, String> {
        Err("the server closed the connection".into())
    }
}

/// In-order protocols (RESP, the seed) number their calls themselves.
#[derive(Debug, Default)]
pub struct Sequence {
    next_sent: u64,
    next_reply: u64,
}

impl Sequence {
    pub fn sent(&mut self) -> u64 {
        self.next_sent += 1;
        self.next_sent
    }
    pub fn replied(&mut self) -> u64 {
        self.next_reply += 1;
        self.next_reply
    }
}

#[cfg(test)]
pub mod testing {
    //! Helpers the per-protocol tests share: feed a byte stream to a
    //! decoder split at every position, or all at once.

    use super::*;

    /// Decodes `stream` after feeding it in two pieces split at `at`.
    pub fn decode_split<P: Protocol>(
        p: &P,
        conn: &mut P::Conn,
        stream: &[u8],
        at: usize,
    ) -> Vec<Reply> {
        let mut buf = BytesMut::new();
        let mut out = BytesMut::new();
        let mut replies = Vec::new();
        for piece in [&stream[..at], &stream[at..]] {
            buf.extend_from_slice(piece);
            while let Some(r) = p.decode(conn, &mut buf, &mut out).expect("decodes") {
                replies.push(r);
            }
        }
        assert!(buf.is_empty(), "{} bytes left undecoded", buf.len());
        replies
    }

    /// Checks that `stream` decodes to `expected` however it is split
    /// (including all in one read); `fresh` makes a new connection state
    /// primed as the encoder left it.
    pub fn check_every_split<P: Protocol>(
        p: &P,
        fresh: impl Fn() -> P::Conn,
        stream: &[u8],
        expected: &[Reply],
    ) {
        for at in 0..=stream.len() {
            let mut conn = fresh();
            assert_eq!(
                decode_split(p, &mut conn, stream, at),
                expected,
                "split at {at}"
            );
        }
    }
}
