//! `--target mprpc --client raw`: our own frames (see `mprpc::protocol::mprpc`),
//! encoded and decoded with the framework's codec. Replies carry the
//! request id, so they may come in any order.

use bytes::{Bytes, BytesMut};
use mprpc::protocol::mprpc::{encode_request, Decoder, Frame, RequestHead};
use mprpc::Code;

use super::{Protocol, Reply};

pub struct Mprpc {
    service: String,
    method: String,
    request: Bytes,
    /// For Echo: the reply payload must be this long.
    expect_len: Option<usize>,
    decoder: Decoder,
}

impl Mprpc {
    pub fn new(service: &str, method: &str, request: Bytes, expect_len: Option<usize>) -> Mprpc {
        Mprpc {
            service: service.into(),
            method: method.into(),
            request,
            expect_len,
            decoder: Decoder::default(),
        }
    }
}

/// The next request id of a connection.
#[derive(Debug, Default)]
pub struct NextId(u64);

impl Protocol for Mprpc {
    type Conn = NextId;

    fn new_conn(&self) -> NextId {
        NextId::default()
    }

    fn encode(&self, conn: &mut NextId, out: &mut BytesMut) -> u64 {
        conn.0 += 1;
        let head = RequestHead {
            id: conn.0,
            timeout_ms: 0,
            service: &self.service,
            method: &self.method,
        };
        encode_request(head, &self.request, out);
        conn.0
    }

    fn decode(
        &self,
        _conn: &mut NextId,
        buf: &mut BytesMut,
        _out: &mut BytesMut,
    ) -> Result<Option<Reply>, String> {
        let Some(frame) = self.decoder.decode(buf).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let Frame::Response(r) = frame else {
            return Err("the server sent a frame that is not a reply".into());
        };
        Ok(Some(match r.code {
            Code::Ok if self.expect_len.is_none_or(|n| n == r.payload.len()) => Reply::ok(r.id),
            Code::Ok => Reply::err(r.id, "BadReply"),
            code => Reply::err(r.id, code.as_str()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::check_every_split;
    use mprpc::protocol::mprpc::encode_response;

    #[test]
    fn encodes_with_increasing_ids() {
        let p = Mprpc::new(
            "EchoService",
            "Echo",
            Bytes::from_static(b"\x0a\x01x"),
            Some(3),
        );
        let mut conn = NextId::default();
        let mut out = BytesMut::new();
        assert_eq!(p.encode(&mut conn, &mut out), 1);
        // Hand-checked against the layout in mprpc::protocol::mprpc: magic "MP",
        // version 1, kind 1 (request), body length, id, timeout, names.
        let body_len = 8 + 4 + 1 + 1 + 11 + 4 + 3;
        let mut want = vec![b'M', b'P', 1, 1];
        want.extend_from_slice(&(body_len as u32).to_be_bytes());
        want.extend_from_slice(&1u64.to_be_bytes());
        want.extend_from_slice(&0u32.to_be_bytes());
        want.extend_from_slice(&[11, 4]);
        want.extend_from_slice(b"EchoServiceEcho\x0a\x01x");
        assert_eq!(&out[..], &want[..], "{out:x?}");
        assert_eq!(p.encode(&mut conn, &mut out), 2);
    }

    #[test]
    fn decodes_replies_split_anywhere_and_batched() {
        let p = Mprpc::new("EchoService", "Echo", Bytes::from_static(b"abc"), Some(3));
        let mut stream = BytesMut::new();
        encode_response(2, Code::Ok, "", b"abc", &mut stream);
        encode_response(1, Code::Ok, "", b"ab", &mut stream);
        encode_response(3, Code::Unavailable, "busy", b"", &mut stream);
        let expected = [
            Reply::ok(2),
            Reply::err(1, "BadReply"),
            Reply::err(3, Code::Unavailable.as_str()),
        ];
        check_every_split(&p, NextId::default, &stream, &expected);
    }
}
