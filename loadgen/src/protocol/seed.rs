//! `--target seed`: the seed C++ mprpc's wire format. A request is a 4-byte
//! little-endian header length, an `RpcHeader` protobuf {service_name,
//! method_name, args_size} and the args; the provider writes the bare reply
//! and closes. One short TCP connection per call (the engine opens them),
//! so a reply is everything read until the close.

use bytes::{Bytes, BytesMut};
use mprpc::protocol::seed;

use super::{Protocol, Reply, Sequence};

pub struct Seed {
    /// The whole request, encoded once.
    request: Bytes,
    /// For Echo: the reply must be this long.
    expect_len: Option<usize>,
}

impl Seed {
    pub fn new(service: &str, method: &str, args: &[u8], expect_len: Option<usize>) -> Seed {
        let mut buf = BytesMut::new();
        seed::encode_request(service, method, args, &mut buf);
        Seed {
            request: buf.freeze(),
            expect_len,
        }
    }
}

impl Protocol for Seed {
    type Conn = Sequence;

    fn new_conn(&self) -> Sequence {
        Sequence::default()
    }

    fn per_call_connection(&self) -> bool {
        true
    }

    fn encode(&self, conn: &mut Sequence, out: &mut BytesMut) -> u64 {
        out.extend_from_slice(&self.request);
        conn.sent()
    }

    /// A reply is only complete when the server closes.
    fn decode(
        &self,
        _conn: &mut Sequence,
        _buf: &mut BytesMut,
        _out: &mut BytesMut,
    ) -> Result<Option<Reply>, String> {
        Ok(None)
    }

    fn decode_eof(&self, conn: &mut Sequence, buf: &mut BytesMut) -> Result<Reply, String> {
        let id = conn.replied();
        let len = buf.len();
        buf.clear();
        Ok(match self.expect_len {
            Some(n) if n != len => Reply::err(id, "BadReply"),
            _ if len == 0 => Reply::err(id, "EmptyReply"),
            _ => Reply::ok(id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_seed_bytes() {
        // Hand-checked: header length 0x23, RpcHeader{1: "FriendServiceRpc",
        // 2: "GetFriendList", 3: 3}, then the 3 args bytes.
        let seed = Seed::new("FriendServiceRpc", "GetFriendList", b"\x08\xe8\x07", None);
        let mut out = BytesMut::new();
        assert_eq!(seed.encode(&mut Sequence::default(), &mut out), 1);
        assert_eq!(
            &out[..],
            b"\x23\x00\x00\x00\x0a\x10FriendServiceRpc\x12\x0dGetFriendList\x18\x03\x08\xe8\x07"
        );
    }

    #[test]
    fn reply_is_everything_until_close_whatever_the_reads() {
        let seed = Seed::new("S", "M", b"abc", Some(3));
        let reply = b"abc";
        for at in 0..=reply.len() {
            let mut conn = Sequence::default();
            let mut buf = BytesMut::new();
            let mut out = BytesMut::new();
            for piece in [&reply[..at], &reply[at..]] {
                buf.extend_from_slice(piece);
                assert_eq!(seed.decode(&mut conn, &mut buf, &mut out), Ok(None));
            }
            assert_eq!(seed.decode_eof(&mut conn, &mut buf), Ok(Reply::ok(1)));
        }
        let mut buf = BytesMut::from(&b"ab"[..]);
        let r = seed.decode_eof(&mut Sequence::default(), &mut buf).unwrap();
        assert_eq!(r, Reply::err(1, "BadReply"));
    }
}
