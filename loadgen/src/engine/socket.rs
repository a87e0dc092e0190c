//! The engine's socket work: writing queued calls, reading and matching
//! replies, and failing or closing a connection.

use std::io::{self, Write};
use std::time::Instant;

use bytes::{Buf, BytesMut};
use mio::net::TcpStream;
use mio::{Interest, Token};

use super::{Engine, READ_CHUNK};
use crate::protocol::{Protocol, Reply};
use crate::recorder::Done;
use crate::tls_io;

impl<'a, P: Protocol> Engine<'a, P> {
    pub(super) fn flush_all(&mut self) {
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
    pub(super) fn flush(&mut self, i: usize) {
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

    pub(super) fn on_readable(&mut self, i: usize, to_eof: bool) {
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

    pub(super) fn complete(&mut self, i: usize, reply: Reply) {
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
    pub(super) fn fail_conn(&mut self, i: usize, why: &str) {
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

    pub(super) fn close(&mut self, i: usize) {
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
    pub(super) fn give_up(&mut self, now: Instant) {
        for c in &mut self.conns {
            for call in c.calls.drain(..) {
                if call.sent.is_some() {
                    self.rec.on_unanswered(call.intended, now);
                }
            }
        }
        self.outstanding = 0;
    }
}

/// Writes what the socket takes of `wbuf` (a connect still in progress
/// takes nothing yet).
pub(super) fn write_plain(
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
pub(super) fn read_available(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    to_eof: bool,
) -> io::Result<bool> {
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
