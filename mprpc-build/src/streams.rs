//! Code for streaming rpcs (`returns (stream X)`, `(stream X)`): their
//! handler signatures in the server trait, `Service::open_stream` in the
//! `...Server<T>`, and stub methods that open streams. Unary rpcs are
//! generated as before (`generator`).
//!
//! Stream handlers return futures, in sync and async services alike:
//! they are polled on the reactor that read the stream's open and wait
//! (never block) for the client's credit and messages. A sync service
//! built with `blocking_streams` gets blocking handlers instead, run on
//! the worker pool (`blocking_streams`).
//!
//! * `rpc Watch(Req) returns (stream Event)`:
//!   `fn watch(self: Arc<Self>, ctx, request: Req, sink: StreamSender<Event>)
//!   -> impl Future<Output = Result<(), Status>>`; the stub's
//!   `watch(&request, &options) -> StreamReceiver<Event>`.
//! * `rpc Upload(stream Chunk) returns (Summary)`:
//!   `fn upload(self: Arc<Self>, ctx, requests: Streaming<Chunk>)
//!   -> impl Future<Output = Result<Summary, Status>>`; the stub's
//!   `upload(&options) -> ClientStreamCall<Chunk, Summary>`.
//! * `rpc Chat(stream Msg) returns (stream Msg)`:
//!   `fn chat(self: Arc<Self>, ctx, requests: Streaming<Msg>, sink:
//!   StreamSender<Msg>) -> impl Future<Output = Result<(), Status>>`; the
//!   stub's `chat(&options) -> (StreamRequests<Msg>, StreamReceiver<Msg>)`.
//!
//! Each streaming rpc's stub also gets `<method>_with`, taking a
//! `StreamHandler` after the options: the stream is consumed on the
//! channel's I/O thread (`Channel::*_stream_with`), e.g.
//! `watch_with(&request, &options, handler) -> StreamControl`.

use std::fmt::Write as _;

use prost_build::{Method, Service};

use crate::blocking_streams;
use crate::comments::write_intro;
use crate::generator::bare;

const MPRPC: &str = "::mprpc";
const PRIVATE: &str = "::mprpc::__private";

/// Whether `method` streams either way.
pub(crate) fn is_stream(method: &Method) -> bool {
    method.client_streaming || method.server_streaming
}

/// The method's shape as the `StreamShape` variant's path.
fn shape(method: &Method) -> &'static str {
    match (method.client_streaming, method.server_streaming) {
        (false, _) => "::mprpc::protocol::mprpc::StreamShape::Server",
        (true, false) => "::mprpc::protocol::mprpc::StreamShape::Client",
        (true, true) => "::mprpc::protocol::mprpc::StreamShape::Bidi",
    }
}

/// A streaming rpc's handler in the server trait (`blocking`: a plain
/// function run on the worker pool).
pub(crate) fn write_trait_method(method: &Method, blocking: bool, buf: &mut String) {
    if blocking {
        return blocking_streams::write_trait_method(method, buf);
    }
    write_intro(&method.comments, 1, buf);
    let (fname, input, output) = (&method.name, &method.input_type, &method.output_type);
    let (args, reply) = match (method.client_streaming, method.server_streaming) {
        (false, _) => (
            format!("request: {input}, sink: {MPRPC}::service::stream::StreamSender<{output}>"),
            "()".to_owned(),
        ),
        (true, false) => (
            format!("requests: {MPRPC}::service::stream::Streaming<{input}>"),
            output.clone(),
        ),
        (true, true) => (
            format!(
                "requests: {MPRPC}::service::stream::Streaming<{input}>, \
                 sink: {MPRPC}::service::stream::StreamSender<{output}>"
            ),
            "()".to_owned(),
        ),
    };
    let _ = writeln!(
        buf,
        "    fn {fname}(self: ::std::sync::Arc<Self>, ctx: {MPRPC}::CallContext, {args}) \
         -> impl ::core::future::Future<Output = ::core::result::Result<{reply}, {MPRPC}::Status>> \
         + ::core::marker::Send + 'static;"
    );
}

