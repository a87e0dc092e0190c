//! The load engine: one mio loop per sending thread that drives any server
//! through a [`Protocol`], so every system in a comparison is loaded by the
//! same code.
//!
//! Discipline, the same for every target:
//! - each connection keeps at most `window` calls outstanding; a reply frees
//!   a slot, which is refilled in the same turn of the loop;
//! - closed loop: every free slot is filled at once; a call's latency runs
//!   from its actual send;
//! - open loop: calls follow a [`Schedule`]; a due call goes to the next
//!   connection (round robin) with a free slot, or waits for one; its
//!   latency runs from its *intended* send time, and its send lag (actual
//!   minus intended) is recorded. A `timerfd` wakes the loop for the next
//!   due call with nanosecond resolution (epoll's own timeout has 1 ms);
//! - a call's send time is read once per `write` that carries it (calls
//!   written together left together); its reply is stamped when decoded,
//!   one clock read per reply;
//! - at the end of the window, calls still due are counted as unsent; after
//!   the drain period, calls still unanswered are counted too; both enter
//!   the latency histogram with lower-bound latencies (see `Recorder`).
//!
//! With `tls` in the plan, every persistent connection speaks TLS
//! (`crate::tls_io`); its handshake happens before the first call leaves,
//! so it is in no call's latency (as for a pooled client connection).
//!
//! Protocols with one call per TCP connection (the seed's) get
//! `connections × window` slots of one call each, a fresh connection per
//! call; their send time is the `connect`.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use mprpc::net::tls::ClientTls;
use rustls::ClientConnection;

use crate::protocol::Protocol;
use crate::recorder::{Done, Recorder};
use crate::schedule::{set_timer_slack_ns, Schedule};

/// One engine thread's share of the load.
pub struct EnginePlan {
    /// Connection `i` goes to `addrs[i % len]`.
    pub addrs: Vec<SocketAddr>,
    pub connections: usize,
    /// Calls outstanding per connection.
    pub window: usize,
    /// Index of this thread's first connection in the report.
    pub first_conn: usize,
    pub start: Instant,
    /// End of the measured window.
    pub end: Instant,
    pub drain: Duration,
    /// `None`: closed loop.
    pub schedule: Option<Schedule>,
    /// Speak TLS on every connection (not with one-call connections).
    pub tls: Option<ClientTls>,
}

const TIMER: Token = Token(usize::MAX);
/// Room made in a connection's read buffer before each read.
const READ_CHUNK: usize = 64 * 1024;

/// A call written (or queued) on a connection.
struct Call {
    id: u64,
    intended: Instant,
    /// Set when its bytes were written.
    sent: Option<Instant>,
}

struct Conn<C> {
    addr: SocketAddr,
    /// Report index.
    index: usize,
    stream: Option<TcpStream>,
    /// The TLS session, when the plan asks for TLS.
    tls: Option<Box<ClientConnection>>,
    state: C,
    rbuf: BytesMut,
    wbuf: BytesMut,
    calls: VecDeque<Call>,
    /// How many calls at the back of `calls` are not yet written.
    unwritten: usize,
    want_write: bool,
}

/// Runs one engine thread until the window ends and its calls drain.
pub fn run<P: Protocol>(
    proto: &P,
    plan: &EnginePlan,
    rec: &'static Recorder,
) -> Result<(), String> {
    set_timer_slack_ns(1);
    let mut engine = Engine::new(proto, plan, rec)?;
    let now = Instant::now();
    if plan.start > now {
        std::thread::sleep(plan.start - now);
    }
    engine.run()
}

struct Engine<'a, P: Protocol> {
    proto: &'a P,
    plan: &'a EnginePlan,
    rec: &'static Recorder,
    poll: Poll,
    timer: Timer,
    conns: Vec<Conn<P::Conn>>,
    per_call: bool,
    /// Calls per slot.
    window: usize,
    next_k: u64,
    rr: usize,
    outstanding: usize,
    done: Vec<Done>,
    sent_batch: Vec<Instant>,
    /// Connections with bytes to write (only these are flushed each turn).
    to_flush: IndexSet,
    /// Connections whose window may have room again: a reply, a read
    /// that changed what the protocol allows (closed loop refills only
    /// these each turn).
    to_refill: IndexSet,
    /// The buffer `IndexSet::take` fills, kept between turns.
    scratch: Vec<usize>,
}

