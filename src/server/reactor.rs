//! One event loop (reactor) thread: a mio `Poll` and a `slab` of connections.
//!
//! Each turn of the loop:
//! 1. waits for events (or the next timer tick);
//! 2. on the `Waker` token: adopts connections the acceptor queued and takes
//!    replies the worker pool finished;
//! 3. on a connection token: reads until `WouldBlock`, decodes every complete
//!    frame and dispatches it (inline handlers reply into the output buffer at
//!    once); a writable event flushes pending output;
//! 4. flushes every connection that got output this turn, one `write` each,
//!    so pipelined requests are answered in a batch.
//!
//! Backpressure: when a connection's unsent output passes the high-water mark
//! or it has too many calls in flight, we stop reading from it; the kernel's
//! buffers fill and TCP slows the peer down. Reading resumes after a flush.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use parking_lot::Mutex;
use slab::Slab;

use super::connection::{Connection, Protocol};
use super::dispatch::{reply_error, run_call, ServiceTable};
use super::metrics::ThreadStats;
use super::timer::{TimerEntry, TimerWheel};
use super::workers::{Job, JobSender};
use super::{ServerOptions, ServerShared};
use crate::codec::legacy::{self, LegacyRequest};
use crate::codec::{skip_body, Decoder, Frame, FrameKind, Request};
use crate::discovery::WireFormat;
use crate::service::CallContext;
use crate::status::{Code, Status};

const WAKER: Token = Token(usize::MAX);
/// Timer resolution for idle and slow-frame deadlines, and the wheel's size
/// (one lap = 51.2 s; longer deadlines are simply re-checked each lap).
const TIMER_TICK: Duration = Duration::from_millis(100);
const TIMER_SLOTS: usize = 512;

/// A finished pool call on its way back to its connection.
pub(crate) struct Completion {
    pub token: usize,
    pub conn_id: u64,
    pub id: u64,
    pub frame: bytes::BytesMut,
}

/// The part of a reactor other threads talk to.
pub(crate) struct ReactorShared {
    waker: Waker,
    incoming: Mutex<Vec<(TcpStream, SocketAddr)>>,
    completions: Mutex<Vec<Completion>>,
}

impl ReactorShared {
    /// Queues a newly accepted connection for this reactor.
    pub fn add_connection(&self, stream: TcpStream, peer: SocketAddr) {
        let was_empty = push(&self.incoming, (stream, peer));
        if was_empty {
            self.wake();
        }
    }

    /// Queues a finished pool call's reply.
    pub fn complete(&self, completion: Completion) {
        if push(&self.completions, completion) {
            self.wake();
        }
    }

    pub fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            tracing::error!(error = %e, "cannot wake reactor");
        }
    }
}

/// Pushes and reports whether the queue was empty: only the first push after
/// the reactor drained the queue needs to wake it (one syscall per batch).
fn push<T>(queue: &Mutex<Vec<T>>, item: T) -> bool {
    let mut q = queue.lock();
    q.push(item);
    q.len() == 1
}

pub(crate) fn spawn(
    index: usize,
    table: Arc<ServiceTable>,
    pool: Option<JobSender>,
    options: ServerOptions,
    server: Arc<ServerShared>,
    stats: Arc<ThreadStats>,
) -> io::Result<(Arc<ReactorShared>, JoinHandle<()>)> {
    let poll = Poll::new()?;
    let shared = Arc::new(ReactorShared {
        waker: Waker::new(poll.registry(), WAKER)?,
        incoming: Mutex::new(Vec::new()),
        completions: Mutex::new(Vec::new()),
    });
    let guard = server.thread_guard();
    let mut reactor = Reactor {
        index,
        poll,
        conns: Slab::with_capacity(1024),
        decoder: Decoder::new(options.max_frame_size),
        table,
        pool,
        shared: shared.clone(),
        server,
        options,
        dirty: Vec::new(),
        next_conn_id: (index as u64) << 48,
        drain_started: None,
        timers: TimerWheel::new(TIMER_TICK, TIMER_SLOTS, Instant::now()),
        now: Instant::now(),
        stats,
    };
    let thread = std::thread::Builder::new()
        .name(format!("mprpc-reactor-{index}"))
        .spawn(move || {
            let _guard = guard;
            if let Err(e) = reactor.run() {
                tracing::error!(reactor = reactor.index, error = %e, "reactor stopped on an error");
            }
            reactor.close_all();
        })?;
    Ok((shared, thread))
}

