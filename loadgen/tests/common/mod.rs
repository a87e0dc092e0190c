//! What loadgen's integration tests share: our provider serving
//! `EchoService.Echo` on a free loopback port, and reading reports back.

#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use mprpc::app::config::RegistryKind;
use mprpc::app::provider::{ProviderHandle, RpcProvider};
use mprpc::{CallContext, Config, Service, Status};
use serde_json::Value;

/// `EchoService.Echo`: replies with the request's bytes (an encoded
/// `EchoRequest` and `EchoResponse` have the same layout).
pub struct Echo;

impl Service for Echo {
    fn name(&self) -> &'static str {
        "EchoService"
    }
    fn methods(&self) -> &'static [&'static str] {
        &["Echo"]
    }
    fn call(
        &self,
        method: &str,
        _: &CallContext,
        req: Bytes,
        out: &mut BytesMut,
    ) -> Result<(), Status> {
        match method {
            "Echo" => {
                out.extend_from_slice(&req);
                Ok(())
            }
            other => Err(Status::unknown_method("EchoService", other)),
        }
    }
}

/// Our provider on a free 127.0.0.1 port, not registered anywhere.
pub fn provider() -> ProviderHandle {
    let mut config = Config::default();
    config.provider.rpc_server_ip = "127.0.0.1".into();
    config.provider.rpc_server_port = 0;
    config.registry.kind = RegistryKind::None;
    config.server.reactor_threads = 1;
    let mut provider = RpcProvider::new(&config);
    provider.without_registry().notify_service(Echo);
    provider.start().expect("provider starts")
}

/// Our provider, registered in ZooKeeper `connect` under `root`.
pub fn registered_provider(connect: &str, root: &str) -> ProviderHandle {
    let mut config = Config::default();
    config.provider.rpc_server_ip = "127.0.0.1".into();
    config.provider.rpc_server_port = 0;
    config.registry.zookeeper = Some(connect.to_owned());
    config.registry.root = root.to_owned();
    config.registry.kind = RegistryKind::ZooKeeper;
    config.server.reactor_threads = 1;
    let mut provider = RpcProvider::new(&config);
    provider.notify_service(Echo);
    provider.start().expect("provider starts and registers")
}

/// A fresh, empty directory for one run's report.
pub fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn read_json(dir: &Path) -> Value {
    let path = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a JSON report");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

pub fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// Calls `EchoService.Echo` that `server` has answered.
pub fn served(server: &ProviderHandle) -> u64 {
    server
        .server()
        .metrics()
        .get("EchoService", "Echo")
        .map_or(0, |m| m.calls)
}
