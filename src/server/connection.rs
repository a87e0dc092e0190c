//! One accepted connection as its reactor sees it: the transport plus the
//! server's bookkeeping (calls in flight, cancellations, pause and close
//! flags, deadline clocks).
//!
//! A connection belongs to one reactor thread for its whole life, so nothing
//! here is locked. Bytes live in the [`Transport`]; this type decides when
//! to read (backpressure), when to close, and which pool replies to drop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::budget::{self, BufferBudget, OverBudget};
use super::close::CloseReason;
use super::speaks::{self, Speaks};
use super::stats::{self, ConnStats};
use super::workers::PoolTicket;
use crate::net::Transport;

/// When a connection stops reading so a slow or greedy peer cannot make us
/// buffer without bound: the kernel's buffers fill and TCP slows it down.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backpressure {
    /// Unsent reply bytes above which reading pauses (resumes below half).
    pub(crate) write_high_water: usize,
    /// Pool calls in flight at which reading pauses.
    pub(crate) max_inflight: usize,
}

/// Where a connection stands with token authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// The server needs no token, or a right one arrived.
    Passed,
    /// The server needs a token and none has arrived.
    Waiting,
    /// A wrong token arrived.
    Refused,
}

/// The time limits a connection is held to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    pub(crate) idle: Option<Duration>,
    pub(crate) frame: Option<Duration>,
    /// From the open to a right token, where one is required.
    pub(crate) auth: Option<Duration>,
    /// Unsent output without progress.
    pub(crate) write_stall: Option<Duration>,
}

#[derive(Debug)]
pub(crate) struct Connection {
    /// Unique for the server's life (slab keys are reused; ids are not), so a
    /// late worker reply can never reach a newer connection in the same slot.
    id: u64,
    peer: SocketAddr,
    io: Transport,
    /// Decided by the first bytes; `None` until enough arrived.
    speaks: Option<Speaks>,
    /// Accepted on the admin port: only HTTP is served.
    admin_port: bool,
    /// Its figures for the admin pages.
    stats: Arc<ConnStats>,
    /// Calls handed to the worker pool, or waiting for their future
    /// (`pending`), and not answered yet.
    inflight: usize,
    /// Cancel flags of the pool calls in flight, by request id; a set flag
    /// keeps the handler from starting and drops the reply.
    pool_calls: HashMap<u64, Off>,
    /// Reading stopped because of backpressure (or the seed's one request
    /// arrived). Resumed after a flush.
    read_paused: bool,
    /// The peer half-closed: answer what is in flight, then close.
    peer_closed: bool,
    /// Close once the output is flushed and nothing is in flight (the seed's
    /// one-call-per-connection format).
    close_when_quiet: bool,
    last_active: Instant,
    opened: Instant,
    /// Since when unsent output has not moved (a flush sent nothing).
    output_stalled_since: Option<Instant>,
    /// When the bytes of a still-incomplete frame started waiting.
    partial_since: Option<Instant>,
    /// What its read buffer is charged against the process's budget.
    input_charge: usize,
    auth: Auth,
}

impl Connection {
    /// Wraps a transport whose stream is registered with
    /// `Interest::READABLE`; `needs_auth`: its calls wait for a token;
    /// `stats` is where its figures go.
    pub(crate) fn new(
        id: u64,
        io: Transport,
        admin_port: bool,
        stats: Arc<ConnStats>,
        now: Instant,
        needs_auth: bool,
    ) -> Connection {
        Connection {
            id,
            peer: stats.peer,
            io,
            speaks: None,
            admin_port,
            stats,
            inflight: 0,
            pool_calls: HashMap::new(),
            read_paused: false,
            peer_closed: false,
            close_when_quiet: false,
            last_active: now,
            opened: now,
            output_stalled_since: None,
            partial_since: None,
            input_charge: 0,
            auth: if needs_auth {
                Auth::Waiting
            } else {
                Auth::Passed
            },
        }
    }

