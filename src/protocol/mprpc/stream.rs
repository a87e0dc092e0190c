//! Stream frames (kinds 5 to 10, header versions 3 and 4): their types,
//! encoders and parsers. The layout is documented in the module above
//! ("Streams").

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::frame::{check_names, RequestHead, RequestMeta, META_LEN_LEN};
use super::{HEADER_LEN, MAGIC, VERSION_STREAMS, VERSION_STREAM_METADATA};
use crate::call::metadata::Metadata;
use crate::call::status::{Code, Status};
use crate::protocol::ProtocolError;

/// The `kind` byte of a stream frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamKind {
    /// A client opens a stream (a call whose request or reply is a stream).
    Open = 5,
    /// One message of a stream, either way.
    Message = 6,
    /// Its sender sends nothing more on the stream: a client half-closes
    /// (status `Ok`), a server ends the stream with its final status.
    End = 7,
    /// Either side ends the stream at once, both ways, with a status.
    Reset = 8,
    /// A receiver grants its sender more messages (flow control).
    Credit = 9,
    /// A server's reply metadata sent before its first message (version
    /// 4 only, to a client that opened the stream in version 4).
    Headers = 10,
}

impl StreamKind {
    /// The kind a header byte names, if it is a stream kind.
    pub fn from_u8(kind: u8) -> Option<StreamKind> {
        Some(match kind {
            5 => StreamKind::Open,
            6 => StreamKind::Message,
            7 => StreamKind::End,
            8 => StreamKind::Reset,
            9 => StreamKind::Credit,
            10 => StreamKind::Headers,
            _ => return None,
        })
    }
}

/// Which way a stream's messages go (the `.proto`'s `stream` keywords).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum StreamShape {
    /// `rpc M(Req) returns (stream Resp)`: one request, many replies.
    Server = 1,
    /// `rpc M(stream Req) returns (Resp)`: many requests, one reply.
    Client = 2,
    /// `rpc M(stream Req) returns (stream Resp)`: many each way.
    Bidi = 3,
}

impl StreamShape {
    /// The shape a wire byte names.
    pub fn from_u8(shape: u8) -> Option<StreamShape> {
        Some(match shape {
            1 => StreamShape::Server,
            2 => StreamShape::Client,
            3 => StreamShape::Bidi,
            _ => return None,
        })
    }

    /// Whether the client sends a stream of messages (after the open).
    pub fn client_streams(self) -> bool {
        self != StreamShape::Server
    }
}

/// The fixed part of an open body: id, timeout, shape, window, two name
/// lengths, meta_len.
pub const OPEN_FIXED_LEN: usize = 8 + 4 + 1 + 4 + 1 + 1 + META_LEN_LEN;
/// The fixed part of an end or reset body: id, status, error length.
pub const END_FIXED_LEN: usize = 8 + 1 + 2;
/// The fixed part of a version 4 end body: an end's, then meta_len.
pub const END_META_FIXED_LEN: usize = END_FIXED_LEN + META_LEN_LEN;

/// A decoded stream open. Names, payload and metadata are slices of the
/// read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOpen {
    /// The stream's id: from the same space as the connection's call ids.
    pub id: u64,
    /// The caller's budget for the whole stream, in milliseconds (0: none).
    pub timeout_ms: u32,
    /// Which way its messages go.
    pub shape: StreamShape,
    /// Messages the opener takes before it grants more.
    pub window: u32,
    pub(crate) names: Bytes,
    pub(crate) service_len: usize,
    /// A server stream's request message; empty for the other shapes.
    pub payload: Bytes,
    /// The caller's metadata (trace id included).
    pub metadata: Metadata,
    /// It came as a version 4 frame: its caller reads reply metadata, so
    /// the server may send it headers (kind 10) and an end with metadata
    /// (a version 3 opener gets neither: it could not read them).
    pub replies_with_metadata: bool,
}

