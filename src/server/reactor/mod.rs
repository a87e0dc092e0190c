//! One event loop (reactor) thread: a mio `Poll` and a `slab` of connections.
//!
//! Each turn of the loop:
//! 1. waits for events (or the next timer tick);
//! 2. on the `Waker` token: adopts connections the acceptor queued and takes
//!    replies the worker pool finished;
//! 3. on a connection token: reads, and hands the input to the connection's
//!    wire format (`serve`), which decodes every complete request
//!    and dispatches it (inline handlers reply into the output at once); a
//!    writable event queues a flush;
//! 4. flushes every connection that got output this turn, one `write` each,
//!    so pipelined requests are answered in a batch.
//!
//! The loop is here; reading and backpressure are in `read`, deadlines in
//! `deadlines`, shutdown in `drain`, memory given back after connection
//! storms in `trim`. Connections keep their bytes in a
//! [`Transport`](crate::net::Transport) the loop never reaches into.

mod deadlines;
mod drain;
mod read;
mod trim;

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::admin::Admin;
use super::close::CloseReason;
use super::connection::{Backpressure, Connection, Deadlines};
use super::dispatch::Dispatcher;
use super::mailbox::{Incoming, PoolReply, ReactorShared};
use super::metrics::ThreadStats;
use super::pending::Done;
use super::stats::{self, ConnStats};
use super::stream::Core;
use super::table::ServiceTable;
use super::timer::TimerWheel;
use super::warn_limit::{Verdict, WarnLimit};
use super::workers::JobSender;
use super::{ServerOptions, ServerShared};
use crate::net::auth::AuthToken;
use crate::net::tls::ServerTls;
use crate::net::{FlushList, Transport};

const WAKER: Token = Token(usize::MAX);