/// A set of connection indices in insertion order, each at most once, so
/// a turn of the loop visits the connections that changed instead of all
/// of them (800 connections × every wake-up adds up).
struct IndexSet {
    list: Vec<usize>,
    member: Vec<bool>,
}

impl IndexSet {
    fn full(n: usize) -> IndexSet {
        IndexSet {
            list: (0..n).collect(),
            member: vec![true; n],
        }
    }

    fn insert(&mut self, i: usize) {
        if !self.member[i] {
            self.member[i] = true;
            self.list.push(i);
        }
    }

    /// The members, emptying the set (`buf` is reused to avoid allocating).
    fn take(&mut self, buf: &mut Vec<usize>) {
        buf.clear();
        std::mem::swap(&mut self.list, buf);
        for &i in buf.iter() {
            self.member[i] = false;
        }
    }
}

impl<'a, P: Protocol> Engine<'a, P> {
    fn new(proto: &'a P, plan: &'a EnginePlan, rec: &'static Recorder) -> Result<Self, String> {
        let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
        let timer = Timer::new(&poll)?;
        let per_call = proto.per_call_connection();
        if per_call && plan.tls.is_some() {
            return Err("TLS needs persistent connections (not one call per connection)".into());
        }
        let (slots, window) = if per_call {
            (plan.connections * plan.window, 1)
        } else {
            (plan.connections, plan.window)
        };
        let mut conns = Vec::with_capacity(slots);
        for i in 0..slots {
            let index = plan.first_conn + if per_call { i / plan.window } else { i };
            let addr = plan.addrs[index % plan.addrs.len()];
            let mut conn = Conn {
                addr,
                index,
                stream: None,
                tls: None,
                state: proto.new_conn(),
                rbuf: BytesMut::with_capacity(64 * 1024),
                wbuf: BytesMut::with_capacity(64 * 1024),
                calls: VecDeque::with_capacity(window),
                unwritten: 0,
                want_write: false,
            };
            if !per_call {
                let std = std::net::TcpStream::connect(addr)
                    .map_err(|e| format!("connect {addr}: {e}"))?;
                std.set_nonblocking(true)
                    .map_err(|e| format!("nonblocking: {e}"))?;
                let mut stream = TcpStream::from_std(std);
                stream
                    .set_nodelay(true)
                    .map_err(|e| format!("nodelay: {e}"))?;
                poll.registry()
                    .register(&mut stream, Token(i), Interest::READABLE)
                    .map_err(|e| format!("register: {e}"))?;
                conn.stream = Some(stream);
                if let Some(tls) = &plan.tls {
                    let session = tls
                        .client_connection(addr)
                        .map_err(|e| format!("TLS to {addr}: {e}"))?;
                    conn.tls = Some(Box::new(session));
                }
                proto.start(&mut conn.state, &mut conn.wbuf);
            }
            conns.push(conn);
        }
        Ok(Engine {
            proto,
            plan,
            rec,
            poll,
            timer,
            conns,
            per_call,
            window,
            next_k: 0,
            rr: 0,
            outstanding: 0,
            done: Vec::new(),
            sent_batch: Vec::new(),
            to_flush: IndexSet::full(slots),
            to_refill: IndexSet::full(slots),
            scratch: Vec::new(),
        })
    }

