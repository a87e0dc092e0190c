//! `--target tonic`: gRPC unary calls over HTTP/2, spoken directly (RFC 9113
//! framing, a fixed RFC 7541 header block), so the same mio engine drives
//! tonic as every other server, with no async runtime in the client.
//!
//! Per call: a HEADERS frame (`POST`, `:path`, `content-type:
//! application/grpc`, `te: trailers`; literal fields, no dynamic table) and
//! one DATA frame with END_STREAM carrying the length-prefixed message. A
//! call ends when its stream ends (END_STREAM on the trailers, or on DATA);
//! it succeeded when its DATA held exactly the expected message length
//! (an echo's reply is as long as its request) and the stream was not
//! reset. Response headers are skipped, not HPACK-decoded: a failed gRPC
//! call carries no message, so it still counts as an error.
//!
//! Flow control: the client announces a 1 GiB receive window per stream and
//! for the connection, and returns what it consumed; it respects the
//! server's send windows and stream limit through [`Protocol::can_send`].

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Protocol, Reply};

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
/// Our receive window, per stream and for the connection.
const RECV_WINDOW: u32 = 1 << 30;
/// Consumed bytes are returned to the server in steps of this.
const WINDOW_RETURN: usize = 1 << 20;

pub struct Grpc {
    header_block: Bytes,
    /// The length-prefixed gRPC message (5-byte prefix + protobuf).
    message: Bytes,
}

impl Grpc {
    /// `path` is `/package.Service/Method`; `message` the encoded protobuf.
    pub fn new(authority: &str, path: &str, message: &[u8]) -> Grpc {
        let mut b = BytesMut::new();
        b.put_u8(0x83); // :method POST (static 3)
        b.put_u8(0x86); // :scheme http (static 6)
        literal_indexed_name(&mut b, 4, path); // :path
        literal_indexed_name(&mut b, 1, authority); // :authority
        literal_indexed_name(&mut b, 31, "application/grpc"); // content-type
        b.put_u8(0x00); // te: trailers (new name, not indexed)
        put_string(&mut b, "te");
        put_string(&mut b, "trailers");
        let mut m = BytesMut::with_capacity(5 + message.len());
        m.put_u8(0);
        m.put_u32(message.len() as u32);
        m.put_slice(message);
        Grpc {
            header_block: b.freeze(),
            message: m.freeze(),
        }
    }
}

/// HPACK "literal header field without indexing, indexed name" (4-bit prefix).
fn literal_indexed_name(b: &mut BytesMut, index: u8, value: &str) {
    if index < 15 {
        b.put_u8(index);
    } else {
        b.put_u8(0x0f);
        b.put_u8(index - 15);
    }
    put_string(b, value);
}

/// HPACK string literal, no Huffman coding (the values here are < 127 bytes).
fn put_string(b: &mut BytesMut, s: &str) {
    assert!(s.len() < 127, "header value too long for a one-byte length");
    b.put_u8(s.len() as u8);
    b.put_slice(s.as_bytes());
}

fn frame_header(out: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
    out.put_uint(len as u64, 3);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream);
}

/// One HTTP/2 connection's state.
#[derive(Debug)]
pub struct H2Conn {
    next_stream: u32,
    /// The server's connection-level window for our DATA.
    send_window: i64,
    /// The server's initial per-stream window (each stream sends one message).
    stream_window: i64,
    max_streams: usize,
    /// Open streams and the DATA bytes received on each.
    open: Vec<(u32, usize)>,
    /// DATA bytes received and not yet returned with WINDOW_UPDATE.
    unreturned: usize,
}

impl Default for H2Conn {
    fn default() -> Self {
        H2Conn {
            next_stream: 1,
            send_window: 65_535,
            stream_window: 65_535,
            max_streams: usize::MAX,
            open: Vec::new(),
            unreturned: 0,
        }
    }
}

impl Protocol for Grpc {
    type Conn = H2Conn;

    fn new_conn(&self) -> H2Conn {
        H2Conn::default()
    }

    fn start(&self, _conn: &mut H2Conn, out: &mut BytesMut) {
        out.put_slice(PREFACE);
        frame_header(out, 12, SETTINGS, 0, 0);
        out.put_u16(0x2); // ENABLE_PUSH
        out.put_u32(0);
        out.put_u16(0x4); // INITIAL_WINDOW_SIZE
        out.put_u32(RECV_WINDOW);
        frame_header(out, 4, WINDOW_UPDATE, 0, 0);
        out.put_u32(RECV_WINDOW - 65_535);
    }

    fn can_send(&self, conn: &H2Conn) -> bool {
        let need = self.message.len() as i64;
        conn.open.len() < conn.max_streams
            && conn.send_window >= need
            && conn.stream_window >= need
            && conn.next_stream < (1 << 31) - 2
    }

