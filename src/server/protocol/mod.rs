//! The wire formats a server speaks, each in one module behind the same
//! small interface (brpc's `policy/*_protocol`): `process` decodes what a
//! connection's input holds and dispatches each request; `run_call` runs a
//! handler and writes its reply in the format; `write_error` writes a
//! failed call's reply. The bytes themselves are codec's ([`crate::codec`]
//! and [`crate::codec::seed`]).
//!
//! A connection's format is detected from its first two bytes.

mod mprpc;
mod seed;

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::BytesMut;

use super::close::CloseReason;
use super::connection::Connection;
use super::dispatch::{Dispatcher, Turn};
use super::metrics::ThreadStats;
use super::table::Entry;
use crate::codec::{Request, WireFormat};
use crate::service::{CallContext, Service};
use crate::status::{Code, Status};

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

/// Decodes and dispatches every complete request in the connection's input,
/// in whichever format it speaks, until backpressure pauses it.
pub(crate) fn process(conn: &mut Connection, dispatcher: &Dispatcher, turn: Turn) -> Progress {
    match conn.format() {
        None => Progress::Open,
        Some(WireFormat::Mprpc) => mprpc::process(conn, dispatcher, turn),
        Some(WireFormat::Legacy) => seed::process(conn, dispatcher, turn),
    }
}

/// Runs `request` and appends its reply, in `format`, to `out`; records
/// the call in the thread's metrics. Returns whether it succeeded.
pub(crate) fn run_call(
    entry: &Entry,
    request: Request,
    ctx: &CallContext,
    format: WireFormat,
    out: &mut BytesMut,
    stats: &ThreadStats,
) -> bool {
    let method_id = entry.method_id(request.method_bytes());
    let started = stats.start_timer();
    let ok = match format {
        WireFormat::Mprpc => mprpc::run_call(&*entry.service, request, ctx, out),
        WireFormat::Legacy => seed::run_call(&*entry.service, request, ctx, out),
    };
    if let Some(id) = method_id {
        stats.record(id, ok, started);
    }
    ok
}

/// Appends the reply of call `id` failing with `status`, in `format`.
pub(crate) fn write_error(format: WireFormat, id: u64, status: &Status, out: &mut BytesMut) {
    match format {
        WireFormat::Mprpc => mprpc::write_error(id, status, out),
        WireFormat::Legacy => seed::write_error(status),
    }
}

/// Appends the `Overloaded` reply of call `id`, refused by its method's
/// concurrency limit (ours without allocating: a fixed message).
pub(crate) fn write_overloaded(format: WireFormat, id: u64, out: &mut BytesMut) {
    const WHY: &str = "the method is over its concurrency limit; the call did not run";
    match format {
        WireFormat::Mprpc => crate::codec::encode_response(id, Code::Overloaded, WHY, &[], out),
        WireFormat::Legacy => seed::write_error(&Status::overloaded(WHY)),
    }
}

/// Runs the handler, turning a panic into an `Internal` status.
fn invoke(
    service: &dyn Service,
    mut request: Request,
    ctx: &CallContext,
    out: &mut BytesMut,
) -> Result<(), Status> {
    let payload = std::mem::take(&mut request.payload);
    let method = request.method();
    let result = catch_unwind(AssertUnwindSafe(|| service.call(method, ctx, payload, out)))
        .unwrap_or_else(|panic| Err(Status::internal(panic_text(&panic))));
    if let Err(status) = &result {
        if status.code() == Code::Internal {
            tracing::error!(service = service.name(), method, %status, "handler failed");
        }
    }
    result
}

fn panic_text(panic: &Box<dyn Any + Send>) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("handler panicked: {what}")
}
