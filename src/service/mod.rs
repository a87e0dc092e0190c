//! The server-side contract between the framework and a service.
//!
//! Code generation (`mprpc-build`) turns each `.proto` `service` into a trait
//! the user implements plus a `...Server<T>` wrapper that implements
//! [`Service`]: it knows the service's wire name, its methods, and how to
//! decode a request, call the user's method and encode the reply. The server
//! only ever sees `dyn Service`, so any number of services can be published
//! side by side.

pub mod blocking_stream;
pub mod reflection;
pub mod responder;
pub mod stream;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use crate::call::metadata::{Metadata, MetadataTooLong};
use crate::call::status::Status;
use crate::call::trace::TraceId;

/// What a handler knows about the call it is serving.
#[derive(Debug)]
#[non_exhaustive]
pub struct CallContext {
    /// The request id on its connection (unique per connection only).
    pub request_id: u64,
    /// When the caller stops waiting; `None` if the caller set no deadline.
    pub deadline: Option<Instant>,
    /// The caller's address.
    pub peer: SocketAddr,
    /// The request's metadata (empty when the caller sent none).
    pub metadata: Metadata,
    /// The request chain's trace id: the caller's, or made up here when
    /// it sent none. Calls this handler starts carry it on.
    pub trace_id: TraceId,
    /// When the request arrived (interceptors' latency starts here).
    pub(crate) received: Instant,
    /// The reply's metadata, set by the handler.
    reply: ReplyMetadata,
}

/// Where a handler's reply metadata waits for the reply: in the context
/// (sync handlers, which the server reads back once they return), or
/// shared with the server (async handlers own their context).
#[derive(Debug)]
enum ReplyMetadata {
    Here(Mutex<Metadata>),
    Shared(Arc<Mutex<Metadata>>),
}

impl Clone for CallContext {
    /// A copy for the handler's own use; a clone of an async handler's
    /// context sets the same reply metadata, a sync one's a copy.
    fn clone(&self) -> Self {
        CallContext {
            request_id: self.request_id,
            deadline: self.deadline,
            peer: self.peer,
            metadata: self.metadata.clone(),
            trace_id: self.trace_id,
            received: self.received,
            reply: match &self.reply {
                ReplyMetadata::Here(m) => ReplyMetadata::Here(Mutex::new(m.lock().clone())),
                ReplyMetadata::Shared(m) => ReplyMetadata::Shared(m.clone()),
            },
        }
    }
}

impl CallContext {
    /// A context for call `request_id` from `peer` (no metadata, a new
    /// trace id): what the server builds, for tests and benchmarks.
    pub fn new(request_id: u64, deadline: Option<Instant>, peer: SocketAddr) -> CallContext {
        CallContext::with_metadata(request_id, deadline, peer, Metadata::new(), Instant::now())
    }

    /// A context carrying the request's `metadata`, its trace id read from
    /// it (or made up). Always inlined: built in place in the dispatcher's
    /// frame, not returned by copy (issue 25: ~68 instructions per call as
    /// a call of its own).
    #[inline(always)]
    pub(crate) fn with_metadata(
        request_id: u64,
        deadline: Option<Instant>,
        peer: SocketAddr,
        metadata: Metadata,
        received: Instant,
    ) -> CallContext {
        CallContext {
            request_id,
            deadline,
            peer,
            trace_id: TraceId::of_request(&metadata),
            metadata,
            received,
            reply: ReplyMetadata::Here(Mutex::new(Metadata::new())),
        }
    }

    /// Sets `key` in the reply's metadata (the caller reads it with the
    /// reply, failed or not). A caller of protocol version 1 cannot read
    /// metadata; it gets the reply without.
    pub fn set_reply_metadata(&self, key: &str, value: &str) -> Result<(), MetadataTooLong> {
        match &self.reply {
            ReplyMetadata::Here(m) => m.lock().insert(key, value),
            ReplyMetadata::Shared(m) => m.lock().insert(key, value),
        }
    }

    /// Takes the reply metadata set so far.
    pub(crate) fn take_reply_metadata(&self) -> Metadata {
        match &self.reply {
            ReplyMetadata::Here(m) => std::mem::take(&mut *m.lock()),
            ReplyMetadata::Shared(m) => std::mem::take(&mut *m.lock()),
        }
    }

    /// Shares the reply metadata with the server, for a handler that
    /// answers later (it owns its context).
    pub(crate) fn share_reply_metadata(&mut self) -> Arc<Mutex<Metadata>> {
        if let ReplyMetadata::Shared(m) = &self.reply {
            return m.clone();
        }
        let shared = Arc::new(Mutex::new(self.take_reply_metadata()));
        self.reply = ReplyMetadata::Shared(shared.clone());
        shared
    }

    /// What calls started while serving this one inherit.
    pub(crate) fn serving(&self) -> crate::call::deadline::Serving {
        crate::call::deadline::Serving {
            deadline: self.deadline,
            trace: self.trace_id,
        }
    }

