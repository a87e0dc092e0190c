//! `mprpc call Service.Method '{json}'`: JSON to the request message, one
//! call through a channel (balanced over the registry's providers, or to
//! `--addr`, in the provider's wire format), the reply back as JSON.

use bytes::Bytes;
use mprpc::{CallOptions, Code, Status};
use prost::Message as _;
use prost_reflect::DynamicMessage;

use crate::error::{fail, Error, Result};
use crate::json::{self, BytesAs};
use crate::schema::{SchemaArgs, Schemas};
use crate::target::Target;

/// Runs `call`, printing the reply on stdout.
pub(crate) fn run(
    target: &Target,
    args: &SchemaArgs,
    name: &str,
    request: &str,
    bytes: BytesAs,
) -> Result<()> {
    let Some((service, method)) = name.rsplit_once('.') else {
        fail!("'{name}' is not Service.Method")
    };
    let request = read_request(request)?;
    let discover = target.discover()?;
    let schema = Schemas::new(target, args, &*discover).service(service)?;
    let method = schema.method(method)?;
    let message = json::to_message(&method.input(), &request, bytes)?;
    if target.endpoint().is_none() {
        target.providers(&*discover, service)?; // an unknown service says so
    }
    let channel = target.channel(discover)?;
    let options = CallOptions::with_timeout(target.timeout());
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

/// The request text: the argument, or stdin for `-`.
fn read_request(arg: &str) -> Result<String> {
    if arg != "-" {
        return Ok(arg.to_owned());
    }
    std::io::read_to_string(std::io::stdin())
        .map_err(|e| Error::new(format!("cannot read the request from stdin: {e}")))
}

/// A failed call, said the way a person at a shell wants it.
fn call_error(name: &str, status: &Status) -> Error {
    let why = match status.code() {
        Code::Unavailable => "no provider could be reached",
        Code::DeadlineExceeded => "no reply in time (--timeout-ms)",
        Code::Application => "the handler failed",
        Code::Unauthenticated => "the provider wants a token (-i FILE with auth_token)",
        Code::Overloaded => "every provider tried is over its concurrency limit; try again later",
        _ => "the call failed",
    };
    Error::new(format!("{name}: {why}: {status}"))
}
