//! Registry tests against a real ZooKeeper (started by the harness):
//! registration layout, discovery and its watches, dead providers, ZooKeeper
//! outages, session expiry, the seed's layout, digest ACLs and an ensemble.

mod common;

use std::net::SocketAddr;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use common::helper_process::spawn_helper;
use common::zk::{free_port, wait_until, RawZk, ZkEnsemble, ZkProxy, ZkServer};
use mprpc::registry::{ProviderInfo, Registrar, ZkDiscover};
use mprpc::service::ServiceInfo;
use mprpc::{Config, Discover, Endpoint, WireFormat};
use zookeeper_client as zk;

const SERVICE: &str = "UserServiceRpc";
const METHODS: &[&str] = &["Login", "Register"];
/// Generous bound for anything that should happen within a session timeout.
const SOON: Duration = Duration::from_secs(10);

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("mprpc=debug")
        .try_init();
}

fn config(connect: &str) -> Config {
    let mut config = Config::default();
    config.registry.zookeeper = Some(connect.to_owned());
    config.registry.session_timeout = Duration::from_millis(1000);
    // Generous: a just-started ZooKeeper on a loaded machine can take
    // seconds to open the first session (a 2 s limit failed so once).
    // Only a failing run waits this long.
    config.channel.connect_timeout = Duration::from_secs(10);
    config
}

fn fake_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

fn register(config: &Config, addr: SocketAddr) -> Registrar {
    Registrar::start(config, addr, vec![ServiceInfo::new(SERVICE, METHODS)])
        .expect("registrar starts")
}

fn addrs(discover: &ZkDiscover, service: &str) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = discover
        .providers(service)
        .expect("providers")
        .iter()
        .map(|e| e.addr)
        .collect();
    addrs.sort();
    addrs
}

/// What the seed's consumer reads from a method node: the data as a C
/// string (`ZkClient::GetData` returns the buffer as a `char*`).
fn seed_reads(data: &[u8]) -> &[u8] {
    data.split(|b| *b == 0).next().unwrap_or_default()
}

fn sorted(mut v: Vec<SocketAddr>) -> Vec<SocketAddr> {
    v.sort();
    v
}

fn providers_path() -> String {
    format!("/mprpc/services/{SERVICE}/providers")
}

#[test]
fn registration_writes_the_documented_nodes() {
    init_logs();
    let zk = ZkServer::start();
    let raw = RawZk::connect(&zk.connect_string(), None);
    let addr = fake_addr();
    let registrar = register(&config(&zk.connect_string()), addr);
    assert!(registrar.is_registered());

    assert_eq!(
        raw.children(&providers_path()),
        Some(vec![addr.to_string()])
    );
    let (data, stat) = raw.get(&format!("{}/{addr}", providers_path())).unwrap();
    assert_ne!(stat.ephemeral_owner, 0, "provider node must be ephemeral");
    let info = ProviderInfo::parse(&addr.to_string(), &data).unwrap();
    assert_eq!(info.addr, addr);
    assert_eq!(info.methods, METHODS);
    assert_eq!(info.weight, 100);
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert!(info.start_time_ms > 0);
    assert_eq!(
        info.max_frame,
        Some(mprpc::protocol::mprpc::DEFAULT_MAX_FRAME)
    );
    let (_, parent) = raw.get(&providers_path()).unwrap();
    assert_eq!(parent.ephemeral_owner, 0, "parents are persistent");

    // The seed's layout: /Service persistent, /Service/Method ephemeral:
    // "ip:port" to the seed's consumer, then our mark after a NUL.
    let (_, service_stat) = raw.get(&format!("/{SERVICE}")).unwrap();
    assert_eq!(service_stat.ephemeral_owner, 0);
    for method in METHODS {
        let (data, stat) = raw.get(&format!("/{SERVICE}/{method}")).unwrap();
        assert_eq!(seed_reads(&data), addr.to_string().as_bytes());
        assert!(data.ends_with(b"\0protocol=mprpc"), "marked as ours");
        assert_eq!(stat.ephemeral_owner, info_owner(&raw, addr));
    }

    registrar.deregister();
    assert!(!registrar.is_registered());
    assert_eq!(raw.children(&providers_path()), Some(vec![]));
    assert_eq!(raw.children(&format!("/{SERVICE}")), Some(vec![]));
    registrar.deregister(); // idempotent
}

fn info_owner(raw: &RawZk, addr: SocketAddr) -> i64 {
    raw.get(&format!("{}/{addr}", providers_path()))
        .unwrap()
        .1
        .ephemeral_owner
}

