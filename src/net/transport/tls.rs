//! The TLS half of [`Transport`] (feature `tls`): a server port deciding
//! from the first bytes whether a connection speaks TLS, reading records
//! through rustls into the read buffer, and flushing output through it.

use std::io::{self, BufRead, Write};

use bytes::{Buf, BytesMut};
use mio::net::TcpStream;

use super::{ReadTurn, Security, Transport};
use crate::net::tls::tls_io_error;

/// The first bytes of a TLS handshake record: content type 22, version 3.x.
const TLS_RECORD_START: [u8; 2] = [0x16, 0x03];

impl Transport {
    /// A server port taking TLS, at its first bytes: reads them as they
    /// come, then starts a TLS session over them (`0x16 0x03`) or stays
    /// plain, unless TLS is required.
    pub(super) fn read_first_bytes(&mut self, chunk: usize, max: usize) -> io::Result<ReadTurn> {
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
        let (stream, rbuf, _, session) = self.tls_parts();
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
    pub(super) fn read_tls(&mut self, max: usize) -> io::Result<ReadTurn> {
        let (stream, rbuf, _, session) = self.tls_parts();
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

    /// Hands output to rustls (up to its buffer limit) and writes its
    /// records, until both are empty or the socket is full. Output stays in
    /// the buffer until the handshake is done.
    pub(super) fn flush_tls(&mut self) -> io::Result<bool> {
        let (stream, _, wbuf, session) = self.tls_parts();
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
    /// The socket, the buffers and the TLS session of a connection that
    /// speaks TLS (callers have checked, or just set, that it does).
    fn tls_parts(
        &mut self,
    ) -> (
        &mut TcpStream,
        &mut BytesMut,
        &mut BytesMut,
        &mut rustls::Connection,
    ) {
        let Transport {
            stream,
            rbuf,
            wbuf,
            security: Security::Tls(session),
            ..
        } = self
        else {
            unreachable!("a TLS operation on a connection without a TLS session");
        };
        (stream, rbuf, wbuf, session)
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
