//! A channel's I/O driver: one thread, one mio `Poll`, its share of the
//! channel's connections. A channel runs `io_threads` drivers; each owns its
//! own connections (so nothing here is locked) and its callers' calls.
//!
//! Each loop turn the driver (1) handles socket events — connect
//! completions, replies matched to pending calls by request id, EOFs and
//! resets (`replies`); (2) drains the submission queue, routing each new
//! call through the load balancer onto a persistent connection's output
//! (`route`); (3) expires deadlines, the earliest of which is the poll
//! timeout (`timers`; no timer threads); (4) delivers the turn's
//! completions; (5) flushes every connection written to this turn, once,
//! so pipelined calls share a syscall.
//!
//! Completions are delivered in a batch once per loop turn (4),
//! with the driver not borrowed: callbacks run on this thread, and a call
//! a callback starts is routed and encoded straight into its connection's
//! output (`local`), with no queue, lock or copy; it leaves with the turn's
//! flush. Calls from other threads come through the submission queue.
//!
//! Failure rules: a connection that breaks after connecting fails exactly
//! the calls routed to it (`Unavailable`, naming the address and the cause;
//! they may have reached the server, so they are never retried). A connect
//! or TLS handshake that fails or times out has sent nothing, so its calls
//! are routed again to another usable endpoint, up to `max_retries` more
//! connection attempts and never past their deadline. Either failure backs the endpoint off
//! (see `health`). A provider whose open connection lets several calls in
//! a row pass their deadline with no reply read (a silent link) is
//! ejected and probed until it answers (`eject`). A connection that reads
//! nothing for `ping_interval` is pinged, and closed as dead (its calls
//! `Unavailable`) if the ping goes unanswered (`ping`). A call a provider refused `Overloaded` (it did not run)
//! is sent once more, to another provider, within its deadline (`retry`).

mod eject;
mod local;
mod pending;
mod ping;
mod replies;
mod retry;
mod route;
mod route_cache;
mod streams;
mod timers;

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use slab::Slab;

use super::balance::Balancer;
use super::call::{mark_io_thread, set_turn_started, CallResult};
use super::cells::{CellRef, Held, HeldSpares};
use super::conn::ProviderConn;
use super::health::Health;
use super::queue::{Batch, Shared};
use super::ChannelOptions;
use crate::call::controller::ReplyMetadata;
use crate::call::metadata::Metadata;
use crate::net::FlushList;
use pending::Calls;
use retry::{Retry, SpareFrames};
use timers::Deadlines;

pub(crate) use local::{
    deliver_stream, open_stream, start, start_held, stream_command, stream_message,
};

const WAKER: Token = Token(usize::MAX);
/// `Pending::conn` of a call not (yet) on any connection.
const NO_CONN: usize = usize::MAX;
/// How long the loop polls for the reply of a caller parked on its core
/// before it sleeps (see `polls_for_waiter`).
const POLL_FOR: Duration = Duration::from_micros(200);

/// Starts driver thread number `index`; its handle is the returned queue.
/// Its calls count in the channel's `inflight`.
pub(crate) fn spawn(
    index: usize,
    options: ChannelOptions,
    inflight: Arc<AtomicUsize>,
) -> io::Result<Arc<Shared>> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    let shared = Arc::new(Shared::new(waker).with_inflight(inflight));
    let driver = Driver::new(poll, shared.clone(), options);
    std::thread::Builder::new()
        .name(format!("mprpc-client-io-{index}"))
        .spawn(move || {
            mark_io_thread(&driver.shared);
            run(driver)
        })?;
    Ok(shared)
}

/// A call the driver is responsible for.
struct Pending {
    id: u64,
    conn: usize,
    deadline: Option<Instant>,
    /// Who hears its outcome.
    notify: Notify,
    /// Its frame, kept for one retry elsewhere after `Overloaded` (boxed:
    /// most calls keep none, and a small `Pending` is cheap to file and
    /// take back, once each per call).
    retry: Option<Box<Retry>>,
    /// Where its reply's metadata goes, if the caller asked for it.
    reply_metadata: Option<ReplyMetadata>,
}