    fn run(&mut self) -> Result<(), String> {
        let mut events = Events::with_capacity(1024);
        let mut sending = true;
        loop {
            let now = Instant::now();
            if sending && now >= self.plan.end {
                sending = false;
                if let Some(s) = self.plan.schedule {
                    self.rec.on_unsent(s.unsent(self.next_k, self.plan.end));
                }
            }
            if sending {
                self.fill(now);
            }
            self.flush_all();
            if !sending && self.outstanding == 0 {
                return Ok(());
            }
            if !sending && now >= self.plan.end + self.plan.drain {
                self.give_up(now);
                return Ok(());
            }
            let deadline = if sending {
                self.plan.end
            } else {
                self.plan.end + self.plan.drain
            };
            if sending {
                self.arm_timer(now)?;
            }
            let timeout = deadline
                .saturating_duration_since(now)
                .min(Duration::from_millis(100));
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("poll: {e}")),
            }
            for event in events.iter() {
                if event.token() == TIMER {
                    self.timer.clear();
                    continue;
                }
                let i = event.token().0;
                if event.is_writable() {
                    self.flush(i);
                }
                // A closed or failed socket is read to its end: no later
                // event will say so.
                let closing = event.is_read_closed() || event.is_error();
                if event.is_readable() || closing {
                    self.on_readable(i, closing);
                }
            }
            if !self.done.is_empty() {
                self.rec.on_done_batch(&self.done);
                self.done.clear();
            }
        }
    }

    fn has_room(&self, i: usize) -> bool {
        let c = &self.conns[i];
        c.calls.len() < self.window
            && (self.per_call || (c.stream.is_some() && self.proto.can_send(&c.state)))
    }

    /// Closed loop: fill every free slot. Open loop: send every due call
    /// that finds a free slot, round robin over the connections.
    fn fill(&mut self, now: Instant) {
        let Some(schedule) = self.plan.schedule else {
            let mut refill = std::mem::take(&mut self.scratch);
            self.to_refill.take(&mut refill);
            for &i in &refill {
                while self.has_room(i) {
                    self.enqueue(i, now);
                }
            }
            self.scratch = refill;
            return;
        };
        let n = self.conns.len();
        loop {
            let intended = schedule.at(self.next_k);
            if intended > now || intended >= self.plan.end {
                return;
            }
            let Some(i) = (0..n)
                .map(|j| (self.rr + j) % n)
                .find(|&i| self.has_room(i))
            else {
                return; // every window is full: the call waits, its lag grows
            };
            self.rr = (i + 1) % n;
            self.enqueue(i, intended);
            self.next_k += 1;
        }
    }

    fn enqueue(&mut self, i: usize, intended: Instant) {
        if self.per_call && self.conns[i].stream.is_none() {
            self.open_per_call(i);
        }
        let c = &mut self.conns[i];
        let id = self.proto.encode(&mut c.state, &mut c.wbuf);
        self.to_flush.insert(i);
        self.outstanding += 1;
        if !self.per_call {
            c.calls.push_back(Call {
                id,
                intended,
                sent: None,
            });
            c.unwritten += 1;
            return;
        }
        // A one-call connection: the call starts with its `connect`.
        let now = Instant::now();
        let intended = if self.plan.schedule.is_none() {
            now
        } else {
            intended
        };
        self.rec.on_sent(&[intended], now);
        c.calls.push_back(Call {
            id,
            intended,
            sent: Some(now),
        });
    }

    /// A fresh non-blocking connection for a one-call slot.
    fn open_per_call(&mut self, i: usize) {
        let c = &mut self.conns[i];
        c.state = self.proto.new_conn();
        c.rbuf.clear();
        c.wbuf.clear();
        match TcpStream::connect(c.addr) {
            Ok(mut stream) => {
                let _ = stream.set_nodelay(true);
                let interest = Interest::READABLE | Interest::WRITABLE;
                if self
                    .poll
                    .registry()
                    .register(&mut stream, Token(i), interest)
                    .is_ok()
                {
                    self.proto.start(&mut c.state, &mut c.wbuf);
                    c.stream = Some(stream);
                    c.want_write = true;
                }
            }
            Err(_) => c.stream = None,
        }
    }
}

mod probe;
mod socket;
mod timer;

use timer::Timer;

pub use probe::probe;
