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
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use mprpc::net::tls::ClientTls;
use rustls::ClientConnection;

use crate::protocol::{Protocol, Reply};
use crate::recorder::{Done, Recorder};
use crate::schedule::{set_timer_slack_ns, Schedule};
use crate::tls_io;

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

    fn flush_all(&mut self) {
        let mut pending = std::mem::take(&mut self.scratch);
        self.to_flush.take(&mut pending);
        for &i in &pending {
            let c = &self.conns[i];
            let handshake_out = c.tls.as_deref().is_some_and(tls_io::wants_write);
            if (!c.wbuf.is_empty() || handshake_out) && !c.want_write {
                self.flush(i);
            }
        }
        self.scratch = pending;
    }

    /// Writes what the socket takes; stamps the calls once all their bytes
    /// are out; asks for a writable event if the socket is full.
    fn flush(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let Some(stream) = c.stream.as_mut() else {
            if self.per_call && !c.calls.is_empty() {
                self.fail_conn(i, "ConnectFailed");
            }
            return;
        };
        let flushed = match c.tls.as_deref_mut() {
            Some(session) => tls_io::flush(session, stream, &mut c.wbuf).map_err(|e| {
                if e.kind() == io::ErrorKind::InvalidData {
                    "TlsError"
                } else {
                    "ConnectionError"
                }
            }),
            None => write_plain(stream, &mut c.wbuf),
        };
        let flushed = match flushed {
            Ok(flushed) => flushed,
            Err(why) => {
                self.fail_conn(i, why);
                return;
            }
        };
        let c = &mut self.conns[i];
        let Some(stream) = c.stream.as_mut() else {
            return;
        };
        let full = flushed.blocked;
        if !self.per_call && full != c.want_write {
            let interest = if full {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = self.poll.registry().reregister(stream, Token(i), interest);
            c.want_write = full;
        }
        if self.per_call {
            c.want_write = full;
        }
        if flushed.all_sent && c.unwritten > 0 {
            let now = Instant::now();
            let closed = self.plan.schedule.is_none();
            self.sent_batch.clear();
            let from = c.calls.len() - c.unwritten;
            for call in c.calls.range_mut(from..) {
                if closed {
                    call.intended = now;
                }
                call.sent = Some(now);
                self.sent_batch.push(call.intended);
            }
            c.unwritten = 0;
            self.rec.on_sent(&self.sent_batch, now);
        }
    }

    fn on_readable(&mut self, i: usize, to_eof: bool) {
        // A read can queue bytes (a TLS handshake, HTTP/2 acks) and free
        // or allow slots: look at this connection on the next turn.
        self.to_flush.insert(i);
        self.to_refill.insert(i);
        let c = &mut self.conns[i];
        let Some(stream) = c.stream.as_mut() else {
            return;
        };
        let read = match c.tls.as_deref_mut() {
            Some(session) => tls_io::read(session, stream, &mut c.rbuf),
            None => read_available(stream, &mut c.rbuf, to_eof),
        };
        let eof = match read {
            Ok(eof) => eof,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                eprintln!("loadgen: connection to {}: {e}", c.addr);
                self.fail_conn(i, "TlsError");
                return;
            }
            Err(_) => {
                self.fail_conn(i, "ConnectionError");
                return;
            }
        };
        loop {
            let c = &mut self.conns[i];
            match self.proto.decode(&mut c.state, &mut c.rbuf, &mut c.wbuf) {
                Ok(Some(reply)) => self.complete(i, reply),
                Ok(None) => break,
                Err(_) => {
                    self.fail_conn(i, "ProtocolError");
                    return;
                }
            }
        }
        if eof {
            let c = &mut self.conns[i];
            if self.per_call && !c.calls.is_empty() {
                match self.proto.decode_eof(&mut c.state, &mut c.rbuf) {
                    Ok(reply) => self.complete(i, reply),
                    Err(_) => self.fail_conn(i, "ProtocolError"),
                }
                self.close(i);
            } else {
                self.fail_conn(i, "ConnectionClosed");
            }
        }
    }

    fn complete(&mut self, i: usize, reply: Reply) {
        let c = &mut self.conns[i];
        let pos = match c.calls.front() {
            Some(call) if call.id == reply.id => Some(0),
            _ => c.calls.iter().position(|call| call.id == reply.id),
        };
        let Some(call) = pos.and_then(|p| c.calls.remove(p)) else {
            return; // a reply to nothing we sent: ignored
        };
        let at = Instant::now();
        self.outstanding -= 1;
        self.done.push(Done {
            conn: c.index,
            intended: call.intended,
            sent: call.sent.unwrap_or(at),
            at,
            error: reply.error,
        });
    }

    /// Every call written on connection `i` fails with `why`; calls not
    /// yet written count as unsent. The connection closes (a persistent one
    /// is not reopened: its slots stay empty).
    fn fail_conn(&mut self, i: usize, why: &str) {
        let at = Instant::now();
        let c = &mut self.conns[i];
        let written = c.calls.len() - c.unwritten;
        let mut unsent = Vec::new();
        for (n, call) in c.calls.drain(..).enumerate() {
            if n >= written {
                unsent.push(call.intended);
                continue;
            }
            self.done.push(Done {
                conn: c.index,
                intended: call.intended,
                sent: call.sent.unwrap_or(at),
                at,
                error: Some(why.to_string()),
            });
        }
        c.unwritten = 0;
        self.outstanding = self.conns.iter().map(|c| c.calls.len()).sum();
        self.rec.on_unsent(unsent.into_iter());
        self.close(i);
    }

    fn close(&mut self, i: usize) {
        // A one-call slot is free again.
        self.to_refill.insert(i);
        let c = &mut self.conns[i];
        if let Some(mut stream) = c.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        c.tls = None;
        c.rbuf.clear();
        c.wbuf.clear();
        c.want_write = false;
    }

    /// The drain is over: what is still outstanding was never answered.
    fn give_up(&mut self, now: Instant) {
        for c in &mut self.conns {
            for call in c.calls.drain(..) {
                if call.sent.is_some() {
                    self.rec.on_unanswered(call.intended, now);
                }
            }
        }
        self.outstanding = 0;
    }

    /// Open loop: wake when the next call is due.
    fn arm_timer(&mut self, now: Instant) -> Result<(), String> {
        let Some(s) = self.plan.schedule else {
            return Ok(());
        };
        let next = s.at(self.next_k);
        if next <= now || next >= self.plan.end || self.timer.armed_for == Some(next) {
            // Due already (waiting for a slot: replies wake us), past the
            // end, or armed for it already (a reply woke us first).
            return Ok(());
        }
        self.timer.set(next - now)?;
        self.timer.armed_for = Some(next);
        Ok(())
    }
}