impl StreamOpen {
    /// The service's wire name.
    pub fn service(&self) -> &str {
        std::str::from_utf8(&self.names[..self.service_len]).unwrap_or("")
    }

    /// The method's wire name.
    pub fn method(&self) -> &str {
        std::str::from_utf8(&self.names[self.service_len..]).unwrap_or("")
    }
}

/// A decoded stream frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFrame {
    /// A stream opens.
    Open(StreamOpen),
    /// One message of stream `id`.
    Message {
        /// The stream.
        id: u64,
        /// The encoded protobuf message, a slice of the read buffer.
        payload: Bytes,
    },
    /// The frame's sender sends nothing more on stream `id`.
    End {
        /// The stream.
        id: u64,
        /// `Ok`, or why the stream failed (from a server).
        status: Code,
        /// The failure's text (UTF-8); empty on `Ok`.
        error: Bytes,
        /// A server's trailing metadata (version 4; empty in version 3).
        metadata: Metadata,
    },
    /// Stream `id` ends both ways at once.
    Reset {
        /// The stream.
        id: u64,
        /// Why.
        status: Code,
        /// The reason's text (UTF-8).
        error: Bytes,
    },
    /// The frame's sender takes `credit` more messages of stream `id`.
    Credit {
        /// The stream.
        id: u64,
        /// Messages granted, on top of what is left.
        credit: u32,
    },
    /// A server's reply metadata for stream `id`, sent before its first
    /// message (version 4).
    Headers {
        /// The stream.
        id: u64,
        /// The metadata, a slice of the read buffer.
        metadata: Metadata,
    },
}

impl StreamFrame {
    /// The stream the frame belongs to.
    pub fn id(&self) -> u64 {
        match self {
            StreamFrame::Open(open) => open.id,
            StreamFrame::Message { id, .. }
            | StreamFrame::End { id, .. }
            | StreamFrame::Reset { id, .. }
            | StreamFrame::Credit { id, .. }
            | StreamFrame::Headers { id, .. } => *id,
        }
    }

    /// An end or reset's status (`None` for other frames).
    pub fn status(&self) -> Option<Status> {
        match self {
            StreamFrame::End { status, error, .. } | StreamFrame::Reset { status, error, .. } => {
                let text = std::str::from_utf8(error).unwrap_or("<non-utf8 error text>");
                Some(Status::new(*status, text))
            }
            _ => None,
        }
    }
}

fn put_header(dst: &mut BytesMut, kind: StreamKind, body_len: usize) {
    put_header_v(dst, VERSION_STREAMS, kind, body_len)
}

fn put_header_v(dst: &mut BytesMut, version: u8, kind: StreamKind, body_len: usize) {
    dst.reserve(HEADER_LEN + body_len);
    dst.put_slice(&MAGIC);
    dst.put_u8(version);
    dst.put_u8(kind as u8);
    dst.put_u32(body_len as u32);
}

/// Appends a stream open: the routing of `head` (its id is the stream's,
/// its timeout the whole stream's), the `shape`, the opener's receive
/// `window`, the request message (server streams; empty otherwise) and
/// `meta`'s metadata and trace id. With `meta.reply_metadata` the open is
/// written as version 4 (same layout): the caller reads the server's
/// headers and trailers; else as version 3.
///
/// # Panics
///
/// If a name is too long (callers [`check_names`] first).
pub fn encode_stream_open(
    head: RequestHead<'_>,
    shape: StreamShape,
    window: u32,
    meta: RequestMeta<'_>,
    payload: &[u8],
    dst: &mut BytesMut,
) {
    if let Err(e) = check_names(head.service, head.method) {
        panic!("encode_stream_open: {e} (callers must check_names first)");
    }
    let (service, method) = (head.service.as_bytes(), head.method.as_bytes());
    let meta_len = meta.block_len();
    let body_len = OPEN_FIXED_LEN + service.len() + method.len() + payload.len() + meta_len;
    let version = match meta.reply_metadata {
        true => VERSION_STREAM_METADATA,
        false => VERSION_STREAMS,
    };
    put_header_v(dst, version, StreamKind::Open, body_len);
    dst.put_u64(head.id);
    dst.put_u32(head.timeout_ms);
    dst.put_u8(shape as u8);
    dst.put_u32(window);
    dst.put_u8(service.len() as u8);
    dst.put_u8(method.len() as u8);
    dst.put_u32(meta_len as u32);
    dst.put_slice(service);
    dst.put_slice(method);
    dst.put_slice(payload);
    meta.put_block(dst);
}

