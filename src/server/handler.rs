//! Running a handler, the one way every call runs: in its span, as serving
//! its call (calls it starts inherit its deadline and trace id), a panic
//! caught and turned into `Internal` ([`guarded`]). A sync handler's reply
//! is packed by its call's wire format around what the handler writes
//! ([`run_call`]); futures of services that answer later are started and
//! polled through [`guarded`] too (`dispatch`, `pending`).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::BytesMut;

use super::metrics::ThreadStats;
use super::table::Entry;
use crate::call::deadline::{self, Serving};
use crate::call::interceptor::{CallInfo, Interceptors};
use crate::protocol::mprpc::Request;
use crate::protocol::{ReplyTo, WireFormat};
use crate::service::{CallContext, Service};
use crate::{Code, Metadata, Status};

/// Runs `handler` in `span`, as serving the call `serving` describes; a
/// panic becomes an `Internal` status.
pub(crate) fn guarded<T>(
    span: &tracing::Span,
    serving: Serving,
    handler: impl FnOnce() -> T,
) -> Result<T, Status> {
    let _entered = span.enter();
    catch_unwind(AssertUnwindSafe(|| deadline::serving(serving, handler)))
        .map_err(|panic| Status::internal(panic_text(&panic)))
}

/// Runs `request` and appends its reply, packed in `format`, to `out`;
/// records the call in the thread's metrics and shows its outcome to the
/// interceptors (`None`: none installed). Returns whether it succeeded.
pub(crate) fn run_call(
    entry: &Entry,
    mut request: Request,
    ctx: &CallContext,
    format: WireFormat,
    out: &mut BytesMut,
    stats: &ThreadStats,
    interceptors: Option<&Interceptors>,
) -> bool {
    let method_id = entry.method_id(request.method_bytes());
    let started = method_id.and_then(|id| stats.begin(id));
    let method = interceptors.map(|_| request.method_shared());
    let code = reply_with_handler(&*entry.service, &mut request, ctx, format, out);
    if let Some(id) = method_id {
        stats.record(id, code, started);
    }
    if let (Some(chain), Some(method)) = (interceptors, method) {
        let method = std::str::from_utf8(&method).unwrap_or("?");
        observe(chain, entry.service.name(), method, ctx, code);
    }
    code == Code::Ok
}

/// Writes the reply's start, has the handler encode the response message
/// straight into `out` after it, and finishes it; on failure that partial
/// reply is cut off and the failure written instead. A caller that reads
/// metadata gets the reply metadata the handler set, failed or not.
/// Returns the call's status code. The request is borrowed (its payload
/// taken), not moved: a move per call level copies its ~120 bytes.
pub(crate) fn reply_with_handler(
    service: &dyn Service,
    request: &mut Request,
    ctx: &CallContext,
    format: WireFormat,
    out: &mut BytesMut,
) -> Code {
    let protocol = format.protocol();
    let to = ReplyTo::of(request);
    let started = protocol.begin_reply(to, out);
    let result = invoke(service, request, ctx, out);
    let metadata = match to.with_metadata {
        true => ctx.take_reply_metadata(),
        false => Metadata::new(),
    };
    match result {
        Ok(()) => {
            protocol.end_reply(started, &metadata, out);
            Code::Ok
        }
        Err(status) => {
            out.truncate(started.at);
            let failure = (status.code(), status.message());
            protocol.write_reply(to, Err(failure), &metadata, out);
            status.code()
        }
    }
}

/// Runs a sync handler on `request`, the response message appended to `out`.
fn invoke(
    service: &dyn Service,
    request: &mut Request,
    ctx: &CallContext,
    out: &mut BytesMut,
) -> Result<(), Status> {
    let payload = std::mem::take(&mut request.payload);
    let method = request.method();
    let span = crate::call::trace::call_span(service.name(), method, ctx.peer, ctx.trace_id);
    let result = guarded(&span, ctx.serving(), || {
        service.call(method, ctx, payload, out)
    })
    .and_then(|handled| handled);
    if let Err(status) = &result {
        if status.code() == Code::Internal {
            let _entered = span.enter();
            tracing::error!(service = service.name(), method, %status, "handler failed");
        }
    }
    result
}

/// Appends the reply of call `id` failing with `failure` (code and text)
/// before it ran (refused, or expired in a queue), in `format`; no
/// metadata, so ours is a version 1 frame any caller reads.
pub(crate) fn write_failure(
    format: WireFormat,
    id: u64,
    failure: (Code, &str),
    out: &mut BytesMut,
) {
    let to = ReplyTo {
        id,
        with_metadata: false,
    };
    format
        .protocol()
        .write_reply(to, Err(failure), &Metadata::new(), out);
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

/// A caught panic as the message of the `Internal` status it becomes.
fn panic_text(panic: &Box<dyn Any + Send>) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("handler panicked: {what}")
}
