//! Our format's client half: replies read off a connection's input and
//! matched to their calls by id (requests are packed by
//! [`encode_request_meta`](super::encode_request_meta)).

use bytes::{Bytes, BytesMut};

use super::body::{parse_body, parse_response};
use super::decoder::{skip_body, take_frame, Split};
use super::frame::META_LEN_LEN;
use super::stream::parse_message;
use super::{
    Decoder, Frame, FrameKind, Response, StreamFrame, StreamKind, HEADER_LEN, MAGIC,
    RESPONSE_FIXED_LEN, VERSION, VERSION_NO_METADATA, VERSION_STREAMS,
};
use crate::protocol::{ProtocolError, ReadState, Reply, StreamEvent};
use crate::{Code, Status};

/// The next reply in `input`: `Ok(None)` until one is complete. A reply
/// over `max` bytes fails its call alone (its body is skipped as it
/// arrives); a frame a server never sends, or bytes left over at `eof`,
/// is an error for the connection. A response's body is parsed straight
/// into the `Reply` (no `Frame` in between: this runs once per call).
/// Runs of stream messages are taken before this by
/// [`stream_message`] while the caller has streams open.
pub(super) fn parse_reply(
    input: &mut BytesMut,
    state: &mut ReadState,
    max: usize,
    eof: bool,
) -> Result<Option<Reply>, ProtocolError> {
    if state.skip > 0 && !skip_body(input, &mut state.skip) {
        return left_at(eof, input, state);
    }
    match Decoder::new(max).split_frame(input)? {
        Some(Split::Body {
            kind,
            version,
            body,
        }) if kind == FrameKind::Response as u8 && version != VERSION_STREAMS => {
            Ok(Some(reply(parse_response(body, version == VERSION)?)))
        }
        Some(Split::Body {
            kind,
            version: VERSION_STREAMS,
            body,
        }) if kind == StreamKind::Message as u8 => {
            let (id, payload) = parse_message(body)?;
            Ok(Some(stream_reply(id, Ok(payload), StreamEvent::Message)))
        }
        Some(Split::Body {
            kind,
            version,
            body,
        }) => other_frame(parse_body(kind, version, body)?),
        Some(Split::Oversized(o)) if o.kind == FrameKind::Response => {
            state.skip = o.unread;
            Ok(Some(Reply {
                id: o.id,
                result: Err(o.status("reply", "this channel's")),
                metadata: Default::default(),
                stream: None,
            }))
        }
        Some(Split::Oversized(_)) => Err(ProtocolError::Malformed("a server sent a request frame")),
        None => left_at(eof, input, state),
    }
}

/// A whole stream message frame (within `max`) at the front of `input`,
/// split off with its id read from the buffer: its stream's id and the
/// message's bytes. A server stream's frames are nearly all messages, so
/// they skip the generic split and parse. `None` for anything else (a
/// partial or oversized frame, another kind, a bad header), which the
/// generic path then handles.
#[inline]
pub(super) fn stream_message(input: &mut BytesMut, max: usize) -> Option<(u64, Bytes)> {
    const ID_END: usize = HEADER_LEN + 8;
    let head = *input.first_chunk::<ID_END>()?;
    let ours = head[..2] == MAGIC && head[2] == VERSION_STREAMS;
    if !ours || head[3] != StreamKind::Message as u8 {
        return None;
    }
    let body_len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    let frame_len = HEADER_LEN + body_len;
    if body_len < 8 || body_len > max || input.len() < frame_len {
        return None;
    }
    let id = u64::from_be_bytes(head[HEADER_LEN..].try_into().expect("8 bytes"));
    Some((id, take_frame(input, frame_len, ID_END)))
}

/// A whole successful response frame with no error text and no metadata
/// (within `max`) at the front of `input`, split off with its id read
/// from the buffer: its call's id and the reply's payload. Nearly every
/// reply is one, so it skips the generic split and parse and the `Reply`
/// built from them. `None` for anything else (a partial or oversized
/// frame, a failure, error text or metadata, another kind, a bad header),
/// which [`parse_reply`] then reads.
#[inline]
pub(super) fn ok_reply(input: &mut BytesMut, max: usize) -> Option<(u64, Bytes)> {
    // Header, then id u64 | code u8 | error_len u16 | (version 2) meta_len u32.
    const FIXED_END: usize = HEADER_LEN + RESPONSE_FIXED_LEN;
    let head = *input.first_chunk::<FIXED_END>()?;
    if head[..2] != MAGIC || head[3] != FrameKind::Response as u8 {
        return None;
    }
    let fixed = match head[2] {
        VERSION_NO_METADATA => FIXED_END,
        VERSION => FIXED_END + META_LEN_LEN,
        _ => return None,
    };
    let body_len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    let frame_len = HEADER_LEN + body_len;
    let ok = head[HEADER_LEN + 8] == Code::Ok as u8;
    let no_error = head[HEADER_LEN + 9..FIXED_END] == [0, 0];
    if !ok || !no_error || body_len > max || frame_len < fixed || input.len() < frame_len {
        return None;
    }
    if input[FIXED_END..fixed].iter().any(|&b| b != 0) {
        return None; // version 2 with metadata
    }
    let id = u64::from_be_bytes(
        head[HEADER_LEN..HEADER_LEN + 8]
            .try_into()
            .expect("8 bytes"),
    );
    Some((id, take_frame(input, frame_len, fixed)))
}

