//! `--target volo`: Thrift calls as Volo's published benchmark makes them:
//! the binary protocol (strict, version 1) in framed transport.
//!
//! A call to `EchoResponse Echo(1: EchoRequest req)` with `struct
//! EchoRequest { 1: required binary payload }` is
//! `u32 frame length | 0x80010001 | name | seqid | field 1 (struct) { field 1
//! (binary) } STOP`; the reply is the same with message type REPLY (2) and
//! the result in field 0, so an echo's reply frame is exactly as long as its
//! request's. Any other reply (an EXCEPTION, a short frame) is an error.
//! Replies carry the seqid, so they may come in any order.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Protocol, Reply};

const VERSION_1: u32 = 0x8001_0000;
const CALL: u32 = 1;
const REPLY: u32 = 2;
const T_STRUCT: u8 = 12;
const T_STRING: u8 = 11;
const T_STOP: u8 = 0;
/// Frames larger than this are a broken connection, not a reply.
const MAX_FRAME: usize = 16 << 20;

pub struct Thrift {
    method: String,
    payload: Bytes,
    /// The frame length of a request, and so of an echo's reply.
    frame_len: usize,
}

impl Thrift {
    pub fn new(method: &str, payload: &[u8]) -> Thrift {
        let frame_len = 4 + 4 + method.len() + 4 + (1 + 2) + (1 + 2 + 4 + payload.len()) + 1 + 1;
        Thrift {
            method: method.into(),
            payload: Bytes::copy_from_slice(payload),
            frame_len,
        }
    }
}

/// The next seqid of a connection.
#[derive(Debug, Default)]
pub struct SeqId(i32);

impl Protocol for Thrift {
    type Conn = SeqId;

    fn new_conn(&self) -> SeqId {
        SeqId::default()
    }

    fn encode(&self, conn: &mut SeqId, out: &mut BytesMut) -> u64 {
        conn.0 = conn.0.wrapping_add(1);
        out.reserve(4 + self.frame_len);
        out.put_u32(self.frame_len as u32);
        out.put_u32(VERSION_1 | CALL);
        out.put_u32(self.method.len() as u32);
        out.put_slice(self.method.as_bytes());
        out.put_i32(conn.0);
        out.put_u8(T_STRUCT); // args field 1: req
        out.put_i16(1);
        out.put_u8(T_STRING); // EchoRequest field 1: payload
        out.put_i16(1);
        out.put_u32(self.payload.len() as u32);
        out.put_slice(&self.payload);
        out.put_u8(T_STOP); // end of EchoRequest
        out.put_u8(T_STOP); // end of the args
        u64::from(conn.0 as u32)
    }

    fn decode(
        &self,
        _conn: &mut SeqId,
        buf: &mut BytesMut,
        _out: &mut BytesMut,
    ) -> Result<Option<Reply>, String> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > MAX_FRAME {
            return Err(format!(
                "a {len}-byte Thrift frame: not framed binary Thrift"
            ));
        }
        if buf.len() < 4 + len {
            return Ok(None);
        }
        buf.advance(4);
        let mut frame = buf.split_to(len);
        if frame.len() < 8 {
            return Err("a Thrift frame too short for a message header".into());
        }
        let head = frame.get_u32();
        if head & 0xffff_0000 != VERSION_1 {
            return Err(format!("not a strict binary Thrift message (0x{head:08x})"));
        }
        let name_len = frame.get_u32() as usize;
        if frame.len() < name_len + 4 {
            return Err("a Thrift message header cut short".into());
        }
        frame.advance(name_len);
        let id = u64::from(frame.get_i32() as u32);
        Ok(Some(match head & 0xff {
            REPLY if len == self.frame_len => Reply::ok(id),
            REPLY => Reply::err(id, "BadReply"),
            _ => Reply::err(id, "ThriftException"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::check_every_split;

    /// Hand-checked framed binary Thrift for Echo(req = {payload: "ab"}).
    const CALL_1: &[u8] = b"\x00\x00\x00\x1e\x80\x01\x00\x01\x00\x00\x00\x04Echo\x00\x00\x00\x01\
        \x0c\x00\x01\x0b\x00\x01\x00\x00\x00\x02ab\x00\x00";

    fn reply(seq: u8, kind: u8, result: &[u8]) -> Vec<u8> {
        let mut body = vec![0x80, 0x01, 0x00, kind, 0, 0, 0, 4];
        body.extend_from_slice(b"Echo");
        body.extend_from_slice(&[0, 0, 0, seq]);
        body.extend_from_slice(result);
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend(body);
        out
    }

    #[test]
    fn encodes_a_call_byte_for_byte() {
        let t = Thrift::new("Echo", b"ab");
        let mut conn = SeqId::default();
        let mut out = BytesMut::new();
        assert_eq!(t.encode(&mut conn, &mut out), 1);
        assert_eq!(&out[..], CALL_1);
        assert_eq!(t.encode(&mut conn, &mut out), 2);
    }

    #[test]
    fn decodes_replies_split_anywhere_and_batched() {
        let t = Thrift::new("Echo", b"ab");
        // Result field 0 holds the EchoResponse {1: "ab"}.
        let ok = b"\x0c\x00\x00\x0b\x00\x01\x00\x00\x00\x02ab\x00\x00";
        let short = b"\x0c\x00\x00\x0b\x00\x01\x00\x00\x00\x01a\x00\x00";
        let mut stream = reply(2, 2, ok);
        stream.extend(reply(1, 2, short));
        stream.extend(reply(3, 3, b"\x0b\x00\x01\x00\x00\x00\x01x\x00"));
        let expected = [
            Reply::ok(2),
            Reply::err(1, "BadReply"),
            Reply::err(3, "ThriftException"),
        ];
        check_every_split(&t, SeqId::default, &stream, &expected);
    }

    #[test]
    fn an_unframed_peer_is_a_connection_error() {
        let t = Thrift::new("Echo", b"ab");
        let mut buf = BytesMut::from(&b"HTTP/1.1 400 Bad Request\r\n"[..]);
        assert!(t
            .decode(&mut SeqId::default(), &mut buf, &mut BytesMut::new())
            .is_err());
    }
}
