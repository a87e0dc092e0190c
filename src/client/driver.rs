//! The channel's I/O driver: one thread, one mio `Poll`, every connection.
//!
//! Each loop turn the driver (1) handles socket events — connect
//! completions, replies matched to pending calls by request id, EOFs and
//! resets; (2) drains the submission queue, routing each new call through
//! the load balancer onto a persistent connection's write buffer; (3)
//! expires deadlines from a binary heap whose earliest live entry is the
//! poll timeout (no timer threads); (4) flushes every connection written to
//! this turn, once, so pipelined calls share a syscall. WRITABLE interest is
//! registered only while a connection has output the socket did not take.
//!
//! Failure rules: a connection that breaks after connecting fails exactly
//! the calls routed to it (`Unavailable`, naming the address and the cause;
//! they may have reached the server, so they are never retried). A connect
//! that fails or times out has sent nothing, so its calls are routed again
//! to another usable endpoint, up to `max_retries` more connection attempts
//! and never past their deadline. Either failure backs the endpoint off
//! (see `health`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use slab::Slab;

use super::balance::Balancer;
use super::call::{CallResult, Completion};
use super::conn::{Conn, ConnectState, Queued};
use super::health::Health;
use super::legacy::{self, LegacyCall};
use super::queue::{Batch, Command, NewCall, Shared};
use super::ChannelOptions;
use crate::codec::{encode_cancel, skip_body, Decoder, Frame, FrameKind, Response, HEADER_LEN};
use crate::discovery::{Endpoint, WireFormat};
use crate::status::{Code, Status};

const WAKER: Token = Token(usize::MAX);
/// `Pending::conn` of a call not (yet) on any connection.
const NO_CONN: usize = usize::MAX;
/// Offset of `timeout_ms` in an encoded request frame.
const TIMEOUT_AT: usize = HEADER_LEN + 8;

/// Starts a driver thread; its handle is the returned shared queue.
pub(crate) fn spawn(options: ChannelOptions) -> io::Result<Arc<Shared>> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    let shared = Arc::new(Shared::new(Some(waker)));
    let driver = Driver::new(poll, shared.clone(), options);
    std::thread::Builder::new()
        .name("mprpc-client-io".into())
        .spawn(move || {
            super::call::mark_io_thread();
            driver.run()
        })?;
    Ok(shared)
}

/// A call the driver is responsible for.
struct Pending {
    conn: usize,
    deadline: Option<Instant>,
    completion: Arc<dyn Completion>,
}

/// The connections to one provider address.
#[derive(Default)]
struct Pool {
    conns: Vec<usize>,
    next: usize,
}

/// Request ids are sequential: a multiplicative hash spreads them well and
/// costs one multiply, instead of SipHash.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

struct Driver {
    poll: Poll,
    shared: Arc<Shared>,
    options: ChannelOptions,
    decoder: Decoder,
    conns: Slab<Conn>,
    pools: HashMap<SocketAddr, Pool>,
    pending: HashMap<u64, Pending, BuildHasherDefault<IdHasher>>,
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    health: Health,
    balancer: Balancer,
    /// Connections written to this turn, to flush at its end.
    dirty: Vec<usize>,
    /// Connections whose TCP connect is in progress.
    connecting: usize,
    /// The empty half of the double-buffered submission queue.
    spare: Batch,
    /// The time at the start of this loop turn.
    now: Instant,
}

