//! The server half of a service's generated code: the trait the user
//! implements (`X`, handlers answering now, or later through futures) and
//! `XServer<T>`, which implements `mprpc::Service` by matching the method
//! name, decoding the request, running the handler and encoding the reply
//! straight into the server's output buffer. The client half is `stub`.

use std::fmt::Write as _;

use prost_build::{Method, Service};

use crate::comments::{write_comments, write_intro};
use crate::generator::{byte_string, full_proto_name, MPRPC, PRIVATE};
use crate::streams;

/// How a service's handlers run: `later`, they return futures (unary and
/// stream); `blocking`, its stream handlers block on the worker pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Handlers {
    pub(crate) later: bool,
    pub(crate) blocking: bool,
}

/// The user-implemented trait: one handler per rpc, answering now or
/// (`later`) through a future; stream handlers `blocking` or futures.
pub(crate) fn write_trait(service: &Service, later: bool, blocking: bool, buf: &mut String) {
    let name = &service.name;
    write_intro(&service.comments, 0, buf);
    if later {
        return write_async_trait(service, buf);
    }
    let _ = writeln!(
        buf,
        "/// Server side of `{full}`: implement it and publish it with [`{name}Server`].\n\
         ///\n\
         /// Handlers run on a reactor thread (`RpcProvider::notify_service`) and\n\
         /// must not block there; a service published with\n\
         /// `RpcProvider::notify_blocking_service` runs on the worker pool and may.\n\
         /// A long handler can check `ctx.expired()` or `ctx.remaining()` and stop\n\
         /// once the caller has given up.{streams}\n\
         pub trait {name}: ::core::marker::Send + ::core::marker::Sync + 'static {{",
        full = full_proto_name(service),
        streams = match blocking && service.methods.iter().any(streams::is_stream) {
            true =>
                "\n///\n/// Stream handlers block: each runs on the worker pool while its\n\
                     /// stream is open, however the service is published.",
            false => "",
        },
    );
    for method in &service.methods {
        if streams::is_stream(method) {
            streams::write_trait_method(method, blocking, buf);
            continue;
        }
        write_comments(&method.comments, 1, buf);
        let _ = writeln!(
            buf,
            "    fn {fname}(&self, ctx: &{MPRPC}::CallContext, request: {input}) \
             -> ::core::result::Result<{output}, {MPRPC}::Status>;",
            fname = method.name,
            input = method.input_type,
            output = method.output_type,
        );
    }
    buf.push_str("}\n");
}

/// The trait of a service that answers later: each handler returns a future.
fn write_async_trait(service: &Service, buf: &mut String) {
    let name = &service.name;
    write_intro(&service.comments, 0, buf);
    let _ = writeln!(
        buf,
        "/// Server side of `{full}`, answering later: implement it and publish it\n\
         /// with [`{name}Server`].\n\
         ///\n\
         /// Each handler returns a future (an `async fn` or `async move` block\n\
         /// works), polled on the reactor thread that read the request: it must\n\
         /// never block, only await (`*_async` stub calls, an `mprpc::Responder`'s\n\
         /// reply). The future is dropped if the caller cancels or the connection\n\
         /// closes.\n\
         pub trait {name}: ::core::marker::Send + ::core::marker::Sync + 'static {{",
        full = full_proto_name(service),
    );
    for method in &service.methods {
        if streams::is_stream(method) {
            streams::write_trait_method(method, false, buf);
            continue;
        }
        write_comments(&method.comments, 1, buf);
        let _ = writeln!(
            buf,
            "    fn {fname}(self: ::std::sync::Arc<Self>, ctx: {MPRPC}::CallContext, request: {input}) \
             -> impl ::core::future::Future<Output = ::core::result::Result<{output}, {MPRPC}::Status>> \
             + ::core::marker::Send + 'static;",
            fname = method.name,
            input = method.input_type,
            output = method.output_type,
        );
    }
    buf.push_str("}\n");
}

