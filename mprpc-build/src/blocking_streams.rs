//! Code for streaming rpcs of a service whose stream handlers block
//! ([`MprpcServiceGenerator::blocking_streams`](crate::MprpcServiceGenerator::blocking_streams)):
//! plain functions in its (sync) server trait, run on the server's worker
//! pool for as long as their stream is open, sending through a
//! `BlockingSender` and reading a `BlockingStreaming`. The stubs are the
//! same as for async stream handlers (`streams`): the client cannot tell.
//!
//! * `rpc Watch(Req) returns (stream Event)`:
//!   `fn watch(&self, ctx: &CallContext, request: Req, sink:
//!   BlockingSender<Event>) -> Result<(), Status>`.
//! * `rpc Upload(stream Chunk) returns (Summary)`:
//!   `fn upload(&self, ctx: &CallContext, requests:
//!   BlockingStreaming<Chunk>) -> Result<Summary, Status>`.
//! * `rpc Chat(stream Msg) returns (stream Msg)`:
//!   `fn chat(&self, ctx: &CallContext, requests: BlockingStreaming<Msg>,
//!   sink: BlockingSender<Msg>) -> Result<(), Status>`.

use std::fmt::Write as _;

use prost_build::{Method, Service};

use crate::comments::write_intro;

const MPRPC: &str = "::mprpc";
const PRIVATE: &str = "::mprpc::__private";
const BLOCKING: &str = "::mprpc::service::blocking_stream";

/// A blocking streaming rpc's handler in the server trait.
pub(crate) fn write_trait_method(method: &Method, buf: &mut String) {
    write_intro(&method.comments, 1, buf);
    let (fname, input, output) = (&method.name, &method.input_type, &method.output_type);
    let (args, reply) = match (method.client_streaming, method.server_streaming) {
        (false, _) => (
            format!("request: {input}, sink: {BLOCKING}::BlockingSender<{output}>"),
            "()".to_owned(),
        ),
        (true, false) => (
            format!("requests: {BLOCKING}::BlockingStreaming<{input}>"),
            output.clone(),
        ),
        (true, true) => (
            format!(
                "requests: {BLOCKING}::BlockingStreaming<{input}>, \
                 sink: {BLOCKING}::BlockingSender<{output}>"
            ),
            "()".to_owned(),
        ),
    };
    let _ = writeln!(
        buf,
        "    ///\n    \
         /// Runs on the server's worker pool for as long as the stream is open.\n    \
         fn {fname}(&self, ctx: &{MPRPC}::CallContext, {args}) \
         -> ::core::result::Result<{reply}, {MPRPC}::Status>;"
    );
}

/// The start of a blocking handler in `open_stream`'s arm for `method`:
/// decode the request (server streams), make the sender and inbound
/// stream, queue the handler on the pool.
pub(crate) fn write_start(service: &Service, method: &Method) -> String {
    let (wire, input, output) = (&method.proto_name, &method.input_type, &method.output_type);
    let (name, fname) = (&service.name, &method.name);
    match (method.client_streaming, method.server_streaming) {
        (false, _) => format!(
            r#"let request = <{input} as {PRIVATE}::prost::Message>::decode(request).map_err(|e| {{
                    {MPRPC}::Status::bad_request(::std::format!("{service}.{wire}: cannot decode {input_proto}: {{e}}"))
                }})?;
                let sink = io.blocking_sender::<{output}>();
                {BLOCKING}::on_pool(&io, move || {name}::{fname}(&*inner, &ctx, request, sink))"#,
            service = service.proto_name,
            input_proto = method.input_proto_type,
        ),
        (true, false) => format!(
            r#"let _ = request;
                let requests = io.blocking_inbound::<{input}>();
                {BLOCKING}::reply_once_on_pool(&io, move || {name}::{fname}(&*inner, &ctx, requests))"#
        ),
        (true, true) => format!(
            r#"let _ = request;
                let requests = io.blocking_inbound::<{input}>();
                let sink = io.blocking_sender::<{output}>();
                {BLOCKING}::on_pool(&io, move || {name}::{fname}(&*inner, &ctx, requests, sink))"#
        ),
    }
}

/// `Service::blocking_streams` of `XServer<T>`: the server starts its
/// worker pool for these handlers.
pub(crate) fn write_blocking_streams_fn(buf: &mut String) {
    buf.push_str(
        "
    fn blocking_streams(&self) -> bool {
        true
    }
",
    );
}