/// The `match` arm of `call`/`call_later` for a streaming rpc called as a
/// unary call.
pub(crate) fn write_unary_refusal(service: &Service, method: &Method, buf: &mut String) {
    let _ = writeln!(
        buf,
        r#"            {wire:?} => ::core::result::Result::Err({MPRPC}::Status::unimplemented(
                "{service}.{wire} is a streaming method: open it as a stream",
            )),"#,
        wire = method.proto_name,
        service = service.proto_name,
    );
}

/// `Service::open_stream` of `XServer<T>`, when the service has streams
/// (`blocking`: their handlers run on the worker pool).
pub(crate) fn write_open_stream(service: &Service, blocking: bool, buf: &mut String) {
    if !service.methods.iter().any(is_stream) {
        return;
    }
    if blocking {
        blocking_streams::write_blocking_streams_fn(buf);
    }
    let _ = writeln!(
        buf,
        r#"
    fn open_stream(
        &self,
        method: &str,
        ctx: {MPRPC}::CallContext,
        request: {PRIVATE}::bytes::Bytes,
        io: {MPRPC}::service::stream::StreamIo,
    ) -> ::core::result::Result<{MPRPC}::service::stream::StreamFuture, {MPRPC}::Status> {{
        match method {{"#
    );
    for method in service.methods.iter().filter(|m| is_stream(m)) {
        write_open_arm(service, method, blocking, buf);
    }
    let _ = writeln!(
        buf,
        r#"            _ => ::core::result::Result::Err({MPRPC}::Status::unimplemented(::std::format!(
                "{{}}.{{method}} is not a streaming method",
                Self::SERVICE_NAME
            ))),
        }}
    }}"#
    );
}

fn write_open_arm(service: &Service, method: &Method, blocking: bool, buf: &mut String) {
    let (wire, input, output) = (&method.proto_name, &method.input_type, &method.output_type);
    let (name, fname) = (&service.name, &method.name);
    let start = match (method.client_streaming, method.server_streaming) {
        _ if blocking => blocking_streams::write_start(service, method),
        (false, _) => format!(
            r#"let request = <{input} as {PRIVATE}::prost::Message>::decode(request).map_err(|e| {{
                    {MPRPC}::Status::bad_request(::std::format!("{service}.{wire}: cannot decode {input_proto}: {{e}}"))
                }})?;
                let sink = io.sender::<{output}>();
                ::core::result::Result::Ok({MPRPC}::service::stream::boxed({name}::{fname}(inner, ctx, request, sink)))"#,
            service = service.proto_name,
            input_proto = method.input_proto_type,
        ),
        (true, false) => format!(
            r#"let _ = request;
                let requests = io.inbound::<{input}>();
                ::core::result::Result::Ok({MPRPC}::service::stream::reply_once(&io, {name}::{fname}(inner, ctx, requests)))"#
        ),
        (true, true) => format!(
            r#"let _ = request;
                let requests = io.inbound::<{input}>();
                let sink = io.sender::<{output}>();
                ::core::result::Result::Ok({MPRPC}::service::stream::boxed({name}::{fname}(inner, ctx, requests, sink)))"#
        ),
    };
    let _ = writeln!(
        buf,
        r#"            {wire:?} => {{
                io.expect({shape}, Self::SERVICE_NAME, {wire:?})?;
                let inner = ::std::sync::Arc::clone(&self.inner);
                {start}
            }}"#,
        shape = shape(method),
    );
}

