//! Admin HTTP on a connection: every complete request head in the input is
//! answered by the admin pages ([`crate::server::admin`]); a bad one gets a
//! 4xx reply, a logged reason and a close once the reply is out.

use crate::protocol::Progress;
use crate::server::admin::http::{self, Response};
use crate::server::admin::Admin;
use crate::server::connection::Connection;
use crate::server::dispatch::Dispatcher;
use crate::server::stats;

/// Answers every complete request in the input, until backpressure pauses
/// reading or a request asks for the connection to close.
pub(super) fn process(conn: &mut Connection, dispatcher: &Dispatcher, admin: &Admin) -> Progress {
    loop {
        let request = match http::parse(conn.io().input()) {
            Ok(Some(request)) => request,
            Ok(None) => return Progress::Open,
            Err(e) => {
                tracing::warn!(peer = %conn.peer(), "admin HTTP: {e}; replying {} and closing", e.status());
                stats::bump(&dispatcher.reactor_stats().frames_rejected, 1);
                let mut reply = Response::text(e.status(), &e.to_string());
                if e.status() == 405 {
                    reply = reply.with_header("Allow: GET, HEAD".into());
                }
                reply.write(false, false, conn.io().output());
                return close_after(conn);
            }
        };
        stats::bump(&dispatcher.reactor_stats().admin_requests, 1);
        admin.respond(&request).write(
            request.method == "HEAD",
            request.keep_alive,
            conn.io().output(),
        );
        if !request.keep_alive {
            return close_after(conn);
        }
        if conn.pause_if_over(dispatcher.limits()) {
            return Progress::Paused;
        }
    }
}

/// Stops reading; the connection closes once the reply is flushed.
fn close_after(conn: &mut Connection) -> Progress {
    conn.io().input().clear();
    conn.close_after_reply();
    Progress::Done
}
