//! Interoperation with C++ mprpc deployments, both directions, over real
//! sockets: a minimal seed-format consumer and a minimal seed-format provider
//! written here byte for byte from the seed's description (4-byte host-order
//! header size, `mprpc.RpcHeader`, args; the reply is the bare message and
//! then the provider closes), against our provider, our channel, our
//! `consumer` binary and ZooKeeper discovery of the seed's layout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mprpc::client::{Channel, ChannelOptions};
use mprpc::discovery::{Endpoint, StaticDiscover, WireFormat};
use mprpc::server::{Server, ServerHandle};
use mprpc::{Code, Controller};
use mprpc_examples::fixbug::{
    FriendServiceRpcServer, FriendServiceRpcStub, GetFriendsListRequest, GetFriendsListResponse,
    LoginRequest, LoginResponse, RegisterRequest, RegisterResponse, UserServiceRpcServer,
    UserServiceRpcStub,
};
use mprpc_examples::{FriendService, UserService};
use prost::Message;

#[path = "../../tests/common/zk.rs"]
#[allow(dead_code)]
mod zk;

mod common;
use common::seed_provider::{SeedHeader, SeedProvider};

/// What the seed's `MprpcChannel::CallMethod` puts on the wire.
fn seed_request(service: &str, method: &str, args: &[u8]) -> Vec<u8> {
    let header = SeedHeader {
        service_name: service.as_bytes().to_vec(),
        method_name: method.as_bytes().to_vec(),
        args_size: args.len() as u32,
    }
    .encode_to_vec();
    let mut out = (header.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(args);
    out
}

/// The seed's consumer: one connection per call, read until the close.
fn seed_call(addr: SocketAddr, service: &str, method: &str, args: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&seed_request(service, method, args)).unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    reply
}

fn our_provider() -> ServerHandle {
    let mut server = Server::with_options(Default::default());
    server.add_service(UserServiceRpcServer::new(UserService));
    server.add_blocking_service(FriendServiceRpcServer::new(FriendService));
    server.start().unwrap()
}

#[test]
fn the_observed_seed_bytes_are_what_our_test_client_sends() {
    // From a real C++ consumer: GetFriendList with userid 1000.
    let observed =
        b"\x23\x00\x00\x00\x0a\x10FriendServiceRpc\x12\x0dGetFriendList\x18\x03\x08\xe8\x07";
    let args = GetFriendsListRequest { userid: 1000 }.encode_to_vec();
    assert_eq!(
        seed_request("FriendServiceRpc", "GetFriendList", &args),
        observed
    );
}

#[test]
fn a_seed_consumer_calls_our_provider() {
    let server = our_provider();
    let addr = server.local_addr();

    let login = LoginRequest {
        name: "zhang san".into(),
        pwd: "123456".into(),
    };
    let reply = seed_call(addr, "UserServiceRpc", "Login", &login.encode_to_vec());
    let reply = LoginResponse::decode(&reply[..]).unwrap();
    assert_eq!(reply.result.unwrap().errcode, 0);
    assert!(!reply.sucess, "the seed's Login answers false");

    let register = RegisterRequest {
        id: 2000,
        name: "mprpc".into(),
        pwd: "666666".into(),
    };
    let reply = seed_call(
        addr,
        "UserServiceRpc",
        "Register",
        &register.encode_to_vec(),
    );
    assert!(RegisterResponse::decode(&reply[..]).unwrap().sucess);

    let friends = GetFriendsListRequest { userid: 1000 };
    let reply = seed_call(
        addr,
        "FriendServiceRpc",
        "GetFriendsList",
        &friends.encode_to_vec(),
    );
    let reply = GetFriendsListResponse::decode(&reply[..]).unwrap();
    assert_eq!(reply.friends, ["gao yang", "liu hong", "wang shuo"]);

    // Unknown names: the seed logs and closes without a reply; so do we.
    assert!(seed_call(addr, "UserServiceRpc", "Logout", b"").is_empty());
    server.shutdown();
    server.wait();
}

#[test]
fn seed_and_our_traffic_mix_on_one_port() {
    let server = our_provider();
    let addr = server.local_addr();
    let ours = UserServiceRpcStub::new(Channel::direct(addr).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..25u32 {
                    let req = RegisterRequest {
                        id: t * 100 + i,
                        name: "seed".into(),
                        pwd: "x".into(),
                    };
                    let reply = seed_call(addr, "UserServiceRpc", "Register", &req.encode_to_vec());
                    assert!(RegisterResponse::decode(&reply[..]).unwrap().sucess);
                }
            })
        })
        .collect();
    for i in 0..200u32 {
        let req = RegisterRequest {
            id: i,
            name: "ours".into(),
            pwd: "y".into(),
        };
        let mut c = Controller::new();
        assert!(
            ours.register(&mut c, &req).unwrap().sucess,
            "{}",
            c.error_text()
        );
    }
    for t in threads {
        t.join().unwrap();
    }
    server.shutdown();
    server.wait();
}

