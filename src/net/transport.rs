//! One non-blocking TCP connection as an event loop sees it: the socket, the
//! bytes read and not yet decoded, the bytes encoded and not yet written,
//! and whether the loop watches it for writability.
//!
//! In the spirit of mini-redis's `Connection`, the fields are private: a
//! loop reads with [`Transport::read_turn`], takes frames with
//! [`Transport::next_frame`], appends output to [`Transport::output`], and
//! flushes once per loop turn through a [`FlushList`]. Both the server's
//! reactors and the client's drivers use it, so the flush loop, the
//! writable-interest toggle and the oversized-frame skip exist once.

use std::io::{self, Write};

use bytes::{Buf, BytesMut};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::codec::{skip_body, Decoder, Frame, ProtocolError};

/// What one read turn found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadTurn {
    /// Bytes read this turn.
    pub bytes: usize,
    /// The peer closed its side (EOF).
    pub eof: bool,
    /// The socket has nothing more for now.
    pub drained: bool,
}

#[derive(Debug)]
pub(crate) struct Transport {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// WRITABLE interest is registered (only while output is blocked).
    writable_armed: bool,
    /// In the loop's flush list for this turn.
    flush_queued: bool,
    /// Body bytes of an oversized frame still to skip as they arrive.
    skip: usize,
}

impl Transport {
    /// Wraps a stream registered with `Interest::READABLE`, plus
    /// `Interest::WRITABLE` when `writable_armed` (a connect in progress).
    pub(crate) fn new(stream: TcpStream, writable_armed: bool) -> Transport {
        Transport {
            stream,
            // No buffer memory until there is something to hold: an idle
            // connection costs this struct and the kernel's socket buffers.
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            writable_armed,
            flush_queued: false,
            skip: 0,
        }
    }

    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// For registering, deregistering and connect checks.
    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Reads into the read buffer, `chunk` bytes of room at a time, until
    /// the socket is drained, EOF, or `max` bytes were read this turn. With
    /// `short_read_drains`, a read that did not fill the space offered
    /// counts as drained (edge-triggered: new data raises a new event), which
    /// saves the syscall that would only return `WouldBlock`.
    pub(crate) fn read_turn(
        &mut self,
        chunk: usize,
        max: usize,
        short_read_drains: bool,
    ) -> io::Result<ReadTurn> {
        let mut turn = ReadTurn {
            bytes: 0,
            eof: false,
            drained: false,
        };
        loop {
            match super::read_into(&self.stream, &mut self.rbuf, chunk) {
                Ok((0, _)) => {
                    turn.eof = true;
                    turn.drained = true;
                    return Ok(turn);
                }
                Ok((n, short)) => {
                    turn.bytes += n;
                    if short && short_read_drains {
                        turn.drained = true;
                        return Ok(turn);
                    }
                    if turn.bytes >= max {
                        return Ok(turn);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    turn.drained = true;
                    return Ok(turn);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Let the caller decode what arrived; the error repeats on
                // the next read.
                Err(_) if turn.bytes > 0 => return Ok(turn),
                Err(e) => return Err(e),
            }
        }
    }

    /// The next complete frame in the read buffer, skipping the rest of an
    /// oversized frame's body first (the decoder reports such a frame once,
    /// as [`Frame::Oversized`]; its body never occupies memory).
    pub(crate) fn next_frame(&mut self, decoder: &Decoder) -> Result<Option<Frame>, ProtocolError> {
        if self.skip > 0 && !skip_body(&mut self.rbuf, &mut self.skip) {
            return Ok(None);
        }
        let frame = decoder.decode(&mut self.rbuf)?;
        if let Some(Frame::Oversized(o)) = &frame {
            self.skip = o.unread;
        }
        Ok(frame)
    }

    /// The undecoded input, for formats decoded outside [`Decoder`] (the
    /// seed's) and for protocol sniffing.
    pub(crate) fn input(&mut self) -> &mut BytesMut {
        &mut self.rbuf
    }

    /// At EOF, once every complete frame was taken: part of a frame left
    /// over is an error (tokio-util's `decode_eof`), since its rest will
    /// never come.
    pub(crate) fn check_eof(&self) -> Result<(), ProtocolError> {
        if self.rbuf.is_empty() && self.skip == 0 {
            return Ok(());
        }
        Err(ProtocolError::TruncatedAtEof {
            pending: self.rbuf.len(),
        })
    }

    /// Part of a frame has arrived and the rest has not.
    pub(crate) fn mid_frame(&self) -> bool {
        !self.rbuf.is_empty() || self.skip > 0
    }

    /// Where replies or requests are encoded, to go out at the next flush.
    pub(crate) fn output(&mut self) -> &mut BytesMut {
        &mut self.wbuf
    }

    /// Encoded bytes not yet taken by the socket.
    pub(crate) fn unsent(&self) -> usize {
        self.wbuf.len()
    }

    /// Writes as much output as the socket takes. Returns true when all of
    /// it went out, false when the socket is full (watch for writability).
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        while !self.wbuf.is_empty() {
            match self.stream.write(&self.wbuf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wbuf.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Flushes, then asks for writable events only while output is left:
    /// edge-triggered, they would otherwise fire on every ACK. Returns true
    /// when everything went out.
    pub(crate) fn flush_and_watch(
        &mut self,
        registry: &Registry,
        token: Token,
    ) -> io::Result<bool> {
        let all = self.flush()?;
        if self.writable_armed == all {
            let interest = if all {
                Interest::READABLE
            } else {
                Interest::READABLE | Interest::WRITABLE
            };
            registry.reregister(&mut self.stream, token, interest)?;
            self.writable_armed = !all;
        }
        Ok(all)
    }
}

/// The connections to flush at the end of this loop turn, each once: every
/// write of a turn shares one syscall per connection.
#[derive(Debug, Default)]
pub(crate) struct FlushList {
    keys: Vec<usize>,
}

impl FlushList {
    /// Queues connection `key` (whose transport is `io`) for this turn's flush.
    pub(crate) fn add(&mut self, key: usize, io: &mut Transport) {
        if !io.flush_queued {
            io.flush_queued = true;
            self.keys.push(key);
        }
    }

    /// Takes the next queued key; the caller then flushes that connection
    /// (after [`FlushList::taken`] on its transport, if it still exists).
    pub(crate) fn pop(&mut self) -> Option<usize> {
        self.keys.pop()
    }

    /// Marks `io` as no longer queued (it is being flushed now).
    pub(crate) fn taken(io: &mut Transport) {
        io.flush_queued = false;
    }
}
