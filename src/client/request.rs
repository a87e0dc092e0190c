//! A call's request as parts (names, payload, metadata) until the driver
//! packs it for the provider it picked.
//!
//! The provider decides the bytes: its wire format's [`Protocol`] packs
//! the request (`pack_request`), straight into the output of the
//! connection it goes to, or for a short connection into the bytes that
//! connection sends. So nothing is packed before the provider is known and
//! nothing packed is ever parsed back: a call started on the driver's
//! thread is packed from the caller's own arguments ([`Parts`]); one
//! queued by another thread, or kept for a retry elsewhere, from a copy of
//! its parts ([`Staged`]).

use std::ops::Range;
use std::time::Instant;

use bytes::BytesMut;

use super::conn::budget_ms;
use crate::call::metadata::Metadata;
use crate::call::trace::TraceId;
use crate::protocol::mprpc::{RequestHead, RequestMeta};
use crate::protocol::Protocol;

/// A request's parts, borrowed.
#[derive(Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub id: u64,
    /// When the call's budget runs out; packed as the time left then.
    pub deadline: Option<Instant>,
    /// That time left in whole milliseconds, when it is known to be
    /// current (a call started in this loop turn), saving the clock
    /// arithmetic.
    pub timeout_ms: Option<u32>,
    pub service: &'a str,
    pub method: &'a str,
    pub payload: &'a [u8],
    pub metadata: &'a Metadata,
    pub trace: Option<TraceId>,
    /// The caller reads the reply's metadata.
    pub reply_metadata: bool,
}

impl Parts<'_> {
    /// Appends the request, packed by `protocol` with its budget as of
    /// `now`, to `out`.
    pub(crate) fn pack(&self, protocol: &dyn Protocol, now: Instant, out: &mut BytesMut) {
        let timeout_ms = self
            .timeout_ms
            .unwrap_or_else(|| self.deadline.map_or(0, |d| budget_ms(d, now)));
        let head = RequestHead {
            id: self.id,
            timeout_ms,
            service: self.service,
            method: self.method,
        };
        let meta = RequestMeta {
            metadata: self.metadata,
            trace: self.trace,
            reply_metadata: self.reply_metadata,
        };
        protocol.pack_request(head, meta, self.payload, out);
    }

    /// The parts copied into `buf` (cleared first), to keep.
    pub(crate) fn stage(&self, mut buf: BytesMut) -> Staged {
        buf.clear();
        let names = stage_into(&mut buf, self.service, self.method, self.payload);
        Staged {
            buf,
            names,
            id: self.id,
            deadline: self.deadline,
            metadata: self.metadata.clone(),
            trace: self.trace,
            reply_metadata: self.reply_metadata,
        }
    }
}

/// Where the names sit among staged bytes: `service | method | payload`.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub all: Range<usize>,
    pub service_len: usize,
    pub method_len: usize,
}

/// Appends `service | method | payload` to `buf`; says where they are.
pub(crate) fn stage_into(buf: &mut BytesMut, service: &str, method: &str, payload: &[u8]) -> Names {
    let start = buf.len();
    buf.extend_from_slice(service.as_bytes());
    buf.extend_from_slice(method.as_bytes());
    buf.extend_from_slice(payload);
    Names {
        all: start..buf.len(),
        service_len: service.len(),
        method_len: method.len(),
    }
}

/// The names and payload staged at `names` in `buf`. They were `&str`
/// when staged, so they are UTF-8; an empty name stands in if not.
pub(crate) fn staged<'a>(buf: &'a [u8], names: &Names) -> (&'a str, &'a str, &'a [u8]) {
    let all = &buf[names.all.clone()];
    let (service, rest) = all.split_at(names.service_len);
    let (method, payload) = rest.split_at(names.method_len);
    let text = |bytes| std::str::from_utf8(bytes).unwrap_or_default();
    (text(service), text(method), payload)
}

/// A request's parts, owned: what a retry elsewhere packs again.
#[derive(Debug)]
pub(crate) struct Staged {
    buf: BytesMut,
    names: Names,
    id: u64,
    deadline: Option<Instant>,
    metadata: Metadata,
    trace: Option<TraceId>,
    reply_metadata: bool,
}

impl Staged {
    pub(crate) fn parts(&self) -> Parts<'_> {
        let (service, method, payload) = staged(&self.buf, &self.names);
        Parts {
            id: self.id,
            deadline: self.deadline,
            timeout_ms: None,
            service,
            method,
            payload,
            metadata: &self.metadata,
            trace: self.trace,
            reply_metadata: self.reply_metadata,
        }
    }

    /// Holds `parts` instead, its buffer reused.
    pub(crate) fn refill(&mut self, parts: &Parts<'_>) {
        self.buf.clear();
        self.names = stage_into(&mut self.buf, parts.service, parts.method, parts.payload);
        self.id = parts.id;
        self.deadline = parts.deadline;
        self.metadata = parts.metadata.clone();
        self.trace = parts.trace;
        self.reply_metadata = parts.reply_metadata;
    }

    /// Bytes it holds.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
}
