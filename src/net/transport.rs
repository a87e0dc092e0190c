//! One non-blocking TCP connection as an event loop sees it: the socket, the
//! bytes read and not yet decoded, the bytes encoded and not yet written,
//! and whether the loop watches it for writability.
//!
//! In the spirit of mini-redis's `Connection`, the fields are private: a
//! loop reads with [`Transport::read_turn`], hands the input to its format
//! (a client: [`Transport::parse_reply`]), appends output to [`Transport::output`], and
//! flushes once per loop turn through a [`FlushList`]. Both the server's
//! reactors and the client's drivers use it, so the flush loop, the
//! writable-interest toggle and the oversized-frame skip exist once.
//!
//! TLS sits here too, between the socket and the buffers, so no event loop
//! knows about it: with a rustls session, reads go socket → rustls →
//! plaintext into the read buffer, and flushes go output → rustls →
//! records to the socket. A plain connection takes the same path as before
//! (one branch on the session being absent: no extra copy, no allocation).
//! A server port with `tls=optional` or `required` starts undecided and
//! looks at the first bytes: a TLS record starts `0x16 0x03`.

use std::io::{self, BufRead, Write};

use bytes::{Buf, BytesMut};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::tls::{tls_io_error, ServerTls};
use crate::protocol::{Protocol, ProtocolError, ReadState, Reply};

/// The first bytes of a TLS handshake record: content type 22, version 3.x.
const TLS_RECORD_START: [u8; 2] = [0x16, 0x03];

/// What one read turn found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ReadTurn {
    /// Bytes read this turn.
    pub bytes: usize,
    /// The peer closed its side (EOF).
    pub eof: bool,
    /// The socket has nothing more for now.
    pub drained: bool,
    /// The transport has bytes of its own to send (a TLS handshake reply):
    /// flush it this turn even if nothing else was written.
    pub needs_flush: bool,
}

