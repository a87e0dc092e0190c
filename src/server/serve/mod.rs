//! From a connection's input to its calls: what the connection speaks
//! decides who reads it. Admin HTTP is answered by the admin pages
//! (`http`); an RPC wire format reads it through its
//! [`Protocol`](crate::protocol::Protocol), which sees the connection as a
//! [`Session`](crate::protocol::Session) (`session`) and never the reactor.

mod http;
mod session;

use super::close::CloseReason;
use super::connection::Connection;
use super::dispatch::{Dispatcher, Turn};
use super::speaks::Speaks;
use crate::protocol::Progress;

/// Decodes and dispatches every complete request in the connection's input,
/// in whatever it speaks, until backpressure pauses it.
pub(crate) fn process(conn: &mut Connection, dispatcher: &Dispatcher, turn: Turn) -> Progress {
    let detected_now = !conn.speaks_known();
    let Some(speaks) = conn.speaks() else {
        return Progress::Open;
    };
    if let (true, Speaks::Rpc(format)) = (detected_now, speaks) {
        dispatcher.reactor_stats().opened_speaking(format);
    }
    // Admin HTTP where it is served; RPC anywhere but the admin port.
    let admin = dispatcher
        .admin()
        .filter(|admin| conn.on_admin_port() || admin.on_rpc_port());
    match (speaks, admin) {
        (Speaks::Http, Some(admin)) => http::process(conn, dispatcher, admin),
        (Speaks::Http, None) => Progress::Close(CloseReason::AdminRefused(
            "HTTP on the RPC port, where the admin pages are off",
        )),
        (Speaks::Rpc(_), _) if conn.on_admin_port() => {
            Progress::Close(CloseReason::AdminRefused("not HTTP on the admin port"))
        }
        (Speaks::Rpc(format), _) => {
            let mut session = session::Served::new(conn, dispatcher, turn);
            format.protocol().process(&mut session)
        }
    }
}
