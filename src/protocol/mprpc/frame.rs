//! Frame types and their encoders (the layout is documented in the
//! module above).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    HEADER_LEN, MAGIC, MAX_NAME_LEN, REQUEST_FIXED_LEN, RESPONSE_FIXED_LEN, VERSION,
    VERSION_NO_METADATA,
};
use crate::call::metadata::{entry_len, put_entry, Metadata};
use crate::call::status::Code;
use crate::call::trace::{TraceId, TRACE_ID_KEY};
use crate::protocol::ReplyStart;

/// The `kind` byte of the frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// A call from client to server.
    Request = 1,
    /// The server's reply to a request.
    Response = 2,
    /// A client giving up on a call it sent.
    Cancel = 3,
    /// A client presenting its auth token (once, first on a connection).
    Auth = 4,
    /// A stream opens (version 3; see [`StreamFrame`](super::StreamFrame)).
    StreamOpen = 5,
    /// A message of a stream (version 3).
    StreamMessage = 6,
}

/// A decoded request. Names and payload are slices of the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The call's id, unique per connection; the reply carries it back.
    pub id: u64,
    /// Caller's remaining budget in milliseconds; 0 means no deadline.
    pub timeout_ms: u32,
    /// Service and method names back to back, UTF-8 (checked on creation).
    /// One slice for both saves a reference count per request.
    pub(crate) names: Bytes,
    pub(crate) service_len: usize,
    /// The encoded protobuf request message.
    pub payload: Bytes,
    /// The request's metadata (empty for a version 1 frame).
    pub metadata: Metadata,
    /// It came as a version 2 frame: its caller reads reply metadata, so
    /// the reply is written as version 2 too (a version 1 caller gets
    /// version 1 replies it can read).
    pub replies_with_metadata: bool,
}

impl Request {
    /// A request for `service.method` (copies the names).
    pub fn new(id: u64, timeout_ms: u32, service: &str, method: &str, payload: Bytes) -> Request {
        let mut names = BytesMut::with_capacity(service.len() + method.len());
        names.put_slice(service.as_bytes());
        names.put_slice(method.as_bytes());
        Request {
            id,
            timeout_ms,
            names: names.freeze(),
            service_len: service.len(),
            payload,
            metadata: Metadata::new(),
            replies_with_metadata: false,
        }
    }

    /// Builds a request from name bytes; `None` if a name is not UTF-8.
    pub(crate) fn from_name_bytes(
        id: u64,
        timeout_ms: u32,
        names: Bytes,
        service_len: usize,
        payload: Bytes,
    ) -> Option<Request> {
        if !crate::protocol::names::names_are_utf8(&names, service_len) {
            return None;
        }
        Some(Request {
            id,
            timeout_ms,
            names,
            service_len,
            payload,
            metadata: Metadata::new(),
            replies_with_metadata: false,
        })
    }

    /// The service's wire name.
    pub fn service(&self) -> &str {
        // SAFETY: both constructors checked that the names are UTF-8, and
        // `names`/`service_len` are not writable outside this crate.
        unsafe { std::str::from_utf8_unchecked(self.service_bytes()) }
    }

    /// The method's wire name.
    pub fn method(&self) -> &str {
        // SAFETY: as in `service`.
        unsafe { std::str::from_utf8_unchecked(self.method_bytes()) }
    }

    pub(crate) fn service_bytes(&self) -> &[u8] {
        &self.names[..self.service_len]
    }

    pub(crate) fn method_bytes(&self) -> &[u8] {
        &self.names[self.service_len..]
    }

    /// The method's name bytes as a shared slice (no copy).
    pub(crate) fn method_shared(&self) -> Bytes {
        self.names.slice(self.service_len..)
    }
}