fn seed_channel(addr: SocketAddr) -> Channel {
    let endpoint = Endpoint::new(addr).format(WireFormat::Seed);
    Channel::new(
        Arc::new(StaticDiscover::new(vec![endpoint])),
        ChannelOptions::default(),
    )
    .unwrap()
}

#[test]
fn our_stubs_call_a_seed_provider() {
    let seed = SeedProvider::start();
    let channel = seed_channel(seed.addr);
    let users = UserServiceRpcStub::new(channel.clone());
    let friends = FriendServiceRpcStub::new(channel);

    let mut c = Controller::new();
    let login = LoginRequest {
        name: "zhang san".into(),
        pwd: "123456".into(),
    };
    assert!(users.login(&mut c, &login).unwrap().sucess);
    let register = RegisterRequest {
        id: 1,
        name: "a".into(),
        pwd: "b".into(),
    };
    assert!(users.register(&mut c, &register).unwrap().sucess);
    let list = friends
        .get_friends_list(&mut c, &GetFriendsListRequest { userid: 7 })
        .unwrap();
    assert_eq!(list.friends, ["seed friend of 7"]);
    // The async form goes through the same path.
    let pending = users.register_async(&register, &Default::default());
    assert!(pending.wait().unwrap().sucess);
    assert_eq!(seed.served.load(Ordering::SeqCst), 4);

    // An unknown method: the seed closes without a reply.
    let raw = users.channel().call(
        "UserServiceRpc",
        "Logout",
        Bytes::new(),
        &Default::default(),
        None,
    );
    assert_eq!(raw.unwrap_err().code(), Code::Unavailable);
}

#[test]
fn a_stalled_seed_provider_hits_the_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The provider holds the connection, silent, until the call is over:
    // only the deadline can end it (no race with a timed close).
    let (release, released) = std::sync::mpsc::channel::<()>();
    let hold = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let _ = released.recv_timeout(Duration::from_secs(30));
        drop(s);
    });
    let channel = seed_channel(addr);
    let mut c = Controller::new();
    c.set_timeout(Duration::from_millis(200));
    let users = UserServiceRpcStub::new(channel);
    let began = std::time::Instant::now();
    let result = users.register(&mut c, &RegisterRequest::default());
    let waited = began.elapsed();
    assert_eq!(result.unwrap_err().code(), Code::DeadlineExceeded);
    assert!(
        waited >= Duration::from_millis(200),
        "ended early: {waited:?}"
    );
    release.send(()).unwrap();
    hold.join().unwrap();
}

#[test]
fn our_consumer_binary_finds_a_seed_provider_through_the_seed_zk_layout() {
    let zk = zk::ZkServer::start();
    let seed = SeedProvider::start();
    // What the seed's RpcProvider writes: /<Service> persistent,
    // /<Service>/<Method> ephemeral holding "ip:port".
    let raw = zk::RawZk::connect(&zk.connect_string(), None);
    let at = seed.addr.to_string();
    for (service, methods) in [
        ("UserServiceRpc", &["Login", "Register"][..]),
        ("FriendServiceRpc", &["GetFriendsList"][..]),
    ] {
        raw.create(
            &format!("/{service}"),
            b"",
            zookeeper_client::CreateMode::Persistent,
        )
        .unwrap();
        for method in methods {
            let path = format!("/{service}/{method}");
            raw.create(
                &path,
                at.as_bytes(),
                zookeeper_client::CreateMode::Ephemeral,
            )
            .unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("consumer.conf");
    std::fs::write(
        &conf,
        format!(
            "rpcserverip=127.0.0.1\nrpcserverport=1\nzookeeperip=127.0.0.1\nzookeeperport={}\nlog_dir={}\n",
            zk.port(),
            dir.path().join("logs").display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_consumer"))
        .arg("-i")
        .arg(&conf)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "consumer failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("rpc login response success:1"), "{stdout}");
    assert!(
        stdout.contains("index:1 name:seed friend of 1000"),
        "{stdout}"
    );
    assert_eq!(seed.served.load(Ordering::SeqCst), 3);
}
