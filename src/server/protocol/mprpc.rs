//! Our framed, multiplexed protocol on the server side: many requests per
//! connection, replies in any order, cancel frames, oversized requests
//! failed alone.

use bytes::BytesMut;

use super::{invoke, Progress};
use crate::call::metadata::Metadata;
use crate::call::status::{Code, Status};
use crate::codec::{
    begin_response, encode_response, encode_response_meta, end_response, Frame, FrameKind, Request,
    WireFormat,
};
use crate::server::close::CloseReason;
use crate::server::connection::{Auth, Connection};
use crate::server::dispatch::{Dispatcher, Turn};
use crate::service::{CallContext, Service};

/// Every complete frame of the input, until backpressure pauses reading.
pub(super) fn process(conn: &mut Connection, dispatcher: &Dispatcher, turn: Turn) -> Progress {
    loop {
        let frame = match conn.io().next_frame(dispatcher.decoder()) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Progress::Open,
            Err(e) => return Progress::Close(CloseReason::Protocol(e)),
        };
        match frame {
            Frame::Request(request) if conn.auth() != Auth::Passed => {
                let status = Status::unauthenticated(match conn.auth() {
                    Auth::Refused => "wrong auth token",
                    _ => "this provider requires an auth token and none was sent",
                });
                write_error(request.id, &status, conn.io().output());
                conn.close_after_reply();
                return Progress::Done;
            }
            Frame::Request(request) => {
                if let Err(reason) = serve(conn, dispatcher, request, turn) {
                    return Progress::Close(reason);
                }
            }
            Frame::Auth { token } if dispatcher.needs_auth() => {
                conn.token_checked(dispatcher.accepts_token(&token));
            }
            Frame::Auth { .. } => {} // no token needed here
            Frame::Cancel { id } => {
                conn.cancel(id);
                dispatcher.cancel_later(conn, id);
            }
            Frame::Oversized(o) if o.kind == FrameKind::Request => {
                // Fail that one call; the connection and its other calls go on.
                let status = o.status("request", "this server's");
                crate::server::stats::bump(&dispatcher.reactor_stats().frames_rejected, 1);
                tracing::warn!(peer = %conn.peer(), id = o.id, "{}; answered ResourceExhausted", status.message());
                write_error(o.id, &status, conn.io().output());
            }
            Frame::Response(_) | Frame::Oversized(_) => {
                return Progress::Close(CloseReason::UnexpectedResponse)
            }
        }
        if conn.pause_if_over(dispatcher.limits()) {
            return Progress::Paused;
        }
    }
}

/// One request: refused while draining or for an unknown service, else
/// run. An id already in flight on the connection closes it: a second
/// call with that id would leave two replies the peer cannot tell apart,
/// and its first call orphaned.
fn serve(
    conn: &mut Connection,
    dispatcher: &Dispatcher,
    request: Request,
    turn: Turn,
) -> Result<(), CloseReason> {
    if conn.has_call(request.id) {
        return Err(CloseReason::DuplicateCallId(request.id));
    }
    if turn.shutting_down {
        let status = Status::new(Code::ShuttingDown, "server is shutting down");
        write_error(request.id, &status, conn.io().output());
        return Ok(());
    }
    let Some(entry) = dispatcher.table().get(request.service_bytes()) else {
        let status = Status::unknown_service(request.service());
        write_error(request.id, &status, conn.io().output());
        return Ok(());
    };
    dispatcher.dispatch(conn, entry, request, WireFormat::Mprpc, turn);
    Ok(())
}

/// Runs the handler and appends its reply frame; returns the reply's
/// status code. The response message is encoded straight into `out` after the
/// reply header; on failure that partial frame is cut off and an error
/// reply written instead. A caller that reads metadata (version 2) gets
/// the reply metadata the handler set, failed or not.
pub(crate) fn run_call(
    service: &dyn Service,
    request: Request,
    ctx: &CallContext,
    out: &mut BytesMut,
) -> Code {
    let id = request.id;
    let with_metadata = request.replies_with_metadata;
    let start = out.len();
    let begun = begin_response(id, Code::Ok, "", with_metadata, out);
    let result = invoke(service, request, ctx, out);
    let metadata = match with_metadata {
        true => ctx.take_reply_metadata(),
        false => Metadata::new(),
    };
    match result {
        Ok(()) => {
            end_response(begun, &metadata, out);
            Code::Ok
        }
        Err(status) => {
            out.truncate(start);
            let (code, why) = (status.code(), status.message());
            encode_response_meta(id, code, why, &[], with_metadata, &metadata, out);
            code
        }
    }
}

/// Appends an error reply frame for call `id`.
pub(super) fn write_error(id: u64, status: &Status, out: &mut BytesMut) {
    encode_response(id, status.code(), status.message(), &[], out);
}