    /// Time left before the caller gives up; `None` means no deadline.
    pub fn remaining(&self) -> Option<std::time::Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// True once the caller's deadline has passed: a long handler can stop
    /// early, nobody is waiting for its answer.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// A published service: the server dispatches every call through this.
pub trait Service: Send + Sync + 'static {
    /// The service's wire name: the `.proto` service name (e.g. `UserServiceRpc`).
    fn name(&self) -> &'static str;

    /// The names of its methods, as in the `.proto` file.
    fn methods(&self) -> &'static [&'static str];

    /// Decodes `request` for `method`, runs the handler and appends the
    /// encoded response message to `response` (no framing; the server adds it).
    ///
    /// Errors: `UnknownMethod` when the method does not exist, `BadRequest`
    /// when the request does not decode, or whatever the handler returned.
    fn call(
        &self,
        method: &str,
        ctx: &CallContext,
        request: Bytes,
        response: &mut BytesMut,
    ) -> Result<(), Status>;

    /// The service's `.proto` schema, served by the built-in
    /// `mprpc.Reflection` service (`crate::service::reflection`). Code generated by
    /// `mprpc-build` embeds it; a hand-written service has none.
    fn schema(&self) -> Option<Schema> {
        None
    }

    /// True for a service whose handlers answer later: the server calls
    /// [`Service::call_later`] and polls the future on the connection's
    /// reactor instead of calling [`Service::call`]. Code generation says
    /// so for services built with `mprpc_build::Builder::async_service`.
    fn answers_later(&self) -> bool {
        false
    }

    /// Decodes `request` for `method` and starts the handler; the future
    /// yields the encoded response message (no framing). It is polled on
    /// the reactor that read the request, woken through that reactor's
    /// `Waker`, and dropped unfinished if the connection closes or the
    /// caller cancels. It must not block: await other futures instead.
    ///
    /// Errors (the call is answered at once): as for [`Service::call`].
    fn call_later(
        &self,
        method: &str,
        ctx: CallContext,
        request: Bytes,
    ) -> Result<ReplyFuture, Status> {
        let _ = (ctx, request);
        Err(Status::unknown_method(self.name(), method))
    }

    /// Starts the handler of streaming `method` for a stream the client
    /// opened: `request` is a server stream's request message (empty for
    /// the other shapes), `io` gives the handler its sender and the
    /// client's messages. The future is polled on the reactor that read
    /// the open, as [`Service::call_later`]'s are; the stream ends when it
    /// finishes (with its status), and it is dropped unfinished when the
    /// client resets the stream, its deadline passes or the connection
    /// closes.
    ///
    /// Errors (the stream ends at once with it): `Unimplemented` for a
    /// method that is not a stream (the default: a service without
    /// streams), or a stream opened in another shape than the method's;
    /// `UnknownMethod`; `BadRequest`.
    fn open_stream(
        &self,
        method: &str,
        ctx: CallContext,
        request: Bytes,
        io: stream::StreamIo,
    ) -> Result<stream::StreamFuture, Status> {
        let _ = (ctx, request, io);
        Err(Status::unimplemented(format!(
            "{}.{method} is not a streaming method",
            self.name()
        )))
    }

    /// True for a service whose stream handlers block: they run on the
    /// server's worker pool ([`blocking_stream`]), so the server starts
    /// one even if no service is published as blocking. Code generation
    /// says so for services built with
    /// `mprpc_build::Builder::blocking_streams`.
    fn blocking_streams(&self) -> bool {
        false
    }
}

/// A handler's answer to come: the encoded response message, or a status.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Result<BytesMut, Status>> + Send + 'static>>;

/// Turns a handler's typed future into a [`ReplyFuture`] that encodes its
/// message (what generated async services call).
pub fn encode_later<M, F>(reply: F) -> ReplyFuture
where
    M: prost::Message,
    F: Future<Output = Result<M, Status>> + Send + 'static,
{
    Box::pin(async move {
        let message = reply.await?;
        let mut out = BytesMut::with_capacity(message.encoded_len());
        message
            .encode(&mut out)
            .map_err(|e| Status::internal(format!("cannot encode reply: {e}")))?;
        Ok(out)
    })
}

/// Where a service's `.proto` schema is: what reflection hands to tools
/// such as the `mprpc` command-line client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    /// The service's full `.proto` name, `package.Service`
    /// (`fixbug.UserServiceRpc`), to find it in the descriptors.
    pub proto_name: &'static str,
    /// An encoded `google.protobuf.FileDescriptorSet` holding the file that
    /// defines the service and every file it imports.
    pub file_descriptor_set: &'static [u8],
}

/// A published service as the server lists it and the registry announces
/// it: its wire name and its methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceInfo {
    /// The service's wire name ([`Service::name`]).
    pub name: &'static str,
    /// Its methods ([`Service::methods`]).
    pub methods: &'static [&'static str],
}

impl ServiceInfo {
    /// A service named `name` with `methods`.
    pub const fn new(name: &'static str, methods: &'static [&'static str]) -> ServiceInfo {
        ServiceInfo { name, methods }
    }
}
