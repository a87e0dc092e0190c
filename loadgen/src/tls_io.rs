//! The engine's TLS: a rustls client session between a connection's
//! buffers and its non-blocking socket (`--tls-ca`).
//!
//! The session itself comes from mprpc's `ClientTls` (the same CA loading,
//! server-name check and ring provider as the framework's `Channel`); only
//! the pumping lives here, because the engine owns its buffers and sockets
//! (the framework's `Transport` is tied to its own frame decoder). Writes go
//! plaintext → rustls → socket, reads socket → rustls → plaintext, and
//! plaintext waits while the handshake runs, so no call is stamped as sent
//! before its bytes could leave.

use std::io::{self, Read, Write};

use bytes::{Buf, BytesMut};
use mio::net::TcpStream;
use rustls::ClientConnection;

/// What a flush left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// The socket is full: watch it for writability.
    pub blocked: bool,
    /// Every plaintext byte was handed over and every record written.
    pub all_sent: bool,
}

/// Hands `wbuf` to the session (once the handshake is done) and writes its
/// records until both are empty or the socket is full.
pub fn flush(
    session: &mut ClientConnection,
    stream: &TcpStream,
    wbuf: &mut BytesMut,
) -> io::Result<Flushed> {
    loop {
        if !wbuf.is_empty() && !session.is_handshaking() {
            let n = session.writer().write(wbuf)?;
            wbuf.advance(n);
        }
        if !session.wants_write() {
            // Plaintext held back by the handshake waits for the server's
            // reply, not for the socket.
            return Ok(Flushed {
                blocked: false,
                all_sent: wbuf.is_empty(),
            });
        }
        match session.write_tls(&mut &*stream) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(Flushed {
                    blocked: true,
                    all_sent: false,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whether the session has records to write (a handshake message).
pub fn wants_write(session: &ClientConnection) -> bool {
    session.wants_write()
}

/// Reads records until the socket is drained, decrypting into `rbuf`.
/// `Ok(true)`: the server closed (TCP EOF or close_notify). A TLS failure
/// (bad certificate, corrupt record) is an `InvalidData` error naming it.
pub fn read(
    session: &mut ClientConnection,
    stream: &TcpStream,
    rbuf: &mut BytesMut,
) -> io::Result<bool> {
    loop {
        let (stop, mut eof) = match session.read_tls(&mut &*stream) {
            Ok(0) => (true, true),
            Ok(_) => (false, false),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => (true, false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Err(e) = session.process_new_packets() {
            let _ = session.write_tls(&mut &*stream); // the alert, best effort
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("TLS: {e}"),
            ));
        }
        eof |= drain_plaintext(session, rbuf)?;
        if stop || eof {
            return Ok(eof);
        }
    }
}

/// Moves the decrypted bytes into `rbuf`; `Ok(true)` at the server's close.
fn drain_plaintext(session: &mut ClientConnection, rbuf: &mut BytesMut) -> io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match session.reader().read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => rbuf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(true),
            Err(e) => return Err(e),
        }
    }
}
