//! Incremental frame decoder over a `BytesMut` read buffer: splits each
//! complete frame off the front (its body parsed by `body`), and reads
//! past the bodies of oversized frames without buffering them.

use bytes::{Buf, Bytes, BytesMut};

use super::body::parse_body;
use super::decoded::{Frame, Oversized};
use super::frame::FrameKind;
use super::stream::StreamKind;
use super::{DEFAULT_MAX_FRAME, HEADER_LEN, MAGIC, VERSION_NO_METADATA, VERSION_STREAM_METADATA};
use crate::protocol::{ProtocolError, ReadState};

/// Splits complete frames off the front of a read buffer.
#[derive(Debug, Clone)]
pub struct Decoder {
    max_frame: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder {
    /// A decoder that rejects frame bodies larger than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Decoder {
        Decoder { max_frame }
    }

    /// The largest frame body this decoder accepts, in bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Decodes one frame from the front of `buf`.
    ///
    /// * `Ok(Some(frame))`: a frame was removed from `buf`; call again, more
    ///   may follow (sticky packets).
    /// * `Ok(None)`: `buf` holds only part of a frame; nothing was consumed
    ///   (and nothing reserved: the announced length is only a claim).
    /// * `Err(_)`: the stream is invalid; the connection must be closed.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        match self.split_frame(buf)? {
            Some(Split::Body {
                kind,
                version,
                body,
            }) => parse_body(kind, version, body).map(Some),
            Some(Split::Oversized(o)) => Ok(Some(Frame::Oversized(o))),
            None => Ok(None),
        }
    }

    /// Splits the next complete frame off the front of `buf`, its body
    /// unparsed (see [`decode`](Self::decode) for the outcomes), so a side
    /// that expects one kind of frame parses it without building a
    /// [`Frame`].
    pub(crate) fn split_frame(&self, buf: &mut BytesMut) -> Result<Option<Split>, ProtocolError> {
        let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
            return partial_header(buf);
        };
        let head = *head;
        if head[..2] != MAGIC {
            return Err(ProtocolError::BadMagic([head[0], head[1]]));
        }
        let (version, kind) = (head[2], head[3]);
        if !(VERSION_NO_METADATA..=VERSION_STREAM_METADATA).contains(&version) {
            return Err(ProtocolError::UnsupportedVersion(version));
        }
        let body_len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if body_len > self.max_frame {
            return Ok(self.oversized(kind, body_len, buf)?.map(Split::Oversized));
        }
        let frame_len = HEADER_LEN + body_len;
        if buf.len() < frame_len {
            // Nothing is reserved for the announced body: the buffer grows
            // as its bytes arrive, so a header alone costs no memory.
            return Ok(None);
        }
        Ok(Some(Split::Body {
            kind,
            version,
            body: take_frame(buf, frame_len, HEADER_LEN),
        }))
    }
}

/// Splits the whole frame of `frame_len` bytes off `buf` and drops its
/// first `skip` (the header, and what else its reader has read from the
/// buffer in place) from the shared slice: one split and a pointer bump,
/// where advancing the read buffer would move its offset bookkeeping
/// twice.
#[inline]
pub(super) fn take_frame(buf: &mut BytesMut, frame_len: usize, skip: usize) -> Bytes {
    let mut frame = buf.split_to(frame_len).freeze();
    frame.advance(skip);
    frame
}

/// Less than a header has arrived: check the magic on what did, so
/// garbage fails at once, else wait for more.
#[cold]
fn partial_header(buf: &BytesMut) -> Result<Option<Split>, ProtocolError> {
    match buf.len() {
        0 => Ok(None),
        _ if buf[0] != MAGIC[0] => Err(ProtocolError::BadMagic([
            buf[0],
            buf.get(1).copied().unwrap_or(0),
        ])),
        2.. if buf[1] != MAGIC[1] => Err(ProtocolError::BadMagic([buf[0], buf[1]])),
        _ => Ok(None),
    }
}

/// A frame split off a read buffer, its body not yet parsed.
pub(crate) enum Split {
    /// A frame within the limit: its kind and version bytes, and its body.
    Body { kind: u8, version: u8, body: Bytes },
    /// A frame over the limit whose call fails alone (its body is being
    /// skipped).
    Oversized(Oversized),
}

