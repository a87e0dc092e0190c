//! Our format's server half: many requests per connection, replies in any
//! order, cancel and auth frames, an oversized request failed alone.

use super::body::{parse_body, parse_request};
use super::decoder::{read_split, Split};
use super::{
    encode_response, encode_stream_reset, Decoder, Frame, FrameKind, Request, StreamFrame,
    StreamOpen, VERSION, VERSION_STREAMS,
};
use crate::protocol::{Progress, ProtocolError, Session, WireFormat};
use crate::server::close::CloseReason;
use crate::{Code, Status};

/// Every complete frame of the input, until backpressure pauses reading.
/// A request (version 1 or 2) is parsed straight into its `Request`, as
/// the client parses its replies: moving it through a [`Frame`] cost ~50
/// instructions per call (callgrind; issue 25). Other frames go through
/// [`Frame`].
pub(super) fn process(session: &mut dyn Session) -> Progress {
    let decoder = Decoder::new(session.max_frame());
    loop {
        let (input, state) = session.input();
        let handled = match read_split(&decoder, input, state) {
            Ok(Some(Split::Body {
                kind,
                version,
                body,
            })) if kind == FrameKind::Request as u8 && version != VERSION_STREAMS => {
                match parse_request(body, version == VERSION) {
                    Ok(request) => on_request(session, request),
                    Err(e) => Err(protocol_error(e)),
                }
            }
            Ok(Some(Split::Body {
                kind,
                version,
                body,
            })) => match parse_body(kind, version, body) {
                Ok(frame) => on_frame(session, frame),
                Err(e) => Err(protocol_error(e)),
            },
            Ok(Some(Split::Oversized(o))) => on_frame(session, Frame::Oversized(o)),
            Ok(None) => return Progress::Open,
            Err(e) => return protocol_error(e),
        };
        if let Err(progress) = handled {
            return progress;
        }
        if session.pause_if_over() {
            return Progress::Paused;
        }
    }
}

/// The connection closes over a malformed stream of bytes.
fn protocol_error(e: ProtocolError) -> Progress {
    Progress::Close(CloseReason::Protocol(e))
}

/// A request: refused on a connection that has not authenticated (which
/// then closes), else served. `Err` ends this turn's reading with that
/// progress.
fn on_request(session: &mut dyn Session, request: Request) -> Result<(), Progress> {
    if let Some(why) = session.unauthenticated() {
        refuse(session, request.id, &Status::unauthenticated(why));
        session.close_after_reply();
        return Err(Progress::Done);
    }
    serve(session, request).map_err(Progress::Close)
}

/// Any other frame. `Err` ends this turn's reading with that progress.
fn on_frame(session: &mut dyn Session, frame: Frame) -> Result<(), Progress> {
    match frame {
        Frame::Request(request) => return on_request(session, request),
        Frame::Auth { token } => session.present_token(&token),
        Frame::Cancel { id } => session.cancel(id),
        Frame::Oversized(o) if o.kind == FrameKind::Request => {
            // Fail that one call; the connection and its other calls go on.
            let status = o.status("request", "this server's");
            session.count_rejected();
            tracing::warn!(peer = %session.peer(), id = o.id, "{}; answered ResourceExhausted", status.message());
            refuse(session, o.id, &status);
        }
        Frame::Stream(StreamFrame::Open(open)) => {
            if let Some(why) = session.unauthenticated() {
                reset(session, open.id, &Status::unauthenticated(why));
                session.close_after_reply();
                return Err(Progress::Done);
            }
            open_stream(session, open).map_err(Progress::Close)?;
        }
        Frame::Stream(frame) => session.stream_frame(frame),
        Frame::Oversized(o)
            if matches!(o.kind, FrameKind::StreamOpen | FrameKind::StreamMessage) =>
        {
            // That stream fails alone, as an oversized request does.
            let status = o.status("stream message", "this server's");
            session.count_rejected();
            tracing::warn!(peer = %session.peer(), id = o.id, "{}; stream reset", status.message());
            if o.kind == FrameKind::StreamMessage {
                session.stream_frame(StreamFrame::Reset {
                    id: o.id,
                    status: status.code(),
                    error: status.message().to_owned().into(),
                });
            }
            reset(session, o.id, &status);
        }
        Frame::Response(_) | Frame::Oversized(_) => {
            return Err(Progress::Close(CloseReason::UnexpectedResponse))
        }
    }
    Ok(())
}

/// One request: refused while draining or for an unknown service, else
/// run. An id already in flight on the connection closes it: a second
/// call with that id would leave two replies the peer cannot tell apart,
/// and its first call orphaned.
fn serve(session: &mut dyn Session, request: Request) -> Result<(), CloseReason> {
    if session.has_call(request.id) {
        return Err(CloseReason::DuplicateCallId(request.id));
    }
    if session.shutting_down() {
        let status = Status::new(Code::ShuttingDown, "server is shutting down");
        refuse(session, request.id, &status);
        return Ok(());
    }
    if let Err(request) = session.dispatch(request, WireFormat::Mprpc) {
        refuse(
            session,
            request.id,
            &Status::unknown_service(request.service()),
        );
    }
    Ok(())
}

/// Answers call `id` with `status` without running it.
fn refuse(session: &mut dyn Session, id: u64, status: &Status) {
    encode_response(id, status.code(), status.message(), &[], session.output());
}

/// A stream open: refused like a request (a duplicate id closes the
/// connection, draining or an unknown service resets it), else started.
fn open_stream(session: &mut dyn Session, open: StreamOpen) -> Result<(), CloseReason> {
    if session.has_call(open.id) {
        return Err(CloseReason::DuplicateCallId(open.id));
    }
    if session.shutting_down() {
        let status = Status::new(Code::ShuttingDown, "server is shutting down");
        reset(session, open.id, &status);
        return Ok(());
    }
    let id = open.id;
    if let Err(status) = session.open_stream(open) {
        reset(session, id, &status);
    }
    Ok(())
}

/// Ends stream `id` with `status` without running (more of) it.
fn reset(session: &mut dyn Session, id: u64, status: &Status) {
    encode_stream_reset(id, status.code(), status.message(), session.output());
}