/// A frame other than a (version 1 or 2) response: a stream's, or one a
/// server never sends.
fn other_frame(frame: Frame) -> Result<Option<Reply>, ProtocolError> {
    match frame {
        Frame::Response(response) => Ok(Some(reply(response))),
        Frame::Request(_) | Frame::Oversized(_) => {
            Err(ProtocolError::Malformed("a server sent a request frame"))
        }
        Frame::Cancel { .. } | Frame::Auth { .. } => Err(ProtocolError::Malformed(
            "a server sent a cancel or auth frame",
        )),
        Frame::Stream(StreamFrame::Open(_)) => {
            Err(ProtocolError::Malformed("a server sent a stream open"))
        }
        Frame::Stream(StreamFrame::Message { id, payload }) => {
            Ok(Some(stream_reply(id, Ok(payload), StreamEvent::Message)))
        }
        Frame::Stream(StreamFrame::Credit { id, credit }) => Ok(Some(stream_reply(
            id,
            Ok(Default::default()),
            StreamEvent::Credit(credit),
        ))),
        Frame::Stream(StreamFrame::Headers { id, metadata }) => {
            let mut reply = stream_reply(id, Ok(Default::default()), StreamEvent::Headers);
            reply.metadata = metadata;
            Ok(Some(reply))
        }
        Frame::Stream(mut frame) => {
            let status = frame.status().expect("an end or reset has a status");
            let mut reply =
                stream_reply(frame.id(), Ok(Default::default()), StreamEvent::End(status));
            if let StreamFrame::End { metadata, .. } = &mut frame {
                reply.metadata = std::mem::take(metadata);
            }
            Ok(Some(reply))
        }
    }
}

/// A frame of stream `id` as a reply.
fn stream_reply(id: u64, result: Result<bytes::Bytes, Status>, event: StreamEvent) -> Reply {
    Reply {
        id,
        result,
        metadata: Default::default(),
        stream: Some(event),
    }
}

/// No reply is complete: fine, unless the provider has closed with part
/// of one unread.
fn left_at(eof: bool, input: &BytesMut, state: &ReadState) -> Result<Option<Reply>, ProtocolError> {
    if eof && (!input.is_empty() || state.skip > 0) {
        return Err(ProtocolError::TruncatedAtEof {
            pending: input.len(),
        });
    }
    Ok(None)
}

