//! The wire formats a server speaks, each in one module behind the same
//! small interface (brpc's `policy/*_protocol`): `process` decodes what a
//! connection's input holds and dispatches each request; `run_call` runs a
//! handler and writes its reply in the format; `write_error` writes a
//! failed call's reply. The bytes themselves are codec's ([`crate::codec`]
//! and [`crate::codec::seed`]).
//!
//! A connection's format is detected from its first bytes ([`detect`]):
//! ours, the seed's, or admin HTTP (`http`, served by [`super::admin`]).

mod http;
mod mprpc;
mod seed;

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::BytesMut;

use super::close::CloseReason;
use super::connection::Connection;
use super::dispatch::{Dispatcher, Turn};
use super::metrics::ThreadStats;
use super::stats;
use super::table::Entry;
use crate::call::interceptor::{CallInfo, Interceptors};
use crate::call::metadata::Metadata;
use crate::call::status::{Code, Status};
use crate::codec::{Request, WireFormat};
use crate::service::{CallContext, Service};

pub(crate) use mprpc::run_call as run_framed_call;

/// What processing a connection's input left it as.
#[derive(Debug)]
pub(crate) enum Progress {
    /// Waiting for more bytes.
    Open,
    /// Reading paused by backpressure until the output drains.
    Paused,
    /// The connection's one request arrived (the seed's format): no more
    /// reading.
    Done,
    /// The input is invalid or asks for a close.
    Close(CloseReason),
}

/// What a connection speaks, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Speaks {
    /// An RPC wire format.
    Rpc(WireFormat),
    /// HTTP for the admin pages.
    Http,
}

impl Speaks {
    /// The name `/connections` shows.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Speaks::Rpc(WireFormat::Mprpc) => "mprpc",
            Speaks::Rpc(WireFormat::Legacy) => "seed",
            Speaks::Http => "http",
        }
    }
}

/// What a stream speaks, from its first bytes; `None` until enough arrived.
/// HTTP starts with an upper-case method and a space or more letters ("GET
/// ", "HEAD", "POST"); as a seed header size those four bytes would say
/// more than 500 MB, which no seed request is. So a stream whose first two
/// bytes are letters waits for four; every other stream is decided by two
/// bytes as [`WireFormat::detect`] does.
pub(crate) fn detect(first: &[u8]) -> Option<Speaks> {
    let letter = |b: &u8| b.is_ascii_uppercase();
    let rpc = WireFormat::detect(first)?;
    if rpc == WireFormat::Mprpc || !first[..2].iter().all(letter) {
        return Some(Speaks::Rpc(rpc));
    }
    let head = first.get(..4)?;
    let http = head.iter().all(|b| letter(b) || *b == b' ');
    Some(if http { Speaks::Http } else { Speaks::Rpc(rpc) })
}

/// Decodes and dispatches every complete request in the connection's input,
/// in whichever format it speaks, until backpressure pauses it.
pub(crate) fn process(conn: &mut Connection, dispatcher: &Dispatcher, turn: Turn) -> Progress {
    let detected_now = !conn.speaks_known();
    let Some(speaks) = conn.speaks() else {
        return Progress::Open;
    };
    if detected_now && speaks == Speaks::Rpc(WireFormat::Legacy) {
        stats::bump(&dispatcher.reactor_stats().seed_connections, 1);
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
        (Speaks::Rpc(WireFormat::Mprpc), _) => mprpc::process(conn, dispatcher, turn),
        (Speaks::Rpc(WireFormat::Legacy), _) => seed::process(conn, dispatcher, turn),
    }
}

/// Runs `request` and appends its reply, in `format`, to `out`; records
/// the call in the thread's metrics and shows its outcome to the
/// interceptors (`None`: none installed). Returns whether it succeeded.
pub(crate) fn run_call(
    entry: &Entry,
    request: Request,
    ctx: &CallContext,
    format: WireFormat,
    out: &mut BytesMut,
    stats: &ThreadStats,
    interceptors: Option<&Interceptors>,
) -> bool {
    let method_id = entry.method_id(request.method_bytes());
    let started = method_id.and_then(|id| stats.begin(id));
    let method = interceptors.map(|_| request.method_shared());
    let code = match format {
        WireFormat::Mprpc => mprpc::run_call(&*entry.service, request, ctx, out),
        WireFormat::Legacy => seed::run_call(&*entry.service, request, ctx, out),
    };
    if let Some(id) = method_id {
        stats.record(id, code, started);
    }
    if let (Some(chain), Some(method)) = (interceptors, method) {
        let method = std::str::from_utf8(&method).unwrap_or("?");
        observe(chain, entry.service.name(), method, ctx, code);
    }
    code == Code::Ok
}

