//! `--target redis`: RESP `PING`, as redis-benchmark's `PING_MBULK` sends it
//! (`*1\r\n$4\r\nPING\r\n`), answered `+PONG\r\n`. Replies come in order.

use bytes::{Buf, BytesMut};

use super::{Protocol, Reply, Sequence};

/// PING as a one-element RESP array.
pub const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

#[derive(Debug, Default)]
pub struct Resp;

impl Protocol for Resp {
    type Conn = Sequence;

    fn new_conn(&self) -> Sequence {
        Sequence::default()
    }

    fn encode(&self, conn: &mut Sequence, out: &mut BytesMut) -> u64 {
        out.extend_from_slice(PING);
        conn.sent()
    }

    fn decode(
        &self,
        conn: &mut Sequence,
        buf: &mut BytesMut,
        _out: &mut BytesMut,
    ) -> Result<Option<Reply>, String> {
        let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = &buf[..end];
        let reply = match line.first() {
            Some(b'+') if &line[1..] == b"PONG" => Reply::ok(conn.replied()),
            Some(b'+') => Reply::err(conn.replied(), "BadReply"),
            Some(b'-') => Reply::err(conn.replied(), "RedisError"),
            _ => {
                return Err(format!(
                    "not a RESP simple reply: {:?}",
                    String::from_utf8_lossy(line)
                ))
            }
        };
        buf.advance(end + 2);
        Ok(Some(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::check_every_split;

    #[test]
    fn encodes_ping_as_redis_benchmark_does() {
        let mut conn = Sequence::default();
        let mut out = BytesMut::new();
        assert_eq!(Resp.encode(&mut conn, &mut out), 1);
        assert_eq!(Resp.encode(&mut conn, &mut out), 2);
        assert_eq!(&out[..], b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n");
    }

    #[test]
    fn decodes_replies_split_anywhere_and_batched() {
        let stream = b"+PONG\r\n+PONG\r\n-ERR busy\r\n";
        let expected = [Reply::ok(1), Reply::ok(2), Reply::err(3, "RedisError")];
        check_every_split(&Resp, Sequence::default, stream, &expected);
    }

    #[test]
    fn garbage_is_a_connection_error() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 400\r\n"[..]);
        let r = Resp.decode(&mut Sequence::default(), &mut buf, &mut BytesMut::new());
        assert!(r.is_err());
    }
}