/// The stub's method for a streaming rpc.
pub(crate) fn write_stub_method(method: &Method, buf: &mut String) {
    let (fname, wire, input, output) = (
        &method.name,
        &method.proto_name,
        &method.input_type,
        &method.output_type,
    );
    buf.push('\n');
    write_intro(&method.comments, 1, buf);
    let _ = match (method.client_streaming, method.server_streaming) {
        (false, _) => writeln!(
            buf,
            r#"    /// Opens server stream `{wire}`: its messages arrive on the receiver
    /// (iterate it, blocking, or use it as a `futures_core::Stream`).
    /// `options.timeout` bounds the whole stream (none when unset).
    pub fn {fname}(
        &self,
        request: &{input},
        options: &{MPRPC}::CallOptions,
    ) -> {MPRPC}::client::stream::StreamReceiver<{output}> {{
        self.channel.server_stream(Self::SERVICE_NAME, {wire:?}, request, options)
    }}"#
        ),
        (true, false) => writeln!(
            buf,
            r#"    /// Opens client stream `{wire}`: send the requests, then `finish`
    /// for the reply. `options.timeout` bounds the whole stream.
    pub fn {fname}(
        &self,
        options: &{MPRPC}::CallOptions,
    ) -> {MPRPC}::client::stream::ClientStreamCall<{input}, {output}> {{
        self.channel.client_stream(Self::SERVICE_NAME, {wire:?}, options)
    }}"#
        ),
        (true, true) => writeln!(
            buf,
            r#"    /// Opens bidirectional stream `{wire}`: the requests go out through
    /// the first half, the replies arrive on the second.
    pub fn {fname}(
        &self,
        options: &{MPRPC}::CallOptions,
    ) -> (
        {MPRPC}::client::stream::StreamRequests<{input}>,
        {MPRPC}::client::stream::StreamReceiver<{output}>,
    ) {{
        self.channel.bidi_stream(Self::SERVICE_NAME, {wire:?}, options)
    }}"#
        ),
    };
    write_stub_handled_method(method, buf);
}

/// The stub's `<method>_with` for a streaming rpc: the stream consumed by
/// a `StreamHandler` on the channel's I/O thread instead of a reader
/// (`Channel::*_stream_with`).
fn write_stub_handled_method(method: &Method, buf: &mut String) {
    let (wire, input, output) = (&method.proto_name, &method.input_type, &method.output_type);
    let fname = format!("{}_with", bare(&method.name));
    let handler = format!("{MPRPC}::client::stream::StreamHandler");
    let control = format!("{MPRPC}::client::stream::StreamControl");
    buf.push('\n');
    let _ = match (method.client_streaming, method.server_streaming) {
        (false, _) => writeln!(
            buf,
            r#"    /// Opens server stream `{wire}` with its messages delivered to
    /// `handler` in batches on the channel's I/O thread (see
    /// [`{handler}`]); otherwise as [`{fname_plain}`](Self::{fname_plain}).
    /// The returned control cancels the stream.
    pub fn {fname}<H>(
        &self,
        request: &{input},
        options: &{MPRPC}::CallOptions,
        handler: H,
    ) -> {control}
    where
        H: {handler}<(), {output}>,
    {{
        self.channel.server_stream_with(Self::SERVICE_NAME, {wire:?}, request, options, handler)
    }}"#,
            fname_plain = method.name,
        ),
        (true, false) => writeln!(
            buf,
            r#"    /// Opens client stream `{wire}` consumed by `handler` on the
    /// channel's I/O thread: it sends from `on_writable` with `try_send`,
    /// half-closes, and gets the one reply in `on_messages` (see
    /// [`{handler}`]). `options.timeout` bounds the whole stream.
    pub fn {fname}<H>(
        &self,
        options: &{MPRPC}::CallOptions,
        handler: H,
    ) -> {control}
    where
        H: {handler}<{input}, {output}>,
    {{
        self.channel.client_stream_with(Self::SERVICE_NAME, {wire:?}, options, handler)
    }}"#
        ),
        (true, true) => writeln!(
            buf,
            r#"    /// Opens bidirectional stream `{wire}` consumed by `handler` on the
    /// channel's I/O thread: the replies arrive in `on_messages`, and the
    /// handler may answer from inside it with `try_send` (see
    /// [`{handler}`]).
    pub fn {fname}<H>(
        &self,
        options: &{MPRPC}::CallOptions,
        handler: H,
    ) -> {control}
    where
        H: {handler}<{input}, {output}>,
    {{
        self.channel.bidi_stream_with(Self::SERVICE_NAME, {wire:?}, options, handler)
    }}"#
        ),
    };
}