impl Driver {
    fn new(poll: Poll, shared: Arc<Shared>, options: ChannelOptions) -> Driver {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64);
        Driver {
            poll,
            shared,
            decoder: Decoder::new(options.max_frame_size),
            conns: Slab::new(),
            pools: HashMap::new(),
            pending: HashMap::default(),
            deadlines: BinaryHeap::new(),
            health: Health::new(options.backoff_base, options.backoff_max),
            balancer: Balancer::new(options.load_balance, seed),
            dirty: Vec::new(),
            connecting: 0,
            spare: Batch::default(),
            now: Instant::now(),
            options,
        }
    }

    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.next_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("client: poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            self.now = Instant::now();
            let mut woken = false;
            for event in events.iter() {
                match event.token() {
                    WAKER => woken = true,
                    Token(key) => self.conn_event(key, event),
                }
            }
            if woken {
                self.drain_queue();
            }
            self.expire();
            self.flush_dirty();
            if self.shared.shutdown.load(Ordering::Acquire) {
                // The last Channel is gone: finish what is in flight (every
                // call has a deadline or a connection that can fail), then stop.
                self.drain_queue();
                self.flush_dirty();
                if self.pending.is_empty() {
                    return;
                }
            }
        }
    }

    // ----- submissions -------------------------------------------------

    fn drain_queue(&mut self) {
        let mut batch = std::mem::take(&mut self.spare);
        self.shared.take(&mut batch);
        for command in batch.commands.drain(..) {
            match command {
                Command::Call(call) => self.start_call(call, &batch.frames),
                Command::Cancel(id) => self.forget(id),
            }
        }
        batch.frames.clear();
        self.spare = batch;
    }

    fn start_call(&mut self, call: NewCall, frames: &[u8]) {
        if call.completion.is_done() {
            // Cancelled before we saw it: send nothing.
            self.shared.retire();
            return;
        }
        if let Some(deadline) = call.deadline {
            self.deadlines.push(Reverse((deadline, call.id)));
        }
        self.pending.insert(
            call.id,
            Pending {
                conn: NO_CONN,
                deadline: call.deadline,
                completion: call.completion,
            },
        );
        let frame = frames.get(call.frame).unwrap_or_default();
        self.route(call.id, frame, call.endpoints, call.hash_key, 0, None);
    }

    /// Picks an endpoint for call `id` and puts its frame on a connection
    /// there; `failures` connection attempts have failed for it so far.
    fn route(
        &mut self,
        id: u64,
        frame: &[u8],
        endpoints: Arc<[Endpoint]>,
        hash_key: Option<u64>,
        mut failures: u32,
        mut last_error: Option<String>,
    ) {
        loop {
            if failures > self.options.max_retries {
                let why = last_error.unwrap_or_default();
                let status = Status::unavailable(format!(
                    "{why} (gave up after {failures} connection attempts)"
                ));
                return self.finish(id, Err(status));
            }
            let now = self.now;
            let (health, pools, conns) = (&self.health, &self.pools, &self.conns);
            let picked = self.balancer.pick(
                &endpoints,
                hash_key,
                |e| health.is_up(e.addr, now),
                |e| {
                    pools.get(&e.addr).map_or(0, |p| {
                        p.conns
                            .iter()
                            .filter_map(|k| conns.get(*k))
                            .map(|c| c.inflight)
                            .sum()
                    })
                },
            );
            let Some(index) = picked else {
                let status = self.all_down(frame, &endpoints, last_error);
                return self.finish(id, Err(status));
            };
            let endpoint = &endpoints[index];
            if endpoint.format == WireFormat::Legacy {
                // One short connection per call: the legacy pool takes the
                // call (its completion and in-flight slot) over from here.
                if let Some(pending) = self.pending.remove(&id) {
                    legacy::start(LegacyCall {
                        addr: endpoint.addr,
                        frame: frame.to_vec(),
                        deadline: pending.deadline,
                        connect_timeout: self.options.connect_timeout,
                        max_reply: self.options.max_frame_size,
                        completion: pending.completion,
                        shared: self.shared.clone(),
                    });
                }
                return;
            }
            let addr = endpoint.addr;
            match self.connection_to(addr) {
                Ok(key) => return self.attach(key, id, frame, endpoints, hash_key, failures),
                Err(e) => {
                    let reason = format!("connect to {addr} failed: {e}");
                    self.health.failed(addr, &reason, false, now);
                    tracing::warn!("client: {reason}");
                    failures += 1;
                    last_error = Some(reason);
                }
            }
        }
    }

    /// The status for "no endpoint of this service is usable".
    fn all_down(&self, frame: &[u8], endpoints: &[Endpoint], last: Option<String>) -> Status {
        let last = last.or_else(|| {
            endpoints
                .iter()
                .find_map(|e| self.health.last_error(e.addr))
                .map(str::to_owned)
        });
        Status::unavailable(format!(
            "no provider of service '{}' is available: all {} endpoint(s) are down (last error: {})",
            frame_service(frame),
            endpoints.len(),
            last.as_deref().unwrap_or("none")
        ))
    }

    /// A connection to `addr`, opening one if the pool is not full.
    fn connection_to(&mut self, addr: SocketAddr) -> io::Result<usize> {
        let per_endpoint = self.options.connections_per_endpoint.max(1);
        let pool = self.pools.entry(addr).or_default();
        if pool.conns.len() >= per_endpoint {
            let key = pool.conns[pool.next % pool.conns.len()];
            pool.next = pool.next.wrapping_add(1);
            return Ok(key);
        }
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let deadline = far_or(self.now, self.options.connect_timeout);
        match Conn::connect(addr, self.poll.registry(), Token(key), deadline) {
            Ok(conn) => {
                entry.insert(conn);
                pool.conns.push(key);
                self.connecting += 1;
                Ok(key)
            }
            Err(e) => {
                if pool.conns.is_empty() {
                    self.pools.remove(&addr);
                }
                Err(e)
            }
        }
    }

    /// Appends call `id`'s frame to connection `key`.
    fn attach(
        &mut self,
        key: usize,
        id: u64,
        frame: &[u8],
        endpoints: Arc<[Endpoint]>,
        hash_key: Option<u64>,
        failures: u32,
    ) {
        let Some(pending) = self.pending.get_mut(&id) else {
            return;
        };
        pending.conn = key;
        let deadline = pending.deadline;
        let conn = &mut self.conns[key];
        let start = conn.wbuf.len();
        conn.wbuf.extend_from_slice(frame);
        patch_timeout(&mut conn.wbuf[start..], deadline, self.now);
        conn.inflight += 1;
        if conn.connected {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
            }
        } else {
            conn.queued.push(Queued {
                id,
                frame: start..conn.wbuf.len(),
                deadline,
                endpoints,
                hash_key,
                attempts: failures,
            });
        }
    }

    /// The caller cancelled call `id` (already completed on its side).
    fn forget(&mut self, id: u64) {
        if let Some(pending) = self.pending.remove(&id) {
            self.retire(&pending);
            self.send_cancel(pending.conn, id);
        }
    }

    /// Completes call `id` (if still pending) with `result`.
    fn finish(&mut self, id: u64, result: CallResult) {
        if let Some(pending) = self.pending.remove(&id) {
            self.retire(&pending);
            pending.completion.complete(result);
        }
    }

    fn retire(&mut self, pending: &Pending) {
        self.shared.retire();
        if let Some(conn) = self.conns.get_mut(pending.conn) {
            conn.inflight = conn.inflight.saturating_sub(1);
        }
    }

    fn send_cancel(&mut self, key: usize, id: u64) {
        if let Some(conn) = self.conns.get_mut(key) {
            encode_cancel(id, &mut conn.wbuf);
            if conn.connected && !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    // ----- socket events ---------------------------------------------

    fn conn_event(&mut self, key: usize, event: &mio::event::Event) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.connected {
            match conn.check_connect() {
                ConnectState::InProgress => return,
                ConnectState::Connected => self.connected(key),
                ConnectState::Failed(e) => {
                    let reason = format!("connect to {} failed: {e}", conn.addr);
                    return self.close(key, reason);
                }
            }
        }
        if event.is_read_closed() || event.is_error() {
            // Read on to the EOF: no later event will say so.
            self.read(key, false);
        } else if event.is_readable() {
            self.read(key, true);
        }
        if event.is_writable() {
            if let Some(conn) = self.conns.get_mut(key) {
                if !conn.dirty {
                    conn.dirty = true;
                    self.dirty.push(key);
                }
            }
        }
    }

    fn connected(&mut self, key: usize) {
        self.connecting -= 1;
        let now = self.now;
        let conn = &mut self.conns[key];
        // Requests waited for the connect: give them their remaining budget.
        for q in conn.queued.drain(..) {
            patch_timeout(&mut conn.wbuf[q.frame], q.deadline, now);
        }
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(key);
        }
    }

    fn read(&mut self, key: usize, short_read_drains: bool) {
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let addr = conn.addr;
            let turn = match conn.read_turn(short_read_drains) {
                Ok(turn) => turn,
                Err(e) => return self.close(key, format!("connection to {addr} lost: {e}")),
            };
            if let Err(why) = self.decode_replies(key) {
                tracing::warn!("client: protocol error from {addr}: {why}; closing the connection");
                return self.close(key, format!("protocol error from {addr}: {why}"));
            }
            if turn.eof {
                return self.close(key, format!("connection to {addr} closed by the server"));
            }
            if turn.drained {
                return;
            }
        }
    }

    /// Completes the calls whose replies are in connection `key`'s buffer.
    fn decode_replies(&mut self, key: usize) -> Result<(), String> {
        let conn = &mut self.conns[key];
        let mut rbuf = std::mem::take(&mut conn.rbuf);
        let mut skip = conn.skip;
        let outcome = loop {
            if skip > 0 && !skip_body(&mut rbuf, &mut skip) {
                break Ok(());
            }
            match self.decoder.decode(&mut rbuf) {
                Ok(Some(Frame::Response(reply))) => self.on_reply(key, reply),
                Ok(Some(Frame::Oversized(o))) if o.kind == FrameKind::Response => {
                    // Only that call fails; the connection carries on.
                    skip = o.unread;
                    let status = o.status("reply", "this channel's");
                    tracing::warn!(id = o.id, "client: {}", status.message());
                    self.finish(o.id, Err(status));
                }
                Ok(Some(Frame::Request(_) | Frame::Oversized(_))) => {
                    break Err("unexpected request frame".to_owned())
                }
                Ok(Some(Frame::Cancel { .. })) => break Err("unexpected cancel frame".to_owned()),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e.to_string()),
            }
        };
        let conn = &mut self.conns[key];
        conn.rbuf = rbuf;
        conn.skip = skip;
        outcome
    }

    fn on_reply(&mut self, key: usize, reply: Response) {
        let conn = &mut self.conns[key];
        if !conn.answered {
            conn.answered = true;
            self.health.succeeded(conn.addr);
        }
        // Unknown ids are replies to calls cancelled or expired: dropped.
        let result = if reply.code == Code::Ok {
            Ok(reply.payload)
        } else {
            Err(Status::new(reply.code, reply.error_str()))
        };
        self.finish(reply.id, result);
    }

    /// Closes connection `key`: a failed connect retries its calls
    /// elsewhere; a broken connection fails its calls.
    fn close(&mut self, key: usize, reason: String) {
        let mut conn = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if let Some(pool) = self.pools.get_mut(&conn.addr) {
            pool.conns.retain(|k| *k != key);
            if pool.conns.is_empty() {
                self.pools.remove(&conn.addr);
            }
        }
        let backoff = self
            .health
            .failed(conn.addr, &reason, conn.answered, self.now);
        if !conn.connected {
            self.connecting -= 1;
            tracing::warn!("client: {reason}; endpoint backed off for {backoff:?}");
            let queued = std::mem::take(&mut conn.queued);
            // Detach first: `key` may be reused by a connection the
            // retries below open, and must not be charged for these calls.
            for q in &queued {
                if let Some(pending) = self.pending.get_mut(&q.id) {
                    pending.conn = NO_CONN;
                }
            }
            for q in queued {
                if !self.pending.contains_key(&q.id) {
                    continue;
                }
                let frame = &conn.wbuf[q.frame];
                self.route(
                    q.id,
                    frame,
                    q.endpoints,
                    q.hash_key,
                    q.attempts + 1,
                    Some(reason.clone()),
                );
            }
            return;
        }
        if conn.inflight == 0 {
            tracing::debug!("client: {reason}");
            return;
        }
        tracing::warn!(
            "client: {reason}; failing {} call(s) in flight",
            conn.inflight
        );
        let lost: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.conn == key)
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            if let Some(pending) = self.pending.remove(&id) {
                self.shared.retire();
                pending
                    .completion
                    .complete(Err(Status::unavailable(reason.clone())));
            }
        }
    }

    fn flush_dirty(&mut self) {
        while !self.dirty.is_empty() {
            let mut dirty = std::mem::take(&mut self.dirty);
            for key in dirty.drain(..) {
                let Some(conn) = self.conns.get_mut(key) else {
                    continue;
                };
                conn.dirty = false;
                if !conn.connected {
                    continue;
                }
                let addr = conn.addr;
                let result = conn
                    .flush()
                    .and_then(|all| conn.want_writable(self.poll.registry(), Token(key), !all));
                if let Err(e) = result {
                    self.close(key, format!("connection to {addr} lost while writing: {e}"));
                }
            }
            if self.dirty.is_empty() {
                self.dirty = dirty;
            }
        }
    }

    // ----- time --------------------------------------------------------

    fn expire(&mut self) {
        if self.pending.is_empty() {
            self.deadlines.clear();
        }
        while let Some(&Reverse((deadline, id))) = self.deadlines.peek() {
            if deadline > self.now {
                break;
            }
            self.deadlines.pop();
            match self.pending.get(&id) {
                Some(p) if p.deadline == Some(deadline) => {}
                _ => continue,
            }
            let Some(pending) = self.pending.remove(&id) else {
                continue;
            };
            self.retire(&pending);
            let addr = self.conns.get(pending.conn).map(|c| c.addr);
            self.send_cancel(pending.conn, id);
            let message = match addr {
                Some(addr) => format!("no reply from {addr} before the call's deadline"),
                None => "the call's deadline passed before it was sent".to_owned(),
            };
            pending
                .completion
                .complete(Err(Status::deadline_exceeded(message)));
        }
        if self.connecting > 0 {
            let now = self.now;
            let late: Vec<usize> = self
                .conns
                .iter()
                .filter(|(_, c)| !c.connected && c.connect_deadline <= now)
                .map(|(key, _)| key)
                .collect();
            for key in late {
                let addr = self.conns[key].addr;
                let after = self.options.connect_timeout;
                self.close(key, format!("connect to {addr} timed out after {after:?}"));
            }
        }
        self.compact_deadlines();
    }

    /// Completed calls leave their deadline in the heap; drop them once
    /// they dominate it, so memory stays proportional to live calls.
    fn compact_deadlines(&mut self) {
        if self.deadlines.len() <= 1024 || self.deadlines.len() <= 4 * self.pending.len() {
            return;
        }
        let mut entries = std::mem::take(&mut self.deadlines).into_vec();
        entries.clear();
        entries.extend(
            self.pending
                .iter()
                .filter_map(|(id, p)| p.deadline.map(|d| Reverse((d, *id)))),
        );
        self.deadlines = BinaryHeap::from(entries);
    }

    /// How long poll may sleep: until the earliest live deadline or
    /// connect timeout; forever when there is none.
    fn next_timeout(&mut self) -> Option<Duration> {
        // Skip entries of calls already completed, so they cause no wake-ups.
        while let Some(&Reverse((deadline, id))) = self.deadlines.peek() {
            if self
                .pending
                .get(&id)
                .is_some_and(|p| p.deadline == Some(deadline))
            {
                break;
            }
            self.deadlines.pop();
        }
        let mut next = self.deadlines.peek().map(|Reverse((d, _))| *d);
        if self.connecting > 0 {
            for (_, conn) in self.conns.iter().filter(|(_, c)| !c.connected) {
                next = Some(next.map_or(conn.connect_deadline, |n| n.min(conn.connect_deadline)));
            }
        }
        next.map(|d| d.saturating_duration_since(Instant::now()))
    }
}

/// `now + after`, saturating far in the future instead of overflowing.
pub(crate) fn far_or(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Writes the call's remaining budget into an encoded request frame.
fn patch_timeout(frame: &mut [u8], deadline: Option<Instant>, now: Instant) {
    let Some(deadline) = deadline else {
        return;
    };
    let left = deadline.saturating_duration_since(now);
    let ms = left
        .as_nanos()
        .div_ceil(1_000_000)
        .clamp(1, u32::MAX as u128) as u32;
    if let Some(field) = frame.get_mut(TIMEOUT_AT..TIMEOUT_AT + 4) {
        field.copy_from_slice(&ms.to_be_bytes());
    }
}

/// The service name inside an encoded request frame (for messages).
fn frame_service(frame: &[u8]) -> &str {
    let at = HEADER_LEN + 12;
    let len = frame.get(at).copied().unwrap_or(0) as usize;
    frame
        .get(at + 2..at + 2 + len)
        .and_then(|s| std::str::from_utf8(s).ok())
        .unwrap_or("?")
}
