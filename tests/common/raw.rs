//! A hand-written wire client for tests that speak the protocol frame by
//! frame: pipelined sends, cancels, replies read one at a time, and a
//! connection reset (RST) instead of a polite close.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use bytes::BytesMut;
use mprpc::protocol::mprpc::{
    encode_cancel, encode_request, Decoder, Frame, RequestHead, Response,
};

/// One connection to a server, with the replies read so far.
pub struct RawClient {
    pub stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        RawClient {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::default(),
        }
    }

    pub fn send(&mut self, id: u64, service: &str, method: &str, payload: &[u8]) {
        self.send_with_timeout(id, 0, service, method, payload);
    }

    pub fn send_with_timeout(
        &mut self,
        id: u64,
        timeout_ms: u32,
        service: &str,
        method: &str,
        payload: &[u8],
    ) {
        let mut out = BytesMut::new();
        let head = RequestHead {
            id,
            timeout_ms,
            service,
            method,
        };
        encode_request(head, payload, &mut out);
        self.stream.write_all(&out).unwrap();
    }

    pub fn cancel(&mut self, id: u64) {
        let mut out = BytesMut::new();
        encode_cancel(id, &mut out);
        self.stream.write_all(&out).unwrap();
    }

    /// Next response, or None when the server closed the connection.
    pub fn recv(&mut self) -> Option<Response> {
        loop {
            if let Some(frame) = self
                .decoder
                .decode(&mut self.buf)
                .expect("server speaks the protocol")
            {
                match frame {
                    Frame::Response(r) => return Some(r),
                    other => panic!("unexpected frame {other:?}"),
                }
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    pub fn call(&mut self, id: u64, service: &str, method: &str, payload: &[u8]) -> Response {
        self.send(id, service, method, payload);
        self.recv().expect("a reply")
    }
}

impl RawClient {
    /// Resets the connection (RST).
    pub fn reset(self) {
        reset(self.stream);
    }
}

/// Closes `stream` with a reset (RST, `SO_LINGER` 0) instead of a FIN: the
/// peer that vanishes mid-conversation.
pub fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads a linger struct we own, on a socket we own.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
    drop(stream);
}
