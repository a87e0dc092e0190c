//! The gateway example through a real ZooKeeper, as a person runs it: the
//! `provider` binary (UserServiceRpc + FriendServiceRpc) and the `gateway`
//! binary register there, the gateway finds its backends there, and
//! `consumer --gateway` finds the gateway there; its GetUserPage answer
//! merges both backends' answers, whether the gateway awaits them on its
//! reactors or blocks worker threads (`--blocking`). A backend that is
//! down gives the caller a status naming it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The real-ZooKeeper harness shared with the root crate's tests.
#[path = "../../tests/common/zk.rs"]
#[allow(dead_code)]
mod zk;

mod common;
use common::provider_process::{self, run_consumer, write_config, Started};

use mprpc::registry::ZkDiscover;
use mprpc::{CallOptions, Channel, ChannelOptions, Code, Config, Discover, RpcProvider};
use mprpc_examples::fixbug::{GatewayServiceRpcStub, GetUserPageRequest, UserServiceRpcServer};
use mprpc_examples::UserService;

/// Starts the `gateway` binary (with `args`) on a free port, registered in `zk`.
fn start_gateway(dir: &Path, zk: &zk::ZkServer, args: &[&str]) -> Started {
    let conf = write_config(dir, "gateway.conf", 0, Some(zk.port()));
    provider_process::start_with(env!("CARGO_BIN_EXE_gateway"), &conf, args)
}

/// Until every service in `services` has a provider in ZooKeeper.
fn wait_registered(discover: &ZkDiscover, services: &[&str]) {
    for service in services {
        assert!(
            zk::wait_until(Duration::from_secs(10), || discover
                .providers(service)
                .is_ok_and(|p| !p.is_empty())),
            "{service} never appeared in ZooKeeper"
        );
    }
}

fn discover(zk: &zk::ZkServer) -> Arc<ZkDiscover> {
    let mut config = Config::default();
    config.registry.zookeeper = Some(zk.connect_string());
    ZkDiscover::connect(&config).expect("discovery connects")
}

/// ZooKeeper, the provider, the gateway (`args`), then `consumer --gateway`.
fn check_merged_page(args: &[&str], says: &str) {
    let zk = zk::ZkServer::start();
    let dir = tempfile::tempdir().unwrap();
    let provider_conf = write_config(dir.path(), "provider.conf", 0, Some(zk.port()));
    let provider = provider_process::start(env!("CARGO_BIN_EXE_provider"), &provider_conf);
    let watch = discover(&zk);
    wait_registered(&watch, &["UserServiceRpc", "FriendServiceRpc"]);
    let gateway = start_gateway(dir.path(), &zk, args);
    assert!(
        gateway.before.iter().any(|l| l.contains(says)),
        "{:?}",
        gateway.before
    );
    assert!(gateway
        .before
        .contains(&"service_name:GatewayServiceRpc".to_owned()));
    wait_registered(&watch, &["GatewayServiceRpc"]);

    // The consumer knows only ZooKeeper: port 1 is never dialled.
    let conf = write_config(dir.path(), "consumer.conf", 1, Some(zk.port()));
    let (ok, out) = run_consumer(&conf, &["--gateway"]);
    assert!(ok, "consumer --gateway failed:\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "rpc GetUserPage response success!",
            "login success:0",
            "index:1 name:gao yang",
            "index:2 name:liu hong",
            "index:3 name:wang shuo",
        ]
    );
    // Both answers came from the backend provider, not from the gateway.
    let expected = [
        "doing local service: Login",
        "name:zhang san pwd:123456",
        "doing GetFriendsList service! userid:1000",
    ];
    let mut printed = Vec::new();
    while !expected
        .iter()
        .all(|e| printed.iter().any(|p: &String| p == e))
    {
        match provider.lines.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => printed.push(line),
            Err(_) => panic!("the provider printed {printed:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn the_gateway_merges_both_backends_answers_through_zookeeper() {
    check_merged_page(&[], "answers later");
}

#[test]
fn the_blocking_gateway_gives_the_same_page() {
    check_merged_page(&["--blocking"], "blocks one of");
}

#[test]
fn a_backend_down_gives_a_status_that_names_it() {
    let zk = zk::ZkServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Only the user service is up: GetFriendsList has no provider.
    let mut users = RpcProvider::new(&{
        let mut config = Config::default();
        config.provider.rpc_server_port = 0;
        config.registry.zookeeper = Some(zk.connect_string());
        config
    });
    users.notify_service(UserServiceRpcServer::new(UserService));
    let users = users.start().expect("the user provider starts");
    let watch = discover(&zk);
    wait_registered(&watch, &["UserServiceRpc"]);
    let _gateway = start_gateway(dir.path(), &zk, &[]);
    wait_registered(&watch, &["GatewayServiceRpc"]);

    let discover: Arc<dyn Discover> = watch.clone();
    let stub = GatewayServiceRpcStub::new(
        Channel::new(discover, ChannelOptions::default()).expect("a channel"),
    );
    let request = GetUserPageRequest {
        name: "zhang san".into(),
        pwd: "123456".into(),
        userid: 1000,
    };
    let call = |why: &str| {
        let status = stub
            .get_user_page_async(&request, &CallOptions::with_timeout(Duration::from_secs(5)))
            .wait()
            .expect_err(why);
        assert_eq!(status.code(), Code::Unavailable, "{status}");
        status.message().to_owned()
    };
    let message = call("no provider of FriendServiceRpc");
    assert!(
        message.starts_with("gateway: FriendServiceRpc.GetFriendsList failed: unavailable"),
        "{message}"
    );

    // Now the user service is gone too.
    users.shutdown_gracefully();
    let message = call("no backend at all");
    assert!(
        message.starts_with("gateway: UserServiceRpc.Login failed: unavailable")
            || message.starts_with("gateway: FriendServiceRpc.GetFriendsList failed: unavailable"),
        "{message}"
    );
}
