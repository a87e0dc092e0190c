//! `mprpc call Service.Method '{json}'`: JSON to the request message, one
//! call through a channel (balanced over the registry's providers, or to
//! `--addr`, in the provider's wire format), the reply back as JSON. A
//! streaming method goes to `stream_call` (JSON lines each way).

use bytes::Bytes;
use mprpc::{CallOptions, Code, Status};
use prost::Message as _;
use prost_reflect::DynamicMessage;

use crate::error::{fail, Error, Result};
use crate::json::{self, BytesAs};
use crate::schema::{SchemaArgs, Schemas};
use crate::stream_call;
use crate::target::Target;

/// Runs `call`, printing the reply on stdout.
pub(crate) fn run(
    target: &Target,
    args: &SchemaArgs,
    name: &str,
    request: Option<&str>,
    bytes: BytesAs,
) -> Result<()> {
    let Some((service, method)) = name.rsplit_once('.') else {
        fail!("'{name}' is not Service.Method")
    };
    let discover = target.discover()?;
    let schema = Schemas::new(target, args, &*discover).service(service)?;
    let method = schema.method(method)?;
    if stream_call::is_stream(&method) {
        return run_stream(target, discover, name, service, &method, request, bytes);
    }
    let request = read_request(request)?;
    let message = json::to_message(&method.input(), &request, bytes)?;
    if target.endpoint().is_none() {
        target.providers(&*discover, service)?; // an unknown service says so
    }
    let channel = target.channel(discover)?;
    let options = CallOptions::new().timeout(target.timeout());
    let reply = channel
        .call(
            service,
            method.name(),
            Bytes::from(message.encode_to_vec()),
            &options,
            None,
        )
        .map_err(|status| call_error(name, &status))?;
    let reply = DynamicMessage::decode(method.output(), reply).map_err(|e| {
        Error::new(format!(
            "the reply of {name} is not a {}: {e}",
            method.output().full_name()
        ))
    })?;
    println!("{}", json::to_json(&reply, bytes)?);
    Ok(())
}

/// A streaming method: a server stream's request as `call`'s; a client
/// or bidirectional stream's requests from stdin, one JSON object a line.
fn run_stream(
    target: &Target,
    discover: std::sync::Arc<dyn mprpc::Discover>,
    name: &str,
    service: &str,
    method: &prost_reflect::MethodDescriptor,
    request: Option<&str>,
    bytes: BytesAs,
) -> Result<()> {
    let client_streams = method.is_client_streaming();
    let request = match request {
        Some(text) if client_streams && text != "-" => {
            fail!("{name} takes a stream of requests: write them on stdin, one JSON object a line")
        }
        _ if client_streams => None,
        _ => Some(read_request(request)?),
    };
    if target.endpoint().is_none() {
        target.providers(&*discover, service)?; // an unknown service says so
    }
    let channel = target.channel(discover)?;
    let call = stream_call::StreamCall {
        name,
        service,
        method,
        bytes,
        options: CallOptions::new().timeout(target.timeout()),
    };
    match request {
        Some(request) => stream_call::server(&call, &channel, &request),
        None => stream_call::client(&call, &channel),
    }
}

/// The request text: the argument, or stdin for `-` or for no argument
/// with stdin not a terminal. With neither, an error: an empty request is
/// written `'{}'`, never assumed.
fn read_request(arg: Option<&str>) -> Result<String> {
    use std::io::IsTerminal as _;
    match arg {
        Some(text) if text != "-" => return Ok(text.to_owned()),
        None if std::io::stdin().is_terminal() => fail!(
            "give the request as JSON ('{{}}' for an empty one), or '-' to read it from stdin"
        ),
        _ => {}
    }
    let text = std::io::read_to_string(std::io::stdin())
        .map_err(|e| Error::new(format!("cannot read the request from stdin: {e}")))?;
    if text.trim().is_empty() {
        fail!("stdin held no request; give the request as JSON ('{{}}' for an empty one)");
    }
    Ok(text)
}

/// A failed call, said the way a person at a shell wants it.
pub(crate) fn call_error(name: &str, status: &Status) -> Error {
    let why = match status.code() {
        Code::Unavailable if status.message().contains("requires TLS") => {
            "the provider requires TLS (--tls-ca FILE, or -i FILE with tls_ca)"
        }
        Code::Unavailable => "no provider could be reached",
        Code::DeadlineExceeded => "no reply in time (--timeout-ms)",
        Code::Application => "the handler failed",
        Code::Unauthenticated => {
            "the provider wants a token (--token TOKEN, or -i FILE with auth_token)"
        }
        Code::Overloaded => "every provider tried is over its concurrency limit; try again later",
        _ => "the call failed",
    };
    Error::new(format!("{name}: {why}: {status}"))
}