/// Starts reactor `index` on its own thread.
pub(crate) fn spawn(
    index: usize,
    table: Arc<ServiceTable>,
    pool: Option<JobSender>,
    options: ServerOptions,
    server: Arc<ServerShared>,
    stats: Arc<ThreadStats>,
    admin: Option<Arc<Admin>>,
) -> io::Result<(Arc<ReactorShared>, JoinHandle<()>)> {
    let poll = Poll::new()?;
    let shared = Arc::new(ReactorShared::new(poll.registry(), WAKER)?);
    let limits = Backpressure {
        write_high_water: options.write_high_water,
        max_inflight: options.max_inflight_per_connection,
    };
    let guard = server.thread_guard();
    let auth_tokens: Arc<[AuthToken]> = options.auth_tokens.clone().into();
    let mut reactor = Reactor {
        index,
        poll,
        conns: Slab::with_capacity(trim::TABLE_CAPACITY),
        dispatcher: Dispatcher::new(
            table,
            pool,
            shared.clone(),
            stats,
            options.max_frame_size,
            limits,
            server.limits().clone(),
        )
        .with_auth(auth_tokens)
        .with_stream_window(options.stream_window, options.stream_window_bytes)
        .with_admin(admin)
        .with_interceptors(options.interceptors.clone()),
        tls: options.tls.clone(),
        shared: shared.clone(),
        server,
        deadlines: Deadlines {
            idle: options.idle_timeout,
            frame: options.frame_timeout,
            auth: options.auth_timeout,
            write_stall: options.write_stall_timeout,
        },
        shutdown_grace: options.shutdown_grace,
        flushes: FlushList::default(),
        next_conn_id: (index as u64) << 48,
        drain_started: None,
        timers: deadlines::wheel(Instant::now()),
        trim: trim::Trim::new(options.trim_memory),
        now: Instant::now(),
        warnings: WarnLimit::default(),
    };
    let thread = super::thread::spawn(format!("mprpc-reactor-{index}"), move || {
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
    dispatcher: Dispatcher,
    /// TLS on this port, handed to each accepted connection.
    tls: Option<ServerTls>,
    shared: Arc<ReactorShared>,
    server: Arc<ServerShared>,
    deadlines: Deadlines,
    shutdown_grace: Duration,
    /// Connections with output to flush at the end of this turn.
    flushes: FlushList,
    next_conn_id: u64,
    drain_started: Option<Instant>,
    /// Idle and slow-frame deadlines of this reactor's connections.
    timers: TimerWheel,
    /// When to give memory back after a storm of closes.
    trim: trim::Trim,
    /// The time at the start of this loop turn (saves clock reads).
    now: Instant,
    /// Close warnings a flood of bad peers repeats: logged in bursts.
    warnings: WarnLimit,
}

impl Reactor {
    /// The event loop. Never inlined (it runs once per thread, so that
    /// costs nothing): profiles find the loop's own cost under this name
    /// (scripts/profile.sh reads `Reactor::run` inclusive).
    #[inline(never)]
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut replies = Vec::new();
        let mut woken = Vec::new();
        let mut streams = Vec::new();
        self.shared.enter();
        loop {
            // What this thread posted to its own mailbox (no wake-up rang).
            if self.shared.take_self_posted() {
                self.take_replies(&mut replies);
                self.poll_woken(&mut woken);
                self.move_stream_output(&mut streams);
                self.flush_queued();
            }
            let timeout = match self.shared.self_posted() {
                true => Some(Duration::ZERO),
                false => self.poll_timeout(),
            };
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
                        self.take_replies(&mut replies);
                        self.poll_woken(&mut woken);
                        self.move_stream_output(&mut streams);
                    }
                    Token(key) => {
                        if event.is_writable() {
                            self.queue_flush(key);
                        }
                        if event.is_error() || event.is_write_closed() {
                            // Reset, or both ways shut: nobody is left to
                            // answer, even if reading is paused.
                            self.peer_gone(key);
                        } else if event.is_read_closed() {
                            // Read on to the EOF: no later event will say so.
                            self.read_ready(key, false);
                        } else if event.is_readable() {
                            self.read_ready(key, true);
                        }
                    }
                }
            }
            self.flush_queued();
            if self.server.is_shutting_down() && self.drain_finished() {
                return Ok(());
            }
            self.check_deadlines();
            self.expire_later();
            self.flush_queued();
            self.trim_if_due();
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let timers = if self.server.is_shutting_down() {
            Some(Duration::from_millis(10))
        } else if self.timers_enabled() {
            Some(self.timers.until_next_tick(now))
        } else {
            None
        };
        let later = self
            .dispatcher
            .next_later_deadline()
            .map(|at| at.saturating_duration_since(now));
        [timers, self.trim.timeout(now), later]
            .into_iter()
            .flatten()
            .min()
    }

    fn adopt_connections(&mut self) {
        for Incoming {
            mut stream,
            peer,
            admin_port,
        } in self.shared.take_incoming()
        {
            if self.server.is_shutting_down() {
                self.forget_connection();
                continue;
            }
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            let registered =
                self.poll
                    .registry()
                    .register(&mut stream, Token(key), Interest::READABLE);
            if let Err(e) = registered {
                tracing::warn!(%peer, error = %e, "cannot register connection");
                self.forget_connection();
                continue;
            }
            self.next_conn_id += 1;
            let io = Transport::accepted(stream, self.tls.as_ref());
            let needs_auth = self.dispatcher.needs_auth();
            let stats = Arc::new(ConnStats::new(peer, self.index, self.now));
            self.shared.stats().opened(self.next_conn_id, stats.clone());
            entry.insert(Connection::new(
                self.next_conn_id,
                io,
                admin_port,
                stats,
                self.now,
                needs_auth,
            ));
            self.schedule_deadline_check(key);
            tracing::debug!(%peer, reactor = self.index, "connection accepted");
        }
    }

    /// Appends finished pool calls' replies to their connections' output
    /// (dropping those of cancelled calls and of closed connections).
    fn take_replies(&mut self, replies: &mut Vec<PoolReply>) {
        self.shared.take_replies(replies);
        for reply in replies.drain(..) {
            let Some(conn) = self.conns.get_mut(reply.token) else {
                continue;
            };
            if conn.id() != reply.conn_id {
                continue; // the connection closed and its slot was reused
            }
            if conn.finish_pool_call(reply.id) {
                conn.io().output().extend_from_slice(&reply.frame);
            }
            self.flushes.add(reply.token, conn.io());
        }
    }

    /// Polls the woken futures of calls that answer later and writes the
    /// replies of those that finished.
    fn poll_woken(&mut self, woken: &mut Vec<usize>) {
        self.shared.take_woken(woken);
        for slot in woken.drain(..) {
            if let Some(done) = self.dispatcher.poll_later(slot) {
                self.answer_later(done);
            }
        }
    }

    /// Moves the frames streams' handlers sent into their connections'
    /// output (dropping those of streams that ended).
    fn move_stream_output(&mut self, ready: &mut Vec<Arc<Core>>) {
        self.shared.take_streams(ready);
        for core in ready.drain(..) {
            let Some(conn) = self.conns.get_mut(core.key) else {
                continue;
            };
            if conn.id() == core.conn_id {
                self.dispatcher.stream_output(conn, &core);
                self.flushes.add(core.key, conn.io());
            }
        }
    }

    /// Answers the calls waiting for a future whose deadline passed.
    fn expire_later(&mut self) {
        while let Some(done) = self.dispatcher.expire_later(self.now) {
            self.answer_later(done);
        }
    }

    /// Writes a finished call's reply into its connection's output.
    fn answer_later(&mut self, done: Done) {
        let key = done.addr.key;
        let conn = self.conns.get_mut(key);
        // A closed connection's calls were dropped with it, so `conn` is
        // this call's; the id check is a cheap guard all the same.
        match conn.filter(|c| c.id() == done.addr.conn_id) {
            Some(conn) => {
                let send = conn.finish_pool_call(done.addr.id);
                self.dispatcher
                    .answer_later(done, send.then(|| conn.io().output()));
                self.flushes.add(key, conn.io());
            }
            None => self.dispatcher.answer_later(done, None),
        }
    }

    /// Queues connection `key` for this turn's flush.
    fn queue_flush(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            self.flushes.add(key, conn.io());
        }
    }

    /// Flushes every connection that has output; closes those that are
    /// done and resumes paused readers whose output drained.
    fn flush_queued(&mut self) {
        while let Some(key) = self.flushes.pop() {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            FlushList::taken(conn.io());
            let unsent = conn.io().unsent();
            let flushed = conn.io().flush_and_watch(self.poll.registry(), Token(key));
            let sent = unsent.saturating_sub(conn.io().unsent()) as u64;
            conn.note_output(sent > 0, self.now);
            stats::bump(&conn.stats().bytes_out, sent);
            stats::bump(&self.shared.stats().bytes_out, sent);
            match flushed {
                Ok(true) => {}
                Ok(false) => self
                    .server
                    .backpressure()
                    .output_blocked(conn.io().unsent()),
                Err(e) => {
                    self.close(key, CloseReason::Write(e));
                    continue;
                }
            }
            if conn.give_back_buffers(self.server.buffers()) > 0 {
                self.trim.large_freed(self.now);
            }
            if conn.resume_if_under(self.dispatcher.limits()) {
                self.resume(key); // queues this connection's flush again
            } else if let Some(reason) = conn.finished() {
                self.close(key, reason);
            }
        }
    }

    fn close(&mut self, key: usize, reason: CloseReason) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(conn.io().stream_mut());
        self.forget_connection();
        conn.cancel_pool_calls();
        if conn.release_budget(self.server.buffers()) {
            self.trim.large_freed(self.now);
        }
        self.dispatcher.connection_closed(conn.id());
        self.shared.stats().closed(conn.id());
        if reason.is_bad_input() {
            stats::bump(&self.shared.stats().frames_rejected, 1);
        }
        self.trim.closed(self.now);
        if reason.is_routine() {
            tracing::debug!(peer = %conn.peer(), "connection closed: {reason}");
        } else if let Verdict::Log { suppressed } = self.warnings.check(reason.cause(), self.now) {
            tracing::warn!(peer = %conn.peer(), suppressed, "closing connection: {reason}");
        }
    }

    fn forget_connection(&self) {
        self.server.connections().fetch_sub(1, Ordering::AcqRel);
    }
}
