//! One persistent, multiplexed connection to a provider, as its driver sees
//! it: the shared [`Transport`] (socket and buffers) plus what the client
//! needs beside it — the connect in progress, the calls routed here, and
//! whether the provider has answered yet.
//!
//! Requests are appended to the transport's output as they are routed and
//! flushed once per loop turn, so pipelined calls share write syscalls.
//! While the TCP connect (and, with TLS, the handshake) is still in
//! progress the frames wait in the output, and `queued` remembers where each
//! one is: if the connect or the handshake fails, none of them has touched
//! the network and the driver may retry them elsewhere.
//! The driver owns the call bookkeeping; this file only does socket I/O.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::client::request::{Parts, Staged};
use crate::discovery::Endpoint;
use crate::net::auth::AuthToken;
use crate::net::tls::ClientTls;
use crate::net::{FlushList, ReadTurn, Transport};
use crate::protocol::mprpc::set_request_timeout;
use crate::protocol::{Protocol, ProtocolError, Reply};
use crate::sys::TcpLiveness;

/// The request id of a probe (no call has id 0: see `CellRef::call_id`).
pub(crate) const PROBE_ID: u64 = 0;
/// The service a probe asks for: none has this name, so a provider answers
/// `UnknownService` from its reactor without running anything.
const PROBE_SERVICE: &str = "mprpc.probe";

/// Bytes read from one connection before its replies are decoded; bounds
/// the read buffer when a peer streams replies faster than we consume them.
const READ_BATCH: usize = 256 * 1024;
/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 64 * 1024;

/// A request as the driver routed it: enough to route it again elsewhere
/// if the connect it waits for fails.
#[derive(Debug)]
pub(crate) struct Routed {
    /// Its request's parts, to pack again for another provider.
    pub request: Staged,
    pub endpoints: Arc<[Endpoint]>,
    pub hash_key: Option<u64>,
    /// Connection attempts this call has used so far.
    pub attempts: u32,
}

impl Routed {
    pub(crate) fn id(&self) -> u64 {
        self.request.parts().id
    }
}

/// A request written into the output before the connect finished, and
/// where its frame sits there.
#[derive(Debug)]
pub(crate) struct Queued {
    pub call: Routed,
    pub frame: Range<usize>,
}

/// How a new connection secures itself: TLS, and the token it presents.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Security<'a> {
    pub tls: Option<&'a ClientTls>,
    pub auth: Option<&'a AuthToken>,
}

/// What a non-blocking connect has come to.
pub(crate) enum ConnectState {
    InProgress,
    Connected,
    Failed(io::Error),
}

pub(crate) struct ProviderConn {
    io: Transport,
    addr: SocketAddr,
    /// The provider's wire format (a multiplexed one): it packs requests
    /// and parses replies.
    protocol: &'static dyn Protocol,
    /// `Some` until the connection is open (TCP connected and, with TLS,
    /// the handshake done): its deadline.
    connecting_until: Option<Instant>,
    /// The TCP connect completed (a TLS handshake may still be under way).
    tcp_up: bool,
    /// Requests waiting for the connect (only while connecting).
    queued: Vec<Queued>,
    /// Calls routed here and not yet completed.
    inflight: usize,
    /// A reply has arrived: the peer is known to work.
    answered: bool,
    /// Calls on this connection that passed their deadline since it last
    /// delivered a reply (outlier detection, see `driver::eject`).
    silent_timeouts: u32,
    /// Its provider was ejected: it takes no new calls and is closed once
    /// the calls on it are done.
    draining: bool,
    /// It carries a probe of an ejected provider, unanswered yet: the
    /// probe fails if no answer comes by then.
    probe_until: Option<Instant>,
    /// When something was last read from the provider (or the connection
    /// opened): keepalive pings go after `ping_interval` of silence
    /// (`driver::ping`).
    last_heard: Instant,
    /// A keepalive ping is out, unanswered: the connection is dead if
    /// nothing is read by then.
    ping_until: Option<Instant>,
}

