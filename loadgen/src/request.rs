//! The bytes a run sends: `--payload`'s Echo, `--request-hex`/`-file`, or
//! `--request-json` encoded through the service's schema; and the target's
//! address for `--addr` runs.

use std::net::SocketAddr;

use bytes::Bytes;
use mprpc::discovery::{Endpoint, WireFormat};
use mprpc::net::auth::AuthToken;
use mprpc_cli::{encode_json_request, BytesAs, JsonRequest, SchemaFrom};
use mprpc_examples::bench::EchoRequest;

use crate::cli::{self, Args, TargetKind};
use crate::mprpc_target;

/// The `--payload` bytes of an Echo call.
pub(crate) fn payload(args: &Args) -> Vec<u8> {
    (0..args.payload).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The request to send, and the reply length that proves an echo.
pub(crate) fn request(args: &Args) -> Result<(Bytes, Option<usize>), String> {
    if let Some(hex) = &args.request_hex {
        return Ok((
            cli::parse_hex(hex)
                .map_err(|e| format!("--request-hex: {e}"))?
                .into(),
            None,
        ));
    }
    if let Some(path) = &args.request_file {
        let bytes =
            std::fs::read(path).map_err(|e| format!("--request-file {}: {e}", path.display()))?;
        return Ok((bytes.into(), None));
    }
    if let Some(json) = &args.request_json {
        let encoded = json_request(args, json).map_err(|e| format!("--request-json: {e}"))?;
        return Ok((encoded.into(), None));
    }
    if args.method == "Echo" {
        // The same message in the tonic mode.
        let encoded = prost::Message::encode_to_vec(&EchoRequest {
            payload: payload(args).into(),
        });
        let len = encoded.len();
        return Ok((encoded.into(), Some(len)));
    }
    Ok((Bytes::new(), None))
}

/// `--request-json` encoded through the service's schema (mprpc-cli's, as
/// `mprpc call` does): asked of the --addr provider or of one found in --zk,
/// with the run's TLS settings and token, unless --proto files give it.
pub(crate) fn json_request(args: &Args, json: &str) -> Result<Vec<u8>, String> {
    let provider = match &args.addr {
        Some(_) => Some(Endpoint::new(direct_addr(args)?).format(match args.target {
            TargetKind::Seed => WireFormat::Seed,
            _ => WireFormat::Mprpc,
        })),
        None => None,
    };
    let mut client = mprpc::Config::default();
    client.registry.zookeeper = args.zk.clone();
    client.registry.root = args.zk_root.clone();
    client.registry.session_timeout = args.timeout;
    client.channel.tls = mprpc_target::client_tls(args)?;
    client.channel.call_timeout = args.timeout;
    if let Some(token) = &args.token {
        let token = AuthToken::new(token).map_err(|e| format!("--token: {e}"))?;
        client.channel.auth_token = Some(token);
    }
    let from = SchemaFrom {
        protos: args.proto.clone(),
        import_paths: args.import_paths.clone(),
        provider,
        client,
    };
    let request = JsonRequest {
        service: &args.service,
        method: &args.method,
        json,
        bytes: if args.bytes_text {
            BytesAs::Text
        } else {
            BytesAs::Base64
        },
    };
    encode_json_request(&from, request)
}

pub(crate) fn direct_addr(args: &Args) -> Result<SocketAddr, String> {
    let addr = args
        .addr
        .as_ref()
        .ok_or_else(|| format!("--target {} needs --addr HOST:PORT", target_name(args)))?;
    std::net::ToSocketAddrs::to_socket_addrs(addr.as_str())
        .map_err(|e| format!("--addr {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("--addr {addr}: no address"))
}

/// The size of the message carried (not the protocol's framing).
pub(crate) fn proto_request_bytes(args: &Args) -> usize {
    request(args).map_or(0, |(r, _)| r.len())
}

pub(crate) fn target_name(args: &Args) -> String {
    format!("{:?}", args.target).to_lowercase()
}
