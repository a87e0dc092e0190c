//! The `mprpc` binary end to end, over real sockets: the examples' services
//! served by our server, reflection, two providers registered in a real
//! ZooKeeper (tests/common/zk.rs), a seed-format provider that has no
//! reflection (examples/tests/common/seed_provider.rs), and the errors a
//! person at a shell runs into.

use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::time::Duration;

use mprpc::server::{Server, ServerHandle};
use mprpc::{Config, ProviderHandle, RpcProvider};
use mprpc_examples::fixbug::{FriendServiceRpcServer, UserServiceRpcServer};
use mprpc_examples::{FriendService, UserService};
use serde_json::{json, Value};

#[path = "../../tests/common/zk.rs"]
#[allow(dead_code, unreachable_pub)]
mod zk;

#[path = "../../examples/tests/common/seed_provider.rs"]
#[allow(dead_code, unreachable_pub)]
mod seed_provider;

const USER_PROTO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto/user.proto");

/// The seed's example services, as the examples' `provider` publishes them,
/// without a registry.
fn examples_provider() -> ServerHandle {
    let mut server = Server::with_options(Default::default());
    server.add_service(UserServiceRpcServer::new(UserService));
    server.add_blocking_service(FriendServiceRpcServer::new(FriendService));
    server.start().expect("server starts")
}