impl ProviderConn {
    /// Starts a non-blocking connect and registers for its completion.
    /// With `tls` the connection speaks TLS (its handshake starts at the
    /// first flush); with `auth` the token goes out before any request.
    pub(crate) fn connect(
        addr: SocketAddr,
        protocol: &'static dyn Protocol,
        registry: &Registry,
        token: Token,
        deadline: Instant,
        secure: Security<'_>,
        liveness: TcpLiveness,
    ) -> io::Result<ProviderConn> {
        let mut stream = TcpStream::connect(addr)?;
        if let Err(e) = liveness.apply(&stream) {
            tracing::debug!(
                "client: TCP keepalive options not set on the connection to {addr}: {e}"
            );
        }
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        let mut io = Transport::connecting(stream, secure.tls, addr)?;
        if let Some(token) = secure.auth {
            crate::protocol::mprpc::encode_auth(token.as_bytes(), io.output());
        }
        Ok(ProviderConn {
            io,
            addr,
            protocol,
            connecting_until: Some(deadline),
            tcp_up: false,
            queued: Vec::new(),
            inflight: 0,
            answered: false,
            silent_timeouts: 0,
            draining: false,
            probe_until: None,
            last_heard: deadline,
            ping_until: None,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The provider's wire format.
    pub(crate) fn protocol(&self) -> &'static dyn Protocol {
        self.protocol
    }

    /// Requests may go out: connected, and any TLS handshake done.
    pub(crate) fn is_open(&self) -> bool {
        self.connecting_until.is_none()
    }

    /// The TCP connect completed.
    pub(crate) fn tcp_up(&self) -> bool {
        self.tcp_up
    }

    /// Connected, and no TLS handshake is under way: ready to be opened.
    pub(crate) fn ready(&self) -> bool {
        self.tcp_up && !self.io.handshaking()
    }

    /// When the connect in progress times out (`None` once connected).
    pub(crate) fn connect_deadline(&self) -> Option<Instant> {
        self.connecting_until
    }

    pub(crate) fn inflight(&self) -> usize {
        self.inflight
    }

    /// One call fewer is routed here.
    pub(crate) fn retire_call(&mut self) {
        self.inflight = self.inflight.saturating_sub(1);
    }

    /// Records the first reply; true if this was it.
    pub(crate) fn note_answer(&mut self) -> bool {
        !std::mem::replace(&mut self.answered, true)
    }

    pub(crate) fn answered(&self) -> bool {
        self.answered
    }

    /// A call on this connection passed its deadline: how many have in a
    /// row, with no reply read in between.
    pub(crate) fn note_timeout(&mut self) -> u32 {
        self.silent_timeouts = self.silent_timeouts.saturating_add(1);
        self.silent_timeouts
    }

    /// A reply was read: the connection is not silent.
    #[inline]
    pub(crate) fn heard_from(&mut self) {
        self.silent_timeouts = 0;
    }

    /// Calls in a row that passed their deadline with nothing read.
    pub(crate) fn silent_timeouts(&self) -> u32 {
        self.silent_timeouts
    }

    /// Takes no new calls from now on (its provider was ejected).
    pub(crate) fn drain(&mut self) {
        self.draining = true;
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining
    }

    /// Sends a probe: a request (id [`PROBE_ID`], to a service no provider
    /// has) that any live provider answers at once, without running a
    /// handler. It goes out when the connection opens; an answer is due
    /// by `until`.
    pub(crate) fn push_probe(&mut self, now: Instant, until: Instant) {
        self.push_probe_frame(now);
        self.probe_until = Some(until);
    }

    /// Sends a keepalive ping: the same frame as a probe, on a connection
    /// in use; something must be read from the provider by `until`.
    pub(crate) fn push_ping(&mut self, now: Instant, until: Instant) {
        self.push_probe_frame(now);
        self.ping_until = Some(until);
    }

    /// Something was read from the provider at `now`: it is alive, and an
    /// outstanding ping is answered (by this or by anything else).
    #[inline]
    pub(crate) fn heard_at(&mut self, now: Instant) {
        self.last_heard = now;
        self.ping_until = None;
    }

    /// When something was last read (or the connection opened).
    pub(crate) fn last_heard(&self) -> Instant {
        self.last_heard
    }

    /// When an outstanding keepalive ping goes unanswered (`None`: none).
    pub(crate) fn ping_until(&self) -> Option<Instant> {
        self.ping_until
    }

    fn push_probe_frame(&mut self, now: Instant) {
        let metadata = crate::call::metadata::Metadata::new();
        let parts = Parts {
            id: PROBE_ID,
            deadline: None,
            timeout_ms: None,
            service: PROBE_SERVICE,
            method: "probe",
            payload: &[],
            metadata: &metadata,
            trace: None,
            reply_metadata: false,
        };
        parts.pack(self.protocol, now, self.io.output());
    }

    /// When the probe on this connection fails unanswered (`None`: no
    /// probe pending).
    pub(crate) fn probe_until(&self) -> Option<Instant> {
        self.probe_until
    }

    /// The probe was answered.
    pub(crate) fn probe_answered(&mut self) {
        self.probe_until = None;
    }

    /// Checks a connect in progress after an event (mio's recipe: the
    /// pending socket error first, then whether a peer is there).
    pub(crate) fn check_connect(&mut self) -> ConnectState {
        let stream = self.io.stream();
        match stream.take_error() {
            Ok(Some(e)) | Err(e) => return ConnectState::Failed(e),
            Ok(None) => {}
        }
        match stream.peer_addr() {
            Ok(_) => {
                // Latency over batching at the TCP level: we batch ourselves.
                let _ = stream.set_nodelay(true);
                self.tcp_up = true;
                ConnectState::Connected
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => ConnectState::InProgress,
            Err(e) => ConnectState::Failed(e),
        }
    }

    /// The connection opened: requests that waited for it get their
    /// remaining budget (`now` to their deadline) written into their frame.
    pub(crate) fn opened(&mut self, now: Instant) {
        self.connecting_until = None;
        self.last_heard = now;
        let queued = std::mem::take(&mut self.queued);
        for q in &queued {
            if let Some(deadline) = q.call.request.parts().deadline {
                set_request_timeout(
                    &mut self.io.output()[q.frame.clone()],
                    budget_ms(deadline, now),
                );
            }
        }
    }

    /// Packs a call's request onto the output, with its remaining budget as
    /// of `now`. While connecting, remembers where it is (and the call, as
    /// `routed` describes it) for a retry elsewhere.
    pub(crate) fn push_request(
        &mut self,
        parts: &Parts<'_>,
        now: Instant,
        routed: impl FnOnce() -> Routed,
    ) {
        let out = self.io.output();
        let start = out.len();
        parts.pack(self.protocol, now, out);
        let end = out.len();
        self.inflight += 1;
        if !self.is_open() {
            self.queued.push(Queued {
                call: routed(),
                frame: start..end,
            });
        }
    }

    /// Appends a cancel frame for call `id`.
    pub(crate) fn push_cancel(&mut self, id: u64) {
        crate::protocol::mprpc::encode_cancel(id, self.io.output());
    }

    /// Where frames for the provider go (a stream's, packed by the driver).
    pub(crate) fn output(&mut self) -> &mut bytes::BytesMut {
        self.io.output()
    }

    /// A failed connect gives its waiting requests back (none of them
    /// reached the network).
    pub(crate) fn take_queued(&mut self) -> Vec<Queued> {
        self.io.output().clear();
        std::mem::take(&mut self.queued)
    }

    /// Reads what the socket has (up to [`READ_BATCH`]); `needs_flush` in
    /// the result asks for a flush (a TLS handshake message to answer).
    pub(crate) fn read_turn(&mut self, short_read_drains: bool) -> io::Result<ReadTurn> {
        self.io.read_turn(READ_CHUNK, READ_BATCH, short_read_drains)
    }

    /// The next complete reply read from the provider, parsed by its
    /// format; replies over `max` bytes fail their call alone.
    pub(crate) fn next_reply(&mut self, max: usize) -> Result<Option<Reply>, ProtocolError> {
        self.io.parse_reply(self.protocol, max)
    }

    /// The next reply if it is a whole stream message frame: its stream's
    /// id and the message (`None`: [`next_reply`](Self::next_reply) reads
    /// what comes next).
    #[inline]
    pub(crate) fn next_stream_message(&mut self, max: usize) -> Option<(u64, bytes::Bytes)> {
        self.io.take_stream_message(self.protocol, max)
    }

    /// The next reply if it is a whole successful one with no error text
    /// or metadata: its call's id and payload (`None`:
    /// [`next_reply`](Self::next_reply) reads what comes next).
    #[inline]
    pub(crate) fn next_ok_reply(&mut self, max: usize) -> Option<(u64, bytes::Bytes)> {
        self.io.take_ok_reply(self.protocol, max)
    }

    /// At EOF: an error if part of a reply was left unread (its rest will
    /// never come).
    pub(crate) fn check_eof(&self) -> Result<(), ProtocolError> {
        self.io.check_eof()
    }

    /// Queues this connection for the end-of-turn flush.
    pub(crate) fn schedule_flush(&mut self, key: usize, list: &mut FlushList) {
        list.add(key, &mut self.io);
    }

    /// Flushes (once TCP is connected: a TLS handshake goes out, requests
    /// wait for it), watching for writability only while output is left.
    pub(crate) fn flush(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        FlushList::taken(&mut self.io);
        if self.tcp_up {
            self.io.flush_and_watch(registry, token)?;
        }
        Ok(())
    }

    pub(crate) fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(self.io.stream_mut());
    }
}

/// A call's remaining budget in whole milliseconds (at least 1), as sent.
pub(crate) fn budget_ms(deadline: Instant, now: Instant) -> u32 {
    whole_ms(deadline.saturating_duration_since(now))
}

/// `d` in whole milliseconds, rounded up, within 1..=u32::MAX (in 64-bit
/// arithmetic: this runs for every call, and `as_nanos` is a u128).
pub(crate) fn whole_ms(d: std::time::Duration) -> u32 {
    let ms = d
        .as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_nanos().div_ceil(1_000_000)));
    ms.clamp(1, u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::whole_ms;
    use std::time::Duration;

    #[test]
    fn whole_ms_rounds_up_and_clamps() {
        assert_eq!(whole_ms(Duration::ZERO), 1);
        assert_eq!(whole_ms(Duration::from_nanos(1)), 1);
        assert_eq!(whole_ms(Duration::from_millis(7)), 7);
        assert_eq!(whole_ms(Duration::from_nanos(1_000_000_100)), 1001);
        assert_eq!(whole_ms(Duration::from_secs(u64::MAX)), u32::MAX);
    }
}