/// Appends one message of stream `id`.
pub fn encode_stream_message(id: u64, payload: &[u8], dst: &mut BytesMut) {
    put_stream_message_head(id, payload.len(), dst);
    dst.put_slice(payload);
}

/// The bytes of a message frame besides its payload: the header and the
/// stream id.
pub const MESSAGE_HEAD_LEN: usize = HEADER_LEN + 8;

/// Appends the head of a message of stream `id` whose payload, exactly
/// `payload_len` bytes, the caller appends next; room for both is
/// reserved at once and the head goes in as one write (a stream's sender
/// runs this once per message).
pub(crate) fn put_stream_message_head(id: u64, payload_len: usize, dst: &mut BytesMut) {
    let mut head = [0u8; MESSAGE_HEAD_LEN];
    head[..2].copy_from_slice(&MAGIC);
    head[2] = VERSION_STREAMS;
    head[3] = StreamKind::Message as u8;
    head[4..8].copy_from_slice(&((8 + payload_len) as u32).to_be_bytes());
    head[8..].copy_from_slice(&id.to_be_bytes());
    dst.reserve(MESSAGE_HEAD_LEN + payload_len);
    dst.put_slice(&head);
}

/// Appends an end of stream `id`: `Ok` from a client that half-closes,
/// the final status from a server.
pub fn encode_stream_end(id: u64, status: Code, error: &str, dst: &mut BytesMut) {
    put_status(StreamKind::End, id, status, error, dst)
}

/// Appends a server's end of stream `id` with its trailing `metadata`:
/// version 4 when there is some (only for a caller that opened in
/// version 4), else exactly [`encode_stream_end`]'s version 3 frame.
pub fn encode_stream_end_meta(
    id: u64,
    status: Code,
    error: &str,
    metadata: &Metadata,
    dst: &mut BytesMut,
) {
    if metadata.is_empty() {
        return encode_stream_end(id, status, error, dst);
    }
    let error = clip(error);
    let block = metadata.as_wire();
    let body_len = END_META_FIXED_LEN + error.len() + block.len();
    put_header_v(dst, VERSION_STREAM_METADATA, StreamKind::End, body_len);
    dst.put_u64(id);
    dst.put_u8(status as u8);
    dst.put_u16(error.len() as u16);
    dst.put_u32(block.len() as u32);
    dst.put_slice(error);
    dst.put_slice(block);
}

/// Appends a server's headers for stream `id`: its reply `metadata` set
/// before its first message (version 4, for a caller that opened in
/// version 4).
pub fn encode_stream_headers(id: u64, metadata: &Metadata, dst: &mut BytesMut) {
    let block = metadata.as_wire();
    put_header_v(
        dst,
        VERSION_STREAM_METADATA,
        StreamKind::Headers,
        8 + block.len(),
    );
    dst.put_u64(id);
    dst.put_slice(block);
}

/// Appends a reset of stream `id` with `status` and its text.
pub fn encode_stream_reset(id: u64, status: Code, error: &str, dst: &mut BytesMut) {
    put_status(StreamKind::Reset, id, status, error, dst)
}

/// Appends a grant of `credit` more messages on stream `id`.
pub fn encode_stream_credit(id: u64, credit: u32, dst: &mut BytesMut) {
    put_header(dst, StreamKind::Credit, 12);
    dst.put_u64(id);
    dst.put_u32(credit);
}

