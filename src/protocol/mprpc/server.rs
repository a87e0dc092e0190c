//! Our format's server half: many requests per connection, replies in any
//! order, cancel and auth frames, an oversized request failed alone.

use super::{
    encode_response, encode_stream_reset, read_frame, Decoder, Frame, FrameKind, Request,
    StreamFrame, StreamOpen,
};
use crate::protocol::{Progress, Session, WireFormat};
use crate::server::close::CloseReason;
use crate::{Code, Status};

/// Every complete frame of the input, until backpressure pauses reading.
pub(super) fn process(session: &mut dyn Session) -> Progress {
    let decoder = Decoder::new(session.max_frame());
    loop {
        let (input, state) = session.input();
        let frame = match read_frame(&decoder, input, state) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Progress::Open,
            Err(e) => return Progress::Close(CloseReason::Protocol(e)),
        };
        match frame {
            Frame::Request(request) => {
                if let Some(why) = session.unauthenticated() {
                    refuse(session, request.id, &Status::unauthenticated(why));
                    session.close_after_reply();
                    return Progress::Done;
                }
                if let Err(reason) = serve(session, request) {
                    return Progress::Close(reason);
                }
            }
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
                    return Progress::Done;
                }
                if let Err(reason) = open_stream(session, open) {
                    return Progress::Close(reason);
                }
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
                return Progress::Close(CloseReason::UnexpectedResponse)
            }
        }
        if session.pause_if_over() {
            return Progress::Paused;
        }
    }
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