/// `XServer<T>`: the dispatch glue the framework calls; with `schema`
/// (encoded descriptors) it also answers `Service::schema`; for a service
/// answering `later`, `call_later` starts the handlers' futures.
pub(crate) fn write_server(
    service: &Service,
    wire: &str,
    schema: Option<&[u8]>,
    how: Handlers,
    buf: &mut String,
) {
    let name = &service.name;
    let server = format!("{name}Server");
    let (schema_const, schema_fn) = match schema {
        Some(bytes) => (
            format!(
                "    /// The encoded `FileDescriptorSet` of `{full}` and its imports, served by reflection.\n    \
                 pub const FILE_DESCRIPTOR_SET: &'static [u8] = b\"{bytes}\";\n\n",
                full = full_proto_name(service),
                bytes = byte_string(bytes),
            ),
            format!(
                "\n    fn schema(&self) -> ::core::option::Option<{MPRPC}::service::Schema> {{\n        \
                 ::core::option::Option::Some({MPRPC}::service::Schema {{\n            \
                 proto_name: {full:?},\n            \
                 file_descriptor_set: Self::FILE_DESCRIPTOR_SET,\n        }})\n    }}\n",
                full = full_proto_name(service),
            ),
        ),
        None => (String::new(), String::new()),
    };
    let method_names: Vec<String> = service
        .methods
        .iter()
        .map(|m| format!("{:?}", m.proto_name))
        .collect();
    let _ = writeln!(
        buf,
        r#"/// Publishes a [`{name}`] implementation as the `{wire}` service.
pub struct {server}<T> {{
    inner: ::std::sync::Arc<T>,
}}

impl<T> ::core::clone::Clone for {server}<T> {{
    fn clone(&self) -> Self {{
        Self {{ inner: ::std::sync::Arc::clone(&self.inner) }}
    }}
}}

impl<T: {name}> {server}<T> {{
    /// The service's name on the wire and in ZooKeeper.
    pub const SERVICE_NAME: &'static str = {wire:?};
    /// The `.proto` names of its methods.
    pub const METHODS: &'static [&'static str] = &[{methods}];
{schema_const}
    pub fn new(inner: T) -> Self {{
        Self::from_arc(::std::sync::Arc::new(inner))
    }}

    /// Shares one implementation between this server and the caller.
    pub fn from_arc(inner: ::std::sync::Arc<T>) -> Self {{
        Self {{ inner }}
    }}

    pub fn get_ref(&self) -> &T {{
        &self.inner
    }}
}}

impl<T: {name}> {MPRPC}::Service for {server}<T> {{
    fn name(&self) -> &'static str {{
        Self::SERVICE_NAME
    }}

    fn methods(&self) -> &'static [&'static str] {{
        Self::METHODS
    }}
{schema_fn}"#,
        methods = method_names.join(", "),
    );
    if how.later {
        write_call_later(service, buf);
        streams::write_open_stream(service, false, buf);
        buf.push_str("}\n");
        return;
    }
    let _ = writeln!(
        buf,
        r#"    fn call(
        &self,
        method: &str,
        ctx: &{MPRPC}::CallContext,
        request: {PRIVATE}::bytes::Bytes,
        response: &mut {PRIVATE}::bytes::BytesMut,
    ) -> ::core::result::Result<(), {MPRPC}::Status> {{"#
    );
    if service.methods.iter().all(streams::is_stream) {
        // Only streams: nothing here reads the call's parts.
        buf.push_str("        let _ = (ctx, &request, &*response);\n");
    }
    buf.push_str("        match method {\n");
    for method in &service.methods {
        match streams::is_stream(method) {
            true => streams::write_unary_refusal(service, method, buf),
            false => write_dispatch_arm(service, method, buf),
        }
    }
    let _ = writeln!(
        buf,
        r#"            _ => ::core::result::Result::Err({MPRPC}::Status::unknown_method(Self::SERVICE_NAME, method)),
        }}
    }}"#
    );
    streams::write_open_stream(service, how.blocking, buf);
    buf.push_str("}\n");
}

/// `Service::call_later` (and a `call` the server never uses for it): decode,
/// start the handler's future, encode its reply when it comes.
fn write_call_later(service: &Service, buf: &mut String) {
    let _ = writeln!(
        buf,
        r#"    fn call(
        &self,
        method: &str,
        _ctx: &{MPRPC}::CallContext,
        _request: {PRIVATE}::bytes::Bytes,
        _response: &mut {PRIVATE}::bytes::BytesMut,
    ) -> ::core::result::Result<(), {MPRPC}::Status> {{
        ::core::result::Result::Err({MPRPC}::Status::internal(::std::format!(
            "{{}}.{{method}} answers later: the server runs it through call_later",
            Self::SERVICE_NAME
        )))
    }}

    fn answers_later(&self) -> bool {{
        true
    }}

    fn call_later(
        &self,
        method: &str,
        ctx: {MPRPC}::CallContext,
        request: {PRIVATE}::bytes::Bytes,
    ) -> ::core::result::Result<{MPRPC}::service::ReplyFuture, {MPRPC}::Status> {{
        match method {{"#
    );
    for method in &service.methods {
        if streams::is_stream(method) {
            streams::write_unary_refusal(service, method, buf);
            continue;
        }
        let _ = writeln!(
            buf,
            r#"            {wire:?} => {{
                let request = <{input} as {PRIVATE}::prost::Message>::decode(request).map_err(|e| {{
                    {MPRPC}::Status::bad_request(::std::format!("{service}.{wire}: cannot decode {input_proto}: {{e}}"))
                }})?;
                let inner = ::std::sync::Arc::clone(&self.inner);
                ::core::result::Result::Ok({MPRPC}::service::encode_later({name}::{fname}(inner, ctx, request)))
            }}"#,
            wire = method.proto_name,
            input = method.input_type,
            input_proto = method.input_proto_type,
            name = service.name,
            service = service.proto_name,
            fname = method.name,
        );
    }
    let _ = writeln!(
        buf,
        r#"            _ => ::core::result::Result::Err({MPRPC}::Status::unknown_method(Self::SERVICE_NAME, method)),
        }}
    }}"#
    );
}

/// One `match` arm: decode (zero-copy for `bytes` fields), handle, encode.
fn write_dispatch_arm(service: &Service, method: &Method, buf: &mut String) {
    let _ = writeln!(
        buf,
        r#"            {wire:?} => {{
                let request = <{input} as {PRIVATE}::prost::Message>::decode(request).map_err(|e| {{
                    {MPRPC}::Status::bad_request(::std::format!("{service}.{wire}: cannot decode {input_proto}: {{e}}"))
                }})?;
                let reply: {output} = {name}::{fname}(&*self.inner, ctx, request)?;
                // Reserve once, then encode straight into the server's buffer.
                response.reserve({PRIVATE}::prost::Message::encoded_len(&reply));
                {PRIVATE}::prost::Message::encode(&reply, response).map_err(|e| {{
                    {MPRPC}::Status::internal(::std::format!("{service}.{wire}: cannot encode reply: {{e}}"))
                }})
            }}"#,
        wire = method.proto_name,
        input = method.input_type,
        input_proto = method.input_proto_type,
        output = method.output_type,
        name = service.name,
        service = service.proto_name,
        fname = method.name,
    );
}