impl Decoder {
    /// A frame over the limit: a request or response fails alone (its id is
    /// read, its body skipped as it arrives); any other kind is an error.
    fn oversized(
        &self,
        kind: u8,
        len: usize,
        buf: &mut BytesMut,
    ) -> Result<Option<Oversized>, ProtocolError> {
        let kind = match kind {
            k if k == FrameKind::Request as u8 => FrameKind::Request,
            k if k == FrameKind::Response as u8 => FrameKind::Response,
            k if k == FrameKind::StreamOpen as u8 => FrameKind::StreamOpen,
            k if k == FrameKind::StreamMessage as u8 => FrameKind::StreamMessage,
            k if k == FrameKind::Cancel as u8
                || k == FrameKind::Auth as u8
                || StreamKind::from_u8(k).is_some() =>
            {
                return Err(ProtocolError::FrameTooLarge {
                    len,
                    max: self.max_frame,
                })
            }
            other => return Err(ProtocolError::UnknownKind(other)),
        };
        // Every request, response, stream open and message body starts
        // with its u64 id.
        if buf.len() < HEADER_LEN + 8 {
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        let id = buf.get_u64();
        let mut unread = len - 8;
        skip_body(buf, &mut unread);
        Ok(Some(Oversized {
            kind,
            id,
            len,
            max: self.max_frame,
            unread,
        }))
    }
}

/// Drops up to `unread` bytes of an oversized frame's body from the front of
/// `buf`, counting them off. Returns true once the whole body is gone (the
/// next byte starts a new frame); until then `buf` is left empty.
pub fn skip_body(buf: &mut BytesMut, unread: &mut usize) -> bool {
    let n = (*unread).min(buf.len());
    buf.advance(n);
    *unread -= n;
    *unread == 0
}

/// The next complete frame in a connection's `input`, its body not yet
/// parsed (see [`Decoder::split_frame`]), first dropping what an oversized
/// frame's body still owes (`state.skip`: the decoder reports such a frame
/// once, as [`Split::Oversized`]; its body never occupies memory).
pub(crate) fn read_split(
    decoder: &Decoder,
    input: &mut BytesMut,
    state: &mut ReadState,
) -> Result<Option<Split>, ProtocolError> {
    if state.skip > 0 && !skip_body(input, &mut state.skip) {
        return Ok(None);
    }
    let split = decoder.split_frame(input)?;
    if let Some(Split::Oversized(o)) = &split {
        state.skip = o.unread;
    }
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::metadata::Metadata;
    use crate::call::status::Code;
    use crate::call::trace::TraceId;
    use crate::protocol::mprpc::{
        encode_auth, encode_cancel, encode_request, encode_request_meta, encode_response,
        encode_response_meta, RequestHead, RequestMeta,
    };
    use crate::protocol::mprpc::{Request, Response, REQUEST_FIXED_LEN, RESPONSE_FIXED_LEN};

    fn sample_frames() -> (BytesMut, Vec<Frame>) {
        let mut buf = BytesMut::new();
        let head = RequestHead {
            id: 7,
            timeout_ms: 1500,
            service: "UserServiceRpc",
            method: "Login",
        };
        encode_request(head, b"hello", &mut buf);
        encode_response(7, Code::Ok, "", b"world", &mut buf);
        encode_response(8, Code::Application, "no such user", b"", &mut buf);
        encode_cancel(9, &mut buf);
        encode_auth(b"s3cret", &mut buf);
        encode_request(
            RequestHead {
                id: u64::MAX,
                timeout_ms: 0,
                service: "S",
                method: "",
            },
            b"",
            &mut buf,
        );
        let caller = Metadata::from_pairs([("caller", "web"), ("k", "")]).unwrap();
        let meta = RequestMeta {
            metadata: &caller,
            trace: Some(TraceId(0xab)),
            reply_metadata: true,
        };
        encode_request_meta(head, meta, b"hi", &mut buf);
        let reply = Metadata::from_pairs([("served-by", "p1")]).unwrap();
        encode_response_meta(7, Code::Ok, "", b"ok", true, &reply, &mut buf);
        encode_response_meta(8, Code::Ok, "", b"", true, &Metadata::new(), &mut buf);
        let mut sent = caller.clone();
        sent.insert("trace-id", "00000000000000ab").unwrap();
        let mut with_meta = Request::new(
            7,
            1500,
            "UserServiceRpc",
            "Login",
            Bytes::from_static(b"hi"),
        );
        with_meta.metadata = sent;
        with_meta.replies_with_metadata = true;
        let frames = vec![
            Frame::Request(Request::new(
                7,
                1500,
                "UserServiceRpc",
                "Login",
                Bytes::from_static(b"hello"),
            )),
            Frame::Response(Response {
                id: 7,
                code: Code::Ok,
                error: Bytes::new(),
                payload: Bytes::from_static(b"world"),
                metadata: Metadata::new(),
            }),
            Frame::Response(Response {
                id: 8,
                code: Code::Application,
                error: Bytes::from_static(b"no such user"),
                payload: Bytes::new(),
                metadata: Metadata::new(),
            }),
            Frame::Cancel { id: 9 },
            Frame::Auth {
                token: Bytes::from_static(b"s3cret"),
            },
            Frame::Request(Request::new(u64::MAX, 0, "S", "", Bytes::new())),
            Frame::Request(with_meta),
            Frame::Response(Response {
                id: 7,
                code: Code::Ok,
                error: Bytes::new(),
                payload: Bytes::from_static(b"ok"),
                metadata: reply,
            }),
            Frame::Response(Response {
                id: 8,
                code: Code::Ok,
                error: Bytes::new(),
                payload: Bytes::new(),
                metadata: Metadata::new(),
            }),
        ];
        (buf, frames)
    }

    fn decode_all(d: &Decoder, buf: &mut BytesMut) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = d.decode(buf).expect("valid stream") {
            out.push(f);
        }
        out
    }

