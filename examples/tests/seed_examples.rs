//! End to end through the generated code: the seed's services served by a
//! real server on 127.0.0.1 (port 0), called through the generated stubs in
//! all three forms, plus the error paths (unknown method, undecodable
//! request, a handler's own error), and the real `provider` and `consumer`
//! binaries run as processes.

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The real-ZooKeeper harness shared with the root crate's tests.
#[path = "../../tests/common/zk.rs"]
#[allow(dead_code)]
mod zk;

use bytes::Bytes;
use mprpc::client::Channel;
use mprpc::server::{Server, ServerHandle};
use mprpc::{CallContext, CallOptions, Code, Config, Controller, Service, Status};
use mprpc_examples::bench::{EchoRequest, EchoServiceServer, EchoServiceStub};
use mprpc_examples::fixbug::{
    FriendServiceRpcServer, FriendServiceRpcStub, GetFriendsListRequest, GetFriendsListResponse,
    LoginRequest, LoginResponse, RegisterRequest, RegisterResponse, UserServiceRpc,
    UserServiceRpcServer, UserServiceRpcStub,
};
use mprpc_examples::{Echo, FriendService, UserService};

mod common;
use common::provider_process::{self, run_consumer, write_config, Proc};

const WAIT: Duration = Duration::from_secs(10);

/// A server on an ephemeral port, shut down when dropped.
struct TestServer(ServerHandle);

impl Drop for TestServer {
    fn drop(&mut self) {
        self.0.shutdown();
        self.0.wait();
    }
}

fn config() -> Config {
    let mut config = Config::default();
    config.provider.rpc_server_port = 0;
    config.server.reactor_threads = 2;
    config.server.worker_threads = 2;
    config
}

/// Publishes `users` beside the seed's friend service and the echo service.
fn serve(users: impl Service) -> (TestServer, Channel) {
    let mut server = Server::new(&config());
    server.add_service(users);
    server.add_blocking_service(FriendServiceRpcServer::new(FriendService));
    server.add_service(EchoServiceServer::new(Echo));
    let handle = server.start().expect("server starts");
    let channel = Channel::direct(handle.local_addr()).expect("channel");
    (TestServer(handle), channel)
}

fn serve_seed() -> (TestServer, Channel) {
    serve(UserServiceRpcServer::new(UserService))
}

fn login_request() -> LoginRequest {
    LoginRequest {
        name: "zhang san".into(),
        pwd: "123456".into(),
    }
}

fn register_request() -> RegisterRequest {
    RegisterRequest {
        id: 2000,
        name: "mprpc".into(),
        pwd: "666666".into(),
    }
}

fn assert_seed_login(response: &LoginResponse) {
    assert_eq!(response.result.as_ref().map(|r| r.errcode), Some(0));
    assert!(!response.sucess, "the seed's Login answers false");
}

fn assert_seed_register(response: &RegisterResponse) {
    assert_eq!(response.result.as_ref().map(|r| r.errcode), Some(0));
    assert!(response.sucess, "the seed's Register answers true");
}

fn assert_seed_friends(response: &GetFriendsListResponse) {
    assert_eq!(response.result.as_ref().map(|r| r.errcode), Some(0));
    let names: Vec<&[u8]> = response.friends.iter().map(|f| &f[..]).collect();
    assert_eq!(names, [&b"gao yang"[..], b"liu hong", b"wang shuo"]);
}

#[test]
fn server_publishes_the_proto_names() {
    let (server, _channel) = serve_seed();
    let mut services: Vec<_> = server
        .0
        .services()
        .into_iter()
        .map(|s| (s.name, s.methods))
        .collect();
    services.sort();
    assert_eq!(
        services,
        [
            ("EchoService", &["Echo"][..]),
            ("FriendServiceRpc", &["GetFriendsList"][..]),
            ("UserServiceRpc", &["Login", "Register"][..]),
        ]
    );
}

