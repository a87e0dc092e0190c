//! The seed's format on the server side: one request per connection, the
//! bare response message as the reply, then we close. As in the seed, an
//! unknown service or method is logged and the connection closed without a
//! reply (the format cannot say "error"); unlike the seed, a request split
//! over several reads is reassembled.

use bytes::BytesMut;

use super::{invoke, Progress};
use crate::call::status::{Code, Status};
use crate::codec::seed::{self, SeedRequest};
use crate::codec::{Request, WireFormat};
use crate::server::close::CloseReason;
use crate::server::connection::Connection;
use crate::server::dispatch::{Dispatcher, Turn};
use crate::service::{CallContext, Service};

/// The connection's one request, once it has fully arrived.
pub(super) fn process(conn: &mut Connection, dispatcher: &Dispatcher, turn: Turn) -> Progress {
    if dispatcher.needs_auth() {
        // The seed's format has no way to carry a token.
        return Progress::Close(CloseReason::Unauthenticated(
            "seed-format call, which cannot carry an auth token",
        ));
    }
    let max = dispatcher.decoder().max_frame();
    let (input, needed) = conn.input_and_needed();
    let request = match seed::decode_request_incremental(input, max, needed) {
        Ok(Some(request)) => request,
        Ok(None) => return Progress::Open,
        Err(e) => return Progress::Close(CloseReason::Protocol(e)),
    };
    let SeedRequest {
        service,
        method,
        args,
    } = request;
    // The seed decoder checked the names are UTF-8.
    let (service, method) = (
        String::from_utf8_lossy(&service),
        String::from_utf8_lossy(&method),
    );
    let entry = dispatcher
        .table()
        .get(service.as_bytes())
        .filter(|e| e.has_method(method.as_bytes()));
    let Some(entry) = entry.filter(|_| !turn.shutting_down) else {
        return Progress::Close(CloseReason::SeedUnknown {
            service: service.into_owned(),
            method: method.into_owned(),
        });
    };
    conn.close_after_reply();
    let request = Request::new(0, 0, &service, &method, args);
    dispatcher.dispatch(conn, entry, request, WireFormat::Legacy, turn);
    Progress::Done
}

/// Runs the handler; the reply is the bare message on success and nothing
/// otherwise (the connection is closed either way). Returns the call's
/// status code.
pub(super) fn run_call(
    service: &dyn Service,
    request: Request,
    ctx: &CallContext,
    out: &mut BytesMut,
) -> Code {
    let start = out.len();
    match invoke(service, request, ctx, out) {
        Ok(()) => Code::Ok,
        Err(status) => {
            out.truncate(start);
            write_error(&status);
            status.code()
        }
    }
}

/// A failed call has no reply in this format: it is logged and the
/// connection closes empty-handed, which the seed's client reads as failure.
pub(super) fn write_error(status: &Status) {
    tracing::warn!(%status, "seed-format call failed; closing without a reply");
}
