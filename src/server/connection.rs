//! One accepted connection as its reactor sees it: socket, buffers, counters.
//!
//! A connection belongs to one reactor thread for its whole life, so nothing
//! here is shared or locked. Input is read straight into `read_buf`'s spare
//! capacity (no zero-fill, no copy) and frames are split off it by the
//! decoder; replies are appended to `write_buf` and flushed once per loop turn.

use std::collections::HashSet;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use mio::net::TcpStream;

/// Which wire format a connection speaks, decided by its first two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Undecided,
    Mprpc,
    /// The seed's format: one request, a bare reply, then we close.
    Legacy,
}

/// Bytes we make room for before each `read`.
const READ_CHUNK: usize = 16 * 1024;

pub(crate) struct Connection {
    /// Unique for the server's life (slab keys are reused; ids are not), so a
    /// late worker reply can never reach a newer connection in the same slot.
    pub id: u64,
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub read_buf: BytesMut,
    pub write_buf: BytesMut,
    /// Calls handed to the worker pool and not answered yet.
    pub inflight: usize,
    /// Ids of pool calls the client cancelled; their replies are dropped.
    pub cancelled: HashSet<u64>,
    /// Reading stopped because of backpressure (too much unsent output or
    /// too many calls in flight). Resumed after a flush.
    pub read_paused: bool,
    /// The peer half-closed: answer what is in flight, then close.
    pub peer_closed: bool,
    /// Queued for a flush at the end of this loop turn.
    pub dirty: bool,
    /// Registered for writable events (only while output is blocked).
    pub want_writable: bool,
    pub protocol: Protocol,
    /// Close once the output is flushed and nothing is in flight (the seed's
    /// one-call-per-connection format).
    pub close_when_quiet: bool,
    pub last_active: Instant,
    /// When the bytes of a still-incomplete frame started waiting.
    pub partial_since: Option<Instant>,
    /// Body bytes of an oversized request still to be skipped as they arrive.
    pub skip: usize,
}

impl Connection {
    pub fn new(id: u64, stream: TcpStream, peer: SocketAddr) -> Connection {
        Connection {
            id,
            stream,
            peer,
            // No buffer memory until the peer sends something: an idle
            // connection costs this struct and the kernel's socket buffers.
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
            inflight: 0,
            cancelled: HashSet::new(),
            read_paused: false,
            peer_closed: false,
            dirty: false,
            want_writable: false,
            protocol: Protocol::Undecided,
            close_when_quiet: false,
            last_active: Instant::now(),
            partial_since: None,
            skip: 0,
        }
    }

    /// One `read(2)` into the read buffer; see [`crate::net::read_into`].
    pub fn read_once(&mut self) -> io::Result<(usize, bool)> {
        crate::net::read_into(&self.stream, &mut self.read_buf, READ_CHUNK)
    }

    /// Writes as much of `write_buf` as the socket takes.
    ///
    /// Returns `Ok(true)` when everything was written, `Ok(false)` when the
    /// socket is full (a writable event will follow).
    pub fn flush(&mut self) -> io::Result<bool> {
        while !self.write_buf.is_empty() {
            match self.stream.write(&self.write_buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.write_buf.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Part of a frame has arrived and the rest has not.
    pub fn mid_frame(&self) -> bool {
        !self.read_buf.is_empty() || self.skip > 0
    }

    /// Nothing in flight and nothing left to send.
    pub fn is_quiet(&self) -> bool {
        self.inflight == 0 && self.write_buf.is_empty()
    }
}