    #[test]
    fn many_frames_in_one_buffer_all_decode() {
        let (mut buf, expected) = sample_frames();
        assert_eq!(decode_all(&Decoder::default(), &mut buf), expected);
        assert!(buf.is_empty());
    }

    #[test]
    fn split_at_every_byte_boundary_decodes_the_same() {
        let (whole, expected) = sample_frames();
        let d = Decoder::default();
        for split in 0..=whole.len() {
            let mut buf = BytesMut::from(&whole[..split]);
            let mut got = decode_all(&d, &mut buf);
            buf.extend_from_slice(&whole[split..]);
            got.extend(decode_all(&d, &mut buf));
            assert_eq!(got, expected, "split at {split}");
        }
    }

    #[test]
    fn byte_at_a_time_decodes_the_same() {
        let (whole, expected) = sample_frames();
        let d = Decoder::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in whole.iter() {
            buf.extend_from_slice(&[*b]);
            got.extend(decode_all(&d, &mut buf));
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn garbage_is_rejected_at_the_first_byte() {
        let d = Decoder::default();
        let mut buf = BytesMut::from(&b"G"[..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(ProtocolError::BadMagic(_))
        ));
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(ProtocolError::BadMagic(_))
        ));
        let mut buf = BytesMut::from(&b"MX"[..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(ProtocolError::BadMagic(_))
        ));
    }

    #[test]
    fn oversized_length_is_never_buffered() {
        let d = Decoder::new(1024);
        let mut buf = BytesMut::from(&b"MP\x01\x01\xff\xff\xff\xff"[..]);
        assert_eq!(d.decode(&mut buf), Ok(None), "waits for the id only");
        assert!(buf.capacity() < 4096, "must not reserve the announced size");
        let mut buf = BytesMut::from(&b"MP\x01\x03\x00\x00\x10\x00"[..]);
        assert_eq!(
            d.decode(&mut buf),
            Err(ProtocolError::FrameTooLarge {
                len: 4096,
                max: 1024
            }),
            "an oversized cancel is a protocol error"
        );
    }

    #[test]
    fn oversized_request_fails_alone_and_the_stream_goes_on() {
        let d = Decoder::new(64);
        let mut whole = BytesMut::new();
        let big = RequestHead {
            id: 41,
            timeout_ms: 0,
            service: "S",
            method: "M",
        };
        encode_request(big, &[9u8; 500], &mut whole);
        encode_response(42, Code::Ok, "", &[8u8; 300], &mut whole);
        encode_request(RequestHead { id: 43, ..big }, b"small", &mut whole);
        // Split at every byte: the small frame after the two big ones must
        // decode the same, and nothing big is ever buffered.
        for split in 0..=whole.len() {
            let mut got = Vec::new();
            let mut unread = 0;
            let mut buf = BytesMut::new();
            for part in [&whole[..split], &whole[split..]] {
                buf.extend_from_slice(part);
                loop {
                    if unread > 0 && !skip_body(&mut buf, &mut unread) {
                        break;
                    }
                    match d.decode(&mut buf).expect("valid stream") {
                        Some(Frame::Oversized(o)) => {
                            unread = o.unread;
                            got.push((o.kind, o.id, o.len));
                        }
                        Some(Frame::Request(r)) => got.push((FrameKind::Request, r.id, 0)),
                        Some(other) => panic!("unexpected {other:?}"),
                        None => break,
                    }
                }
            }
            assert_eq!(
                got,
                vec![
                    (FrameKind::Request, 41, REQUEST_FIXED_LEN + 2 + 500),
                    (FrameKind::Response, 42, RESPONSE_FIXED_LEN + 300),
                    (FrameKind::Request, 43, 0),
                ],
                "split at {split}"
            );
            assert!(buf.is_empty() && unread == 0);
        }
    }

