//! Opening streams on a [`Channel`]: `server_stream`, `client_stream`,
//! `bidi_stream` and the general `open_stream`. Each makes the stream's
//! [`ClientCore`] and hands its open to one of the channel's drivers
//! (`client::stream` has what the caller holds; `driver::streams` what the
//! driver does).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::observe::Watch;
use super::stream::{
    next_id, ClientCore, ClientStreamCall, NewStream, StreamReceiver, StreamRequests,
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
        let driver = self.driver().clone();
        let channel = &self.inner.options;
        let window = channel.stream_window.clamp(1, u32::MAX as usize) as u32;
        let core = ClientCore::new(
            next_id(),
            (window, channel.stream_window_bytes.max(1)),
            driver.clone(),
            Watch::new(&channel.interceptors, service, method),
        );
        let pair = (
            StreamRequests::new(core.clone(), !shape.client_streams()),
            StreamReceiver::new(core.clone()),
        );
        match self.stream_target(service, method, options) {
            Ok((endpoints, metadata, trace)) => {
                let now = Instant::now();
                let deadline = options.timeout.and_then(|t| now.checked_add(t));
                driver.open_stream(NewStream {
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
                });
            }
            Err(status) => core.end(status),
        }
        pair
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
