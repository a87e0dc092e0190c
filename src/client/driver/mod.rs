//! A channel's I/O driver: one thread, one mio `Poll`, its share of the
//! channel's connections. A channel runs `io_threads` drivers; each owns its
//! own connections (so nothing here is locked) and its callers' calls.
//!
//! Each loop turn the driver (1) handles socket events — connect
//! completions, replies matched to pending calls by request id, EOFs and
//! resets (`replies`); (2) drains the submission queue, routing each new
//! call through the load balancer onto a persistent connection's output
//! (`route`); (3) expires deadlines, the earliest of which is the poll
//! timeout (`timers`; no timer threads); (4) flushes every connection
//! written to this turn, once, so pipelined calls share a syscall.
//!
//! Callbacks run on this thread; calls they start land in this driver's
//! own queue without a wake-up syscall, and the loop does not sleep while
//! that queue holds work.
//!
//! Failure rules: a connection that breaks after connecting fails exactly
//! the calls routed to it (`Unavailable`, naming the address and the cause;
//! they may have reached the server, so they are never retried). A connect
//! or TLS handshake that fails or times out has sent nothing, so its calls
//! are routed again to another usable endpoint, up to `max_retries` more
//! connection attempts and never past their deadline. Either failure backs the endpoint off
//! (see `health`). A call a provider refused `Overloaded` (it did not run)
//! is sent once more, to another provider, within its deadline (`retry`).

mod pending;
mod replies;
mod retry;
mod route;
mod timers;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use slab::Slab;

use super::balance::Balancer;
use super::call::{mark_io_thread, set_turn_started, CallResult};
use super::cells::CellRef;
use super::conn::ProviderConn;
use super::health::Health;
use super::queue::{Batch, Shared};
use super::ChannelOptions;
use crate::call::controller::ReplyMetadata;
use crate::call::metadata::Metadata;
use crate::net::FlushList;
use crate::protocol::mprpc::Decoder;
use pending::Calls;
use retry::{Retry, SpareFrames};
use timers::Deadlines;

const WAKER: Token = Token(usize::MAX);
/// `Pending::conn` of a call not (yet) on any connection.
const NO_CONN: usize = usize::MAX;

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
            driver.run()
        })?;
    Ok(shared)
}

/// A call the driver is responsible for.
struct Pending {
    id: u64,
    conn: usize,
    deadline: Option<Instant>,
    cell: CellRef,
    /// Its frame, kept for one retry elsewhere after `Overloaded`.
    retry: Option<Retry>,
    /// Where its reply's metadata goes, if the caller asked for it.
    reply_metadata: Option<ReplyMetadata>,
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
    decoder: Decoder,
    conns: Slab<ProviderConn>,
    pools: FastMap<SocketAddr, Pool>,
    pending: Calls,
    deadlines: Deadlines,
    health: Health,
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
            decoder: Decoder::new(options.max_frame_size),
            conns: Slab::new(),
            pools: FastMap::default(),
            pending: Calls::default(),
            deadlines: Deadlines::default(),
            health: Health::new(options.backoff_base, options.backoff_max),
            balancer: Balancer::new(options.load_balance, seed),
            flush: FlushList::default(),
            connecting: 0,
            spare: Batch::default(),
            spare_frames: SpareFrames::default(),
            now: Instant::now(),
            options,
        }
    }

    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            // Calls started by callbacks on this thread are queued without
            // a wake-up: never sleep while the queue holds work.
            let mut timeout = if self.shared.has_work() {
                Some(Duration::ZERO)
            } else {
                self.next_timeout()
            };
            if timeout != Some(Duration::ZERO) && !self.shared.going_to_sleep() {
                timeout = Some(Duration::ZERO);
            }
            let polled = self.poll.poll(&mut events, timeout);
            self.shared.awake();
            if let Err(e) = polled {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("client: poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            self.now = Instant::now();
            set_turn_started(self.now);
            for event in events.iter() {
                let Token(key) = event.token();
                if key != WAKER.0 {
                    self.conn_event(key, event);
                }
            }
            self.drain_queue();
            self.expire();
            self.flush_all();
            if self.shared.shutdown.load(Ordering::Acquire) {
                // The last Channel is gone: finish what is in flight (every
                // call has a deadline or a connection that can fail), then stop.
                self.drain_queue();
                self.flush_all();
                if self.pending.is_empty() {
                    return;
                }
            }
        }
    }

    /// Completes call `id` (if still pending) with `result`.
    fn finish(&mut self, id: u64, result: CallResult) {
        if let Some(mut pending) = self.pending.remove(id) {
            self.retire(&pending);
            self.spare_frames.recycle(pending.retry.take());
            self.shared.cells.finish(pending.cell, result);
        }
    }

    /// Completes call `id` (if still pending) with a reply carrying
    /// `metadata`, stored first where its caller asked for it.
    fn finish_reply(&mut self, id: u64, result: CallResult, metadata: Metadata) {
        if let Some(slot) = self.pending.get(id).and_then(|p| p.reply_metadata.as_ref()) {
            slot.set(metadata);
        }
        self.finish(id, result);
    }

    /// Releases a call's in-flight slots (channel and connection).
    fn retire(&mut self, pending: &Pending) {
        self.shared.retire();
        if let Some(conn) = self.conns.get_mut(pending.conn) {
            conn.retire_call();
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

/// `now + after`, saturating far in the future instead of overflowing.
pub(crate) fn far_or(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}
