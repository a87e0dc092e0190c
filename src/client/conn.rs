//! One persistent, multiplexed TCP connection to a provider.
//!
//! A `Conn` is a non-blocking mio stream plus its buffers. Requests are
//! appended to `wbuf` as they are routed and flushed once per loop turn, so
//! pipelined calls share write syscalls. While the TCP connect is still in
//! progress the frames wait in `wbuf`, and `queued` remembers where each one
//! is: if the connect fails, none of them has touched the network and the
//! driver may retry them elsewhere. The driver owns the call bookkeeping;
//! this file only does socket I/O.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::discovery::Endpoint;

/// Bytes read from one connection before its replies are decoded; bounds
/// the read buffer when a peer streams replies faster than we consume them.
const READ_BATCH: usize = 256 * 1024;
/// Room made in `rbuf` before each read.
const READ_CHUNK: usize = 64 * 1024;

/// A request written into `wbuf` before the connect finished.
pub(crate) struct Queued {
    pub id: u64,
    pub frame: Range<usize>,
    pub deadline: Option<Instant>,
    pub endpoints: Arc<[Endpoint]>,
    pub hash_key: Option<u64>,
    /// Connection attempts this call has used so far.
    pub attempts: u32,
}

/// What a non-blocking connect has come to.
pub(crate) enum ConnectState {
    InProgress,
    Connected,
    Failed(io::Error),
}

/// What one read turn found.
pub(crate) struct ReadTurn {
    /// The peer closed its side.
    pub eof: bool,
    /// The socket has nothing more for now.
    pub drained: bool,
}

pub(crate) struct Conn {
    pub stream: TcpStream,
    pub addr: SocketAddr,
    pub connected: bool,
    pub connect_deadline: Instant,
    pub rbuf: BytesMut,
    pub wbuf: BytesMut,
    /// Requests waiting for the connect (only while `!connected`).
    pub queued: Vec<Queued>,
    /// WRITABLE interest is registered (output is pending).
    pub writable_armed: bool,
    /// In the driver's flush list this turn.
    pub dirty: bool,
    /// Calls routed here and not yet completed.
    pub inflight: usize,
    /// A reply has arrived: the peer is known to work.
    pub answered: bool,
    /// Body bytes of an oversized reply still to be skipped as they arrive.
    pub skip: usize,
}

impl Conn {
    /// Starts a non-blocking connect and registers for its completion.
    pub(crate) fn connect(
        addr: SocketAddr,
        registry: &Registry,
        token: Token,
        deadline: Instant,
    ) -> io::Result<Conn> {
        let mut stream = TcpStream::connect(addr)?;
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Conn {
            stream,
            addr,
            connected: false,
            connect_deadline: deadline,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            queued: Vec::new(),
            writable_armed: true,
            dirty: false,
            inflight: 0,
            answered: false,
            skip: 0,
        })
    }

    /// Checks a connect in progress after an event (mio's recipe: the
    /// pending socket error first, then whether a peer is there).
    pub(crate) fn check_connect(&mut self) -> ConnectState {
        match self.stream.take_error() {
            Ok(Some(e)) | Err(e) => return ConnectState::Failed(e),
            Ok(None) => {}
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                // Latency over batching at the TCP level: we batch ourselves.
                let _ = self.stream.set_nodelay(true);
                self.connected = true;
                ConnectState::Connected
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => ConnectState::InProgress,
            Err(e) => ConnectState::Failed(e),
        }
    }

    /// Reads what the socket has (up to [`READ_BATCH`]) straight into
    /// `rbuf`. With `short_read_drains`, a read that did not fill the space
    /// offered counts as drained (edge-triggered: new data raises a new
    /// event), saving the syscall that would only return `WouldBlock`.
    pub(crate) fn read_turn(&mut self, short_read_drains: bool) -> io::Result<ReadTurn> {
        let mut total = 0;
        loop {
            match crate::net::read_into(&self.stream, &mut self.rbuf, READ_CHUNK) {
                Ok((0, _)) => {
                    return Ok(ReadTurn {
                        eof: true,
                        drained: true,
                    })
                }
                Ok((n, short)) => {
                    total += n;
                    if short && short_read_drains {
                        return Ok(ReadTurn {
                            eof: false,
                            drained: true,
                        });
                    }
                    if total >= READ_BATCH {
                        return Ok(ReadTurn {
                            eof: false,
                            drained: false,
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadTurn {
                        eof: false,
                        drained: true,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes as much of `wbuf` as the socket takes. Returns true when all
    /// of it went out.
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

    /// Registers WRITABLE interest only while output is pending.
    pub(crate) fn want_writable(
        &mut self,
        registry: &Registry,
        token: Token,
        on: bool,
    ) -> io::Result<()> {
        if self.writable_armed == on {
            return Ok(());
        }
        let interest = if on {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        registry.reregister(&mut self.stream, token, interest)?;
        self.writable_armed = on;
        Ok(())
    }
}
