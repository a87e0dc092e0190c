//! "The peer closed the connection": told apart from "the peer went quiet".
//!
//! A read that times out and a read that sees the close both end a
//! `read_to_end`, and a test that accepts either (`Ok(0) | Err(_)`) passes
//! when the server hangs. These helpers read until the peer closes (a FIN,
//! or a reset) and fail the test if that does not happen within the limit.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Reads `stream` until the peer closes it, within `limit`; returns every
/// byte that came before the close. Panics on a timeout (the peer did not
/// close) or on any error other than a reset.
pub fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let give_up = Instant::now() + limit;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = give_up.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the peer did not close within {limit:?} ({} bytes read)",
            got.len()
        );
        stream
            .set_read_timeout(Some(left))
            .expect("set a read timeout");
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "the peer did not close within {limit:?} ({} bytes read)",
                    got.len()
                )
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("reading until the peer closes: {e}"),
        }
    }
}

/// Asserts that the peer closes `stream` within `limit` without sending
/// a byte.
pub fn assert_closed_silently(stream: &mut TcpStream, limit: Duration) {
    let got = read_until_closed(stream, limit);
    assert!(
        got.is_empty(),
        "closed after sending {} bytes: {got:?}",
        got.len()
    );
}
