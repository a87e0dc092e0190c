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

use super::metrics::ThreadStats;
use crate::codec::{encode_response, encode_response_with, Request};
use crate::discovery::WireFormat;
use crate::service::{CallContext, Service};
use crate::status::{Code, Status};

/// A published service and where its handlers run.
#[derive(Clone)]
pub(crate) struct Entry {
    pub service: Arc<dyn Service>,
    pub blocking: bool,
    /// Metrics id of the service's first method; the others follow in
    /// `methods()` order.
    pub first_method_id: usize,
}

impl Entry {
    /// The metrics id of `method`, if the service has it.
    fn method_id(&self, method: &[u8]) -> Option<usize> {
        let methods = self.service.methods();
        let pos = methods.iter().position(|m| m.as_bytes() == method)?;
        Some(self.first_method_id + pos)
    }
}

/// Up to this many services, lookup scans instead of hashing.
const LINEAR_LOOKUP_MAX: usize = 8;

/// Service name → entry, looked up with the request's name bytes.
#[derive(Default)]
pub(crate) struct ServiceTable {
    by_name: HashMap<Box<[u8]>, Entry>,
    /// The same entries in a vector, for the linear lookup.
    list: Vec<(Box<[u8]>, Entry)>,
    /// (service, method) for each metrics id.
    method_names: Vec<(&'static str, &'static str)>,
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
        let first_method_id = self.method_names.len();
        let service_name = service.name();
        self.method_names
            .extend(service.methods().iter().map(|m| (service_name, *m)));
        let entry = Entry {
            service,
            blocking,
            first_method_id,
        };
        self.list.retain(|(n, _)| *n != name);
        self.list.push((name.clone(), entry.clone()));
        self.by_name.insert(name, entry);
    }

    pub fn method_names(&self) -> Vec<(&'static str, &'static str)> {
        self.method_names.clone()
    }

    pub fn get(&self, name: &[u8]) -> Option<&Entry> {
        // A handful of services is the common case: comparing a few short
        // names beats hashing one with SipHash.
        if self.by_name.len() <= LINEAR_LOOKUP_MAX {
            return self
                .list
                .iter()
                .find(|(n, _)| &n[..] == name)
                .map(|(_, e)| e);
        }
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
    entry: &Entry,
    request: Request,
    ctx: &CallContext,
    format: WireFormat,
    out: &mut BytesMut,
    stats: &ThreadStats,
) {
    let method_id = entry.method_id(request.method_bytes());
    let started = stats.start_timer();
    let ok = match format {
        WireFormat::Legacy => run_legacy_call(&*entry.service, request, ctx, out),
        WireFormat::Mprpc => run_framed_call(&*entry.service, request, ctx, out),
    };
    if let Some(id) = method_id {
        stats.record(id, ok, started);
    }
}

/// Our format; returns whether the call succeeded.
pub(crate) fn run_framed_call(
    service: &dyn Service,
    request: Request,
    ctx: &CallContext,
    out: &mut BytesMut,
) -> bool {
    let id = request.id;
    let start = out.len();
    let mut result = Ok(());
    encode_response_with(id, Code::Ok, "", out, |buf| {
        result = invoke(service, request, ctx, buf)
    });
    match result {
        Ok(()) => true,
        Err(status) => {
            out.truncate(start);
            reply_error(id, &status, out);
            false
        }
    }
}

/// The seed's format; returns whether the call succeeded.
fn run_legacy_call(
    service: &dyn Service,
    request: Request,
    ctx: &CallContext,
    out: &mut BytesMut,
) -> bool {
    let start = out.len();
    match invoke(service, request, ctx, out) {
        Ok(()) => true,
        Err(status) => {
            out.truncate(start);
            tracing::warn!(service = service.name(), %status, "seed-format call failed; closing without a reply");
            false
        }
    }
}

/// Runs the handler, turning a panic into an `Internal` status.
fn invoke(
    service: &dyn Service,
    request: Request,
    ctx: &CallContext,
    out: &mut BytesMut,
) -> Result<(), Status> {
    let mut request = request;
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