/// A response frame as the outcome of its call.
fn reply(response: Response) -> Reply {
    let result = match response.code {
        crate::Code::Ok => Ok(response.payload),
        code => Err(Status::new(code, response.error_str())),
    };
    Reply {
        id: response.id,
        result,
        metadata: response.metadata,
        stream: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mprpc::{encode_response, encode_response_meta};
    use crate::{Code, Metadata};

    fn parse_all(stream: &[u8], max: usize) -> Vec<Reply> {
        let (mut input, mut state) = (BytesMut::from(stream), ReadState::default());
        let mut replies = Vec::new();
        while let Some(reply) = parse_reply(&mut input, &mut state, max, true).unwrap() {
            replies.push(reply);
        }
        replies
    }

    #[test]
    fn replies_carry_their_outcome_and_metadata() {
        let mut stream = BytesMut::new();
        let served_by = Metadata::from_pairs([("served-by", "p1")]).unwrap();
        encode_response_meta(3, Code::Ok, "", b"ok", true, &served_by, &mut stream);
        encode_response(4, Code::Application, "no such user", b"", &mut stream);
        let replies = parse_all(&stream, 1024);
        assert_eq!(replies[0].id, 3);
        assert_eq!(replies[0].result.as_deref(), Ok(&b"ok"[..]));
        assert_eq!(replies[0].metadata, served_by);
        let failed = replies[1].result.as_ref().unwrap_err();
        assert_eq!((replies[1].id, failed.code()), (4, Code::Application));
        assert_eq!(failed.message(), "no such user");
    }

    #[test]
    fn stream_messages_read_whole_or_split_at_every_byte() {
        use crate::protocol::mprpc::{encode_stream_credit, encode_stream_message};
        let mut stream = BytesMut::new();
        encode_stream_message(7, b"first", &mut stream);
        encode_stream_credit(7, 3, &mut stream);
        encode_stream_message(9, b"", &mut stream);
        encode_response(4, Code::Ok, "", b"unary", &mut stream);
        encode_stream_message(u64::MAX, &[1u8; 40], &mut stream);
        let whole = parse_all(&stream, 1024);
        let events: Vec<_> = whole.iter().map(|r| (r.id, r.stream.clone())).collect();
        assert_eq!(events.len(), 5);
        assert_eq!(events[0], (7, Some(StreamEvent::Message)));
        assert_eq!(whole[0].result.as_deref(), Ok(&b"first"[..]));
        assert_eq!(events[1], (7, Some(StreamEvent::Credit(3))));
        assert_eq!(whole[2].result.as_deref(), Ok(&b""[..]));
        assert_eq!(
            (events[3].0, whole[3].result.as_deref()),
            (4, Ok(&b"unary"[..]))
        );
        assert_eq!(
            (events[4].0, whole[4].result.as_deref()),
            (u64::MAX, Ok(&[1u8; 40][..]))
        );
        // Fed a byte at a time, the same replies come out.
        let (mut input, mut state) = (BytesMut::new(), ReadState::default());
        let mut split = Vec::new();
        for byte in stream.iter() {
            input.extend_from_slice(&[*byte]);
            while let Some(reply) = parse_reply(&mut input, &mut state, 1024, false).unwrap() {
                split.push(reply);
            }
        }
        assert_eq!(split, whole);
        // A message over the limit is an error, as before.
        let mut big = BytesMut::new();
        encode_stream_message(1, &[0u8; 100], &mut big);
        let mut state = ReadState::default();
        assert!(parse_reply(&mut big, &mut state, 64, false).is_err());
    }

    #[test]
    fn plain_successful_replies_take_the_fast_path_and_the_rest_fall_through() {
        let served_by = Metadata::from_pairs([("served-by", "p1")]).unwrap();
        let mut stream = BytesMut::new();
        encode_response(1, Code::Ok, "", b"v1", &mut stream);
        encode_response_meta(2, Code::Ok, "", b"v2", true, &Metadata::new(), &mut stream);
        encode_response_meta(3, Code::Ok, "", b"meta", true, &served_by, &mut stream);
        encode_response(4, Code::Application, "no such user", b"", &mut stream);
        encode_response(5, Code::Ok, "", &[7u8; 100], &mut stream);
        encode_response(6, Code::Ok, "", b"", &mut stream);
        let (mut input, mut state) = (stream.clone(), ReadState::default());
        let mut taken = Vec::new();
        loop {
            if let Some((id, payload)) = ok_reply(&mut input, 64) {
                taken.push((id, true, Ok(payload), Metadata::new()));
            } else if let Some(reply) = parse_reply(&mut input, &mut state, 64, true).unwrap() {
                taken.push((reply.id, false, reply.result, reply.metadata));
            } else {
                break;
            }
        }
        let paths: Vec<_> = taken.iter().map(|t| (t.0, t.1)).collect();
        // With metadata, a failure or over the limit: the generic path.
        let expected = [
            (1, true),
            (2, true),
            (3, false),
            (4, false),
            (5, false),
            (6, true),
        ];
        assert_eq!(paths, expected);
        // Either way, each call gets what the generic path alone gives it.
        let whole = parse_all(&stream, 64);
        for (reply, (id, _, result, metadata)) in whole.iter().zip(&taken) {
            assert_eq!(
                (reply.id, &reply.result, &reply.metadata),
                (*id, result, metadata)
            );
        }
        // A partial frame is left for later, a byte at a time.
        let mut input = BytesMut::new();
        for byte in stream[..stream.len() / 2].iter() {
            input.extend_from_slice(&[*byte]);
            let before = input.len();
            if ok_reply(&mut input, 64).is_none() {
                assert_eq!(input.len(), before, "nothing taken from a partial frame");
            }
        }
    }

    #[test]
    fn an_oversized_reply_fails_alone_and_the_next_one_is_read() {
        let mut stream = BytesMut::new();
        encode_response(1, Code::Ok, "", &[7u8; 100], &mut stream);
        encode_response(2, Code::Ok, "", b"small", &mut stream);
        let replies = parse_all(&stream, 64);
        assert_eq!(replies.len(), 2);
        let too_big = replies[0].result.as_ref().unwrap_err();
        assert_eq!(too_big.code(), Code::ResourceExhausted);
        assert_eq!(replies[1].result.as_deref(), Ok(&b"small"[..]));
    }

    #[test]
    fn a_reply_cut_by_the_close_is_an_error_and_a_request_is_refused() {
        let mut stream = BytesMut::new();
        encode_response(1, Code::Ok, "", b"whole", &mut stream);
        let cut = stream.len() - 2;
        let (mut input, mut state) = (BytesMut::from(&stream[..cut]), ReadState::default());
        assert_eq!(parse_reply(&mut input, &mut state, 1024, false), Ok(None));
        assert_eq!(
            parse_reply(&mut input, &mut state, 1024, true),
            Err(ProtocolError::TruncatedAtEof { pending: cut })
        );
        let mut request = BytesMut::new();
        crate::protocol::mprpc::encode_cancel(9, &mut request);
        let mut state = ReadState::default();
        assert!(parse_reply(&mut request, &mut state, 1024, false).is_err());
    }
}