/// A decoded response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The id of the request this answers.
    pub id: u64,
    /// The call's outcome.
    pub code: Code,
    /// Why the call failed (UTF-8 text); empty on `Ok`.
    pub error: Bytes,
    /// The encoded protobuf response message on `Ok`; otherwise empty.
    pub payload: Bytes,
    /// The reply's metadata (empty for a version 1 frame).
    pub metadata: Metadata,
}

impl Response {
    /// The error text, or a placeholder if the peer sent invalid UTF-8.
    pub fn error_str(&self) -> &str {
        std::str::from_utf8(&self.error).unwrap_or("<non-utf8 error text>")
    }
}

/// The routing part of a request, for encoding.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The call's id, unique per connection.
    pub id: u64,
    /// The caller's remaining budget in milliseconds; 0 means no deadline.
    pub timeout_ms: u32,
    /// The service's wire name (at most [`MAX_NAME_LEN`] bytes).
    pub service: &'a str,
    /// The method's wire name (at most [`MAX_NAME_LEN`] bytes).
    pub method: &'a str,
}

/// What a request carries besides its routing and payload (version 2).
#[derive(Debug, Clone, Copy)]
pub struct RequestMeta<'a> {
    /// The caller's metadata.
    pub metadata: &'a Metadata,
    /// A trace id to send as `trace-id` (when `metadata` has none).
    pub trace: Option<TraceId>,
    /// The caller reads the reply's metadata: ask for a version 2 reply.
    pub reply_metadata: bool,
}

impl RequestMeta<'_> {
    /// The bytes it adds to a request body: 0 when there is nothing to
    /// carry (a version 1 frame), else `meta_len` and the metadata block.
    pub fn extra_len(&self) -> usize {
        if self.needed() {
            META_LEN_LEN + self.len()
        } else {
            0
        }
    }

    /// Whether a version 2 frame is needed (else version 1, which costs
    /// nothing extra and any server reads).
    fn needed(&self) -> bool {
        !self.metadata.is_empty() || self.trace.is_some() || self.reply_metadata
    }

    /// The metadata block's length.
    fn len(&self) -> usize {
        self.metadata.as_wire().len()
            + self
                .trace
                .map_or(0, |_| entry_len(TRACE_ID_KEY, "0123456789abcdef"))
    }

    /// The metadata block's length (a stream open always carries one).
    pub(super) fn block_len(&self) -> usize {
        self.len()
    }

    /// Appends the metadata block.
    pub(super) fn put_block(&self, dst: &mut BytesMut) {
        self.put(dst)
    }

    fn put(&self, dst: &mut BytesMut) {
        dst.put_slice(self.metadata.as_wire());
        if let Some(trace) = self.trace {
            let hex = trace.to_hex();
            let hex = std::str::from_utf8(&hex).expect("hex digits are ASCII");
            put_entry(dst, TRACE_ID_KEY, hex);
        }
    }
}

fn put_header(dst: &mut BytesMut, kind: FrameKind, body_len: usize) {
    put_header_version(dst, VERSION_NO_METADATA, kind, body_len)
}

fn put_header_version(dst: &mut BytesMut, version: u8, kind: FrameKind, body_len: usize) {
    dst.put_slice(&MAGIC);
    dst.put_u8(version);
    dst.put_u8(kind as u8);
    dst.put_u32(body_len as u32);
}

/// A service or method name longer than [`MAX_NAME_LEN`] bytes: such a call
/// cannot be encoded (names are never cut, which could split a character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameTooLong {
    /// The offending name's length in bytes.
    pub len: usize,
}

impl fmt::Display for NameTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a name of {} bytes exceeds the limit of {MAX_NAME_LEN} bytes for service and method names",
            self.len
        )
    }
}

impl std::error::Error for NameTooLong {}

/// Checks that `service` and `method` fit a request frame; call before
/// [`encode_request`].
pub fn check_names(service: &str, method: &str) -> Result<(), NameTooLong> {
    match service.len().max(method.len()) {
        len if len > MAX_NAME_LEN => Err(NameTooLong { len }),
        _ => Ok(()),
    }
}