#[test]
fn the_seed_layout_can_be_turned_off_and_the_root_moved() {
    init_logs();
    let zk = ZkServer::start();
    let raw = RawZk::connect(&zk.connect_string(), None);
    let mut config = config(&zk.connect_string());
    config.registry.seed_layout = false;
    config.registry.root = "/apps/rpc".into();
    let addr = fake_addr();
    let _registrar = register(&config, addr);
    assert_eq!(
        raw.children(&format!("/apps/rpc/services/{SERVICE}/providers")),
        Some(vec![addr.to_string()])
    );
    assert_eq!(raw.children(&format!("/{SERVICE}")), None);
    assert_eq!(raw.children("/mprpc"), None);
}

#[test]
fn two_providers_are_discovered_and_the_watch_follows_changes() {
    init_logs();
    let zk = ZkServer::start();
    let config = config(&zk.connect_string());
    let (a, b, c) = (fake_addr(), fake_addr(), fake_addr());
    let first = register(&config, a);
    let second = register(&config, b);
    let discover = ZkDiscover::connect(&config).unwrap();
    assert_eq!(addrs(&discover, SERVICE), sorted(vec![a, b]));
    let endpoints = discover.providers(SERVICE).unwrap();
    assert!(endpoints
        .iter()
        .all(|e| e.format == WireFormat::Mprpc && e.weight == 100));

    drop(first); // closes the session: its node goes at once
    assert!(wait_until(SOON, || addrs(&discover, SERVICE) == vec![b]));

    let third = register(&config, c);
    assert!(wait_until(SOON, || addrs(&discover, SERVICE) == sorted(vec![b, c])));

    second.deregister();
    assert!(wait_until(SOON, || addrs(&discover, SERVICE) == vec![c]));
    drop(third);
    assert!(wait_until(SOON, || addrs(&discover, SERVICE).is_empty()));
}

/// Consumers reuse provider nodes they have read (a changed list reads only
/// newcomers); a node deleted and re-created between two listings keeps its
/// name, so only the parent's cversion tells it was replaced. Replaced in one
/// atomic multi-op with a new weight, the consumer must read it again.
#[test]
fn a_provider_node_replaced_under_the_same_name_is_read_again() {
    init_logs();
    let zk = ZkServer::start();
    let config = config(&zk.connect_string());
    let (a, b) = (fake_addr(), fake_addr());
    let _first = register(&config, a);
    let raw = RawZk::connect(&zk.connect_string(), None);
    let b_path = format!("{}/{b}", providers_path());
    let node = |weight: u32| format!("addr={b}\nweight={weight}\n");
    raw.create(&b_path, node(100).as_bytes(), zk::CreateMode::Persistent)
        .unwrap();
    let discover = ZkDiscover::connect(&config).unwrap();
    assert_eq!(addrs(&discover, SERVICE), sorted(vec![a, b]));

    let (path, data) = (b_path.clone(), node(7).into_bytes());
    raw.run(move |c| async move {
        let mut multi = c.new_multi_writer();
        let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        multi.add_delete(&path, None).unwrap();
        multi.add_create(&path, &data, &options).unwrap();
        multi.commit().await.map(|_| ())
    })
    .expect("replace the node atomically");
    let weight_of_b = || {
        let list = discover.providers(SERVICE).unwrap();
        list.iter().find(|e| e.addr == b).map(|e| e.weight)
    };
    assert!(
        wait_until(SOON, || weight_of_b() == Some(7)),
        "the replaced node's new data is read, not the cached one: {:?}",
        weight_of_b()
    );
}

#[test]
fn an_unknown_service_is_empty_until_a_provider_registers() {
    init_logs();
    let zk = ZkServer::start();
    let config = config(&zk.connect_string());
    let discover = ZkDiscover::connect(&config).unwrap();
    assert!(discover.providers("NobodyYet").unwrap().is_empty());
    let addr = fake_addr();
    let _registrar = Registrar::start(
        &config,
        addr,
        vec![ServiceInfo::new("NobodyYet", &["Ping"])],
    )
    .unwrap();
    assert!(wait_until(SOON, || addrs(&discover, "NobodyYet") == vec![addr]));
}