/// Runs `mprpc args...`.
fn mprpc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mprpc"))
        .args(args)
        .output()
        .expect("mprpc runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `mprpc args...`, expects success, returns stdout.
fn ok(args: &[&str]) -> String {
    let out = mprpc(args);
    assert!(
        out.status.success(),
        "mprpc {args:?} failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Runs `mprpc args...`, expects failure, returns stderr.
fn fails(args: &[&str]) -> String {
    let out = mprpc(args);
    assert!(
        !out.status.success(),
        "mprpc {args:?} succeeded:\n{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).is_empty(),
        "nothing on stdout: {}",
        stdout(&out)
    );
    stderr(&out)
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn call_returns_the_seeds_values_as_json() {
    let server = examples_provider();
    let addr = server.local_addr().to_string();
    let login = ok(&[
        "--addr",
        &addr,
        "call",
        "--bytes",
        "text",
        "UserServiceRpc.Login",
        r#"{"name":"zhang san","pwd":"123456"}"#,
    ]);
    // The seed's Login answers false with errcode 0; every field is printed.
    assert_eq!(
        json_of(&login),
        json!({"result": {"errcode": 0, "errmsg": ""}, "sucess": false})
    );
    let register = ok(&[
        "--addr",
        &addr,
        "call",
        "--bytes",
        "text",
        "UserServiceRpc.Register",
        r#"{"id":2000,"name":"mprpc","pwd":"666666"}"#,
    ]);
    assert_eq!(json_of(&register)["sucess"], json!(true));
    let friends = ok(&[
        "call",
        "--addr",
        &addr,
        "--bytes",
        "text",
        "FriendServiceRpc.GetFriendsList",
        r#"{"userid":1000}"#,
    ]);
    assert_eq!(
        json_of(&friends)["friends"],
        json!(["gao yang", "liu hong", "wang shuo"])
    );
    // Base64 by default, as the protobuf JSON mapping says.
    let friends = ok(&[
        "--addr",
        &addr,
        "call",
        "FriendServiceRpc.GetFriendsList",
        "{}",
    ]);
    assert_eq!(json_of(&friends)["friends"][0], json!("Z2FvIHlhbmc="));
    // Reflection itself is callable, described by the CLI's own copy of it.
    let list = json_of(&ok(&[
        "--addr",
        &addr,
        "call",
        "mprpc.Reflection.ListServices",
        "{}",
    ]));
    let names: Vec<&str> = list["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["FriendServiceRpc", "UserServiceRpc", "mprpc.Reflection"]
    );
    let metrics = server.metrics().to_string();
    assert!(metrics.contains("GetFriendsList"), "{metrics}");
    server.shutdown();
    server.wait();
}

#[test]
fn describe_and_ls_read_the_providers_reflection() {
    let server = examples_provider();
    let addr = server.local_addr().to_string();
    let service = ok(&["--addr", &addr, "describe", "UserServiceRpc"]);
    for line in [
        "service fixbug.UserServiceRpc {",
        "  rpc Login(fixbug.LoginRequest) returns (fixbug.LoginResponse);",
        "  rpc Register(fixbug.RegisterRequest) returns (fixbug.RegisterResponse);",
        "message fixbug.RegisterRequest {\n  uint32 id = 1;\n  bytes name = 2;\n  bytes pwd = 3;\n}",
        "message fixbug.ResultCode {\n  int32 errcode = 1;\n  bytes errmsg = 2;\n}",
    ] {
        assert!(service.contains(line), "{line:?} not in:\n{service}");
    }
    let method = ok(&[
        "--addr",
        &addr,
        "describe",
        "FriendServiceRpc.GetFriendsList",
    ]);
    assert!(method.contains("  repeated bytes friends = 2;"), "{method}");
    assert!(!method.contains("Register"), "{method}");
    let ls = ok(&["--addr", &addr, "ls"]);
    assert!(
        ls.contains("UserServiceRpc  (fixbug.UserServiceRpc)\n  methods: Login, Register\n"),
        "{ls}"
    );
    assert!(
        ls.contains("FriendServiceRpc  (fixbug.FriendServiceRpc)\n  methods: GetFriendsList\n"),
        "{ls}"
    );
    let one = ok(&["--addr", &addr, "ls", "FriendServiceRpc"]);
    assert!(!one.contains("UserServiceRpc"), "{one}");
    server.shutdown();
    server.wait();
}

/// A provider of the examples' services registered in ZooKeeper at `zk`.
fn registered_provider(zk: &str) -> ProviderHandle {
    let mut config = Config::default();
    config.registry.zookeeper = Some(zk.to_owned());
    config.registry.session_timeout = Duration::from_millis(2000);
    config.provider.rpc_server_ip = "127.0.0.1".into();
    config.provider.rpc_server_port = 0;
    config.server.reactor_threads = 1;
    config.server.worker_threads = 1;
    config.provider.drain = Duration::ZERO;
    let mut provider = RpcProvider::new(&config);
    provider.notify_service(UserServiceRpcServer::new(UserService));
    provider.start().expect("provider starts and registers")
}

#[test]
fn ls_lists_two_providers_of_one_service_through_zookeeper() {
    let zk = zk::ZkServer::start();
    let connect = zk.connect_string();
    let providers = [registered_provider(&connect), registered_provider(&connect)];
    let ls = ok(&["--zk", &connect, "ls"]);
    assert!(
        ls.starts_with("UserServiceRpc\n  methods: Login, Register\n"),
        "{ls}"
    );
    for p in &providers {
        let line = format!(
            "  provider {}  methods=Login,Register weight=100 version=",
            p.addr()
        );
        assert!(ls.contains(&line), "{line:?} not in:\n{ls}");
    }
    assert_eq!(ls.matches("  provider ").count(), 2, "{ls}");
    // Discovered, described by reflection, called, balanced over both.
    let reply = ok(&[
        "--zk",
        &connect,
        "call",
        "--bytes",
        "text",
        "UserServiceRpc.Register",
        r#"{"name":"a"}"#,
    ]);
    assert_eq!(json_of(&reply)["sucess"], json!(true));
    let err = fails(&["--zk", &connect, "ls", "Nope"]);
    assert!(
        err.contains("unknown service 'Nope': the registry has UserServiceRpc"),
        "{err}"
    );
    let err = fails(&["--zk", &connect, "call", "Nope.Login", "{}"]);
    assert!(err.contains("unknown service 'Nope'"), "{err}");
    // A near miss names the registered service it resembles.
    let err = fails(&["--zk", &connect, "call", "UserServiceRcp.Login", "{}"]);
    assert!(
        err.contains("unknown service 'UserServiceRcp'")
            && err.contains("(did you mean 'UserServiceRpc'?)"),
        "{err}"
    );
    for p in &providers {
        p.shutdown_gracefully();
    }
}

#[test]
fn call_with_proto_speaks_the_seed_format_to_a_seed_provider() {
    let seed = seed_provider::SeedProvider::start();
    let addr = seed.addr.to_string();
    let login = ok(&[
        "--addr",
        &addr,
        "--seed",
        "call",
        "--proto",
        USER_PROTO,
        "--bytes",
        "text",
        "UserServiceRpc.Login",
        r#"{"name":"zhang san","pwd":"123456"}"#,
    ]);
    // The seed provider answers true for zhang san (ours answers false).
    assert_eq!(
        json_of(&login),
        json!({"result": {"errcode": 0, "errmsg": ""}, "sucess": true})
    );
    assert_eq!(seed.served.load(Ordering::SeqCst), 1);
    let err = fails(&[
        "--addr",
        &addr,
        "--seed",
        "call",
        "UserServiceRpc.Login",
        "{}",
    ]);
    assert!(
        err.contains("no reflection") && err.contains("--proto"),
        "{err}"
    );
    assert_eq!(seed.served.load(Ordering::SeqCst), 1, "nothing was sent");
    let described = ok(&[
        "--addr",
        &addr,
        "--seed",
        "describe",
        "--proto",
        USER_PROTO,
        "UserServiceRpc.Login",
    ]);
    assert!(
        described.contains("rpc Login(fixbug.LoginRequest)"),
        "{described}"
    );
}

#[test]
fn a_seed_provider_in_the_seed_zookeeper_layout_is_found_and_called_in_its_format() {
    let zk = zk::ZkServer::start();
    let seed = seed_provider::SeedProvider::start();
    // What the seed's RpcProvider writes: /<Service>, /<Service>/<Method> = ip:port.
    let raw = zk::RawZk::connect(&zk.connect_string(), None);
    raw.create(
        "/UserServiceRpc",
        b"",
        zookeeper_client::CreateMode::Persistent,
    )
    .unwrap();
    for method in ["Login", "Register"] {
        let path = format!("/UserServiceRpc/{method}");
        raw.create(
            &path,
            seed.addr.to_string().as_bytes(),
            zookeeper_client::CreateMode::Ephemeral,
        )
        .unwrap();
    }
    let connect = zk.connect_string();
    let ls = ok(&["--zk", &connect, "ls"]);
    assert!(
        ls.contains(&format!(
            "  provider {}  seed format (seed layout: Login, Register)",
            seed.addr
        )),
        "{ls}"
    );
    let err = fails(&["--zk", &connect, "call", "UserServiceRpc.Register", "{}"]);
    assert!(
        err.contains("seed-format providers only") && err.contains("--proto"),
        "{err}"
    );
    let reply = ok(&[
        "--zk",
        &connect,
        "call",
        "--proto",
        USER_PROTO,
        "UserServiceRpc.Register",
        "{}",
    ]);
    assert_eq!(json_of(&reply)["sucess"], json!(true));
    assert_eq!(seed.served.load(Ordering::SeqCst), 1);
}

#[test]
fn mistakes_get_clear_errors() {
    let server = examples_provider();
    let addr = server.local_addr().to_string();
    let a = addr.as_str();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--addr", a, "call", "Nope.Login", "{}"],
            "unknown service 'Nope': provider",
        ),
        (
            &["--addr", a, "call", "UserServiceRpc.Logout", "{}"],
            "unknown method 'Logout': service 'UserServiceRpc' has Login, Register",
        ),
        (
            &["--addr", a, "call", "UserServiceRpc.Register", r#"{"id":"#],
            "the request is not valid JSON",
        ),
        (
            &[
                "--addr",
                a,
                "call",
                "UserServiceRpc.Register",
                r#"{"id":"lots"}"#,
            ],
            "field 'id' (uint32) cannot be \"lots\"",
        ),
        (
            &[
                "--addr",
                a,
                "call",
                "UserServiceRpc.Register",
                r#"{"ident":1}"#,
            ],
            "fixbug.RegisterRequest has no field 'ident' (its fields: id, name, pwd)",
        ),
        (
            &[
                "--addr",
                a,
                "call",
                "UserServiceRpc.Login",
                r#"{"name":"not base64!"}"#,
            ],
            "field 'name' (bytes)",
        ),
        (
            &["--addr", a, "call", "UserServiceRpc", "{}"],
            "not Service.Method",
        ),
        (
            &["call", "UserServiceRpc.Login"],
            "--zk HOST:PORT (ZooKeeper), --addr HOST:PORT",
        ),
        (
            &[
                "--addr",
                a,
                "call",
                "--proto",
                "/nonexistent/x.proto",
                "UserServiceRpc.Login",
                "{}",
            ],
            "--proto",
        ),
    ];
    for (args, expected) in cases {
        let err = fails(args);
        assert!(
            err.contains(expected),
            "mprpc {args:?}: {expected:?} not in {err:?}"
        );
    }
    // Nothing listens on a port we just released.
    let closed = format!("127.0.0.1:{}", zk::free_port());
    let err = fails(&[
        "--addr",
        &closed,
        "--timeout-ms",
        "2000",
        "call",
        "UserServiceRpc.Login",
        "{}",
    ]);
    assert!(
        err.contains(&format!("cannot reach provider {closed}")),
        "{err}"
    );
    let err = fails(&[
        "--addr",
        &closed,
        "call",
        "--proto",
        USER_PROTO,
        "UserServiceRpc.Login",
        "{}",
    ]);
    assert!(
        err.contains("UserServiceRpc.Login: no provider could be reached"),
        "{err}"
    );
    // None of it disturbed the provider.
    let reply = ok(&["--addr", a, "call", "UserServiceRpc.Register", "{}"]);
    assert_eq!(json_of(&reply)["sucess"], json!(true));
    server.shutdown();
    server.wait();
}

#[test]
fn a_consumers_config_file_brings_its_token_and_registry_setting() {
    let dir = tempfile::tempdir().unwrap();
    let provider_conf = Config::parse(
        "provider.conf",
        "rpcserverip=127.0.0.1\nrpcserverport=0\nregistry=none\nauth_token=s3cret\n",
    )
    .unwrap();
    let mut server = Server::new(&provider_conf);
    server.add_service(UserServiceRpcServer::new(UserService));
    let server = server.start().unwrap();
    let addr = server.local_addr();
    // registry=none: the consumer dials rpcserverip:rpcserverport, with the token.
    let conf = dir.path().join("consumer.conf");
    std::fs::write(
        &conf,
        format!(
            "rpcserverip=127.0.0.1\nrpcserverport={}\nregistry=none\nauth_token=s3cret\nregisty=typo\n",
            addr.port()
        ),
    )
    .unwrap();
    let conf = conf.to_str().unwrap();
    let out = mprpc(&["-i", conf, "call", "UserServiceRpc.Register", "{}"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_of(&stdout(&out))["sucess"], json!(true));
    assert!(
        stderr(&out).contains("unknown key 'registy' (did you mean 'registry'?)"),
        "{}",
        stderr(&out)
    );
    let err = fails(&[
        "--addr",
        &addr.to_string(),
        "call",
        "UserServiceRpc.Register",
        "{}",
    ]);
    assert!(err.contains("wants a token"), "{err}");
    let err = fails(&[
        "--addr",
        &addr.to_string(),
        "call",
        "--proto",
        USER_PROTO,
        "UserServiceRpc.Register",
        "{}",
    ]);
    assert!(err.contains("wants a token"), "{err}");
    let err = fails(&["-i", "/nonexistent/consumer.conf", "ls"]);
    assert!(err.contains("/nonexistent/consumer.conf"), "{err}");
    server.shutdown();
    server.wait();
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["ls", "--help"],
        &["describe", "--help"],
        &["call", "--help"],
        &["top", "--help"],
    ] {
        let help = ok(args);
        assert!(help.contains("Usage: mprpc"), "{help}");
        assert!(help.contains("--zk"), "{help}");
    }
    assert!(ok(&["call", "--help"]).contains("--bytes"));
}
/// Calls `UserServiceRpc.Register` on every one of `addrs` in turn until
/// `stop` is set.
fn keep_calling(
    addrs: Vec<std::net::SocketAddr>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    use mprpc_examples::fixbug::{RegisterRequest, UserServiceRpcStub};
    std::thread::spawn(move || {
        let stubs: Vec<UserServiceRpcStub> = addrs
            .iter()
            .map(|a| UserServiceRpcStub::new(mprpc::Channel::direct(a).unwrap()))
            .collect();
        let mut calls = 0;
        while !stop.load(Ordering::Relaxed) {
            for stub in &stubs {
                let mut c = mprpc::Controller::new();
                stub.register(&mut c, &RegisterRequest::default()).unwrap();
                calls += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        calls
    })
}

/// The rows of `top`'s last table: (provider, method, calls/s).
fn top_rows(out: &str) -> Vec<(String, String, String)> {
    let last = out.rsplit("mprpc top:").next().unwrap_or_default();
    last.lines()
        .skip(2)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (cols.len() == 8).then(|| (cols[0].to_owned(), cols[1].to_owned(), cols[2].to_owned()))
        })
        .collect()
}

#[test]
fn top_shows_live_rates_of_every_provider_of_a_service() {
    let zk = zk::ZkServer::start();
    let connect = zk.connect_string();
    let providers = [registered_provider(&connect), registered_provider(&connect)];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = keep_calling(providers.iter().map(|p| p.addr()).collect(), stop.clone());
    let out = ok(&[
        "--zk",
        &connect,
        "top",
        "UserServiceRpc",
        "--iterations",
        "2",
        "--interval-ms",
        "400",
    ]);
    stop.store(true, Ordering::Relaxed);
    assert!(load.join().unwrap() > 0);
    assert_eq!(
        out.matches("mprpc top: UserServiceRpc on 2 provider(s)")
            .count(),
        2,
        "{out}"
    );
    let rows = top_rows(&out);
    for p in &providers {
        let addr = p.addr().to_string();
        let register = rows
            .iter()
            .find(|(a, m, _)| *a == addr && m == "UserServiceRpc.Register")
            .unwrap_or_else(|| panic!("no Register row for {addr} in:\n{out}"));
        let rate: f64 = register.2.parse().unwrap_or_else(|_| panic!("{out}"));
        assert!(rate > 0.0, "{out}");
        let login = rows
            .iter()
            .find(|(a, m, _)| *a == addr && m == "UserServiceRpc.Login");
        assert_eq!(login.map(|r| &r.2[..]), Some("0.0"), "{out}");
    }
    let all: f64 = rows
        .iter()
        .find(|(a, m, _)| a == "all" && m == "UserServiceRpc.Register")
        .map(|r| r.2.parse().unwrap())
        .unwrap_or_else(|| panic!("no total in:\n{out}"));
    assert!(all > 0.0, "{out}");
    for p in &providers {
        p.shutdown_gracefully();
    }
}

#[test]
fn top_says_why_a_provider_cannot_be_read() {
    // A seed-format provider has no admin pages; a closed port none at all.
    let seed = seed_provider::SeedProvider::start();
    let out = ok(&[
        "--addr",
        &seed.addr.to_string(),
        "--seed",
        "top",
        "--iterations",
        "1",
        "--interval-ms",
        "100",
    ]);
    assert!(
        out.contains("cannot read /status: seed-format provider: no admin pages"),
        "{out}"
    );
    let closed = format!("127.0.0.1:{}", zk::free_port());
    let out = ok(&[
        "--addr",
        &closed,
        "top",
        "--iterations",
        "1",
        "--interval-ms",
        "100",
    ]);
    assert!(
        out.contains(&format!("cannot read /status: {closed}: cannot connect")),
        "{out}"
    );
    let nobody = format!("127.0.0.1:{}", zk::free_port());
    let err = fails(&["--zk", &nobody, "top"]);
    assert!(err.contains("say which service to watch"), "{err}");
}

#[test]
fn top_passes_the_admin_token() {
    let conf = Config::parse(
        "provider.conf",
        "rpcserverip=127.0.0.1\nrpcserverport=0\nregistry=none\nadmin_token=adm1n\n",
    )
    .unwrap();
    let mut server = Server::new(&conf);
    server.add_service(UserServiceRpcServer::new(UserService));
    let server = server.start().unwrap();
    let addr = server.local_addr().to_string();
    let top = [
        "--addr",
        &addr,
        "top",
        "--iterations",
        "1",
        "--interval-ms",
        "100",
    ];
    let denied = ok(&top);
    assert!(
        denied.contains("401") && denied.contains("--admin-token"),
        "{denied}"
    );
    let out = ok(&[&top[..], &["--admin-token", "adm1n"]].concat());
    let rows = top_rows(&out);
    assert!(
        rows.iter()
            .any(|(a, m, _)| *a == addr && m == "UserServiceRpc.Login"),
        "{out}"
    );
    server.shutdown();
    server.wait();
}

#[test]
fn certs_it_writes_secure_a_provider_that_call_and_top_reach_with_flags() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let tls_dir = tls.to_str().unwrap();
    let made = ok(&["certs", tls_dir]);
    assert!(made.contains("tls_client_ca="), "{made}");
    let file = |name: &str| tls.join(name).display().to_string();
    // Mutual TLS, a token and an admin token on one port.
    let conf = Config::parse(
        "provider.conf",
        &format!(
            "rpcserverip=127.0.0.1\nrpcserverport=0\nregistry=none\ntls=required\n\
             tls_cert={}\ntls_key={}\ntls_client_ca={}\nauth_token=s3cret\nadmin_token=adm1n\n",
            file("provider.crt"),
            file("provider.key"),
            file("ca.crt")
        ),
    )
    .unwrap();
    let mut server = Server::new(&conf);
    server.add_service(UserServiceRpcServer::new(UserService));
    let server = server.start().unwrap();
    let addr = server.local_addr().to_string();
    let (ca, cert, key) = (file("ca.crt"), file("client.crt"), file("client.key"));
    let secure = [
        "--addr",
        &addr,
        "--tls-ca",
        &ca,
        "--tls-client-cert",
        &cert,
        "--tls-client-key",
        &key,
        "--token",
        "s3cret",
    ];
    let reply = ok(&[&secure[..], &["call", "UserServiceRpc.Register", "{}"]].concat());
    assert_eq!(json_of(&reply)["sucess"], json!(true));
    let top = ["top", "--iterations", "1", "--admin-token", "adm1n"];
    let out = ok(&[&secure[..], &top[..]].concat());
    assert!(
        top_rows(&out)
            .iter()
            .any(|(a, m, _)| *a == addr && m == "UserServiceRpc.Register"),
        "{out}"
    );
    // Without the token, the hint names the flag.
    let err = fails(&[&secure[..8], &["call", "UserServiceRpc.Register", "{}"]].concat());
    assert!(err.contains("--token"), "{err}");
    // Plain HTTP to an HTTPS admin page: the hint names --tls-ca.
    let plain = ok(&[
        "--addr",
        &addr,
        "top",
        "--iterations",
        "1",
        "--admin-token",
        "adm1n",
    ]);
    assert!(plain.contains("--tls-ca"), "{plain}");
    server.shutdown();
    server.wait();
}

/// What `loadgen --request-json` uses: the same request from the
/// provider's reflection and from the .proto file, as prost encodes it.
#[test]
fn a_json_request_is_encoded_through_reflection_or_a_proto_file() {
    use mprpc_cli::{encode_json_request, BytesAs, JsonRequest, SchemaFrom};
    let server = examples_provider();
    let request = JsonRequest {
        service: "UserServiceRpc",
        method: "Login",
        json: r#"{"name":"zhang san","pwd":"123456"}"#,
        bytes: BytesAs::Text,
    };
    let expected = prost::Message::encode_to_vec(&mprpc_examples::fixbug::LoginRequest {
        name: "zhang san".into(),
        pwd: "123456".into(),
    });
    let by_reflection = SchemaFrom {
        protos: Vec::new(),
        import_paths: Vec::new(),
        provider: Some(mprpc::Endpoint::new(server.local_addr())),
        client: Config::default(),
    };
    assert_eq!(
        encode_json_request(&by_reflection, request),
        Ok(expected.clone())
    );
    let proto = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto/user.proto");
    let by_file = SchemaFrom {
        protos: vec![proto.into()],
        provider: None,
        ..by_reflection
    };
    assert_eq!(encode_json_request(&by_file, request), Ok(expected));
    let wrong = JsonRequest {
        json: r#"{"nmae":"x"}"#,
        ..request
    };
    let err = encode_json_request(&by_file, wrong).unwrap_err();
    assert!(err.contains("nmae"), "{err}");
    server.shutdown();
    server.wait();
}

#[test]
fn call_without_json_and_bytes_as_text_and_unknown_services_say_what_to_do() {
    let server = examples_provider();
    let addr = server.local_addr().to_string();
    // No JSON and an empty stdin: an error, not a silent '{}'.
    let err = fails(&["--addr", &addr, "call", "UserServiceRpc.Register"]);
    assert!(err.contains("'{}' for an empty one"), "{err}");
    let err = fails(&[
        "--addr",
        &addr,
        "call",
        "UserServiceRpc.Login",
        r#"{"name":"zhang san"}"#,
    ]);
    assert!(
        err.contains("bytes fields take base64") && err.contains("emhhbmcgc2Fu"),
        "{err}"
    );
    server.shutdown();
    server.wait();
}