    #[test]
    fn bad_version_kind_and_short_bodies_are_rejected_for_their_reason() {
        let d = Decoder::default();
        for (bytes, expected) in [
            (
                &b"MP\x05\x01\x00\x00\x00\x00"[..],
                ProtocolError::UnsupportedVersion(5),
            ),
            (
                &b"MP\x03\x01\x00\x00\x00\x00"[..],
                ProtocolError::Malformed("protocol versions 3 and 4 are for stream frames only"),
            ),
            (
                &b"MP\x04\x02\x00\x00\x00\x00"[..],
                ProtocolError::Malformed("protocol versions 3 and 4 are for stream frames only"),
            ),
            (
                &b"MP\x02\x01\x00\x00\x00\x0e\0\0\0\0\0\0\0\x01\0\0\0\0\0\0"[..],
                ProtocolError::Malformed("request body shorter than its fixed part"),
            ),
            (
                &b"MP\x02\x01\x00\x00\x00\x13\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\0\0\x09\x01"[..],
                ProtocolError::Malformed("metadata overruns the body"),
            ),
            (
                &b"MP\x02\x02\x00\x00\x00\x11\0\0\0\0\0\0\0\x01\0\x00\x00\0\0\0\x02\x01\x00"[..],
                ProtocolError::Malformed("metadata entry overruns its block"),
            ),
            (
                &b"MP\x01\x0b\x00\x00\x00\x00"[..],
                ProtocolError::UnknownKind(11),
            ),
            (
                &b"MP\x01\x01\x00\x00\x00\x02ab"[..],
                ProtocolError::Malformed("request body shorter than its fixed part"),
            ),
            (
                &b"MP\x01\x02\x00\x00\x00\x01a"[..],
                ProtocolError::Malformed("response body shorter than its fixed part"),
            ),
            (
                &b"MP\x01\x03\x00\x00\x00\x01a"[..],
                ProtocolError::Malformed("cancel body is not 8 bytes"),
            ),
            (
                &[&b"MP\x01\x04\x00\x00\x04\x01"[..], &[b't'; 1025]].concat()[..],
                ProtocolError::Malformed("auth token longer than 1024 bytes"),
            ),
            (
                &b"MP\x01\x01\x00\x00\x00\x0e\0\0\0\0\0\0\0\x01\0\0\0\0\x05\x05"[..],
                ProtocolError::Malformed("service/method names overrun the body"),
            ),
            (
                &b"MP\x01\x01\x00\x00\x00\x0f\0\0\0\0\0\0\0\x01\0\0\0\0\x01\x00\xff"[..],
                ProtocolError::Malformed("service/method name is not UTF-8"),
            ),
            (
                &b"MP\x01\x02\x00\x00\x00\x0b\0\0\0\0\0\0\0\x01\0\x00\x09"[..],
                ProtocolError::Malformed("error text overruns the body"),
            ),
        ] {
            let mut buf = BytesMut::from(bytes);
            // The exact reason: a frame rejected for another one (an
            // earlier check misfiring) would pass an `is_err` check.
            assert_eq!(d.decode(&mut buf), Err(expected), "{bytes:?}");
        }
    }

    #[test]
    fn version_1_frames_as_older_builds_wrote_them_still_decode() {
        // A request and a reply, byte for byte as a build before metadata
        // (protocol version 1) sent them.
        let old: &[u8] = b"MP\x01\x01\x00\x00\x00\x14\
            \0\0\0\0\0\0\0\x05\0\0\x03\xe8\x01\x03SGetxy\
            MP\x01\x02\x00\x00\x00\x0d\0\0\0\0\0\0\0\x05\0\0\0ok";
        let mut buf = BytesMut::from(old);
        let frames = decode_all(&Decoder::default(), &mut buf);
        let mut request = Request::new(5, 1000, "S", "Get", Bytes::from_static(b"xy"));
        assert_eq!(frames[0], Frame::Request(request.clone()));
        let Frame::Response(reply) = &frames[1] else {
            panic!("{frames:?}")
        };
        assert_eq!((reply.id, &reply.payload[..]), (5, &b"ok"[..]));
        assert!(reply.metadata.is_empty());
        // What we write without metadata is still exactly version 1.
        let mut ours = BytesMut::new();
        let head = RequestHead {
            id: 5,
            timeout_ms: 1000,
            service: "S",
            method: "Get",
        };
        encode_request(head, b"xy", &mut ours);
        encode_response(5, Code::Ok, "", b"ok", &mut ours);
        assert_eq!(&ours[..], old);
        request.replies_with_metadata = false;
        assert!(request.metadata.is_empty());
    }

    #[test]
    fn payload_is_a_slice_of_the_read_buffer() {
        let (mut buf, _) = sample_frames();
        let base = buf.as_ptr() as usize;
        let end = base + buf.len();
        let frame = Decoder::default().decode(&mut buf).unwrap().unwrap();
        let Frame::Request(req) = frame else {
            panic!("expected a request")
        };
        let p = req.payload.as_ptr() as usize;
        assert!(p >= base && p < end, "payload was copied");
    }
}