/// Runs `helper_provider_process` in a child process and waits until it has
/// registered `addr`.
fn spawn_provider_process(connect: &str, addr: SocketAddr) -> Child {
    let envs = [
        ("MPRPC_HELPER_ZK", connect.to_owned()),
        ("MPRPC_HELPER_ADDR", addr.to_string()),
    ];
    spawn_helper("helper_provider_process", &envs, "HELPER REGISTERED").0
}

/// Not a test: the provider process `spawn_provider_process` runs (and kills).
#[test]
#[ignore]
fn helper_provider_process() {
    let (Ok(connect), Ok(addr)) = (
        std::env::var("MPRPC_HELPER_ZK"),
        std::env::var("MPRPC_HELPER_ADDR"),
    ) else {
        return;
    };
    let registrar = register(&config(&connect), addr.parse().unwrap());
    println!("HELPER REGISTERED");
    // Bounded, in case the parent dies without killing us.
    std::thread::sleep(Duration::from_secs(60));
    drop(registrar);
}

#[test]
fn a_killed_provider_process_disappears_after_its_session_times_out() {
    init_logs();
    let zk = ZkServer::start();
    let config = config(&zk.connect_string());
    let (stays, dies) = (fake_addr(), fake_addr());
    let _stays = register(&config, stays);
    let mut child = spawn_provider_process(&zk.connect_string(), dies);
    let discover = ZkDiscover::connect(&config).unwrap();
    assert_eq!(addrs(&discover, SERVICE), sorted(vec![stays, dies]));

    child.kill().unwrap(); // SIGKILL: no goodbye to ZooKeeper
    child.wait().unwrap();
    // Its session (1 s) times out on the server; the watch tells us.
    assert!(wait_until(SOON, || addrs(&discover, SERVICE) == vec![stays]));
}

#[test]
fn discovery_serves_from_cache_while_zookeeper_is_down() {
    init_logs();
    let mut zk = ZkServer::start();
    let mut config = config(&zk.connect_string());
    config.registry.session_timeout = Duration::from_secs(4);
    let (a, b) = (fake_addr(), fake_addr());
    let _registrar = register(&config, a);
    let discover = ZkDiscover::connect(&config).unwrap();
    assert_eq!(addrs(&discover, SERVICE), vec![a]);

    zk.stop();
    for _ in 0..20 {
        assert_eq!(addrs(&discover, SERVICE), vec![a]);
        std::thread::sleep(Duration::from_millis(50));
    }
    // A service never looked up cannot be answered, but that is an error,
    // not a hang or a panic.
    assert!(discover.providers("NeverSeen").is_err());

    zk.restart();
    let _late = register(&config, b);
    assert!(wait_until(SOON, || addrs(&discover, SERVICE) == sorted(vec![a, b])));
}

/// Cuts the network between the proxy's clients and ZooKeeper for longer
/// than the session timeout (1 s), so the server expires their sessions.
fn partition(proxy: &ZkProxy) {
    proxy.cut();
    std::thread::sleep(Duration::from_millis(2500));
    proxy.heal();
}

#[test]
fn a_provider_whose_session_expired_registers_again() {
    init_logs();
    let zk = ZkServer::start();
    let proxy = ZkProxy::start(zk.port());
    let raw = RawZk::connect(&zk.connect_string(), None);
    let addr = fake_addr();
    let registrar = register(&config(&proxy.connect_string()), addr);
    let old = registrar.zk_session().unwrap().id().0;
    let node = format!("{}/{addr}", providers_path());
    assert_eq!(raw.get(&node).unwrap().1.ephemeral_owner, old);

    partition(&proxy);
    assert!(
        wait_until(SOON, || {
            let owner = raw.get(&node).map(|(_, stat)| stat.ephemeral_owner);
            owner.is_some_and(|o| o != old) && registrar.is_registered()
        }),
        "provider node not re-created by a new session"
    );
    let new = registrar.zk_session().unwrap().id().0;
    assert_ne!(new, old);
    assert_eq!(raw.get(&node).unwrap().1.ephemeral_owner, new);
    let (data, stat) = raw.get(&format!("/{SERVICE}/Login")).unwrap();
    assert_eq!(seed_reads(&data), addr.to_string().as_bytes());
    assert_eq!(stat.ephemeral_owner, new);
}

