//! Service table and request dispatch: from a decoded request to the bytes
//! of its reply frame.
//!
//! The table maps a service's wire name to the service and to where its
//! handlers run (inline on the reactor, or on the worker pool). Running a
//! handler is wrapped so that a panic in user code becomes an `Internal`
//! reply instead of killing a reactor thread.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use bytes::BytesMut;

use crate::codec::{encode_response, encode_response_with, Request};
use crate::discovery::WireFormat;
use crate::service::{CallContext, Service};
use crate::status::{Code, Status};

/// A published service and where its handlers run.
#[derive(Clone)]
pub(crate) struct Entry {
    pub service: Arc<dyn Service>,
    pub blocking: bool,
}

/// Service name → entry, looked up with the request's name bytes.
#[derive(Default)]
pub(crate) struct ServiceTable {
    by_name: HashMap<Box<[u8]>, Entry>,
}

impl ServiceTable {
    pub fn insert(&mut self, service: Arc<dyn Service>, blocking: bool) {
        let name: Box<[u8]> = service.name().as_bytes().into();
        if self.by_name.contains_key(&name) {
            tracing::warn!(
                service = service.name(),
                "service published twice; the later one wins"
            );
        }
        self.by_name.insert(name, Entry { service, blocking });
    }

    pub fn get(&self, name: &[u8]) -> Option<&Entry> {
        self.by_name.get(name)
    }

    pub fn has_blocking(&self) -> bool {
        self.by_name.values().any(|e| e.blocking)
    }

    /// (name, methods) of every service, sorted by name.
    pub fn describe(&self) -> Vec<(&'static str, &'static [&'static str])> {
        let mut list: Vec<_> = self
            .by_name
            .values()
            .map(|e| (e.service.name(), e.service.methods()))
            .collect();
        list.sort();
        list
    }
}

/// Runs `request` on `service` and appends the complete reply to `out`.
///
/// Our format: the success path encodes the response message straight into
/// `out` after the reply header; on failure the partial frame is cut off and
/// an error reply is written instead. The seed's format has no way to say
/// "error": the reply is the bare message on success and nothing otherwise
/// (the connection is closed either way).
pub(crate) fn run_call(
    service: &dyn Service,
    request: Request,
    ctx: &CallContext,
    format: WireFormat,
    out: &mut BytesMut,
) {
    if format == WireFormat::Legacy {
        return run_legacy_call(service, request, ctx, out);
    }
    let Request {
        id,
        method,
        payload,
        ..
    } = request;
    // The decoder checked that names are UTF-8.
    let method = std::str::from_utf8(&method).unwrap_or("");
    if ctx.expired() {
        let status = Status::deadline_exceeded("deadline passed before the handler started");
        encode_response(id, status.code(), status.message(), &[], out);
        return;
    }
    let start = out.len();
    let mut result = Ok(());
    encode_response_with(id, Code::Ok, "", out, |buf| {
        result = catch_unwind(AssertUnwindSafe(|| service.call(method, ctx, payload, buf)))
            .unwrap_or_else(|panic| Err(Status::internal(panic_text(&panic))));
    });
    if let Err(status) = result {
        out.truncate(start);
        if status.code() == Code::Internal {
            tracing::error!(service = service.name(), method, %status, "handler failed");
        }
        encode_response(id, status.code(), status.message(), &[], out);
    }
}

fn run_legacy_call(service: &dyn Service, request: Request, ctx: &CallContext, out: &mut BytesMut) {
    let start = out.len();
    let method = std::str::from_utf8(&request.method).unwrap_or("");
    let result = catch_unwind(AssertUnwindSafe(|| {
        service.call(method, ctx, request.payload.clone(), out)
    }))
    .unwrap_or_else(|panic| Err(Status::internal(panic_text(&panic))));
    if let Err(status) = result {
        out.truncate(start);
        tracing::warn!(service = service.name(), method, %status, "seed-format call failed; closing without a reply");
    }
}

/// Appends an error reply frame.
pub(crate) fn reply_error(id: u64, status: &Status, out: &mut BytesMut) {
    encode_response(id, status.code(), status.message(), &[], out);
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("handler panicked: {what}")
}
