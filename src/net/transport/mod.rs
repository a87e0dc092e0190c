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
//! looks at the first bytes: a TLS record starts `0x16 0x03`. That half
//! is `tls` (feature `tls`); without the feature every connection is plain.

use std::io::{self, Write};

use bytes::{Buf, Bytes, BytesMut};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::tls::{ClientTls, ServerTls};
use crate::protocol::{Protocol, ProtocolError, ReadState, Reply};

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
    #[cfg(feature = "tls")]
    Undecided(ServerTls),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::Connection>),
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Security::Plain => "Plain",
            #[cfg(feature = "tls")]
            Security::Undecided(_) => "Undecided",
            #[cfg(feature = "tls")]
            Security::Tls(_) => "Tls",
        })
    }
}

#[cfg(feature = "tls")]
mod tls;

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
    /// Bytes the last plain read turn took: a connection that read more
    /// than a chunk gets room for as much before its next turn.
    last_turn: usize,
    security: Security,
}

impl Transport {
    /// Wraps a stream registered with `Interest::READABLE`, plus
    /// `Interest::WRITABLE` when `writable_armed` (a connect in progress).
    fn secured(stream: TcpStream, writable_armed: bool, security: Security) -> Transport {
        Transport {
            stream,
            // No buffer memory until there is something to hold: an idle
            // connection costs this struct and the kernel's socket buffers.
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            writable_armed,
            flush_queued: false,
            read: ReadState::default(),
            last_turn: 0,
            security,
        }
    }

    /// An accepted connection on a port that takes TLS (`tls`), plain until
    /// its first bytes say otherwise.
    pub(crate) fn accepted(stream: TcpStream, tls: Option<&ServerTls>) -> Transport {
        let security = match tls {
            None => Security::Plain,
            #[cfg(feature = "tls")]
            Some(tls) => Security::Undecided(tls.clone()),
            #[cfg(not(feature = "tls"))]
            Some(tls) => match *tls {},
        };
        Transport::secured(stream, false, security)
    }

    /// A client's connection, connecting (watched for writability): with
    /// `tls` it speaks TLS to `addr` from its first byte.
    #[cfg_attr(not(feature = "tls"), allow(unused_variables))]
    pub(crate) fn connecting(
        stream: TcpStream,
        tls: Option<&ClientTls>,
        addr: std::net::SocketAddr,
    ) -> io::Result<Transport> {
        let security = match tls {
            None => Security::Plain,
            #[cfg(feature = "tls")]
            Some(tls) => Security::Tls(Box::new(tls.session(addr)?)),
            #[cfg(not(feature = "tls"))]
            Some(tls) => match *tls {},
        };
        Ok(Transport::secured(stream, true, security))
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
            #[cfg(feature = "tls")]
            Security::Tls(_) => self.read_tls(max),
            #[cfg(feature = "tls")]
            Security::Undecided(_) => self.read_first_bytes(chunk, max),
        }
    }

    fn read_plain(
        &mut self,
        chunk: usize,
        max: usize,
        short_read_drains: bool,
    ) -> io::Result<ReadTurn> {
        // A connection that read more than a chunk last turn (a server
        // stream's flood) gets room for as much (up to `max`) at once: the
        // turn's reads then land in one buffer instead of growing it read
        // by read, each growth moving everything read so far. Only the
        // undecoded tail is moved (or nothing, the buffer reclaimed once
        // its frames are dropped). A connection reading less keeps the
        // chunk-sized buffer, and so does a reader whose turn is one chunk
        // (the server's).
        if max > chunk && self.last_turn > chunk {
            let want = self.last_turn.min(max);
            if self.rbuf.capacity() - self.rbuf.len() < want {
                self.rbuf.reserve(want);
            }
        }
        let read = self.read_plain_chunks(chunk, max, short_read_drains);
        self.last_turn = read.as_ref().map_or(0, |turn| turn.bytes);
        read
    }

    fn read_plain_chunks(
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

    /// A TLS handshake is under way (or has not started).
    pub(crate) fn handshaking(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Security::Tls(session) = &self.security {
            return session.is_handshaking();
        }
        false
    }

    /// TLS records are waiting to be written (a handshake message, or
    /// encrypted output).
    fn tls_pending(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Security::Tls(session) = &self.security {
            return session.wants_write();
        }
        false
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

    /// A whole stream message frame at the front of the input, taken off
    /// by `protocol`'s fast path (a client's connection): its stream's
    /// id and the message. `None` for anything else, including while an
    /// oversized reply's body is being skipped: [`parse_reply`](Self::parse_reply)
    /// reads those.
    #[inline]
    pub(crate) fn take_stream_message(
        &mut self,
        protocol: &dyn Protocol,
        max: usize,
    ) -> Option<(u64, Bytes)> {
        self.take_whole(|input| protocol.take_stream_message(input, max))
    }

    /// A whole successful reply with no error text or metadata at the
    /// front of the input, taken off by `protocol`'s fast path (a
    /// client's connection): its call's id and payload. `None` otherwise,
    /// as for [`take_stream_message`](Self::take_stream_message).
    #[inline]
    pub(crate) fn take_ok_reply(
        &mut self,
        protocol: &dyn Protocol,
        max: usize,
    ) -> Option<(u64, Bytes)> {
        self.take_whole(|input| protocol.take_ok_reply(input, max))
    }

    /// `take` applied to the input, unless an oversized reply's body is
    /// being skipped (`parse_reply` reads on then).
    #[inline]
    fn take_whole<T>(&mut self, take: impl FnOnce(&mut BytesMut) -> Option<T>) -> Option<T> {
        if self.read.skip > 0 {
            return None;
        }
        take(&mut self.rbuf)
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
        #[cfg(feature = "tls")]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain transport reading what `peer` writes.
    fn pair() -> (Transport, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        let io = Transport::secured(TcpStream::from_std(ours), false, Security::Plain);
        (io, peer)
    }

    /// Reads until something came.
    fn read_some(io: &mut Transport, chunk: usize, max: usize) -> ReadTurn {
        for _ in 0..1000 {
            let turn = io.read_turn(chunk, max, true).unwrap();
            if turn.bytes > 0 {
                return turn;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("nothing came to read");
    }

    #[test]
    fn a_turn_that_read_more_than_a_chunk_gets_room_for_as_much_next() {
        let (chunk, max) = (1024, 64 * 1024);
        let (mut io, mut peer) = pair();
        io.last_turn = 10_000;
        peer.write_all(b"0123456789").unwrap();
        assert_eq!(read_some(&mut io, chunk, max).bytes, 10);
        assert!(io.rbuf.capacity() >= 10_000, "{}", io.rbuf.capacity());
        assert_eq!(io.last_turn, 10);
        // Over `max`, the room stops at `max`.
        io.rbuf.clear();
        io.last_turn = 10 * max;
        peer.write_all(b"0123456789").unwrap();
        read_some(&mut io, chunk, max);
        assert!(io.rbuf.capacity() >= max);
        assert!(
            io.rbuf.capacity() < 2 * max + chunk,
            "{}",
            io.rbuf.capacity()
        );
        // A reader whose turn is one chunk (the server's) keeps its chunk.
        let (mut io, mut peer) = pair();
        io.last_turn = 10_000;
        peer.write_all(b"0123456789").unwrap();
        read_some(&mut io, chunk, chunk);
        assert!(io.rbuf.capacity() < 10_000, "{}", io.rbuf.capacity());
    }
}