/// Appends a request frame to `dst`.
///
/// # Panics
///
/// If a name is longer than [`MAX_NAME_LEN`] bytes: the caller checks with
/// [`check_names`] first (the channel rejects such calls before encoding),
/// since a cut name would address another service or split a character.
pub fn encode_request(head: RequestHead<'_>, payload: &[u8], dst: &mut BytesMut) {
    let none = Metadata::new();
    let meta = RequestMeta {
        metadata: &none,
        trace: None,
        reply_metadata: false,
    };
    encode_request_meta(head, meta, payload, dst)
}

/// Appends a request frame carrying `meta`: version 2 when it has anything
/// to carry, else version 1, byte for byte what [`encode_request`] writes.
///
/// # Panics
///
/// As [`encode_request`].
pub fn encode_request_meta(
    head: RequestHead<'_>,
    meta: RequestMeta<'_>,
    payload: &[u8],
    dst: &mut BytesMut,
) {
    if let Err(e) = check_names(head.service, head.method) {
        panic!("encode_request: {e} (callers must check_names first)");
    }
    let (service, method) = (head.service.as_bytes(), head.method.as_bytes());
    let v2 = meta.needed();
    let meta_len = if v2 { meta.len() } else { 0 };
    let body_len = REQUEST_FIXED_LEN
        + if v2 { META_LEN_LEN } else { 0 }
        + service.len()
        + method.len()
        + payload.len()
        + meta_len;
    // Room for the whole frame, and for the fixed part written whole
    // (see below) even when the frame is shorter.
    dst.reserve(HEADER_LEN + body_len + META_LEN_LEN);
    let version = if v2 { VERSION } else { VERSION_NO_METADATA };
    // The fixed part is assembled on the stack and written with the names
    // and payload into the reserved room, one copy each and one length
    // update: this runs once per call, and field-by-field `put_*` (or
    // `extend_from_slice`) calls each check and advance the buffer.
    let mut fixed = [0u8; HEADER_LEN + REQUEST_FIXED_LEN + META_LEN_LEN];
    fixed[..2].copy_from_slice(&MAGIC);
    fixed[2] = version;
    fixed[3] = FrameKind::Request as u8;
    fixed[4..8].copy_from_slice(&(body_len as u32).to_be_bytes());
    fixed[8..16].copy_from_slice(&head.id.to_be_bytes());
    fixed[16..20].copy_from_slice(&head.timeout_ms.to_be_bytes());
    fixed[20] = service.len() as u8;
    fixed[21] = method.len() as u8;
    fixed[22..26].copy_from_slice(&(meta_len as u32).to_be_bytes());
    let fixed_len = HEADER_LEN + REQUEST_FIXED_LEN + if v2 { META_LEN_LEN } else { 0 };
    put_parts(dst, &fixed, fixed_len, [service, method, payload]);
    if v2 {
        meta.put(dst);
    }
}

/// Appends the first `fixed_len` bytes of `fixed`, then `rest`, to `dst`,
/// which has room for all of `fixed` and `rest` (whole `fixed` is copied,
/// a constant size the compiler copies inline; the bytes past `fixed_len`
/// are overwritten by `rest` or left past the end).
#[inline]
fn put_parts<const N: usize>(
    dst: &mut BytesMut,
    fixed: &[u8; N],
    fixed_len: usize,
    rest: [&[u8]; 3],
) {
    let len = fixed_len + rest.iter().map(|part| part.len()).sum::<usize>();
    let room = dst.capacity() - dst.len();
    assert!(
        fixed_len <= N && room >= len.max(N),
        "put_parts: room not reserved"
    );
    // SAFETY: the assert above makes every write below land in `dst`'s
    // spare capacity (`N` bytes from its end, then `rest` after
    // `fixed_len`); the slices are the caller's, disjoint from that spare
    // room, and the length is set only after all `len` bytes are written.
    unsafe {
        let start = dst.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        std::ptr::copy_nonoverlapping(fixed.as_ptr(), start, N);
        let mut at = start.add(fixed_len);
        for part in rest {
            std::ptr::copy_nonoverlapping(part.as_ptr(), at, part.len());
            at = at.add(part.len());
        }
        dst.set_len(dst.len() + len);
    }
}

