//! One blocking call before the clock starts, so an unreachable or wrong
//! target fails the run at once with the reason.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use mprpc::net::tls::ClientTls;

use crate::protocol::{Protocol, Reply};

/// A blocking byte stream, plain or TLS, for the probe.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// One blocking call before the clock starts: fails fast, with the reason,
/// when the target is unreachable, refuses the TLS handshake, or answers
/// something else.
pub fn probe<P: Protocol>(
    proto: &P,
    addr: SocketAddr,
    tls: Option<&ClientTls>,
    timeout: Duration,
) -> Result<(), String> {
    let tcp = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_read_timeout(Some(timeout))
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut stream: Box<dyn Stream> = match tls {
        Some(tls) => {
            let session = tls
                .client_connection(addr)
                .map_err(|e| format!("TLS to {addr}: {e}"))?;
            Box::new(rustls::StreamOwned::new(session, tcp))
        }
        None => Box::new(tcp),
    };
    let mut state = proto.new_conn();
    let mut out = BytesMut::new();
    proto.start(&mut state, &mut out);
    let id = proto.encode(&mut state, &mut out);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        stream
            .write_all(&out)
            .map_err(|e| format!("probe write to {addr}: {e}"))?;
        out.clear();
        let n = stream
            .read(&mut chunk)
            .map_err(|e| format!("probe reply from {addr}: {e}"))?;
        if n == 0 {
            let reply = proto
                .decode_eof(&mut state, &mut buf)
                .map_err(|e| format!("probe: {e}"))?;
            return check_probe(reply, id);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(reply) = proto
            .decode(&mut state, &mut buf, &mut out)
            .map_err(|e| format!("probe reply from {addr}: {e}"))?
        {
            return check_probe(reply, id);
        }
    }
}

fn check_probe(reply: Reply, id: u64) -> Result<(), String> {
    match reply.error {
        _ if reply.id != id => Err(format!("probe: reply to id {} instead of {id}", reply.id)),
        Some(e) => Err(format!("probe call failed: {e}")),
        None => Ok(()),
    }
}
