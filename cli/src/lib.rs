//! `mprpc`: the command-line client, mprpc's grpcurl. It finds providers
//! through ZooKeeper (`--zk`) or dials one (`--addr`), learns their schemas
//! from the built-in `mprpc.Reflection` service (or from `--proto` files,
//! for the seed's C++ providers, which have none) and turns JSON into
//! protobuf and back with prost-reflect.
//!
//! One module per command (`ls`, `describe`, `call`, `top`, `certs`); `target` is
//! where providers come from, `schema` where descriptors come from, `json`
//! the JSON mapping, `http` the GET of a provider's admin `/status` that
//! `top` reads, `error` the one error type every command returns.
//!
//! As a library it serves the `mprpc` binary ([`main`]) and lends other
//! tools the one thing they need from it: a JSON request encoded through
//! the service's schema ([`encode_json_request`], used by `loadgen
//! --request-json`), so no tool keeps a second JSON mapping.

mod call;
mod certs;
mod describe;
mod encode;
mod error;
mod http;
mod json;
mod ls;
mod schema;
mod stream_call;
mod target;
mod top;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use encode::{encode_json_request, JsonRequest, SchemaFrom};
pub use json::BytesAs;

use error::Result;
use schema::SchemaArgs;
use target::TargetArgs;

/// List, describe and call the services of mprpc providers.
#[derive(Debug, Parser)]
#[command(name = "mprpc", version, after_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    target: TargetArgs,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  mprpc --zk 127.0.0.1:2181 ls
  mprpc --zk 127.0.0.1:2181 describe UserServiceRpc.Login
  mprpc --zk 127.0.0.1:2181 call --bytes text UserServiceRpc.Login '{\"name\":\"zhang san\",\"pwd\":\"123456\"}'
  mprpc --addr 127.0.0.1:8000 --seed call --proto user.proto UserServiceRpc.Login '{}'
  mprpc --zk 127.0.0.1:2181 top UserServiceRpc
  mprpc certs ./tls --name provider.internal --name 10.0.0.5
  mprpc --addr 127.0.0.1:8000 --tls-ca ./tls/ca.crt --token s3cret --admin-token adm top";

#[derive(Debug, Subcommand)]
enum Command {
    /// Services, their providers with what they registered, and methods.
    Ls {
        /// Only this service.
        service: Option<String>,
    },
    /// Request and response schemas of a service or of one method.
    Describe {
        /// `Service` or `Service.Method`.
        name: String,
        #[command(flatten)]
        schema: SchemaArgs,
    },
    /// Calls a method: JSON request in, JSON reply out. A server stream's
    /// replies are printed as JSON lines as they come; a client or
    /// bidirectional stream reads its requests from stdin, one JSON object
    /// a line, until end of input (--timeout-ms bounds the whole stream).
    Call {
        /// `Service.Method`.
        method: String,
        /// The request as JSON (`{}` for an empty one; `-` or none with a
        /// pipe on stdin: read it from stdin). None for a client or
        /// bidirectional stream: its requests are stdin's lines.
        json: Option<String>,
        #[command(flatten)]
        schema: SchemaArgs,
        /// How `bytes` fields are written in JSON: base64 (the protobuf
        /// JSON mapping) or UTF-8 text (the seed's protos keep text in bytes).
        #[arg(long, value_enum, default_value_t = json::BytesAs::Base64)]
        bytes: json::BytesAs,
    },
    /// Live per-method rates and latencies of every provider of a service,
    /// from their admin /status, refreshed in the terminal.
    Top(top::TopArgs),
    /// Writes a CA, a provider certificate and a client certificate (for
    /// mutual TLS) into a directory, and the config lines that use them.
    Certs(certs::CertsArgs),
}

/// The `mprpc` command: parses the command line, runs the command and says
/// what failed.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mprpc: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let target = || cli.target.resolve();
    match cli.command {
        Command::Ls { service } => ls::run(&target()?, service.as_deref()),
        Command::Describe { name, schema } => describe::run(&target()?, &schema, &name),
        Command::Call {
            method,
            json,
            schema,
            bytes,
        } => call::run(&target()?, &schema, &method, json.as_deref(), bytes),
        Command::Top(args) => top::run(&target()?, &args),
        Command::Certs(args) => certs::run(&args), // needs no provider
    }
}
