//! Just enough HTTP/1.1 to GET a provider's admin `/status`: one request
//! per connection (`Connection: close`), a bounded reply, a deadline on
//! every step. The admin pages answer with `Content-Length`; a reply
//! without it is read to the close. With TLS (a provider with
//! `tls=required` serves its admin pages over HTTPS) the same request goes
//! through a rustls session.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use mprpc::net::tls::ClientTls;

use crate::error::{Error, Result};

/// The largest reply read (a /status of a provider with thousands of
/// methods fits many times over).
const MAX_REPLY: u64 = 8 << 20;

/// GETs `path` from `addr` (over TLS with `tls`), with `token` as a bearer
/// token; the body of a 200 reply, or an error naming the status.
pub(crate) fn get(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    tls: Option<&ClientTls>,
    timeout: Duration,
) -> Result<String> {
    let fail = |what: &str, e: std::io::Error| Error::new(format!("{addr}: {what}: {e}"));
    let stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail("cannot connect", e))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|_| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| fail("socket", e))?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    let reply = match tls {
        None => exchange(stream, &request),
        Some(tls) => {
            let session = tls.client_connection(addr).map_err(|e| fail("TLS", e))?;
            exchange(rustls::StreamOwned::new(session, stream), &request)
        }
    };
    let reply = reply.map_err(|e| fail("HTTP exchange", e))?;
    if reply.len() as u64 > MAX_REPLY {
        return Err(Error::new(format!(
            "{addr}{path}: reply larger than {MAX_REPLY} bytes"
        )));
    }
    parse(&reply).map_err(|why| Error::new(format!("{addr}{path}: {why}")))
}

/// Sends `request` and reads the reply to the close (at most
/// `MAX_REPLY + 1` bytes). A peer that closes without TLS's close_notify
/// after a whole reply is fine: the length is checked by `parse`.
fn exchange(mut stream: impl Read + Write, request: &str) -> std::io::Result<Vec<u8>> {
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    let mut reply = Vec::new();
    match stream.take(MAX_REPLY + 1).read_to_end(&mut reply) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !reply.is_empty() => Ok(reply),
        Err(e) => Err(e),
        Ok(_) => Ok(reply),
    }
}

/// The body of a complete 200 reply.
fn parse(reply: &[u8]) -> std::result::Result<String, String> {
    let text = String::from_utf8_lossy(reply);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(if reply.is_empty() {
            "closed without a reply (is it an mprpc provider with the admin pages on? \
             one with tls=required serves them over HTTPS: give --tls-ca FILE)"
                .to_owned()
        } else {
            "not an HTTP reply".to_owned()
        });
    };
    let status = head.lines().next().unwrap_or_default();
    let code = status.split_whitespace().nth(1).unwrap_or_default();
    match code {
        "200" => {}
        "401" => {
            return Err(format!(
                "{status}: give the provider's admin_token with --admin-token"
            ))
        }
        _ => return Err(status.to_owned()),
    }
    let length = head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    match length {
        Some(n) if body.len() < n => Err(format!("reply cut short ({} of {n} bytes)", body.len())),
        Some(n) => Ok(body[..n].to_owned()),
        None => Ok(body.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn replies_are_read_by_their_length_and_failures_say_why() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse(ok).unwrap(), "{}");
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}";
        assert!(parse(short).unwrap_err().contains("cut short"));
        let denied = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
        assert!(parse(denied).unwrap_err().contains("--admin-token"));
        assert!(parse(b"").unwrap_err().contains("admin pages"));
        assert!(parse(b"\x00\x01garbage")
            .unwrap_err()
            .contains("not an HTTP reply"));
    }
}