/// The size of the `meta_len` field version 2 adds to a fixed part.
pub(crate) const META_LEN_LEN: usize = 4;

/// Where `timeout_ms` sits in an encoded request frame.
const TIMEOUT_AT: usize = HEADER_LEN + 8;

/// Rewrites the `timeout_ms` of an encoded request frame in place (a call
/// that waited, e.g. for a connect, sends its remaining budget). A slice
/// too short to be a request frame is left alone.
pub(crate) fn set_request_timeout(frame: &mut [u8], timeout_ms: u32) {
    debug_assert!(frame.get(3) == Some(&(FrameKind::Request as u8)));
    if let Some(field) = frame.get_mut(TIMEOUT_AT..TIMEOUT_AT + 4) {
        field.copy_from_slice(&timeout_ms.to_be_bytes());
    }
}

/// Appends a response frame carrying `payload` (on `Ok`) or `error` text.
pub fn encode_response(id: u64, code: Code, error: &str, payload: &[u8], dst: &mut BytesMut) {
    encode_response_meta(id, code, error, payload, false, &Metadata::new(), dst);
}

/// Writes a response frame's header and fixed part into `dst`; the caller
/// appends the payload (the server's handler encodes its message straight
/// into the output), then calls [`end_response`], which patches the
/// lengths. `with_metadata` makes it a version 2 frame (only for a caller
/// that asked for one: [`Request::replies_with_metadata`]).
pub(crate) fn begin_response(
    id: u64,
    code: Code,
    error: &str,
    with_metadata: bool,
    dst: &mut BytesMut,
) -> ReplyStart {
    let error = &error.as_bytes()[..error.len().min(u16::MAX as usize)];
    let at = dst.len();
    let version = if with_metadata {
        VERSION
    } else {
        VERSION_NO_METADATA
    };
    // The header and fixed part built on the stack and appended in one
    // write: a `put_*` per field checks the capacity each time (~100
    // instructions per reply; callgrind, issue 25). The body length and
    // `meta_len` stay 0 until `end_response` patches them.
    const FIXED: usize = HEADER_LEN + RESPONSE_FIXED_LEN;
    let mut head = [0u8; FIXED + META_LEN_LEN];
    head[..2].copy_from_slice(&MAGIC);
    head[2] = version;
    head[3] = FrameKind::Response as u8;
    head[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&id.to_be_bytes());
    head[HEADER_LEN + 8] = code as u8;
    head[HEADER_LEN + 9..FIXED].copy_from_slice(&(error.len() as u16).to_be_bytes());
    let len = if with_metadata {
        FIXED + META_LEN_LEN
    } else {
        FIXED
    };
    dst.put_slice(&head[..len]);
    if !error.is_empty() {
        dst.put_slice(error);
    }
    ReplyStart {
        at,
        meta_len_at: with_metadata.then_some(at + FIXED),
    }
}

/// Finishes a response frame begun by [`begin_response`]: appends
/// `metadata` (a version 1 frame cannot carry it: it is dropped) and
/// patches the lengths.
pub(crate) fn end_response(started: ReplyStart, metadata: &Metadata, dst: &mut BytesMut) {
    if let Some(at) = started.meta_len_at {
        let meta = metadata.as_wire();
        dst.put_slice(meta);
        dst[at..at + META_LEN_LEN].copy_from_slice(&(meta.len() as u32).to_be_bytes());
    }
    let body_len = (dst.len() - started.at - HEADER_LEN) as u32;
    dst[started.at + 4..started.at + 8].copy_from_slice(&body_len.to_be_bytes());
    debug_assert!(body_len as usize >= RESPONSE_FIXED_LEN);
}

