//! When our consumers call in the seed's wire format, through a real
//! ZooKeeper: never to one of our own providers (whose seed-layout nodes
//! carry our mark), even while it restarts on the same port under load with
//! metadata and a token; and, for a seed-layout service, only where the
//! called method's own node `/<Service>/<Method>` names a provider.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::zk::{free_port, wait_until, RawZk, ZkServer};
use mprpc::app::provider::{ProviderHandle, RpcProvider};
use mprpc::client::{Channel, ChannelOptions};
use mprpc::net::auth::AuthToken;
use mprpc::registry::ZkDiscover;
use mprpc::{CallContext, CallOptions, Code, Config, Discover, Service, Status};

const SOON: Duration = Duration::from_secs(10);
const TOKEN: &str = "ledger-secret";

/// `Accounts.Get` answers with the caller's `account` metadata, and fails
/// when it is missing (as a seed-format call's would be).
struct Accounts;

impl Service for Accounts {
    fn name(&self) -> &'static str {
        "Accounts"
    }
    fn methods(&self) -> &'static [&'static str] {
        &["Get"]
    }
    fn call(
        &self,
        _method: &str,
        ctx: &CallContext,
        _request: Bytes,
        response: &mut BytesMut,
    ) -> Result<(), Status> {
        let account = ctx
            .metadata
            .get("account")
            .ok_or_else(|| Status::bad_request("no account in the call's metadata"))?;
        response.extend_from_slice(account.as_bytes());
        Ok(())
    }
}

fn config(connect: &str, root: &str, port: u16) -> Config {
    let mut config = Config::default();
    config.registry.zookeeper = Some(connect.to_owned());
    // Long enough for a session to open on a loaded machine.
    config.registry.session_timeout = Duration::from_secs(4);
    config.registry.root = root.to_owned();
    config.provider.rpc_server_ip = "127.0.0.1".into();
    config.provider.rpc_server_port = port;
    config.server.reactor_threads = 1;
    config.server.worker_threads = 1;
    config.provider.drain = Duration::from_millis(200);
    // The provider requires the token; the consumer sends it.
    let token = AuthToken::new(TOKEN).unwrap();
    config.server.auth_tokens = vec![token.clone()];
    config.channel.auth_token = Some(token);
    config.server.admin.enabled = Some(true);
    config
}

fn start_provider(config: &Config) -> ProviderHandle {
    let mut provider = RpcProvider::new(config);
    provider.notify_service(Accounts);
    provider.start().expect("provider starts and registers")
}

fn consumer(config: &Config) -> (Channel, Arc<ZkDiscover>) {
    let discover = ZkDiscover::connect(config).expect("discovery connects");
    let options = ChannelOptions::from_config(config)
        .call_timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_millis(500));
    (Channel::new(discover.clone(), options).unwrap(), discover)
}