    fn encode(&self, conn: &mut H2Conn, out: &mut BytesMut) -> u64 {
        let id = conn.next_stream;
        conn.next_stream += 2;
        frame_header(out, self.header_block.len(), HEADERS, END_HEADERS, id);
        out.put_slice(&self.header_block);
        frame_header(out, self.message.len(), DATA, END_STREAM, id);
        out.put_slice(&self.message);
        conn.send_window -= self.message.len() as i64;
        conn.open.push((id, 0));
        u64::from(id)
    }

    fn decode(
        &self,
        conn: &mut H2Conn,
        buf: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<Option<Reply>, String> {
        loop {
            if buf.len() < 9 {
                return Ok(None);
            }
            let len =
                (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                return Ok(None);
            }
            let (kind, flags) = (buf[3], buf[4]);
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            buf.advance(9);
            let payload = buf.split_to(len);
            if let Some(reply) = self.on_frame(conn, kind, flags, stream, &payload, out)? {
                return Ok(Some(reply));
            }
        }
    }
}

impl Grpc {
    /// Handles one frame; returns the reply when it ends a stream.
    fn on_frame(
        &self,
        conn: &mut H2Conn,
        kind: u8,
        flags: u8,
        stream: u32,
        payload: &[u8],
        out: &mut BytesMut,
    ) -> Result<Option<Reply>, String> {
        match kind {
            DATA => {
                let pad = if flags & PADDED != 0 {
                    1 + usize::from(*payload.first().ok_or("empty padded DATA")?)
                } else {
                    0
                };
                let data = payload
                    .len()
                    .checked_sub(pad)
                    .ok_or("DATA padding too long")?;
                if let Some(s) = conn.open.iter_mut().find(|s| s.0 == stream) {
                    s.1 += data;
                }
                conn.unreturned += payload.len();
                if conn.unreturned >= WINDOW_RETURN {
                    frame_header(out, 4, WINDOW_UPDATE, 0, 0);
                    out.put_u32(conn.unreturned as u32);
                    conn.unreturned = 0;
                }
                if flags & END_STREAM != 0 {
                    return self.end_stream(conn, stream, None).map(Some);
                }
            }
            HEADERS if flags & END_STREAM != 0 => {
                return self.end_stream(conn, stream, None).map(Some);
            }
            RST_STREAM if conn.open.iter().any(|s| s.0 == stream) => {
                return self.end_stream(conn, stream, Some("RST_STREAM")).map(Some);
            }
            SETTINGS if flags & ACK == 0 => {
                for setting in payload.chunks_exact(6) {
                    let id = u16::from_be_bytes([setting[0], setting[1]]);
                    let value =
                        u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]);
                    match id {
                        0x3 => conn.max_streams = value as usize,
                        0x4 => conn.stream_window = i64::from(value),
                        _ => {}
                    }
                }
                frame_header(out, 0, SETTINGS, ACK, 0);
            }
            PING if flags & ACK == 0 => {
                frame_header(out, payload.len(), PING, ACK, 0);
                out.put_slice(payload);
            }
            GOAWAY => {
                let code = payload
                    .get(4..8)
                    .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                return Err(format!("the server sent GOAWAY (error code {code})"));
            }
            WINDOW_UPDATE if stream == 0 => {
                let inc = payload
                    .get(..4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) & 0x7fff_ffff)
                    .ok_or("short WINDOW_UPDATE")?;
                conn.send_window += i64::from(inc);
            }
            // Response headers, CONTINUATION, acks, priority, stream windows.
            _ => {}
        }
        Ok(None)
    }

    fn end_stream(
        &self,
        conn: &mut H2Conn,
        stream: u32,
        error: Option<&str>,
    ) -> Result<Reply, String> {
        let pos = conn
            .open
            .iter()
            .position(|s| s.0 == stream)
            .ok_or_else(|| format!("stream {stream} ended but was never opened"))?;
        let (_, data) = conn.open.swap_remove(pos);
        let id = u64::from(stream);
        Ok(match error {
            Some(e) => Reply::err(id, e),
            None if data == self.message.len() => Reply::ok(id),
            None => Reply::err(id, "BadReply"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::check_every_split;

    fn grpc() -> Grpc {
        Grpc::new("h:1", "/p.S/M", b"\x0a\x01x")
    }

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        frame_header(&mut out, payload.len(), kind, flags, stream);
        out.put_slice(payload);
        out.to_vec()
    }

    #[test]
    fn encodes_a_unary_call_byte_for_byte() {
        let g = grpc();
        let mut conn = H2Conn::default();
        let mut out = BytesMut::new();
        assert_eq!(g.encode(&mut conn, &mut out), 1);
        let block: &[u8] =
            b"\x83\x86\x04\x06/p.S/M\x01\x03h:1\x0f\x10\x10application/grpc\x00\x02te\x08trailers";
        let mut want = vec![0, 0, block.len() as u8, 1, 4, 0, 0, 0, 1];
        want.extend_from_slice(block);
        want.extend_from_slice(&[0, 0, 8, 0, 1, 0, 0, 0, 1]);
        want.extend_from_slice(b"\x00\x00\x00\x00\x03\x0a\x01x");
        assert_eq!(&out[..], &want[..]);
        assert_eq!(g.encode(&mut conn, &mut out), 3);
        assert_eq!(conn.send_window, 65_535 - 16);
    }

    #[test]
    fn preface_announces_settings_and_window() {
        let mut out = BytesMut::new();
        grpc().start(&mut H2Conn::default(), &mut out);
        assert!(out.starts_with(PREFACE));
        let rest = &out[PREFACE.len()..];
        assert_eq!(&rest[..9], &[0, 0, 12, SETTINGS, 0, 0, 0, 0, 0]);
        assert_eq!(&rest[21..30], &[0, 0, 4, WINDOW_UPDATE, 0, 0, 0, 0, 0]);
    }

    /// What a server sends for streams 1 and 3 (reply headers, message,
    /// trailers), with SETTINGS, PING and a reset stream 5 in between.
    fn server_stream() -> Vec<u8> {
        let msg = b"\x00\x00\x00\x00\x03\x0a\x01x";
        let mut s = Vec::new();
        s.extend(frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]));
        s.extend(frame(
            HEADERS,
            END_HEADERS,
            1,
            b"\x88\x5f\x8b\x1d\x75\xd0\x62\x0d\x26\x3d\x4c\x4d\x65\x64",
        ));
        s.extend(frame(DATA, 0, 1, msg));
        s.extend(frame(PING, 0, 0, b"12345678"));
        s.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            1,
            b"\x40\x8b\x9a\xca\xc8\xb2\x12\x34\xda\x8f\x01\x30",
        ));
        s.extend(frame(HEADERS, END_HEADERS, 3, b"\x88"));
        s.extend(frame(
            DATA,
            PADDED,
            3,
            b"\x02\x00\x00\x00\x00\x03\x0a\x01x\x00\x00",
        ));
        s.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, b"\xbe"));
        s.extend(frame(RST_STREAM, 0, 5, &[0, 0, 0, 2]));
        s
    }

    fn primed() -> H2Conn {
        let g = grpc();
        let mut conn = H2Conn::default();
        let mut out = BytesMut::new();
        for _ in 0..3 {
            g.encode(&mut conn, &mut out);
        }
        conn
    }

    #[test]
    fn decodes_replies_split_anywhere_and_batched() {
        let expected = [Reply::ok(1), Reply::ok(3), Reply::err(5, "RST_STREAM")];
        check_every_split(&grpc(), primed, &server_stream(), &expected);
    }

    #[test]
    fn answers_settings_and_ping() {
        let g = grpc();
        let mut conn = primed();
        let mut buf = BytesMut::from(&server_stream()[..]);
        let mut out = BytesMut::new();
        while g.decode(&mut conn, &mut buf, &mut out).unwrap().is_some() {}
        let mut want = frame(SETTINGS, ACK, 0, b"");
        want.extend(frame(PING, ACK, 0, b"12345678"));
        assert_eq!(&out[..], &want[..]);
        assert_eq!(conn.max_streams, 100);
        assert!(conn.open.is_empty());
    }

    #[test]
    fn a_short_message_is_an_error_and_goaway_breaks_the_connection() {
        let g = grpc();
        let mut conn = primed();
        let mut buf = BytesMut::from(&frame(DATA, END_STREAM, 1, b"\x00\x00\x00\x00\x00")[..]);
        let r = g.decode(&mut conn, &mut buf, &mut BytesMut::new()).unwrap();
        assert_eq!(r, Some(Reply::err(1, "BadReply")));
        let mut buf = BytesMut::from(&frame(GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 2])[..]);
        assert!(g.decode(&mut conn, &mut buf, &mut BytesMut::new()).is_err());
    }

    #[test]
    fn respects_the_servers_stream_limit_and_window() {
        let g = grpc();
        let mut conn = H2Conn {
            max_streams: 1,
            ..H2Conn::default()
        };
        assert!(g.can_send(&conn));
        g.encode(&mut conn, &mut BytesMut::new());
        assert!(!g.can_send(&conn));
        let mut conn = H2Conn {
            send_window: 7,
            ..H2Conn::default()
        };
        assert!(!g.can_send(&conn));
        let mut buf = BytesMut::from(&frame(WINDOW_UPDATE, 0, 0, &[0, 0, 0, 100])[..]);
        assert_eq!(
            g.decode(&mut conn, &mut buf, &mut BytesMut::new()),
            Ok(None)
        );
        assert!(g.can_send(&conn));
    }
}
