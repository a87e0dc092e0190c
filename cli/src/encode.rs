//! A JSON request encoded through its service's schema, for tools other
//! than `mprpc call` (`loadgen --request-json`): the same schema sources
//! (the provider's reflection, or `--proto` files) and the same JSON
//! mapping and errors as `mprpc call`.

use std::path::PathBuf;
use std::sync::Arc;

use mprpc::discovery::{Discover, Endpoint, StaticDiscover};
use mprpc::Config;
use prost::Message as _;

use crate::json::{self, BytesAs};
use crate::schema::{SchemaArgs, Schemas};
use crate::target::Target;

/// Where the schema comes from.
#[derive(Debug, Clone)]
pub struct SchemaFrom {
    /// `.proto` files (or encoded FileDescriptorSets) to compile here; when
    /// empty, the provider is asked through reflection.
    pub protos: Vec<PathBuf>,
    /// Where the `.proto` files' imports are.
    pub import_paths: Vec<PathBuf>,
    /// The provider to ask; `None`: one found in the ZooKeeper `client` names.
    pub provider: Option<Endpoint>,
    /// Client settings for reaching it (TLS, auth token, timeout, ZooKeeper).
    pub client: Config,
}

/// A request written as JSON.
#[derive(Debug, Clone, Copy)]
pub struct JsonRequest<'a> {
    /// The service's wire name (`UserServiceRpc`).
    pub service: &'a str,
    /// The method (`Login`).
    pub method: &'a str,
    /// The request message as JSON (protobuf's JSON mapping).
    pub json: &'a str,
    /// How `bytes` fields are written.
    pub bytes: BytesAs,
}

/// Encodes `request` as its method's input message, in protobuf.
pub fn encode_json_request(from: &SchemaFrom, request: JsonRequest<'_>) -> Result<Vec<u8>, String> {
    let target = Target::new(from.provider.clone(), from.client.clone());
    let args = SchemaArgs::new(from.protos.clone(), from.import_paths.clone());
    // With .proto files no provider is asked: nothing to discover.
    let discover: Arc<dyn Discover> = if from.protos.is_empty() {
        target.discover().map_err(|e| e.to_string())?
    } else {
        Arc::new(StaticDiscover::new(Vec::new()))
    };
    let encode = || {
        let schema = Schemas::new(&target, &args, &*discover).service(request.service)?;
        let method = schema.method(request.method)?;
        json::to_message(&method.input(), request.json, request.bytes)
    };
    encode()
        .map(|m| m.encode_to_vec())
        .map_err(|e| e.to_string())
}