/// Whether and how a connection is encrypted.
enum Security {
    Plain,
    /// A server port taking TLS: decided by the first bytes.
    Undecided(ServerTls),
    Tls(Box<rustls::Connection>),
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Security::Plain => "Plain",
            Security::Undecided(_) => "Undecided",
            Security::Tls(_) => "Tls",
        })
    }
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
    /// What the input's reader keeps between reads (an oversized frame's
    /// body still to skip as it arrives, the length a message needs).
    read: ReadState,
    security: Security,
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
            read: ReadState::default(),
            security: Security::Plain,
        }
    }

    /// An accepted connection on a port that takes TLS (`tls`), plain until
    /// its first bytes say otherwise.
    pub(crate) fn accepted(stream: TcpStream, tls: Option<&ServerTls>) -> Transport {
        let mut transport = Transport::new(stream, false);
        if let Some(tls) = tls {
            transport.security = Security::Undecided(tls.clone());
        }
        transport
    }

    /// A connection that speaks TLS from its first byte (a client's).
    pub(crate) fn with_tls(
        stream: TcpStream,
        writable_armed: bool,
        session: rustls::Connection,
    ) -> Transport {
        let mut transport = Transport::new(stream, writable_armed);
        transport.security = Security::Tls(Box::new(session));
        transport
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
    ///
    /// `bytes` counts what came off the socket (TLS records included), so a
    /// turn that only advanced a handshake still counts as activity.
    pub(crate) fn read_turn(
        &mut self,
        chunk: usize,
        max: usize,
        short_read_drains: bool,
    ) -> io::Result<ReadTurn> {
        match self.security {
            Security::Plain => self.read_plain(chunk, max, short_read_drains),
            Security::Tls(_) => self.read_tls(max),
            Security::Undecided(_) => self.read_first_bytes(chunk, max),
        }
    }

    fn read_plain(
        &mut self,
        chunk: usize,
        max: usize,
        short_read_drains: bool,
    ) -> io::Result<ReadTurn> {
        let mut turn = ReadTurn::default();
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

    /// A server port taking TLS, at its first bytes: reads them as they
    /// come, then starts a TLS session over them (`0x16 0x03`) or stays
    /// plain, unless TLS is required.
    fn read_first_bytes(&mut self, chunk: usize, max: usize) -> io::Result<ReadTurn> {
        let mut turn = self.read_plain(chunk, max, true)?;
        let Security::Undecided(tls) = &self.security else {
            unreachable!("read_first_bytes on a decided connection");
        };
        let first = &self.rbuf[..self.rbuf.len().min(2)];
        if first.is_empty() || first == &TLS_RECORD_START[..1] {
            return Ok(turn); // not enough to tell yet
        }
        if first != TLS_RECORD_START {
            if tls.is_required() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "plain-text (non-TLS) bytes on a port that requires TLS",
                ));
            }
            self.security = Security::Plain;
            return Ok(turn);
        }
        let mut session = tls.session()?;
        let mut arrived = &self.rbuf[..];
        while !arrived.is_empty() {
            if session.read_tls(&mut arrived)? == 0 {
                break;
            }
        }
        self.rbuf.clear();
        self.security = Security::Tls(Box::new(session));
        let Transport {
            stream,
            rbuf,
            security: Security::Tls(session),
            ..
        } = self
        else {
            unreachable!("just set");
        };
        decrypt(session, stream, rbuf)?;
        if !turn.drained && turn.bytes < max {
            let more = self.read_tls(max - turn.bytes)?;
            turn.bytes += more.bytes;
            turn.eof = more.eof;
            turn.drained = more.drained;
        }
        turn.needs_flush = self.tls_pending();
        Ok(turn)
    }

    /// Reads TLS records until the socket is drained, EOF (TCP, or the
    /// peer's close_notify) or `max` bytes, decrypting into the read buffer.
    fn read_tls(&mut self, max: usize) -> io::Result<ReadTurn> {
        let Transport {
            stream,
            rbuf,
            security: Security::Tls(session),
            ..
        } = self
        else {
            unreachable!("read_tls without a session");
        };
        let mut turn = ReadTurn::default();
        loop {
            let mut stop = false;
            match session.read_tls(&mut &*stream) {
                Ok(0) => {
                    turn.eof = true;
                    turn.drained = true;
                }
                Ok(n) => turn.bytes += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => turn.drained = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Decrypt what arrived; the error repeats on the next read.
                Err(_) if turn.bytes > 0 => stop = true,
                Err(e) => return Err(e),
            }
            decrypt(session, stream, rbuf)?;
            if stop || turn.drained || turn.bytes >= max {
                turn.needs_flush = session.wants_write();
                return Ok(turn);
            }
        }
    }

    /// A TLS handshake is under way (or has not started).
    pub(crate) fn handshaking(&self) -> bool {
        matches!(&self.security, Security::Tls(s) if s.is_handshaking())
    }

    /// TLS records are waiting to be written (a handshake message, or
    /// encrypted output).
    fn tls_pending(&self) -> bool {
        matches!(&self.security, Security::Tls(s) if s.wants_write())
    }

    /// The next complete reply in the input, parsed by `protocol` (a
    /// client's connection); replies over `max` bytes fail their call alone.
    pub(crate) fn parse_reply(
        &mut self,
        protocol: &dyn Protocol,
        max: usize,
    ) -> Result<Option<Reply>, ProtocolError> {
        protocol.parse_reply(&mut self.rbuf, &mut self.read, max, false)
    }

    /// The undecoded input, for protocol sniffing.
    pub(crate) fn input(&mut self) -> &mut BytesMut {
        &mut self.rbuf
    }

    /// The undecoded input and what its reader keeps between reads, for
    /// a wire format to decode.
    pub(crate) fn input_state(&mut self) -> (&mut BytesMut, &mut ReadState) {
        (&mut self.rbuf, &mut self.read)
    }

    /// At EOF, once every complete frame was taken: part of a frame left
    /// over is an error (tokio-util's `decode_eof`), since its rest will
    /// never come.
    pub(crate) fn check_eof(&self) -> Result<(), ProtocolError> {
        if self.rbuf.is_empty() && self.read.skip == 0 {
            return Ok(());
        }
        Err(ProtocolError::TruncatedAtEof {
            pending: self.rbuf.len(),
        })
    }

    /// Part of a frame has arrived and the rest has not (a TLS handshake
    /// under way counts: a peer stalling it is as slow as a half frame).
    pub(crate) fn mid_frame(&self) -> bool {
        !self.rbuf.is_empty() || self.read.skip > 0 || self.handshaking()
    }

    /// Bytes the read buffer holds room for (what it costs in memory).
    pub(crate) fn input_capacity(&self) -> usize {
        self.rbuf.capacity()
    }

    /// Bytes both buffers hold room for.
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.rbuf.capacity() + self.wbuf.capacity()
    }

    /// Gives back a buffer that is empty but holds room for more than
    /// `above` bytes (after a large frame or reply), so a connection's
    /// memory follows what it holds now, not the largest it ever held.
    /// Returns the bytes of room given back.
    pub(crate) fn release_large_buffers(&mut self, above: usize) -> usize {
        let mut freed = 0;
        for buf in [&mut self.rbuf, &mut self.wbuf] {
            if buf.is_empty() && buf.capacity() > above {
                freed += buf.capacity();
                *buf = BytesMut::new();
            }
        }
        freed
    }

    /// Where replies or requests are encoded, to go out at the next flush.
    pub(crate) fn output(&mut self) -> &mut BytesMut {
        &mut self.wbuf
    }

    /// Encoded bytes not yet taken by the socket (plus one while TLS
    /// records wait: rustls holds at most its buffer limit, 64 KiB, so the
    /// output here still measures backpressure).
    pub(crate) fn unsent(&self) -> usize {
        self.wbuf.len() + usize::from(self.tls_pending())
    }

    /// Writes as much output as the socket takes. Returns true when all of
    /// it went out, false when the socket is full (watch for writability).
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        if let Security::Tls(_) = self.security {
            return self.flush_tls();
        }
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

    /// Hands output to rustls (up to its buffer limit) and writes its
    /// records, until both are empty or the socket is full. Output stays in
    /// the buffer until the handshake is done.
    fn flush_tls(&mut self) -> io::Result<bool> {
        let Transport {
            stream,
            wbuf,
            security: Security::Tls(session),
            ..
        } = self
        else {
            unreachable!("flush_tls without a session");
        };
        loop {
            // Output waits here until the handshake is done, so a handshake
            // that fails has sent none of it (a client retries it elsewhere).
            if !wbuf.is_empty() && !session.is_handshaking() {
                let n = session.writer().write(wbuf)?;
                wbuf.advance(n);
            }
            if !session.wants_write() {
                // Output held back by the handshake waits for the peer, not
                // for the socket: no need to watch for writability.
                return Ok(wbuf.is_empty() || session.is_handshaking());
            }
            match session.write_tls(&mut &*stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
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

/// Processes the TLS records rustls has read and appends the plaintext to
/// `rbuf`. A protocol or certificate error is sent to the peer as an alert
/// (best effort) and returned, to close the connection.
fn decrypt(
    session: &mut rustls::Connection,
    stream: &TcpStream,
    rbuf: &mut BytesMut,
) -> io::Result<()> {
    if let Err(e) = session.process_new_packets() {
        let handshaking = session.is_handshaking();
        let _ = session.write_tls(&mut &*stream);
        return Err(tls_io_error(e, handshaking));
    }
    let mut reader = session.reader();
    loop {
        let n = match reader.fill_buf() {
            Ok([]) => return Ok(()), // the peer's close_notify
            Ok(chunk) => {
                rbuf.extend_from_slice(chunk);
                chunk.len()
            }
            // Nothing more for now, or TCP EOF without close_notify (the
            // read reports that EOF).
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::UnexpectedEof
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        reader.consume(n);
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