/// Who hears a call's outcome.
pub(crate) enum Notify {
    /// Its completion cell: a call from another thread, a future, or a
    /// call with a handle that may cancel it.
    Cell(CellRef),
    /// Its callback, held by the driver alone: a detached call started on
    /// the driver's own thread (see `cells::held`).
    Held(Held),
}

/// The connections to one provider address.
#[derive(Default)]
struct Pool {
    conns: Vec<usize>,
    next: usize,
}

/// Keys looked up on every call (request ids, provider addresses) come
/// from this process, not from a peer: a multiply-rotate hash (Fx style)
/// does, instead of SipHash's flood resistance.
#[derive(Default)]
struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
    }
}

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.add(n.into());
    }
    fn write_u16(&mut self, n: u16) {
        self.add(n.into());
    }
    fn write_u32(&mut self, n: u32) {
        self.add(n.into());
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

struct Driver {
    poll: Poll,
    shared: Arc<Shared>,
    options: ChannelOptions,
    conns: Slab<ProviderConn>,
    pools: FastMap<SocketAddr, Pool>,
    /// Routes remembered per service (cleared whenever `pools` changes).
    routes: route_cache::RouteCache,
    pending: Calls,
    deadlines: Deadlines,
    health: Health,
    /// Providers ejected for a silent link: their probes and draining
    /// connections.
    ejections: eject::Ejections,
    balancer: Balancer,
    /// Connections written to this turn, to flush at its end.
    flush: FlushList,
    /// Connections not open yet (TCP connect or TLS handshake under way).
    connecting: usize,
    /// The empty half of the double-buffered submission queue.
    spare: Batch,
    /// Buffers for frames kept for a retry.
    spare_frames: SpareFrames,
    /// The time at the start of this loop turn.
    now: Instant,
    /// Calls the driver has let go of this turn, with their outcomes, to
    /// deliver once the turn's work is done.
    completed: Vec<(Notify, CallResult, usize)>,
    /// Storage for the callbacks of calls the driver holds (`Notify::Held`).
    held_spares: HeldSpares,
    /// The connection whose reply is being handled (`NO_CONN` otherwise):
    /// its completion is delivered with it, and a call its callback
    /// starts goes back to that connection when the route allows.
    replying: usize,
    /// While a completion's callback runs: the connection its reply came
    /// on (`NO_CONN` for any other outcome), preferred for a call the
    /// callback starts (`route::remembered`).
    affinity: usize,
    /// In-flight slots released and not yet given back (`release_slot`).
    released: usize,
    /// Open streams (`streams`).
    streams: streams::Streams,
    /// When a keepalive ping is next due or overdue on some connection
    /// (`ping`); `None`: no open connection.
    next_ping: Option<Instant>,
    /// The parked caller's wait the loop polls for, by its number, and
    /// since when (`polls_for_waiter`).
    polling_for: Option<(u64, Instant)>,
}

impl Driver {
    fn new(poll: Poll, shared: Arc<Shared>, options: ChannelOptions) -> Driver {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64)
            ^ (Arc::as_ptr(&shared) as u64);
        Driver {
            poll,
            shared,
            conns: Slab::new(),
            pools: FastMap::default(),
            routes: route_cache::RouteCache::default(),
            pending: Calls::default(),
            deadlines: Deadlines::default(),
            health: Health::new(options.backoff_base, options.backoff_max),
            ejections: eject::Ejections::default(),
            balancer: Balancer::new(options.load_balance, seed),
            flush: FlushList::default(),
            connecting: 0,
            spare: Batch::default(),
            spare_frames: SpareFrames::default(),
            now: Instant::now(),
            completed: Vec::new(),
            held_spares: HeldSpares::default(),
            replying: NO_CONN,
            affinity: NO_CONN,
            released: 0,
            streams: streams::Streams::default(),
            next_ping: None,
            polling_for: None,
            options,
        }
    }

    /// One loop turn up to the delivery of its completions: waits for
    /// events (not while work is waiting), reads replies, routes queued
    /// calls, expires deadlines.
    fn turn(&mut self, events: &mut Events) {
        let (timeout, polls) = self.how_long_to_wait();
        let polled = self.poll.poll(events, timeout);
        self.shared.awake();
        if let Err(e) = polled {
            if e.kind() != io::ErrorKind::Interrupted {
                tracing::error!("client: poll failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
            return;
        }
        self.now = Instant::now();
        if polls && events.is_empty() {
            // Nothing yet: a thread runnable on this core goes first.
            std::thread::yield_now();
        }
        self.shared.cells.note_driver_cpu();
        set_turn_started(self.now);
        for event in events.iter() {
            let Token(key) = event.token();
            if key != WAKER.0 {
                self.conn_event(key, event);
            }
        }
        self.streams.wake_readers();
        self.drain_queue();
        self.expire();
        if !self.streams.is_empty() {
            self.expire_streams();
        }
    }

    /// How long this turn may wait for events, and whether it is polling
    /// for a parked caller's reply (then it does not wait at all).
    fn how_long_to_wait(&mut self) -> (Option<Duration>, bool) {
        // Calls queued by other threads, completions not yet delivered and
        // output not yet flushed are work: do not sleep on them.
        let busy =
            self.shared.has_work() || !self.completed.is_empty() || self.streams.has_deliveries();
        if busy {
            return (Some(Duration::ZERO), false);
        }
        if self.polls_for_waiter() {
            return (Some(Duration::ZERO), true);
        }
        let streams = self.streams.next_deadline();
        let streams = streams.map(|d| d.saturating_duration_since(Instant::now()));
        let timeout = [self.next_timeout(), streams].into_iter().flatten().min();
        if timeout == Some(Duration::ZERO) {
            return (timeout, false);
        }
        // Announced, then checked again: work queued or a caller parked
        // meanwhile keeps the loop awake (see `queue`).
        if !self.shared.going_to_sleep() {
            return (Some(Duration::ZERO), false);
        }
        if self.polls_for_waiter() {
            self.shared.awake();
            return (Some(Duration::ZERO), true);
        }
        (timeout, false)
    }

    /// A caller parked for its reply on this driver's core (see
    /// `Cells::wait`): poll for the reply instead of sleeping, so that
    /// neither the reply nor the caller's next call needs to wake the
    /// driver. For at most `POLL_FOR` per wait, then sleep as usual.
    fn polls_for_waiter(&mut self) -> bool {
        let Some(park) = self.shared.cells.parked_on_driver_core() else {
            return false;
        };
        if self.pending.is_empty() {
            return false;
        }
        match self.polling_for {
            Some((polled, since)) if polled == park => {
                self.now.saturating_duration_since(since) < POLL_FOR
            }
            _ => {
                self.polling_for = Some((park, self.now));
                true
            }
        }
    }

    /// The end of a loop turn: flushes what it wrote. True when the driver
    /// should stop: the last `Channel` is gone and nothing is in flight.
    fn end_turn(&mut self) -> bool {
        self.flush_all();
        if !self.shared.shutdown.load(Ordering::Acquire) {
            return false;
        }
        // Finish what is in flight (every call has a deadline or a
        // connection that can fail), then stop.
        self.drain_queue();
        self.flush_all();
        self.pending.is_empty() && self.completed.is_empty() && self.streams.is_empty()
    }

    /// The driver lets go of a call: `result` is delivered at the end of
    /// this part of the turn (see `deliver`).
    fn complete(&mut self, notify: Notify, result: CallResult) {
        self.completed.push((notify, result, self.replying));
    }

    /// Completes call `id` (if still pending) with `result`.
    fn finish(&mut self, id: u64, result: CallResult) {
        if let Some(pending) = self.pending.remove(id) {
            self.let_go(pending, result);
        }
    }

    /// Completes call `id` (if still pending) with a reply carrying
    /// `metadata`, stored first where its caller asked for it.
    fn finish_reply(&mut self, id: u64, result: CallResult, metadata: Metadata) {
        if let Some(pending) = self.pending.remove(id) {
            if let Some(slot) = &pending.reply_metadata {
                slot.set(metadata);
            }
            self.let_go(pending, result);
        }
    }

    /// The driver lets go of `pending`, taken off its table, with `result`.
    fn let_go(&mut self, mut pending: Pending, result: CallResult) {
        self.retire(&pending);
        self.spare_frames.recycle(pending.retry.take());
        self.complete(pending.notify, result);
    }

    /// Releases a call's in-flight slots (channel and connection).
    fn retire(&mut self, pending: &Pending) {
        self.release_slot();
        if let Some(conn) = self.conns.get_mut(pending.conn) {
            conn.retire_call();
        }
    }

    /// Releases one of the channel's in-flight slots. They are given back
    /// together, once per delivery (`give_back_slots`), before any
    /// callback runs: one atomic operation per turn instead of one per
    /// call. Until then a call whose outcome is not yet delivered counts
    /// as in flight, which it still is to its caller.
    fn release_slot(&mut self) {
        self.released += 1;
    }

    /// Gives the in-flight slots released since the last time back to
    /// the channel's counter.
    fn give_back_slots(&mut self) {
        if self.released > 0 {
            self.shared.retire(std::mem::take(&mut self.released));
        }
    }

    fn schedule_flush(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.schedule_flush(key, &mut self.flush);
        }
    }

    fn flush_all(&mut self) {
        while let Some(key) = self.flush.pop() {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if let Err(e) = conn.flush(self.poll.registry(), Token(key)) {
                let addr = conn.addr();
                self.close(key, format!("connection to {addr} lost while writing: {e}"));
            }
        }
    }
}

/// The driver thread's loop. The driver sits in a `RefCell` that the
/// loop borrows for each part of a turn; between them, while completions
/// are delivered, callbacks may borrow it to start calls (`local`).
#[inline(never)] // a step of its own in profiles (scripts/profile_steps.py)
fn run(driver: Driver) {
    let shared = driver.shared.clone();
    let driver = Rc::new(RefCell::new(driver));
    local::install(&shared, &driver);
    shared.cells.install_local();
    let mut events = Events::with_capacity(1024);
    let mut batch = Vec::new();
    let mut handled = Vec::new();
    loop {
        driver.borrow_mut().turn(&mut events);
        streams::deliver(&driver, &mut handled);
        deliver(&driver, &shared, &mut batch);
        let stop = driver.borrow_mut().end_turn();
        streams::deliver(&driver, &mut handled);
        deliver(&driver, &shared, &mut batch);
        if stop {
            break;
        }
    }
    shared.cells.uninstall_local();
    local::uninstall();
}

/// Delivers the calls the driver let go of, until none is left (a callback
/// may start a call that fails at once), with the driver not borrowed.
/// `batch` is the spare half of the double-buffered completion list.
/// While a callback runs, the driver's `affinity` names the connection
/// its reply came on.
fn deliver(
    driver: &RefCell<Driver>,
    shared: &Shared,
    batch: &mut Vec<(Notify, CallResult, usize)>,
) {
    loop {
        {
            let mut driver = driver.borrow_mut();
            driver.give_back_slots();
            std::mem::swap(&mut driver.completed, batch);
        }
        if batch.is_empty() {
            driver.borrow_mut().affinity = NO_CONN;
            return;
        }
        for (notify, result, conn) in batch.drain(..) {
            driver.borrow_mut().affinity = conn;
            match notify {
                Notify::Cell(cell) => shared.cells.finish(cell, result),
                Notify::Held(held) => {
                    let storage = held.run(result);
                    driver.borrow_mut().held_spares.put_back(storage);
                }
            }
        }
    }
}

/// `now + after`, saturating far in the future instead of overflowing.
pub(crate) fn far_or(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}