/// Writes what the socket takes of `wbuf` (a connect still in progress
/// takes nothing yet).
fn write_plain(
    stream: &mut TcpStream,
    wbuf: &mut BytesMut,
) -> Result<tls_io::Flushed, &'static str> {
    while !wbuf.is_empty() {
        match stream.write(wbuf) {
            Ok(0) => return Err("WriteFailed"),
            Ok(n) => wbuf.advance(n),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::NotConnected =>
            {
                break
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err("ConnectionError"),
        }
    }
    Ok(tls_io::Flushed {
        blocked: !wbuf.is_empty(),
        all_sent: wbuf.is_empty(),
    })
}

/// Reads what the socket has into `buf`'s spare room (no scratch buffer to
/// zero and copy from: at one call per connection that was most of the
/// engine's work per call); `Ok(true)` when the peer closed. A short read
/// means the socket is drained for now (readiness is edge-triggered, so
/// new bytes raise a new event), which saves the syscall that would only
/// see `WouldBlock`; `to_eof` reads on to the end instead.
fn read_available(stream: &mut TcpStream, buf: &mut BytesMut, to_eof: bool) -> io::Result<bool> {
    loop {
        match mprpc::net::read_into(stream, buf, READ_CHUNK) {
            Ok((0, _)) => return Ok(true),
            Ok((_, short)) if short && !to_eof => return Ok(false),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A one-shot `timerfd` registered with the poll (Linux).
struct Timer {
    fd: std::os::fd::OwnedFd,
    /// The call the timer is set to wake us for, until it fires.
    armed_for: Option<Instant>,
}

impl Timer {
    fn new(poll: &Poll) -> Result<Timer, String> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: plain syscall; the fd is owned from here on.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(format!("timerfd_create: {}", io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh fd nobody else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        poll.registry()
            .register(
                &mut mio::unix::SourceFd(&fd.as_raw_fd()),
                TIMER,
                Interest::READABLE,
            )
            .map_err(|e| format!("register timerfd: {e}"))?;
        Ok(Timer {
            fd,
            armed_for: None,
        })
    }

    fn set(&self, after: Duration) -> Result<(), String> {
        use std::os::fd::AsRawFd;
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: valid fd and a fully initialised itimerspec.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(format!("timerfd_settime: {}", io::Error::last_os_error()));
        }
        Ok(())
    }

    fn clear(&mut self) {
        use std::os::fd::AsRawFd;
        self.armed_for = None;
        let mut n = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a local buffer.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), n.as_mut_ptr().cast(), 8) };
    }
}

/// A blocking byte stream, plain or TLS, for the probe.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// One blocking call before the clock starts: fails fast, with the reason,
/// when the target is unreachable, refuses the TLS handshake, or answers
/// something else.
pub fn probe<P: Protocol>(
    proto: &P,
    addr: SocketAddr,
    tls: Option<&ClientTls>,
    timeout: Duration,
) -> Result<(), String> {
    let tcp = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_read_timeout(Some(timeout))
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut stream: Box<dyn Stream> = match tls {
        Some(tls) => {
            let session = tls
                .client_connection(addr)
                .map_err(|e| format!("TLS to {addr}: {e}"))?;
            Box::new(rustls::StreamOwned::new(session, tcp))
        }
        None => Box::new(tcp),
    };
    let mut state = proto.new_conn();
    let mut out = BytesMut::new();
    proto.start(&mut state, &mut out);
    let id = proto.encode(&mut state, &mut out);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        stream
            .write_all(&out)
            .map_err(|e| format!("probe write to {addr}: {e}"))?;
        out.clear();
        let n = stream
            .read(&mut chunk)
            .map_err(|e| format!("probe reply from {addr}: {e}"))?;
        if n == 0 {
            let reply = proto
                .decode_eof(&mut state, &mut buf)
                .map_err(|e| format!("probe: {e}"))?;
            return check_probe(reply, id);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(reply) = proto
            .decode(&mut state, &mut buf, &mut out)
            .map_err(|e| format!("probe reply from {addr}: {e}"))?
        {
            return check_probe(reply, id);
        }
    }
}

fn check_probe(reply: Reply, id: u64) -> Result<(), String> {
    match reply.error {
        _ if reply.id != id => Err(format!("probe: reply to id {} instead of {id}", reply.id)),
        Some(e) => Err(format!("probe call failed: {e}")),
        None => Ok(()),
    }
}