#[test]
fn a_provider_keeps_retrying_while_zookeeper_is_unreachable() {
    init_logs();
    let zk = ZkServer::start();
    let proxy = ZkProxy::start(zk.port());
    let raw = RawZk::connect(&zk.connect_string(), None);
    let addr = fake_addr();
    let registrar = register(&config(&proxy.connect_string()), addr);
    let node = format!("{}/{addr}", providers_path());

    proxy.cut();
    // The client gives the session up after its timeout; the registrar
    // notices and keeps trying (with back-off) to open a new one.
    assert!(wait_until(SOON, || !registrar.is_registered()));
    assert!(
        wait_until(SOON, || raw.get(&node).is_none()),
        "server expires the session"
    );
    // It keeps trying: new connection attempts reach the cut proxy.
    let refused = proxy.refused();
    assert!(
        wait_until(SOON, || proxy.refused() >= refused + 2),
        "the registrar stopped trying ({} attempts refused)",
        proxy.refused()
    );
    proxy.heal();
    assert!(wait_until(SOON, || registrar.is_registered()
        && raw.get(&node).is_some()));
}

#[test]
fn discovery_whose_session_expired_watches_again() {
    init_logs();
    let zk = ZkServer::start();
    let proxy = ZkProxy::start(zk.port());
    let config = config(&zk.connect_string());
    let (a, b) = (fake_addr(), fake_addr());
    let _first = register(&config, a);
    let discover = ZkDiscover::connect(&{
        let mut config = config.clone();
        config.registry.zookeeper = Some(proxy.connect_string());
        config
    })
    .unwrap();
    assert_eq!(addrs(&discover, SERVICE), vec![a]);
    let old = discover.zk_session().unwrap().id().0;

    proxy.cut();
    let _second = register(&config, b); // while discovery is cut off
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        addrs(&discover, SERVICE),
        vec![a],
        "the cache keeps serving"
    );
    proxy.heal();
    assert!(wait_until(SOON, || discover
        .zk_session()
        .is_some_and(|s| s.id().0 != old)));
    assert!(wait_until(SOON, || addrs(&discover, SERVICE) == sorted(vec![a, b])));
    let c = fake_addr();
    let _third = register(&config, c);
    assert!(
        wait_until(SOON, || addrs(&discover, SERVICE) == sorted(vec![a, b, c])),
        "watch re-armed on the new session"
    );
}

#[test]
fn a_seed_only_service_is_found_through_the_seed_layout() {
    init_logs();
    let zk = ZkServer::start();
    let raw = RawZk::connect(&zk.connect_string(), None);
    // What the seed's C++ provider writes.
    raw.create("/FriendServiceRpc", b"", zk::CreateMode::Persistent)
        .unwrap();
    raw.create(
        "/FriendServiceRpc/GetFriendsList",
        b"127.0.0.1:9999",
        zk::CreateMode::Ephemeral,
    )
    .unwrap();
    raw.create(
        "/FriendServiceRpc/Bad",
        b"garbage",
        zk::CreateMode::Ephemeral,
    )
    .unwrap();
    let config = config(&zk.connect_string());
    let discover = ZkDiscover::connect(&config).unwrap();
    let endpoints = discover.providers("FriendServiceRpc").unwrap();
    // A seed provider publishes only its address: the defaults otherwise.
    let expected = Endpoint::new("127.0.0.1:9999".parse().unwrap()).format(WireFormat::Seed);
    assert_eq!(&endpoints[..], &[expected]);

    // Once one of ours registers, our layout wins.
    let ours = fake_addr();
    let _registrar = Registrar::start(
        &config,
        ours,
        vec![ServiceInfo::new("FriendServiceRpc", &["GetFriendsList"])],
    )
    .unwrap();
    assert!(wait_until(SOON, || {
        let e = discover.providers("FriendServiceRpc").unwrap();
        e.len() == 1 && e[0].addr == ours && e[0].format == WireFormat::Mprpc
    }));
    // The seed's node was taken, so ours was left alone.
    let (data, _) = raw.get("/FriendServiceRpc/GetFriendsList").unwrap();
    assert_eq!(data, b"127.0.0.1:9999");
}

#[test]
fn a_taken_seed_layout_node_is_taken_over_when_freed() {
    init_logs();
    let zk = ZkServer::start();
    let raw = RawZk::connect(&zk.connect_string(), None);
    let config = config(&zk.connect_string());
    let (a, b) = (fake_addr(), fake_addr());
    let first = register(&config, a);
    let _second = register(&config, b);
    let login = format!("/{SERVICE}/Login");
    assert_eq!(
        seed_reads(&raw.get(&login).unwrap().0),
        a.to_string().as_bytes()
    );
    drop(first);
    assert!(
        wait_until(SOON, || raw.get(&login).is_some_and(
            |(data, _)| seed_reads(&data) == b.to_string().as_bytes()
        )),
        "the waiting provider did not take the seed-layout node over"
    );
}