    /// Why calls on this connection are refused (`None`: they are not).
    pub(crate) fn unauthenticated(&self) -> Option<&'static str> {
        match self.auth {
            Auth::Passed => None,
            Auth::Refused => Some("wrong auth token"),
            Auth::Waiting => Some("this provider requires an auth token and none was sent"),
        }
    }

    /// A token arrived and was checked; a connection once refused stays so.
    pub(crate) fn token_checked(&mut self, right: bool) {
        if self.auth == Auth::Waiting {
            self.auth = if right { Auth::Passed } else { Auth::Refused };
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub(crate) fn io(&mut self) -> &mut Transport {
        &mut self.io
    }

    pub(crate) fn stats(&self) -> &Arc<ConnStats> {
        &self.stats
    }

    /// Accepted on the admin port.
    pub(crate) fn on_admin_port(&self) -> bool {
        self.admin_port
    }

    /// Whether what the connection speaks is known yet.
    pub(crate) fn speaks_known(&self) -> bool {
        self.speaks.is_some()
    }

    /// What the connection speaks, detected from its first bytes.
    pub(crate) fn speaks(&mut self) -> Option<Speaks> {
        if self.speaks.is_none() {
            self.speaks = speaks::detect(self.io.input());
            if let Some(speaks) = self.speaks {
                self.stats.set_speaks(speaks);
            }
        }
        self.speaks
    }

    /// Reading is on: not paused and the peer has not closed.
    pub(crate) fn is_reading(&self) -> bool {
        !self.read_paused && !self.peer_closed
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.read_paused
    }

    /// Bytes arrived at `now`.
    pub(crate) fn touch(&mut self, now: Instant) {
        self.last_active = now;
    }

    // --- pool calls ---------------------------------------------------

    /// A call goes to the worker pool with `ticket`, which cancels it.
    pub(crate) fn start_pool_call(&mut self, id: u64, ticket: PoolTicket) -> PoolTicket {
        self.start_off_loop(id, Off::Pool(ticket.clone()));
        ticket
    }

    /// A call answers later (a future waiting on the reactor's executor).
    pub(crate) fn start_later_call(&mut self, id: u64) {
        self.start_off_loop(id, Off::Later { cancelled: false });
    }

    fn start_off_loop(&mut self, id: u64, call: Off) {
        self.inflight += 1;
        stats::bump(&self.stats.in_flight, 1);
        self.pool_calls.insert(id, call);
    }

    /// The client gave up on call `id`: if it is on the pool, it will not
    /// start and its reply is dropped. Ids not in flight are ignored, so a
    /// peer cannot grow any state with cancels.
    pub(crate) fn cancel(&mut self, id: u64) {
        if let Some(call) = self.pool_calls.get_mut(&id) {
            call.cancel();
        }
    }

    /// A call with this id is in flight (on the pool or answering later):
    /// a request reusing it would make two replies with one id.
    pub(crate) fn has_call(&self, id: u64) -> bool {
        !self.pool_calls.is_empty() && self.pool_calls.contains_key(&id)
    }

    /// The connection closed: its pool calls still queued will not start
    /// (the worker drops them unrun; nobody is left to answer).
    pub(crate) fn cancel_pool_calls(&mut self) {
        self.pool_calls.values_mut().for_each(Off::cancel);
    }

    /// A pool call came back: true if its reply should be sent.
    pub(crate) fn finish_pool_call(&mut self, id: u64) -> bool {
        self.inflight -= 1;
        let in_flight = &self.stats.in_flight;
        in_flight.store(stats::read(in_flight).saturating_sub(1), Ordering::Relaxed);
        match self.pool_calls.remove(&id) {
            Some(call) => !call.is_cancelled(),
            None => true,
        }
    }

    // --- buffer memory --------------------------------------------------

    /// Charges the read buffer's size against `budget` after it grew;
    /// refused when that would pass it (the connection must close).
    pub(crate) fn charge_input(&mut self, budget: &BufferBudget) -> Result<(), OverBudget> {
        budget.recharge(&mut self.input_charge, self.io.input_capacity())
    }

    /// Gives back buffers left large and empty by a large frame or reply,
    /// lowering the charge; returns the bytes given back.
    pub(crate) fn give_back_buffers(&mut self, budget: &BufferBudget) -> usize {
        let freed = self.io.release_large_buffers(budget::ALLOWANCE);
        if freed > 0 {
            let _ = budget.recharge(&mut self.input_charge, self.io.input_capacity());
        }
        freed
    }

    /// The connection closed: its charge is freed. Returns whether it held
    /// large buffers (worth returning freed memory to the kernel for).
    pub(crate) fn release_budget(&mut self, budget: &BufferBudget) -> bool {
        budget.release(&mut self.input_charge);
        self.io.buffer_capacity() > budget::ALLOWANCE
    }

    // --- backpressure and closing --------------------------------------

    /// Pauses reading if the connection is over its limits; returns whether
    /// reading is paused.
    pub(crate) fn pause_if_over(&mut self, limits: Backpressure) -> bool {
        if self.io.unsent() >= limits.write_high_water || self.inflight >= limits.max_inflight {
            self.read_paused = true;
        }
        self.read_paused
    }

    /// Resumes a paused reader once its output drained below half the
    /// high-water mark and a call slot is free; returns whether it resumed.
    pub(crate) fn resume_if_under(&mut self, limits: Backpressure) -> bool {
        let under = self.io.unsent() < limits.write_high_water / 2
            && self.inflight < limits.max_inflight
            && !self.close_when_quiet;
        if self.read_paused && under {
            self.read_paused = false;
            return true;
        }
        false
    }

    /// The seed's format: the one request arrived; stop reading and close
    /// once it is answered.
    pub(crate) fn close_after_reply(&mut self) {
        self.read_paused = true;
        self.close_when_quiet = true;
    }

    /// The peer closed its side (EOF).
    pub(crate) fn peer_closed(&mut self) {
        self.peer_closed = true;
    }

    /// Nothing in flight and nothing left to send.
    pub(crate) fn is_quiet(&self) -> bool {
        self.inflight == 0 && self.io.unsent() == 0
    }

    /// Why the connection should close now that a flush finished, if it
    /// should: everything owed is sent and the peer (or the format) is done.
    pub(crate) fn finished(&self) -> Option<CloseReason> {
        if !self.is_quiet() {
            None
        } else if self.peer_closed {
            // Every complete request was answered; bytes left over are a
            // frame the peer cut short.
            Some(match self.io.check_eof() {
                Ok(()) => CloseReason::PeerClosed,
                Err(e) => CloseReason::Protocol(e),
            })
        } else if self.close_when_quiet {
            Some(match self.auth {
                Auth::Passed => CloseReason::Answered,
                Auth::Waiting => CloseReason::Unauthenticated("no auth token sent"),
                Auth::Refused => CloseReason::Unauthenticated("wrong auth token"),
            })
        } else {
            None
        }
    }

    // --- deadlines ----------------------------------------------------

    /// Notes when a partial frame started waiting for its remaining bytes
    /// (the slow-loris clock); a paused reader is waiting on us, not the peer.
    pub(crate) fn track_partial_frame(&mut self, now: Instant) {
        if !self.io.mid_frame() || self.read_paused {
            self.partial_since = None;
        } else if self.partial_since.is_none() {
            self.partial_since = Some(now);
        }
    }

    /// A flush at `now` left output unsent (or not) and sent some (or
    /// none): starts, restarts or ends the write-stall clock.
    pub(crate) fn note_output(&mut self, sent_some: bool, now: Instant) {
        if self.io.unsent() == 0 {
            self.output_stalled_since = None;
        } else if sent_some || self.output_stalled_since.is_none() {
            self.output_stalled_since = Some(now);
        }
    }

    /// Waiting for a token on an RPC connection (admin HTTP has its own).
    fn awaiting_token(&self) -> bool {
        self.auth == Auth::Waiting && self.speaks != Some(Speaks::Http)
    }

    /// A deadline that has passed at `now`, as the reason to close.
    pub(crate) fn overdue(&self, limits: Deadlines, now: Instant) -> Option<CloseReason> {
        let passed = |since: Option<Instant>, limit: Option<Duration>| match (since, limit) {
            (Some(since), Some(limit)) => now.duration_since(since) >= limit,
            _ => false,
        };
        if passed(self.partial_since, limits.frame) {
            return limits.frame.map(CloseReason::SlowFrame);
        }
        if passed(self.output_stalled_since, limits.write_stall) {
            return limits.write_stall.map(CloseReason::WriteStalled);
        }
        if self.awaiting_token() && passed(Some(self.opened), limits.auth) {
            return Some(CloseReason::Unauthenticated(
                "no auth token within auth_timeout_ms",
            ));
        }
        let limit = limits.idle?;
        let idle = self.is_quiet() && !self.io.mid_frame();
        (idle && now.duration_since(self.last_active) >= limit).then_some(CloseReason::Idle(limit))
    }

    /// The next time a deadline could pass, if any applies.
    pub(crate) fn next_check(&self, limits: Deadlines, now: Instant) -> Option<Instant> {
        let frame = limits
            .frame
            .map(|t| self.partial_since.map_or(now + t, |since| since + t));
        let idle = limits.idle.map(|t| self.last_active + t);
        let stall = limits
            .write_stall
            .map(|t| self.output_stalled_since.map_or(now + t, |since| since + t));
        let auth = limits
            .auth
            .filter(|_| self.auth == Auth::Waiting)
            .map(|t| self.opened + t);
        [frame, idle, stall, auth].into_iter().flatten().min()
    }
}

/// A call in flight off the reactor's loop, by where it runs.
#[derive(Debug)]
enum Off {
    /// On the worker pool, with its ticket.
    Pool(PoolTicket),
    /// A future answering later.
    Later { cancelled: bool },
}

impl Off {
    fn cancel(&mut self) {
        match self {
            Off::Pool(ticket) => ticket.cancel(),
            Off::Later { cancelled } => *cancelled = true,
        }
    }

    fn is_cancelled(&self) -> bool {
        match self {
            Off::Pool(ticket) => ticket.is_cancelled(),
            Off::Later { cancelled } => *cancelled,
        }
    }
}
