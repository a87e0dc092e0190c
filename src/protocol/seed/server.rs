//! The seed's format on the server side: one request per connection, the
//! bare response message as the reply, then we close. As in the seed, an
//! unknown service or method is logged and the connection closed without a
//! reply (the format cannot say "error"); unlike the seed, a request split
//! over several reads is reassembled.

use super::decode_request_incremental;
use crate::protocol::mprpc::Request;
use crate::protocol::{Progress, Session, WireFormat};
use crate::server::close::CloseReason;

/// The connection's one request, once it has fully arrived.
pub(super) fn process(session: &mut dyn Session) -> Progress {
    if session.needs_auth() {
        // The seed's format has no way to carry a token.
        return Progress::Close(CloseReason::Unauthenticated(
            "seed-format call, which cannot carry an auth token",
        ));
    }
    let max = session.max_frame();
    let (input, state) = session.input();
    let request = match decode_request_incremental(input, max, &mut state.needed) {
        Ok(Some(request)) => request,
        Ok(None) => return Progress::Open,
        Err(e) => return Progress::Close(CloseReason::Protocol(e)),
    };
    // The decoder checked that the names are UTF-8. A seed call has no
    // id, no timeout and no metadata.
    let request = Request::new(
        0,
        0,
        request.service_str(),
        request.method_str(),
        request.args.clone(),
    );
    if session.shutting_down() || !session.serves(request.service_bytes(), request.method_bytes()) {
        return unknown(request);
    }
    session.close_after_reply();
    match session.dispatch(request, WireFormat::Seed) {
        Ok(()) => Progress::Done,
        Err(request) => unknown(request),
    }
}

/// A call to a service or method we do not publish (or any while
/// draining): closed without a reply, the seed's way.
fn unknown(request: Request) -> Progress {
    Progress::Close(CloseReason::SeedUnknown {
        service: request.service().to_owned(),
        method: request.method().to_owned(),
    })
}