/// A status text's bytes, cut to what its u16 length can say.
fn clip(error: &str) -> &[u8] {
    &error.as_bytes()[..error.len().min(u16::MAX as usize)]
}

fn put_status(kind: StreamKind, id: u64, status: Code, error: &str, dst: &mut BytesMut) {
    let error = clip(error);
    put_header(dst, kind, END_FIXED_LEN + error.len());
    dst.put_u64(id);
    dst.put_u8(status as u8);
    dst.put_u16(error.len() as u16);
    dst.put_slice(error);
}

/// Parses the body of a stream frame of `kind` sent with header `version`.
pub(super) fn parse(
    kind: StreamKind,
    version: u8,
    body: Bytes,
) -> Result<StreamFrame, ProtocolError> {
    check_version(kind, version)?;
    let v4 = version == VERSION_STREAM_METADATA;
    match kind {
        StreamKind::Open => parse_open(body, v4).map(StreamFrame::Open),
        StreamKind::Message => {
            let (id, payload) = split_id(body, "stream message shorter than its id")?;
            Ok(StreamFrame::Message { id, payload })
        }
        StreamKind::End if v4 => parse_end_meta(body),
        StreamKind::End | StreamKind::Reset => {
            let (id, status, error) = parse_status(body)?;
            Ok(match kind {
                StreamKind::End => StreamFrame::End {
                    id,
                    status,
                    error,
                    metadata: Metadata::new(),
                },
                _ => StreamFrame::Reset { id, status, error },
            })
        }
        StreamKind::Headers => {
            let (id, block) = split_id(body, "stream headers shorter than its id")?;
            let metadata = Metadata::from_wire(block).map_err(ProtocolError::Malformed)?;
            Ok(StreamFrame::Headers { id, metadata })
        }
        StreamKind::Credit => {
            if body.len() != 12 {
                return Err(ProtocolError::Malformed(
                    "stream credit body is not 12 bytes",
                ));
            }
            let mut body = body;
            Ok(StreamFrame::Credit {
                id: body.get_u64(),
                credit: body.get_u32(),
            })
        }
    }
}

/// Whether a stream frame of `kind` may come in header `version`: every
/// kind in version 3 but headers; an open, an end or headers in version 4.
fn check_version(kind: StreamKind, version: u8) -> Result<(), ProtocolError> {
    match (version, kind) {
        (VERSION_STREAMS, StreamKind::Headers) => Err(ProtocolError::Malformed(
            "a stream headers frame needs protocol version 4",
        )),
        (VERSION_STREAMS, _) => Ok(()),
        (VERSION_STREAM_METADATA, StreamKind::Open | StreamKind::End | StreamKind::Headers) => {
            Ok(())
        }
        (VERSION_STREAM_METADATA, _) => Err(ProtocolError::Malformed(
            "only a stream open, end or headers frame has protocol version 4",
        )),
        _ => Err(ProtocolError::Malformed(
            "a stream frame needs protocol version 3",
        )),
    }
}

/// A message frame's body: its stream id and payload (what a client reads
/// most, parsed without the general `parse`).
pub(super) fn parse_message(body: Bytes) -> Result<(u64, Bytes), ProtocolError> {
    split_id(body, "stream message shorter than its id")
}

fn split_id(mut body: Bytes, short: &'static str) -> Result<(u64, Bytes), ProtocolError> {
    if body.len() < 8 {
        return Err(ProtocolError::Malformed(short));
    }
    Ok((body.get_u64(), body))
}

fn parse_status(mut body: Bytes) -> Result<(u64, Code, Bytes), ProtocolError> {
    if body.len() < END_FIXED_LEN {
        return Err(ProtocolError::Malformed(
            "stream end or reset shorter than its fixed part",
        ));
    }
    let id = body.get_u64();
    let status = Code::from_u8(body.get_u8());
    let error_len = body.get_u16() as usize;
    if body.len() != error_len {
        return Err(ProtocolError::Malformed(
            "stream end or reset text does not fill the body",
        ));
    }
    Ok((id, status, body))
}

