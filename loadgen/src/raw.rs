//! `--client raw`: load the server the way `redis-benchmark -P` does.
//!
//! The framework's `Channel` does real per-call work (a completion object,
//! a deadline, routing, a pending-call table) that a benchmark client in C
//! does not. To compare *servers* on equal terms, this mode drives the
//! providers with a minimal pipelining client instead: one thread, one mio
//! `Poll`, each connection keeping `depth` requests outstanding, requests
//! pre-encoded once with the protocol's own codec, replies decoded with the
//! protocol's own decoder and matched to their request ids, latency from
//! each request's send (time read once per batch of replies, as the
//! requests they free are queued together). Closed loop only. The full client stays the default
//! and is what `--client channel` measures.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use mprpc::codec::{encode_request, Decoder, Frame, RequestHead};
use mprpc::Code;

use crate::recorder::{Outcome, Recorder};

/// One raw sender thread's share of the load.
pub struct RawPlan {
    /// The providers; connection `i` goes to `addrs[i % len]`.
    pub addrs: Vec<SocketAddr>,
    pub connections: usize,
    /// Requests kept outstanding on each connection.
    pub depth: usize,
    pub service: String,
    pub method: String,
    pub request: bytes::Bytes,
    pub start: Instant,
    pub end: Instant,
    pub drain: Duration,
    /// Index of this thread's first connection in the report.
    pub first_conn: usize,
}

struct Conn {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// (request id, send time) in send order; our server answers one
    /// connection's inline calls in order, but ids are checked anyway.
    sent: VecDeque<(u64, Instant)>,
    next_id: u64,
}

/// Runs one raw sender until `plan.end`, then waits for its replies.
pub fn run(plan: &RawPlan, rec: &'static Recorder) -> Result<(), String> {
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let mut conns = connect_all(plan, &poll)?;
    let decoder = Decoder::default();
    let mut events = Events::with_capacity(1024);
    let now = Instant::now();
    if plan.start > now {
        std::thread::sleep(plan.start - now);
    }
    let start = Instant::now();
    for conn in conns.iter_mut() {
        for _ in 0..plan.depth {
            enqueue(conn, plan, start);
        }
        rec.on_send_n(plan.depth);
    }
    let mut ok_batch = Vec::with_capacity(plan.depth);
    let mut outstanding = conns.len() * plan.depth;
    let mut sending = true;
    loop {
        flush_all(&mut conns)?;
        let now = Instant::now();
        if sending && now >= plan.end {
            sending = false;
        }
        if !sending && (outstanding == 0 || now >= plan.end + plan.drain) {
            return Ok(());
        }
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .map_err(|e| format!("poll: {e}"))?;
        for event in events.iter() {
            let i = event.token().0;
            let conn = &mut conns[i];
            read_all(conn).map_err(|e| format!("connection {i}: {e}"))?;
            // One clock read per batch of replies: they arrived together, and
            // the requests they free leave together with this turn's flush.
            let now = Instant::now();
            let mut resend = 0;
            while let Some(frame) = decoder
                .decode(&mut conn.rbuf)
                .map_err(|e| format!("connection {i}: {e}"))?
            {
                let Frame::Response(reply) = frame else {
                    return Err(format!("connection {i}: the server sent a non-reply frame"));
                };
                let sent = take_sent(conn, reply.id)
                    .ok_or_else(|| format!("connection {i}: reply to unknown id {}", reply.id))?;
                match reply.code {
                    Code::Ok => ok_batch.push(sent),
                    code => {
                        let outcome = Outcome::Err(code.as_str().to_owned());
                        rec.on_done(plan.first_conn + i, sent, sent, outcome);
                    }
                }
                outstanding -= 1;
                if sending {
                    enqueue(conn, plan, now);
                    resend += 1;
                }
            }
            rec.on_ok_batch(plan.first_conn + i, &ok_batch, now);
            ok_batch.clear();
            rec.on_send_n(resend);
            outstanding += resend;
        }
    }
}

fn connect_all(plan: &RawPlan, poll: &Poll) -> Result<Vec<Conn>, String> {
    (0..plan.connections)
        .map(|i| {
            let addr = plan.addrs[i % plan.addrs.len()];
            let std =
                std::net::TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
            std.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
            std.set_nonblocking(true)
                .map_err(|e| format!("nonblocking: {e}"))?;
            let mut stream = TcpStream::from_std(std);
            poll.registry()
                .register(&mut stream, Token(i), Interest::READABLE)
                .map_err(|e| format!("register: {e}"))?;
            Ok(Conn {
                stream,
                rbuf: BytesMut::with_capacity(64 * 1024),
                wbuf: BytesMut::with_capacity(64 * 1024),
                sent: VecDeque::with_capacity(plan.depth),
                next_id: 1,
            })
        })
        .collect()
}

/// Queues one request stamped `now` (it leaves with this turn's flush).
fn enqueue(conn: &mut Conn, plan: &RawPlan, now: Instant) {
    let id = conn.next_id;
    conn.next_id += 1;
    let head = RequestHead {
        id,
        timeout_ms: 0,
        service: &plan.service,
        method: &plan.method,
    };
    encode_request(head, &plan.request, &mut conn.wbuf);
    conn.sent.push_back((id, now));
}

fn take_sent(conn: &mut Conn, id: u64) -> Option<Instant> {
    match conn.sent.front() {
        Some(&(front, at)) if front == id => {
            conn.sent.pop_front();
            Some(at)
        }
        _ => {
            let pos = conn.sent.iter().position(|&(i, _)| i == id)?;
            conn.sent.remove(pos).map(|(_, at)| at)
        }
    }
}

fn read_all(conn: &mut Conn) -> io::Result<()> {
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match io::Read::read(&mut conn.stream, &mut chunk) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ))
            }
            Ok(n) => conn.rbuf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes every connection's pending requests (blocking briefly if a socket
/// is full, which only happens when the server is not reading).
fn flush_all(conns: &mut [Conn]) -> Result<(), String> {
    for (i, conn) in conns.iter_mut().enumerate() {
        while !conn.wbuf.is_empty() {
            match conn.stream.write(&conn.wbuf) {
                Ok(n) => conn.wbuf.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_micros(50));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("connection {i}: write: {e}")),
            }
        }
    }
    Ok(())
}