#[test]
fn blocking_stub_calls_return_the_seed_replies() {
    let (_server, channel) = serve_seed();
    let users = UserServiceRpcStub::new(channel.clone());
    let friends = FriendServiceRpcStub::new(channel);

    let mut controller = Controller::new();
    controller.set_timeout(WAIT);
    let login = users.login(&mut controller, &login_request()).unwrap();
    assert_seed_login(&login);
    let register = users
        .register(&mut controller, &register_request())
        .unwrap();
    assert_seed_register(&register);
    let list = friends
        .get_friends_list(&mut controller, &GetFriendsListRequest { userid: 1000 })
        .unwrap();
    assert_seed_friends(&list);
    assert!(!controller.failed(), "{}", controller.error_text());
}

#[test]
fn async_stub_calls_wait_for_their_replies() {
    let (_server, channel) = serve_seed();
    let users = UserServiceRpcStub::new(channel.clone());
    let friends = FriendServiceRpcStub::new(channel.clone());
    let echo = EchoServiceStub::new(channel);
    let options = CallOptions::with_timeout(WAIT);

    // All four in flight at once, then collected.
    let login = users.login_async(&login_request(), &options);
    let register = users.register_async(&register_request(), &options);
    let list = friends.get_friends_list_async(&GetFriendsListRequest { userid: 1000 }, &options);
    let payload = Bytes::from(vec![7u8; 64]);
    let echoed = echo.echo_async(
        &EchoRequest {
            payload: payload.clone(),
        },
        &options,
    );

    assert_seed_login(&login.wait().unwrap());
    assert_seed_register(&register.wait().unwrap());
    assert_seed_friends(&list.wait().unwrap());
    assert_eq!(echoed.wait().unwrap().payload, payload);
}

#[test]
fn callback_stub_calls_deliver_each_reply_once() {
    let (_server, channel) = serve_seed();
    let users = UserServiceRpcStub::new(channel.clone());
    let friends = FriendServiceRpcStub::new(channel);
    let options = CallOptions::with_timeout(WAIT);

    let (tx, rx) = mpsc::channel::<String>();
    let t1 = tx.clone();
    let _h1 = users.login_with(&login_request(), &options, move |result| {
        assert_seed_login(&result.unwrap());
        t1.send("login".into()).unwrap();
    });
    let t2 = tx.clone();
    let _h2 = users.register_with(&register_request(), &options, move |result| {
        assert_seed_register(&result.unwrap());
        t2.send("register".into()).unwrap();
    });
    let _h3 = friends.get_friends_list_with(
        &GetFriendsListRequest { userid: 1000 },
        &options,
        move |result| {
            assert_seed_friends(&result.unwrap());
            tx.send("friends".into()).unwrap();
        },
    );

    let mut done: Vec<String> = (0..3).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
    done.sort();
    assert_eq!(done, ["friends", "login", "register"]);
    // Every sender is gone once each callback ran exactly once.
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
}

#[test]
fn unknown_method_and_undecodable_request_get_their_codes() {
    let (_server, channel) = serve_seed();
    let options = CallOptions::with_timeout(WAIT);

    let err = channel
        .call("UserServiceRpc", "Logout", Bytes::new(), &options, None)
        .unwrap_err();
    assert_eq!(err.code(), Code::UnknownMethod, "{err}");
    assert!(err.message().contains("Logout"), "{err}");

    // Field 1 claims 5 bytes, 1 follows: prost cannot decode it.
    let garbage = Bytes::from_static(&[0x0a, 0x05, 0x01]);
    let err = channel
        .call("UserServiceRpc", "Login", garbage, &options, None)
        .unwrap_err();
    assert_eq!(err.code(), Code::BadRequest, "{err}");
    assert!(err.message().contains("UserServiceRpc.Login"), "{err}");
}

/// A user service whose Login refuses with an application error.
struct LockedUsers;

impl UserServiceRpc for LockedUsers {
    fn login(&self, _ctx: &CallContext, request: LoginRequest) -> Result<LoginResponse, Status> {
        Err(Status::application(format!(
            "user {} is locked",
            String::from_utf8_lossy(&request.name)
        )))
    }

    fn register(
        &self,
        _ctx: &CallContext,
        _request: RegisterRequest,
    ) -> Result<RegisterResponse, Status> {
        Ok(RegisterResponse::default())
    }
}

