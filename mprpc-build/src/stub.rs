//! `XStub`, the typed client of a service (the seed's `X_Stub`): per
//! unary rpc a blocking call (outcome in the controller, as in the seed), a
//! future-like call and a callback call; streaming rpcs get theirs from
//! `streams`.

use std::fmt::Write as _;

use prost_build::{Method, Service};

use crate::comments::write_intro;
use crate::generator::{bare, full_proto_name, MPRPC, PRIVATE};
use crate::streams;

/// `XStub`: the typed client, the seed's `X_Stub`.
pub(crate) fn write_stub(service: &Service, wire: &str, buf: &mut String) {
    let stub = format!("{}Stub", service.name);
    write_intro(&service.comments, 0, buf);
    let _ = writeln!(
        buf,
        r#"/// Client stub for `{full}`: typed calls over an [`{MPRPC}::client::Channel`].
///
/// Cloning is cheap; clones share the channel's connections.
#[derive(Clone)]
pub struct {stub} {{
    channel: {MPRPC}::client::Channel,
}}

impl {stub} {{
    /// The service's name on the wire and in ZooKeeper.
    pub const SERVICE_NAME: &'static str = {wire:?};

    pub fn new(channel: {MPRPC}::client::Channel) -> Self {{
        Self {{ channel }}
    }}

    pub fn channel(&self) -> &{MPRPC}::client::Channel {{
        &self.channel
    }}"#,
        full = full_proto_name(service),
    );
    for method in &service.methods {
        match streams::is_stream(method) {
            true => streams::write_stub_method(method, buf),
            false => write_stub_methods(method, buf),
        }
    }
    buf.push_str("}\n");
}

fn write_stub_methods(method: &Method, buf: &mut String) {
    let fname = &method.name;
    let base = bare(fname);
    let wire = &method.proto_name;
    let input = &method.input_type;
    let output = &method.output_type;

    buf.push('\n');
    write_intro(&method.comments, 1, buf);
    let _ = writeln!(
        buf,
        r#"    /// Calls `{wire}` and waits for the reply (the seed's blocking stub call).
    ///
    /// Uses the controller's options (timeout, hash key) and cancel handle;
    /// a failure is also recorded in the controller (`failed()`, `error_text()`).
    pub fn {fname}(
        &self,
        controller: &mut {MPRPC}::Controller,
        request: &{input},
    ) -> ::core::result::Result<{output}, {MPRPC}::Status> {{
        let cancel = controller.cancel_handle();
        let result = self
            .channel
            .call(
                Self::SERVICE_NAME,
                {wire:?},
                {PRIVATE}::prost::Message::encode_to_vec(request).into(),
                controller.options(),
                ::core::option::Option::Some(&cancel),
            )
            .and_then({MPRPC}::client::decode_response::<{output}>);
        if let ::core::result::Result::Err(status) = &result {{
            controller.set_status(::core::clone::Clone::clone(status));
        }}
        result
    }}

    /// Starts `{wire}` without blocking; `.wait()` the result or `.await` it
    /// in any executor (e.g. `futures::executor::block_on`). Dropping it
    /// before it completes cancels the call.
    pub fn {base}_async(
        &self,
        request: &{input},
        options: &{MPRPC}::CallOptions,
    ) -> {MPRPC}::client::TypedCall<{output}> {{
        {MPRPC}::client::TypedCall::new(self.channel.call_async(
            Self::SERVICE_NAME,
            {wire:?},
            {PRIVATE}::prost::Message::encode_to_vec(request).into(),
            options,
        ))
    }}

    /// Starts `{wire}` without blocking; `done` runs once with the outcome,
    /// on the client's I/O thread. Keep it short and never block in it: a
    /// blocking call made there (`{fname}`, `.wait()`) is refused with
    /// `FailedPrecondition`, since it would wait on the thread that reads
    /// every reply of the channel. Start further calls with `*_with` or
    /// `*_async`, or hand the work to another thread.
    pub fn {base}_with(
        &self,
        request: &{input},
        options: &{MPRPC}::CallOptions,
        done: impl ::core::ops::FnOnce(::core::result::Result<{output}, {MPRPC}::Status>)
            + ::core::marker::Send
            + 'static,
    ) -> {MPRPC}::client::CallHandle {{
        self.channel.call_with(
            Self::SERVICE_NAME,
            {wire:?},
            {PRIVATE}::prost::Message::encode_to_vec(request).into(),
            options,
            move |result| done(result.and_then({MPRPC}::client::decode_response::<{output}>)),
        )
    }}"#
    );
}