/// A version 4 end: an end's fields, `meta_len`, the text, the block.
fn parse_end_meta(mut body: Bytes) -> Result<StreamFrame, ProtocolError> {
    if body.len() < END_META_FIXED_LEN {
        return Err(ProtocolError::Malformed(
            "stream end shorter than its fixed part",
        ));
    }
    let id = body.get_u64();
    let status = Code::from_u8(body.get_u8());
    let error_len = body.get_u16() as usize;
    let meta_len = body.get_u32() as usize;
    if body.len() != error_len + meta_len {
        return Err(ProtocolError::Malformed(
            "stream end text and metadata do not fill the body",
        ));
    }
    let error = body.split_to(error_len);
    let metadata = Metadata::from_wire(body).map_err(ProtocolError::Malformed)?;
    Ok(StreamFrame::End {
        id,
        status,
        error,
        metadata,
    })
}

fn parse_open(mut body: Bytes, v4: bool) -> Result<StreamOpen, ProtocolError> {
    if body.len() < OPEN_FIXED_LEN {
        return Err(ProtocolError::Malformed(
            "stream open shorter than its fixed part",
        ));
    }
    let id = body.get_u64();
    let timeout_ms = body.get_u32();
    let shape = StreamShape::from_u8(body.get_u8())
        .ok_or(ProtocolError::Malformed("unknown stream shape"))?;
    let window = body.get_u32();
    let service_len = body.get_u8() as usize;
    let method_len = body.get_u8() as usize;
    let meta_len = body.get_u32() as usize;
    if body.len() < service_len + method_len + meta_len {
        return Err(ProtocolError::Malformed(
            "stream open names and metadata overrun the body",
        ));
    }
    let names = body.split_to(service_len + method_len);
    if !crate::protocol::names::names_are_utf8(&names, service_len) {
        return Err(ProtocolError::Malformed("service/method name is not UTF-8"));
    }
    let metadata = match meta_len {
        0 => Metadata::new(),
        _ => {
            let block = body.split_off(body.len() - meta_len);
            Metadata::from_wire(block).map_err(ProtocolError::Malformed)?
        }
    };
    Ok(StreamOpen {
        id,
        timeout_ms,
        shape,
        window,
        names,
        service_len,
        payload: body,
        metadata,
        replies_with_metadata: v4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mprpc::{Decoder, Frame};

    #[test]
    fn a_message_head_then_its_payload_is_the_encoded_message() {
        let mut in_place = BytesMut::from(&b"before"[..]);
        put_stream_message_head(3, 2, &mut in_place);
        in_place.put_slice(b"\x08\x01");
        let mut whole = BytesMut::from(&b"before"[..]);
        encode_stream_message(3, b"\x08\x01", &mut whole);
        assert_eq!(in_place, whole);
        assert_eq!(
            &whole[6..],
            b"MP\x03\x06\0\0\0\x0a\0\0\0\0\0\0\0\x03\x08\x01"
        );
    }

    #[test]
    fn a_stream_frame_in_an_older_header_is_refused() {
        let mut wire = BytesMut::new();
        encode_stream_credit(1, 4, &mut wire);
        wire[2] = 2;
        assert_eq!(
            Decoder::default().decode(&mut wire),
            Err(ProtocolError::Malformed(
                "a stream frame needs protocol version 3"
            ))
        );
        let mut wire = BytesMut::new();
        encode_stream_credit(1, 4, &mut wire);
        let frame = Decoder::default().decode(&mut wire).unwrap();
        assert_eq!(
            frame,
            Some(Frame::Stream(StreamFrame::Credit { id: 1, credit: 4 }))
        );
    }
}
