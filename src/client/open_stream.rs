//! Opening streams on a [`Channel`]: `server_stream`, `client_stream`,
//! `bidi_stream` and the general `open_stream`, read by the caller, and
//! their `*_with` forms, consumed by a [`StreamHandler`] on the channel's
//! I/O thread. Each makes the stream's
//! [`ClientCore`] and hands its open to one of the channel's drivers
//! (`client::stream` has what the caller holds; `driver::streams` what the
//! driver does).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::observe::Watch;
use super::stream::{
    next_id, ClientCore, ClientStreamCall, Handled, NewStream, StreamControl, StreamHandler,
    StreamReceiver, StreamRequests, Typed,
};
use super::Channel;
use crate::call::controller::CallOptions;
use crate::call::interceptor::ClientCall;
use crate::call::metadata::Metadata;
use crate::call::status::Status;
use crate::call::trace::{TraceId, TRACE_ID_KEY};
use crate::discovery::Endpoint;
use crate::protocol::mprpc::{check_names, StreamShape};

/// Where a stream may go, the metadata its open carries, and the trace id
/// it carries on.
type StreamTarget = (Arc<[Endpoint]>, Metadata, Option<TraceId>);

impl Channel {
    /// Opens server stream `service.method` with `request`: the server's
    /// messages arrive on the receiver, `window` (the channel's
    /// `stream_window`) at a time. The stream's deadline is
    /// `options.timeout` for the whole stream (none when unset: a stream
    /// may be a long watch). Failures before it opens (no provider, bad
    /// names, a format without streams) come out of the receiver.
    pub fn server_stream<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        request: &Req,
        options: &CallOptions,
    ) -> StreamReceiver<Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let payload = request.encode_to_vec().into();
        self.open_stream::<(), Resp>(service, method, StreamShape::Server, payload, options)
            .1
    }

    /// Opens client stream `service.method`: send its requests, then
    /// `finish` for the reply.
    pub fn client_stream<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        options: &CallOptions,
    ) -> ClientStreamCall<Req, Resp>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let (requests, replies) =
            self.open_stream(service, method, StreamShape::Client, Bytes::new(), options);
        ClientStreamCall::new(requests, replies)
    }

    /// Opens bidirectional stream `service.method`.
    pub fn bidi_stream<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        options: &CallOptions,
    ) -> (StreamRequests<Req>, StreamReceiver<Resp>)
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        self.open_stream(service, method, StreamShape::Bidi, Bytes::new(), options)
    }

    /// Opens a stream of any `shape` (`payload`: a server stream's encoded
    /// request, else empty).
    pub fn open_stream<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        shape: StreamShape,
        payload: Bytes,
        options: &CallOptions,
    ) -> (StreamRequests<Req>, StreamReceiver<Resp>)
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let (core, window) = self.new_core(service, method);
        let pair = (
            StreamRequests::new(core.clone(), !shape.client_streams()),
            StreamReceiver::new(core.clone()),
        );
        self.start_stream(core, window, (service, method, shape), payload, options);
        pair
    }

    /// Opens server stream `service.method` with `request`, its messages
    /// delivered to `handler` on the channel's I/O thread in batches (see
    /// [`StreamHandler`]); otherwise as [`server_stream`](Self::server_stream).
    /// A failure before the stream opens (bad names, no provider known,
    /// an interceptor's refusal) reaches `on_closed` at once on this
    /// thread, or, opened from a handler or callback on the channel's I/O
    /// thread, once that call returns.
    pub fn server_stream_with<Req, Resp, H>(
        &self,
        service: &str,
        method: &str,
        request: &Req,
        options: &CallOptions,
        handler: H,
    ) -> StreamControl
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + 'static,
        H: StreamHandler<(), Resp>,
    {
        let payload = request.encode_to_vec().into();
        let shape = StreamShape::Server;
        self.open_stream_with(service, method, shape, payload, options, handler)
    }

    /// Opens client stream `service.method`, consumed by `handler`: it
    /// sends from `on_writable` (called once the server's first credit
    /// comes, and again whenever a `try_send` found none), half-closes,
    /// and gets the server's one reply in `on_messages`.
    pub fn client_stream_with<Req, Resp, H>(
        &self,
        service: &str,
        method: &str,
        options: &CallOptions,
        handler: H,
    ) -> StreamControl
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + 'static,
        H: StreamHandler<Req, Resp>,
    {
        let shape = StreamShape::Client;
        self.open_stream_with(service, method, shape, Bytes::new(), options, handler)
    }

    /// Opens bidirectional stream `service.method`, consumed by `handler`,
    /// which may answer each batch from inside `on_messages`
    /// ([`StreamRequests::try_send`]) with no hand-off between threads.
    pub fn bidi_stream_with<Req, Resp, H>(
        &self,
        service: &str,
        method: &str,
        options: &CallOptions,
        handler: H,
    ) -> StreamControl
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + 'static,
        H: StreamHandler<Req, Resp>,
    {
        let shape = StreamShape::Bidi;
        self.open_stream_with(service, method, shape, Bytes::new(), options, handler)
    }

    /// Opens a stream of any `shape` consumed by `handler` (`payload`: a
    /// server stream's encoded request, else empty).
    pub fn open_stream_with<Req, Resp, H>(
        &self,
        service: &str,
        method: &str,
        shape: StreamShape,
        payload: Bytes,
        options: &CallOptions,
        handler: H,
    ) -> StreamControl
    where
        Req: prost::Message + 'static,
        Resp: prost::Message + Default + 'static,
        H: StreamHandler<Req, Resp>,
    {
        let (core, window) = self.new_core(service, method);
        let sends = shape.client_streams();
        let requests = StreamRequests::<Req>::new(core.clone(), !sends);
        let typed = Typed::<Req, Resp, H>::new(handler, requests);
        core.set_handler(Handled::new(Box::new(typed)), sends);
        let control = StreamControl::new(core.clone());
        self.start_stream(core, window, (service, method, shape), payload, options);
        control
    }

    /// A new stream's core, and the window it grants.
    fn new_core(&self, service: &str, method: &str) -> (Arc<ClientCore>, u32) {
        let channel = &self.inner.options;
        let window = channel.stream_window.clamp(1, u32::MAX as usize) as u32;
        let core = ClientCore::new(
            next_id(),
            (window, channel.stream_window_bytes.max(1)),
            self.driver().clone(),
            Watch::new(&channel.interceptors, service, method),
        );
        (core, window)
    }

    /// Hands the open of `core`'s stream to its driver, or ends it at
    /// once when it cannot go (a handled one's handler told here).
    fn start_stream(
        &self,
        core: Arc<ClientCore>,
        window: u32,
        (service, method, shape): (&str, &str, StreamShape),
        payload: Bytes,
        options: &CallOptions,
    ) {
        let driver = self.driver().clone();
        match self.stream_target(service, method, options) {
            Ok((endpoints, metadata, trace)) => {
                let now = Instant::now();
                let deadline = options.timeout.and_then(|t| now.checked_add(t));
                let stream = NewStream {
                    core,
                    service: service.to_owned(),
                    method: method.to_owned(),
                    shape,
                    window,
                    payload,
                    metadata,
                    trace,
                    deadline,
                    timeout_ms: options.timeout.map_or(0, super::conn::whole_ms),
                    endpoints,
                    hash_key: options.hash_key,
                    reply_metadata: options.reply_metadata.clone(),
                };
                super::driver::open_stream(&driver, stream);
            }
            Err(status) => {
                if core.end(status) {
                    super::driver::deliver_stream(&driver, core);
                }
            }
        }
    }

    /// Where a stream may go, the metadata its open carries (the
    /// channel's interceptors saw it first, and may refuse the stream),
    /// and the trace id it carries on.
    fn stream_target(
        &self,
        service: &str,
        method: &str,
        options: &CallOptions,
    ) -> Result<StreamTarget, Status> {
        check_names(service, method).map_err(|e| Status::bad_request(e.to_string()))?;
        if let Some(e) = &options.invalid_metadata {
            return Err(Status::bad_request(e.to_string()));
        }
        let mut metadata = options.metadata.clone();
        let interceptors = &self.inner.options.interceptors;
        if !interceptors.is_empty() {
            interceptors.before(&mut ClientCall {
                service,
                method,
                metadata: &mut metadata,
            })?;
        }
        let trace =
            crate::call::deadline::current_trace().filter(|_| metadata.get(TRACE_ID_KEY).is_none());
        let endpoints = self.inner.discover.method_providers(service, method)?;
        if endpoints.is_empty() {
            return Err(Status::unavailable(format!(
                "no provider known for service '{service}'"
            )));
        }
        Ok((endpoints, metadata, trace))
    }
}