#[test]
fn a_digest_acl_keeps_others_from_registering_or_removing_providers() {
    init_logs();
    let zk = ZkServer::start();
    let secret = "mprpc:s3cret";
    let mut config = config(&zk.connect_string());
    config.registry.digest = Some(secret.into());
    let addr = fake_addr();
    let _registrar = register(&config, addr);
    let node = format!("{}/{addr}", providers_path());

    let stranger = RawZk::connect(&zk.connect_string(), None);
    let acl = stranger.acl(&providers_path());
    assert!(acl.iter().any(|a| a.scheme() == "digest"), "{acl:?}");
    assert!(acl
        .iter()
        .any(|a| a.scheme() == "world" && a.permission() == zk::Permission::READ));
    assert!(stranger.get(&node).is_some(), "anyone may read");
    assert_eq!(stranger.delete(&node), Err(zk::Error::NoAuth));
    assert_eq!(
        stranger.create(
            &format!("{}/10.0.0.1:1", providers_path()),
            b"",
            zk::CreateMode::Ephemeral
        ),
        Err(zk::Error::NoAuth)
    );
    // A provider without the secret is refused, with context.
    let without = {
        let mut config = config.clone();
        config.registry.digest = None;
        config
    };
    let err = Registrar::start(
        &without,
        fake_addr(),
        vec![ServiceInfo::new(SERVICE, METHODS)],
    )
    .expect_err("registration without the secret must fail");
    assert!(err.to_string().contains("not authorized"), "{err}");
    assert!(err.to_string().contains(&providers_path()), "{err}");
    // Holders of the secret may.
    let _other = register(&config, fake_addr());
    let discover = ZkDiscover::connect(&without).unwrap();
    assert_eq!(discover.providers(SERVICE).unwrap().len(), 2);
}

#[test]
fn unreachable_zookeeper_is_an_error_not_a_panic() {
    init_logs();
    let connect = format!("127.0.0.1:{}", free_port());
    let config = config(&connect);
    let err = Registrar::start(
        &config,
        fake_addr(),
        vec![ServiceInfo::new(SERVICE, METHODS)],
    )
    .expect_err("no ZooKeeper there");
    assert!(err.to_string().contains(&connect), "{err}");
    let err = ZkDiscover::connect(&config).expect_err("no ZooKeeper there");
    assert!(err.to_string().contains(&connect), "{err}");
    // A provider's `main() -> Result<(), Box<dyn Error>>` prints `Error: {:?}`:
    // the sentence, not the struct.
    let mut provider = mprpc::RpcProvider::new(&{
        let mut config = config.clone();
        config.provider.rpc_server_port = 0;
        config
    });
    provider.notify_service(common::services::TestService);
    let err: Box<dyn std::error::Error> = provider.start().unwrap_err().into();
    let shown = format!("{err:?}");
    assert_eq!(shown, err.to_string());
    assert!(
        shown.starts_with("cannot register the services: ZooKeeper "),
        "{shown}"
    );
    assert!(
        shown.contains(&connect) && shown.contains("cannot open a session"),
        "{shown}"
    );
    assert!(shown.contains("is ZooKeeper running there?"), "{shown}");
}

#[test]
fn an_ensemble_with_one_server_killed_keeps_working() {
    init_logs();
    let mut ensemble = ZkEnsemble::start(3);
    let mut config = config(&ensemble.connect_string());
    config.registry.session_timeout = Duration::from_secs(4);
    let (a, b) = (fake_addr(), fake_addr());
    let _first = register(&config, a);
    let discover: Arc<ZkDiscover> = ZkDiscover::connect(&config).unwrap();
    assert_eq!(addrs(&discover, SERVICE), vec![a]);

    let leader = ensemble.leader().expect("a leader");
    ensemble.kill(leader);
    ensemble.wait_quorum();

    let second = Registrar::start(&config, b, vec![ServiceInfo::new(SERVICE, METHODS)]);
    let _second = second.expect("registration works with two of three servers");
    assert!(wait_until(Duration::from_secs(15), || addrs(
        &discover, SERVICE
    ) == sorted(vec![
        a, b
    ])));
    let raw = RawZk::connect(&ensemble.connect_string(), None);
    assert_eq!(
        raw.children(&providers_path()),
        Some(sorted(vec![a, b]).iter().map(|a| a.to_string()).collect())
    );
}