/// Shows a finished (or refused) call's outcome to the interceptors.
pub(crate) fn observe(
    chain: &Interceptors,
    service: &str,
    method: &str,
    ctx: &CallContext,
    code: Code,
) {
    chain.finished(&CallInfo::of(service, method, ctx), code, ctx.received);
}

/// Appends the reply of call `id` failing with `status`, in `format`.
pub(crate) fn write_error(format: WireFormat, id: u64, status: &Status, out: &mut BytesMut) {
    match format {
        WireFormat::Mprpc => mprpc::write_error(id, status, out),
        WireFormat::Legacy => seed::write_error(status),
    }
}

/// Appends the reply of call `id` that answered later: `body` is the
/// encoded response message (the seed's format sends it bare), with
/// `metadata` if its caller reads metadata (`with_metadata`).
pub(crate) fn write_later(
    format: WireFormat,
    id: u64,
    result: Result<BytesMut, Status>,
    with_metadata: bool,
    metadata: &Metadata,
    out: &mut BytesMut,
) {
    use crate::codec::encode_response_meta;
    match (format, result) {
        (WireFormat::Mprpc, Ok(body)) => {
            encode_response_meta(id, Code::Ok, "", &body, with_metadata, metadata, out)
        }
        (WireFormat::Mprpc, Err(status)) => {
            let (code, why) = (status.code(), status.message());
            encode_response_meta(id, code, why, &[], with_metadata, metadata, out)
        }
        (WireFormat::Legacy, Ok(body)) => out.extend_from_slice(&body),
        (WireFormat::Legacy, Err(status)) => seed::write_error(&status),
    }
}

/// Appends the `Overloaded` reply of call `id`, refused without running
/// for the reason `why` (ours without allocating: a fixed message).
pub(crate) fn write_overloaded(format: WireFormat, id: u64, why: &'static str, out: &mut BytesMut) {
    match format {
        WireFormat::Mprpc => crate::codec::encode_response(id, Code::Overloaded, why, &[], out),
        WireFormat::Legacy => seed::write_error(&Status::overloaded(why)),
    }
}

/// Runs the handler in the call's span, turning a panic into an
/// `Internal` status.
fn invoke(
    service: &dyn Service,
    mut request: Request,
    ctx: &CallContext,
    out: &mut BytesMut,
) -> Result<(), Status> {
    let payload = std::mem::take(&mut request.payload);
    let method = request.method();
    let span = crate::call::trace::call_span(service.name(), method, ctx.peer, ctx.trace_id);
    let _entered = span.enter();
    let result = catch_unwind(AssertUnwindSafe(|| {
        crate::call::deadline::serving(ctx.serving(), || service.call(method, ctx, payload, out))
    }))
    .unwrap_or_else(|panic| Err(Status::internal(panic_text(&panic))));
    if let Err(status) = &result {
        if status.code() == Code::Internal {
            tracing::error!(service = service.name(), method, %status, "handler failed");
        }
    }
    result
}

/// A caught panic as the message of the `Internal` status it becomes.
pub(crate) fn panic_text(panic: &Box<dyn Any + Send>) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("handler panicked: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_decide() {
        assert_eq!(detect(b"M"), None);
        assert_eq!(detect(b"MP\x01"), Some(Speaks::Rpc(WireFormat::Mprpc)));
        // A 77-byte seed header: 'M', then zeros.
        assert_eq!(detect(b"M\x00"), Some(Speaks::Rpc(WireFormat::Legacy)));
        assert_eq!(detect(b"GE"), None, "two letters wait for four bytes");
        assert_eq!(detect(b"GET "), Some(Speaks::Http));
        assert_eq!(detect(b"HEAD /"), Some(Speaks::Http));
        assert_eq!(detect(b"AB\x00\x00"), Some(Speaks::Rpc(WireFormat::Legacy)));
    }
}