fn get_account(channel: &Channel, account: &str) -> Result<String, Status> {
    let mut options = CallOptions::default();
    options.metadata.insert("account", account).unwrap();
    let reply = channel.call("Accounts", "Get", Bytes::new(), &options, None)?;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// The provider's count of seed-format connections, from its `/metrics`.
fn seed_connections(provider: &ProviderHandle) -> u64 {
    let mut stream = TcpStream::connect(provider.addr()).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    stream.read_to_string(&mut page).unwrap();
    page.lines()
        .filter(|line| line.starts_with("mprpc_seed_connections_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn a_provider_restarted_on_its_port_under_load_is_never_called_in_the_seed_format() {
    mprpc::app::logging::init_for_tests();
    let zk = ZkServer::start();
    let config = config(&zk.connect_string(), "/mprpc", free_port());
    let mut provider = start_provider(&config);
    let (channel, discover) = consumer(&config);
    assert_eq!(get_account(&channel, "alice").unwrap(), "alice");

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..3)
        .map(|i| {
            let (channel, stop, ok) = (channel.clone(), stop.clone(), ok.clone());
            std::thread::spawn(move || -> Vec<String> {
                let account = format!("account-{i}");
                let mut wrong = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match get_account(&channel, &account) {
                        Ok(reply) if reply == account => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(reply) => wrong.push(format!("answered {reply:?} for {account}")),
                        // The stopping server's own refusal, or no provider.
                        Err(status)
                            if matches!(status.code(), Code::Unavailable | Code::ShuttingDown) => {}
                        Err(status) => wrong.push(status.to_string()),
                    }
                }
                wrong
            })
        })
        .collect();

    let mut seed_calls = 0;
    for _ in 0..3 {
        let before = ok.load(Ordering::Relaxed);
        seed_calls += seed_connections(&provider);
        provider.server().shutdown(); // abrupt: the session ends without a drain
        provider.wait();
        provider = start_provider(&config);
        assert!(
            wait_until(SOON, || ok.load(Ordering::Relaxed) > before + 20),
            "calls flow again after the restart"
        );
    }
    seed_calls += seed_connections(&provider);
    stop.store(true, Ordering::Relaxed);
    let wrong: Vec<String> = load.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(
        wrong.is_empty(),
        "calls neither answered nor refused: {wrong:?}"
    );
    assert_eq!(
        seed_calls, 0,
        "calls sent to our provider in the seed's format"
    );
    assert_eq!(
        discover.providers("Accounts").unwrap()[0].addr,
        provider.addr()
    );
    provider.server().shutdown();
    provider.wait();
}

#[test]
fn our_seed_layout_nodes_are_not_called_when_our_own_layout_has_no_provider() {
    mprpc::app::logging::init_for_tests();
    let zk = ZkServer::start();
    // The provider registers under another root: the consumer sees only its
    // seed-layout node `/Accounts/Get` (as in the gap of a restart).
    let provider = start_provider(&config(&zk.connect_string(), "/elsewhere", 0));
    let raw = RawZk::connect(&zk.connect_string(), None);
    assert!(wait_until(SOON, || raw.get("/Accounts/Get").is_some()));
    let (channel, _discover) = consumer(&config(&zk.connect_string(), "/mprpc", 0));

    let status = get_account(&channel, "alice").unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    assert!(
        status.message().contains("no provider of Accounts.Get"),
        "{status}"
    );
    assert_eq!(
        seed_connections(&provider),
        0,
        "no call in the seed's format"
    );
    provider.server().shutdown();
    provider.wait();
}

#[test]
fn a_seed_layout_service_without_the_called_methods_node_fails_before_sending() {
    mprpc::app::logging::init_for_tests();
    let zk = ZkServer::start();
    // A seed provider that registered `GetFriendList`, not `GetFriendsList`.
    let seed = TcpListener::bind("127.0.0.1:0").unwrap();
    seed.set_nonblocking(true).unwrap();
    let seed_addr: SocketAddr = seed.local_addr().unwrap();
    let raw = RawZk::connect(&zk.connect_string(), None);
    let persistent = zookeeper_client::CreateMode::Persistent;
    raw.create("/FriendServiceRpc", b"", persistent).unwrap();
    let node = seed_addr.to_string();
    let ephemeral = zookeeper_client::CreateMode::Ephemeral;
    raw.create(
        "/FriendServiceRpc/GetFriendList",
        node.as_bytes(),
        ephemeral,
    )
    .unwrap();
    let (channel, _discover) = consumer(&config(&zk.connect_string(), "/mprpc", 0));

    let options = CallOptions::default();
    let status = channel
        .call(
            "FriendServiceRpc",
            "GetFriendsList",
            Bytes::new(),
            &options,
            None,
        )
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    let message = status.message();
    assert!(
        message.contains("no provider of FriendServiceRpc.GetFriendsList"),
        "{message}"
    );
    assert!(
        message.contains("/FriendServiceRpc/GetFriendsList"),
        "names the node: {message}"
    );
    assert!(
        message.contains("GetFriendList"),
        "names what exists: {message}"
    );
    assert!(
        matches!(seed.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "no connection was made to the seed provider"
    );
}