struct Reactor {
    index: usize,
    poll: Poll,
    conns: Slab<Connection>,
    decoder: Decoder,
    table: Arc<ServiceTable>,
    pool: Option<JobSender>,
    shared: Arc<ReactorShared>,
    server: Arc<ServerShared>,
    options: ServerOptions,
    /// Connections with output to flush at the end of this turn.
    dirty: Vec<usize>,
    next_conn_id: u64,
    drain_started: Option<Instant>,
    /// Idle and slow-frame deadlines of this reactor's connections.
    timers: TimerWheel,
    /// The time at the start of this loop turn (saves clock reads).
    now: Instant,
    /// Per-method metrics of the handlers run on this thread.
    stats: Arc<ThreadStats>,
}

impl Reactor {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut inbox = Vec::new();
        let mut due = Vec::new();
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        self.adopt_connections();
                        self.take_completions(&mut inbox);
                    }
                    Token(key) => {
                        if event.is_writable() {
                            self.mark_dirty(key);
                        }
                        if event.is_read_closed() || event.is_error() {
                            // Read on to the EOF: no later event will say so.
                            self.read_ready(key, false);
                        } else if event.is_readable() {
                            self.read_ready(key, true);
                        }
                    }
                }
            }
            self.flush_dirty();
            if self.server.is_shutting_down() && self.drain_finished() {
                return Ok(());
            }
            if self.timers_enabled() {
                self.timers.advance(self.now, &mut due);
                for entry in due.drain(..) {
                    self.check_deadlines(entry);
                }
            }
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if self.server.is_shutting_down() {
            Some(Duration::from_millis(10))
        } else if self.timers_enabled() {
            Some(self.timers.until_next_tick(Instant::now()))
        } else {
            None
        }
    }

    fn timers_enabled(&self) -> bool {
        self.options.idle_timeout.is_some() || self.options.frame_timeout.is_some()
    }

    fn adopt_connections(&mut self) {
        let incoming = std::mem::take(&mut *self.shared.incoming.lock());
        for (mut stream, peer) in incoming {
            if self.server.is_shutting_down() {
                self.forget_connection();
                continue;
            }
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut stream, Token(key), Interest::READABLE)
            {
                tracing::warn!(%peer, error = %e, "cannot register connection");
                self.forget_connection();
                continue;
            }
            self.next_conn_id += 1;
            let conn = entry.insert(Connection::new(self.next_conn_id, stream, peer));
            conn.last_active = self.now;
            if let Some(at) = next_check(&self.options, self.now, conn) {
                let entry = TimerEntry {
                    key,
                    conn_id: conn.id,
                };
                self.timers.schedule(entry, at);
            }
            tracing::debug!(%peer, reactor = self.index, "connection accepted");
        }
    }

    fn take_completions(&mut self, inbox: &mut Vec<Completion>) {
        std::mem::swap(&mut *self.shared.completions.lock(), inbox);
        for done in inbox.drain(..) {
            let Some(conn) = self.conns.get_mut(done.token) else {
                continue;
            };
            if conn.id != done.conn_id {
                continue; // the connection closed and its slot was reused
            }
            conn.inflight -= 1;
            if conn.cancelled.remove(&done.id) {
                continue;
            }
            conn.write_buf.extend_from_slice(&done.frame);
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(done.token);
            }
        }
    }

    fn mark_dirty(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// Reads until the socket is drained (or backpressure pauses us),
    /// dispatching every complete frame as it arrives. With
    /// `short_read_drains`, a read that did not fill the buffer counts as
    /// drained (saves the syscall that would only return `WouldBlock`).
    fn read_ready(&mut self, key: usize, short_read_drains: bool) {
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            if conn.read_paused || conn.peer_closed {
                return;
            }
            match conn.read_once() {
                Ok((0, _)) => {
                    conn.peer_closed = true;
                    if conn.is_quiet() {
                        self.close(key, "peer closed");
                    } else {
                        self.mark_dirty(key);
                    }
                    return;
                }
                Ok((_, drained)) => {
                    conn.last_active = self.now;
                    let open = self.process_input(key);
                    self.track_partial_frame(key);
                    if !open || (drained && short_read_drains) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.close(key, &format!("read error: {e}"));
                    return;
                }
            }
        }
    }

    /// Decodes and dispatches what the read buffer holds, in whichever wire
    /// format the connection speaks. Returns false if the connection was
    /// closed or reading is paused.
    fn process_input(&mut self, key: usize) -> bool {
        let conn = &mut self.conns[key];
        if conn.protocol == Protocol::Undecided {
            if conn.read_buf.len() < 2 {
                return true;
            }
            conn.protocol = if legacy::is_mprpc_stream(&conn.read_buf) {
                Protocol::Mprpc
            } else {
                Protocol::Legacy
            };
        }
        match conn.protocol {
            Protocol::Legacy => self.process_legacy(key),
            _ => self.process_frames(key),
        }
    }

    /// Our framed protocol: every complete frame, until backpressure.
    fn process_frames(&mut self, key: usize) -> bool {
        let shutting_down = self.server.is_shutting_down();
        loop {
            let conn = &mut self.conns[key];
            if conn.skip > 0 && !skip_body(&mut conn.read_buf, &mut conn.skip) {
                break;
            }
            let frame = match self.decoder.decode(&mut conn.read_buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    self.close(key, &format!("protocol error: {e}"));
                    return false;
                }
            };
            match frame {
                Frame::Request(request) => self.dispatch(key, request, shutting_down),
                Frame::Cancel { id } => {
                    let conn = &mut self.conns[key];
                    if conn.cancelled.len() < conn.inflight {
                        conn.cancelled.insert(id);
                    }
                }
                Frame::Oversized(o) if o.kind == FrameKind::Request => {
                    // Fail that one call; the connection and its other calls go on.
                    let conn = &mut self.conns[key];
                    conn.skip = o.unread;
                    let status = o.status("request", "this server's");
                    tracing::warn!(peer = %conn.peer, id = o.id, "{}; answered ResourceExhausted", status.message());
                    reply_error(o.id, &status, &mut conn.write_buf);
                }
                Frame::Response(_) | Frame::Oversized(_) => {
                    self.close(key, "protocol error: a client sent a response frame");
                    return false;
                }
            }
            let conn = &mut self.conns[key];
            if conn.write_buf.len() >= self.options.write_high_water
                || conn.inflight >= self.options.max_inflight_per_connection
            {
                conn.read_paused = true;
            }
            if conn.read_paused {
                break;
            }
        }
        self.mark_dirty(key);
        !self.conns[key].read_paused
    }

    /// The seed's format: one request, then the bare reply and a close. As in
    /// the seed, an unknown service or method is logged and the connection
    /// closed without a reply; unlike the seed, a request split over several
    /// reads is reassembled.
    fn process_legacy(&mut self, key: usize) -> bool {
        let conn = &mut self.conns[key];
        let request = match legacy::decode_request(&mut conn.read_buf, self.decoder.max_frame()) {
            Ok(Some(request)) => request,
            Ok(None) => return true,
            Err(e) => {
                self.close(key, &format!("seed-format protocol error: {e}"));
                return false;
            }
        };
        let LegacyRequest {
            service,
            method,
            args,
        } = request;
        let known = self.table.get(&service).filter(|e| {
            e.service
                .methods()
                .iter()
                .any(|m| m.as_bytes() == &method[..])
        });
        if known.is_none() || self.server.is_shutting_down() {
            let what = format!(
                "seed-format call to unknown {}.{}",
                String::from_utf8_lossy(&service),
                String::from_utf8_lossy(&method)
            );
            self.close(key, &what);
            return false;
        }
        let conn = &mut self.conns[key];
        conn.read_paused = true;
        conn.close_when_quiet = true;
        // The legacy decoder checked the names are UTF-8.
        let request = Request::new(
            0,
            0,
            &String::from_utf8_lossy(&service),
            &String::from_utf8_lossy(&method),
            args,
        );
        self.dispatch(key, request, false);
        self.mark_dirty(key);
        false
    }

    fn dispatch(&mut self, key: usize, request: Request, shutting_down: bool) {
        let conn = &mut self.conns[key];
        if shutting_down {
            let status = Status::new(Code::ShuttingDown, "server is shutting down");
            return reply_error(request.id, &status, &mut conn.write_buf);
        }
        let Some(entry) = self.table.get(request.service_bytes()) else {
            let status = Status::unknown_service(request.service());
            return reply_error(request.id, &status, &mut conn.write_buf);
        };
        let ctx = CallContext {
            request_id: request.id,
            deadline: (request.timeout_ms > 0)
                .then(|| self.now + Duration::from_millis(request.timeout_ms as u64)),
            peer: conn.peer,
        };
        let format = match conn.protocol {
            Protocol::Legacy => WireFormat::Legacy,
            _ => WireFormat::Mprpc,
        };
        match (&self.pool, entry.blocking) {
            (Some(pool), true) => {
                conn.inflight += 1;
                pool.send(Job {
                    entry: entry.clone(),
                    request,
                    ctx,
                    format,
                    reply_to: self.shared.clone(),
                    token: key,
                    conn_id: conn.id,
                });
            }
            _ => run_call(
                entry,
                request,
                &ctx,
                format,
                &mut conn.write_buf,
                &self.stats,
            ),
        }
    }

    /// Flushes every connection that has output, resuming paused readers.
    fn flush_dirty(&mut self) {
        while let Some(key) = self.dirty.pop() {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.dirty = false;
            let flushed = match conn.flush() {
                Ok(flushed) => flushed,
                Err(e) => {
                    self.close(key, &format!("write error: {e}"));
                    continue;
                }
            };
            // Ask for writable events only while the socket is full: with
            // edge triggering they would otherwise fire on every ACK.
            if flushed == conn.want_writable {
                conn.want_writable = !flushed;
                let interest = if flushed {
                    Interest::READABLE
                } else {
                    Interest::READABLE | Interest::WRITABLE
                };
                if let Err(e) =
                    self.poll
                        .registry()
                        .reregister(&mut conn.stream, Token(key), interest)
                {
                    self.close(key, &format!("cannot watch the socket: {e}"));
                    continue;
                }
            }
            if conn.is_quiet() && (conn.peer_closed || conn.close_when_quiet) {
                self.close(key, "peer closed");
                continue;
            }
            let can_resume = conn.read_paused
                && conn.write_buf.len() < self.options.write_high_water / 2
                && conn.inflight < self.options.max_inflight_per_connection;
            if can_resume {
                conn.read_paused = false;
                // Edge-triggered: data that arrived while paused raised no
                // new event, so read it now.
                if self.process_input(key) {
                    self.read_ready(key, false);
                }
            }
        }
    }

    /// While shutting down: true once every connection is quiet (or the
    /// grace period is over), at which point the loop exits.
    fn drain_finished(&mut self) -> bool {
        let started = *self.drain_started.get_or_insert_with(Instant::now);
        let quiet = self.conns.iter().all(|(_, c)| c.is_quiet());
        if !quiet && started.elapsed() < self.options.shutdown_grace {
            return false;
        }
        if !quiet {
            tracing::warn!(
                reactor = self.index,
                "shutdown grace period over; closing busy connections"
            );
        }
        true
    }

    /// Notes when a partial frame started waiting for its remaining bytes
    /// (the slow-loris clock); a paused reader is waiting on us, not the peer.
    fn track_partial_frame(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.mid_frame() || conn.read_paused {
            conn.partial_since = None;
        } else if conn.partial_since.is_none() {
            conn.partial_since = Some(self.now);
        }
    }

    /// A timer came due: close the connection if a deadline really passed,
    /// otherwise schedule the next check.
    fn check_deadlines(&mut self, entry: TimerEntry) {
        let Some(conn) = self.conns.get(entry.key) else {
            return;
        };
        if conn.id != entry.conn_id {
            return; // closed; the slot now holds another connection
        }
        if let (Some(limit), Some(since)) = (self.options.frame_timeout, conn.partial_since) {
            if self.now.duration_since(since) >= limit {
                let reason =
                    format!("frame still incomplete after {limit:?} (slow or stalled peer)");
                return self.close(entry.key, &reason);
            }
        }
        if let Some(limit) = self.options.idle_timeout {
            let idle = conn.is_quiet() && !conn.mid_frame();
            if idle && self.now.duration_since(conn.last_active) >= limit {
                return self.close(entry.key, &format!("idle for {limit:?}"));
            }
        }
        let next = next_check(&self.options, self.now, conn)
            .map(|at| at.max(self.now + self.timers.tick()));
        if let Some(at) = next {
            self.timers.schedule(entry, at);
        }
    }

    fn close(&mut self, key: usize, reason: &str) {
        if !self.conns.contains(key) {
            return;
        }
        let mut conn = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.forget_connection();
        if reason == "peer closed" {
            tracing::debug!(peer = %conn.peer, "connection closed: {reason}");
        } else {
            tracing::warn!(peer = %conn.peer, "closing connection: {reason}");
        }
    }

    fn close_all(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                let _ = conn.flush();
            }
            let mut conn = self.conns.remove(key);
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.forget_connection();
        }
        // Connections queued by the acceptor but never adopted.
        for _ in self.shared.incoming.lock().drain(..) {
            self.forget_connection();
        }
    }

    fn forget_connection(&self) {
        self.server
            .connections()
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The next time a connection's deadlines could pass, if any apply.
fn next_check(options: &ServerOptions, now: Instant, conn: &Connection) -> Option<Instant> {
    let frame = options
        .frame_timeout
        .map(|t| conn.partial_since.map_or(now + t, |since| since + t));
    let idle = options.idle_timeout.map(|t| conn.last_active + t);
    match (frame, idle) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