/// Appends a complete response frame with `metadata` (version 2 when
/// `with_metadata`, else version 1 and the metadata is dropped).
pub fn encode_response_meta(
    id: u64,
    code: Code,
    error: &str,
    payload: &[u8],
    with_metadata: bool,
    metadata: &Metadata,
    dst: &mut BytesMut,
) {
    let started = begin_response(id, code, error, with_metadata, dst);
    dst.put_slice(payload);
    end_response(started, metadata, dst);
}

/// Appends an auth frame carrying `token`.
///
/// # Panics
///
/// If the token is longer than [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN)
/// bytes (the channel checks its options before sending any).
pub fn encode_auth(token: &[u8], dst: &mut BytesMut) {
    assert!(
        token.len() <= super::MAX_TOKEN_LEN,
        "encode_auth: a token of {} bytes exceeds {} bytes",
        token.len(),
        super::MAX_TOKEN_LEN
    );
    put_header(dst, FrameKind::Auth, token.len());
    dst.put_slice(token);
}

/// Appends a cancel frame for request `id`.
pub fn encode_cancel(id: u64, dst: &mut BytesMut) {
    put_header(dst, FrameKind::Cancel, 8);
    dst.put_u64(id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mprpc::{Decoder, Frame};

    fn request(timeout_ms: u32, service: &str) -> BytesMut {
        let mut buf = BytesMut::new();
        let head = RequestHead {
            id: 7,
            timeout_ms,
            service,
            method: "M",
        };
        encode_request(head, b"payload", &mut buf);
        buf
    }

    #[test]
    fn timeout_is_patched_in_place() {
        let mut buf = request(0, "Svc");
        set_request_timeout(&mut buf, 1234);
        let Some(Frame::Request(r)) = Decoder::default().decode(&mut buf).unwrap() else {
            panic!("not a request");
        };
        assert_eq!(
            (r.timeout_ms, r.service(), &r.payload[..]),
            (1234, "Svc", &b"payload"[..])
        );
    }

    #[test]
    fn names_over_the_limit_are_rejected_not_cut() {
        let long = "é".repeat(128); // 256 bytes; byte 255 is mid-character
        assert_eq!(check_names(&long, "M"), Err(NameTooLong { len: 256 }));
        assert_eq!(check_names("S", &long[..254]), Ok(()));
        let at_limit = "s".repeat(MAX_NAME_LEN);
        let Some(Frame::Request(r)) = Decoder::default()
            .decode(&mut request(0, &at_limit))
            .unwrap()
        else {
            panic!("not a request");
        };
        assert_eq!(r.service(), at_limit);
        let panicked = std::panic::catch_unwind(|| request(0, &long));
        assert!(panicked.is_err(), "encode_request must not cut a name");
    }

    #[test]
    fn the_in_place_reply_is_the_encoded_reply() {
        // The server's path: header first, the handler's message, then
        // metadata and lengths patched; golden_frames checks the bytes of
        // encode_response_meta.
        let served_by = Metadata::from_pairs([("server", "a1")]).unwrap();
        for with_metadata in [false, true] {
            let mut in_place = BytesMut::from(&b"earlier"[..]);
            let started = begin_response(5, Code::Ok, "", with_metadata, &mut in_place);
            in_place.put_slice(b"\x08\x01");
            end_response(started, &served_by, &mut in_place);
            let mut whole = BytesMut::from(&b"earlier"[..]);
            encode_response_meta(
                5,
                Code::Ok,
                "",
                b"\x08\x01",
                with_metadata,
                &served_by,
                &mut whole,
            );
            assert_eq!(in_place, whole, "with_metadata: {with_metadata}");
        }
    }
}
