//! What a frame's body holds: the parsers of each kind's body, once the
//! decoder has split the frame off the read buffer (see the layouts in
//! the module documentation). A side that expects one kind parses it
//! directly (the client's replies: [`parse_response`]); the decoder's
//! [`Frame`] is any kind ([`parse_body`]).

use bytes::{Buf, Bytes};

use super::decoded::Frame;
use super::frame::{FrameKind, Request, Response, META_LEN_LEN};
use super::stream::{self, StreamKind};
use super::{MAX_TOKEN_LEN, REQUEST_FIXED_LEN, RESPONSE_FIXED_LEN, VERSION, VERSION_STREAMS};
use crate::call::metadata::Metadata;
use crate::call::status::Code;
use crate::protocol::ProtocolError;

/// The body of a frame of kind `kind` in protocol `version`.
pub(super) fn parse_body(kind: u8, version: u8, body: Bytes) -> Result<Frame, ProtocolError> {
    if let Some(kind) = StreamKind::from_u8(kind) {
        return stream::parse(kind, version, body).map(Frame::Stream);
    }
    if version >= VERSION_STREAMS {
        return Err(ProtocolError::Malformed(
            "protocol versions 3 and 4 are for stream frames only",
        ));
    }
    let v2 = version == VERSION;
    match kind {
        k if k == FrameKind::Request as u8 => parse_request(body, v2).map(Frame::Request),
        k if k == FrameKind::Response as u8 => parse_response(body, v2).map(Frame::Response),
        k if k == FrameKind::Cancel as u8 => {
            if body.len() != 8 {
                return Err(ProtocolError::Malformed("cancel body is not 8 bytes"));
            }
            Ok(Frame::Cancel {
                id: u64::from_be_bytes(body[..8].try_into().expect("8 bytes")),
            })
        }
        k if k == FrameKind::Auth as u8 => {
            if body.len() > MAX_TOKEN_LEN {
                return Err(ProtocolError::Malformed(
                    "auth token longer than 1024 bytes",
                ));
            }
            Ok(Frame::Auth { token: body })
        }
        other => Err(ProtocolError::UnknownKind(other)),
    }
}

/// The fixed part's length in a frame of this version.
fn fixed_len(fixed: usize, v2: bool) -> usize {
    fixed + if v2 { META_LEN_LEN } else { 0 }
}

/// A version 2 body's `meta_len` field, read from `body`.
fn meta_len(body: &mut Bytes, v2: bool) -> usize {
    if v2 {
        body.get_u32() as usize
    } else {
        0
    }
}

/// Splits the metadata block off the end of what is left of a body.
fn split_metadata(body: &mut Bytes, meta_len: usize) -> Result<Metadata, ProtocolError> {
    if meta_len == 0 {
        return Ok(Metadata::new());
    }
    let at = body
        .len()
        .checked_sub(meta_len)
        .ok_or(ProtocolError::Malformed("metadata overruns the body"))?;
    Metadata::from_wire(body.split_off(at)).map_err(ProtocolError::Malformed)
}

pub(super) fn parse_request(mut body: Bytes, v2: bool) -> Result<Request, ProtocolError> {
    if body.len() < fixed_len(REQUEST_FIXED_LEN, v2) {
        return Err(ProtocolError::Malformed(
            "request body shorter than its fixed part",
        ));
    }
    let id = body.get_u64();
    let timeout_ms = body.get_u32();
    let service_len = body.get_u8() as usize;
    let method_len = body.get_u8() as usize;
    let meta_len = meta_len(&mut body, v2);
    if body.len() < service_len + method_len {
        return Err(ProtocolError::Malformed(
            "service/method names overrun the body",
        ));
    }
    let names = body.split_to(service_len + method_len);
    let metadata = split_metadata(&mut body, meta_len)?;
    let mut request = Request::from_name_bytes(id, timeout_ms, names, service_len, body)
        .ok_or(ProtocolError::Malformed("service/method name is not UTF-8"))?;
    request.metadata = metadata;
    request.replies_with_metadata = v2;
    Ok(request)
}

pub(super) fn parse_response(mut body: Bytes, v2: bool) -> Result<Response, ProtocolError> {
    if body.len() < fixed_len(RESPONSE_FIXED_LEN, v2) {
        return Err(ProtocolError::Malformed(
            "response body shorter than its fixed part",
        ));
    }
    let id = body.get_u64();
    let code = Code::from_u8(body.get_u8());
    let error_len = body.get_u16() as usize;
    let meta_len = meta_len(&mut body, v2);
    if body.len() < error_len {
        return Err(ProtocolError::Malformed("error text overruns the body"));
    }
    let error = body.split_to(error_len);
    let metadata = split_metadata(&mut body, meta_len)?;
    Ok(Response {
        id,
        code,
        error,
        payload: body,
        metadata,
    })
}