#[test]
fn a_handler_error_reaches_the_callers_controller_with_its_text() {
    let (_server, channel) = serve(UserServiceRpcServer::new(LockedUsers));
    let users = UserServiceRpcStub::new(channel);

    let mut controller = Controller::new();
    controller.set_timeout(WAIT);
    let err = users.login(&mut controller, &login_request()).unwrap_err();
    assert_eq!(err.code(), Code::Application);
    assert!(controller.failed());
    assert_eq!(controller.code(), Code::Application);
    assert!(
        controller.error_text().contains("user zhang san is locked"),
        "{}",
        controller.error_text()
    );

    let options = CallOptions::with_timeout(WAIT);
    let err = users
        .login_async(&login_request(), &options)
        .wait()
        .unwrap_err();
    assert_eq!(err.message(), "user zhang san is locked");

    let (tx, rx) = mpsc::channel();
    let _h = users.login_with(&login_request(), &options, move |r| {
        tx.send(r).unwrap();
    });
    let err = rx.recv_timeout(WAIT).unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Application);

    // The other method of the same service still works.
    assert!(users
        .register(&mut Controller::new(), &register_request())
        .is_ok());
}

// ---- the binaries, as a user runs them ----

/// Starts `provider` on port 0; returns it, its port and its stdout lines.
fn start_provider(dir: &Path, zk_port: Option<u16>) -> (Proc, u16, mpsc::Receiver<String>) {
    let conf = write_config(dir, "provider.conf", 0, zk_port);
    let started = provider_process::start(env!("CARGO_BIN_EXE_provider"), &conf);
    assert!(started
        .before
        .contains(&"service_name:UserServiceRpc".to_owned()));
    assert!(started
        .before
        .contains(&"method_name:GetFriendsList".to_owned()));
    (started.proc, started.port, started.lines)
}

#[test]
fn provider_and_consumer_binaries_print_what_the_seed_prints() {
    let dir = tempfile::tempdir().unwrap();
    let (_provider, port, provider_out) = start_provider(dir.path(), None);
    let conf = write_config(dir.path(), "consumer.conf", port, None);
    check_seed_demo(&conf, &provider_out);
}

#[test]
fn provider_and_consumer_meet_through_a_real_zookeeper() {
    let zk = zk::ZkServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (_provider, _port, provider_out) = start_provider(dir.path(), Some(zk.port()));
    // The consumer is told no provider port at all: only ZooKeeper.
    let conf = write_config(dir.path(), "consumer.conf", 1, Some(zk.port()));
    check_seed_demo(&conf, &provider_out);
}

/// Runs the consumer and checks both programs printed the seed's lines.
fn check_seed_demo(conf: &Path, provider_out: &mpsc::Receiver<String>) {
    let (ok, out) = run_consumer(conf, &[]);
    assert!(ok, "consumer failed:\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "rpc login response success:0",
            "rpc register response success:1",
            "rpc GetFriendsList response success!",
            "index:1 name:gao yang",
            "index:2 name:liu hong",
            "index:3 name:wang shuo",
        ]
    );

    // The provider printed what the seed's callee prints, for each call.
    let expected = [
        "doing local service: Login",
        "name:zhang san pwd:123456",
        "doing local service: Register",
        "id:2000name:mprpc pwd:666666",
        "doing GetFriendsList service! userid:1000",
    ];
    let mut printed = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !expected
        .iter()
        .all(|e| printed.iter().any(|p: &String| p == e))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match provider_out.recv_timeout(left) {
            Ok(line) => printed.push(line),
            Err(_) => panic!("provider printed {printed:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn consumer_without_a_provider_prints_the_error_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = write_config(dir.path(), "consumer.conf", port, None);
    let (ok, out) = run_consumer(&conf, &[]);
    assert!(!ok, "consumer must fail without a provider:\n{out}");
    assert_eq!(out.lines().count(), 3, "one error line per call:\n{out}");
    assert!(!out.contains("response success"), "{out}");
    assert!(out.contains("unavailable"), "{out}");
}

#[test]
fn every_binary_has_help() {
    for exe in [
        env!("CARGO_BIN_EXE_provider"),
        env!("CARGO_BIN_EXE_consumer"),
        env!("CARGO_BIN_EXE_echo-provider"),
        env!("CARGO_BIN_EXE_gateway"),
    ] {
        let out = Command::new(exe).arg("--help").output().unwrap();
        assert!(out.status.success(), "{exe} --help failed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("-i, --config <FILE>"), "{exe}: {text}");
    }
}
