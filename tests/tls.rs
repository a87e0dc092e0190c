//! TLS, mutual TLS and token authentication, over real sockets on
//! 127.0.0.1 with certificates made at test time: trusted clients get in;
//! untrusted or expired certificates, plain clients on a `required` port,
//! providers with the wrong name, and wrong or missing tokens are refused
//! with a logged reason, while trusted clients' calls go on.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mprpc::client::{Channel, ChannelOptions};
use mprpc::net::auth::AuthToken;
use mprpc::net::tls::{ClientTls, ServerTls, TlsMode};
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::{CallOptions, Code, Config, StaticDiscover, Status};

mod common;
use common::certs::{Identity, Pki};
use common::closed::read_until_closed;
use common::frames::request_batch;
use common::logs::{captured_logs, logged, wait_logged, wait_logged_by};
use common::services::TestService;

fn start(tls: Option<ServerTls>, tokens: &[&str]) -> ServerHandle {
    captured_logs();
    let mut server = Server::with_options(
        ServerOptions::default()
            .reactor_threads(2)
            .frame_timeout(Some(Duration::from_millis(500)))
            .tls(tls)
            .auth_tokens(tokens.iter().map(|t| AuthToken::new(t).unwrap()).collect()),
    );
    server.add_service(TestService);
    server.start().unwrap()
}

fn server_tls(pki: &Pki, mutual: bool, mode: TlsMode) -> ServerTls {
    let ca = mutual.then_some(pki.ca.as_path());
    ServerTls::from_pem_files(&pki.server.cert, &pki.server.key, ca, mode).unwrap()
}

fn client_tls(pki: &Pki, identity: Option<&Identity>) -> ClientTls {
    let identity = identity.map(|i| (i.cert.as_path(), i.key.as_path()));
    ClientTls::from_pem_files(&pki.ca, identity).unwrap()
}

fn channel(addr: SocketAddr, tls: Option<ClientTls>, token: Option<&str>) -> Channel {
    let options = ChannelOptions::default()
        .tls(tls)
        .auth_token(token.map(|t| AuthToken::new(t).unwrap()))
        // Every call opens its own attempt: no back-off between the checks.
        .backoff_base(Duration::from_millis(1))
        .backoff_max(Duration::from_millis(1));
    Channel::new(Arc::new(StaticDiscover::single(addr).unwrap()), options).unwrap()
}

fn echo(ch: &Channel, text: &str) -> Result<Bytes, Status> {
    let opts = CallOptions::with_timeout(Duration::from_secs(3));
    ch.call("Test", "Echo", Bytes::from(text.to_owned()), &opts, None)
}

/// Trusted calls in a loop until `stop`; returns how many succeeded and
/// panics on the first failure.
fn trusted_calls(ch: Channel, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let text = format!("trusted {n}");
            let reply = echo(&ch, &text).expect("a trusted client's call failed");
            assert_eq!(reply, text.as_bytes());
            n += 1;
        }
        n
    })
}

#[test]
fn mutual_tls_lets_trusted_clients_in_and_refuses_the_rest() {
    let pki = Pki::new();
    let server = start(Some(server_tls(&pki, true, TlsMode::Required)), &[]);
    let addr = server.local_addr();
    let trusted = channel(addr, Some(client_tls(&pki, Some(&pki.client))), None);
    assert_eq!(echo(&trusted, "hello").unwrap(), "hello");

    let stop = Arc::new(AtomicBool::new(false));
    let good = trusted_calls(trusted.clone(), stop.clone());
    let refused = [
        (Some(&pki.untrusted_client), "UnknownIssuer"),
        (Some(&pki.expired_client), "certificate expired"),
        (None, "peer sent no certificates"),
    ];
    for (identity, reason) in refused {
        let ch = channel(addr, Some(client_tls(&pki, identity)), None);
        let status = echo(&ch, "let me in").expect_err("an untrusted client got in");
        assert_eq!(status.code(), Code::Unavailable, "{status}");
        // The provider's line (the consumer logs its side too).
        wait_logged_by(
            addr,
            &["closing connection", "TLS handshake failed", reason],
        );
    }
    // A plain client: refused at its first bytes, its peer address logged.
    let mut plain = TcpStream::connect(addr).unwrap();
    let peer = plain.local_addr().unwrap();
    plain
        .write_all(&request_batch("Test", "Echo", [(1, &b"plain"[..])]))
        .unwrap();
    assert!(closed_without_reply(plain), "a plain client got a reply");
    wait_logged_by(
        addr,
        &[
            &format!("peer={peer}"),
            "plain-text (non-TLS) bytes on a port that requires TLS",
        ],
    );
    let plain_channel = channel(addr, None, None);
    assert_eq!(
        echo(&plain_channel, "x").unwrap_err().code(),
        Code::Unavailable
    );

    stop.store(true, Ordering::Relaxed);
    let calls = good.join().expect("trusted calls went on");
    assert!(calls > 0);
}

#[test]
fn a_consumer_refuses_a_provider_with_the_wrong_name() {
    let pki = Pki::new();
    let server = start(Some(server_tls(&pki, false, TlsMode::Required)), &[]);
    let addr = server.local_addr();
    let by_name = client_tls(&pki, None)
        .with_server_name("localhost")
        .unwrap();
    assert_eq!(echo(&channel(addr, Some(by_name), None), "a").unwrap(), "a");
    let by_ip = client_tls(&pki, None);
    assert_eq!(echo(&channel(addr, Some(by_ip), None), "b").unwrap(), "b");

    let wrong = client_tls(&pki, None)
        .with_server_name("wrong.example")
        .unwrap();
    let status = echo(&channel(addr, Some(wrong), None), "c").unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    assert!(
        status.message().contains("certificate not valid for name"),
        "{status}"
    );
    // A consumer trusting another CA refuses this provider too.
    let other = Pki::new();
    let strange = client_tls(&other, None);
    let status = echo(&channel(addr, Some(strange), None), "d").unwrap_err();
    assert!(
        status.message().contains("invalid peer certificate"),
        "{status}"
    );
}

#[test]
fn an_optional_port_serves_plain_and_tls_clients() {
    let pki = Pki::new();
    let server = start(Some(server_tls(&pki, false, TlsMode::Optional)), &[]);
    let addr = server.local_addr();
    let tls = channel(addr, Some(client_tls(&pki, None)), None);
    let plain = channel(addr, None, None);
    for i in 0..20 {
        let text = format!("call {i}");
        assert_eq!(echo(&tls, &text).unwrap(), text.as_bytes());
        assert_eq!(echo(&plain, &text).unwrap(), text.as_bytes());
    }
    // Large replies cross many TLS records and the rustls buffer limit.
    let big = "x".repeat(1 << 20);
    assert_eq!(echo(&tls, &big).unwrap().len(), big.len());
}

#[test]
fn tokens_right_wrong_and_missing() {
    let server = start(None, &["first-secret", "second-secret"]);
    let addr = server.local_addr();
    for token in ["first-secret", "second-secret"] {
        let ch = channel(addr, None, Some(token));
        for i in 0..5 {
            assert_eq!(echo(&ch, &format!("{i}")).unwrap(), format!("{i}"));
        }
    }
    let wrong = echo(&channel(addr, None, Some("not-the-secret")), "x").unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong}");
    wait_logged_by(addr, &["unauthenticated (wrong auth token)"]);
    let missing = echo(&channel(addr, None, None), "y").unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated, "{missing}");
    wait_logged_by(addr, &["unauthenticated (no auth token sent)"]);

    // Raw: the reply, then the close.
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.write_all(&request_batch("Test", "Echo", [(7, &b"z"[..])]))
        .unwrap();
    let mut reply = Vec::new();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    raw.read_to_end(&mut reply).expect("closed after the reply");
    let mut buf = bytes::BytesMut::from(&reply[..]);
    let Some(mprpc::protocol::mprpc::Frame::Response(r)) =
        mprpc::protocol::mprpc::Decoder::default()
            .decode(&mut buf)
            .unwrap()
    else {
        panic!("no reply before the close: {reply:?}");
    };
    assert_eq!((r.id, r.code), (7, Code::Unauthenticated));
    // Seed-format calls cannot carry a token: refused.
    let mut seed = TcpStream::connect(addr).unwrap();
    seed.write_all(b"\x05\x00\x00\x00hello").unwrap();
    assert!(closed_without_reply(seed));
    wait_logged_by(
        addr,
        &["seed-format call, which cannot carry an auth token"],
    );

    let text = logged();
    assert!(
        !text.contains("not-the-secret") && !text.contains("first-secret"),
        "a token was logged:\n{text}"
    );
}

#[test]
fn tokens_and_mutual_tls_together_from_config_files() {
    let pki = Pki::new();
    let dir = common::temp_dir("tls-conf");
    let conf = dir.join("app.conf");
    let text = format!(
        "rpcserverport=0\nregistry=none\ntls=required\ntls_cert={}\ntls_key={}\ntls_client_ca={ca}\n\
         tls_ca={ca}\ntls_server_name=localhost\ntls_client_cert={}\ntls_client_key={}\nauth_token=conf-secret\n",
        pki.server.cert.display(),
        pki.server.key.display(),
        pki.client.cert.display(),
        pki.client.key.display(),
        ca = pki.ca.display(),
    );
    std::fs::write(&conf, text).unwrap();
    let (config, warnings) = Config::load_with_warnings(&conf).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut server = Server::new(&config);
    server.add_service(TestService);
    let server = server.start().unwrap();
    let ch = Channel::new(
        Arc::new(StaticDiscover::single(server.local_addr()).unwrap()),
        ChannelOptions::from_config(&config),
    )
    .unwrap();
    assert_eq!(echo(&ch, "configured").unwrap(), "configured");

    // A certificate file holding a key: the error names file, line and key.
    let bad = dir.join("bad.conf");
    let text = format!(
        "# bad\ntls=optional\ntls_cert={}\ntls_key={}\n",
        pki.server.key.display(),
        pki.server.key.display()
    );
    std::fs::write(&bad, text).unwrap();
    let e = Config::load(&bad).unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{}:2: key 'tls': certificate", bad.display())),
        "{shown}"
    );
}

#[test]
fn hostile_bytes_on_a_tls_port_beside_good_clients() {
    let pki = Pki::new();
    let server = start(Some(server_tls(&pki, true, TlsMode::Required)), &[]);
    let addr = server.local_addr();
    let trusted = channel(addr, Some(client_tls(&pki, Some(&pki.client))), None);
    let stop = Arc::new(AtomicBool::new(false));
    let good = trusted_calls(trusted, stop.clone());
    let closed = Arc::new(AtomicU64::new(0));
    let mut seed = 0x5eed_u64;
    let hostile: Vec<Box<dyn Fn(u64) -> Vec<u8> + Send>> = vec![
        // A TLS record header announcing garbage.
        Box::new(|n| [&[0x16, 0x03, 0x01, 0x40, 0x00][..], &noise(n, 300)].concat()),
        // Something that is not TLS at all.
        Box::new(|n| noise(n, 200)),
        // A handshake record cut short, then silence (slow-loris).
        Box::new(|_| vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01]),
        // An application-data record before any handshake.
        Box::new(|n| [&[0x17, 0x03, 0x03, 0x00, 0x20][..], &noise(n, 32)].concat()),
    ];
    let started = Instant::now();
    let mut threads = Vec::new();
    for make in hostile {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let (stop, closed) = (stop.clone(), closed.clone());
        let mut n = seed;
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                n = n.wrapping_add(1);
                let mut s = TcpStream::connect(addr).unwrap();
                let _ = s.write_all(&make(n));
                if closed_without_reply(s) {
                    closed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let calls = good
        .join()
        .expect("trusted calls went on beside the hostile ones");
    assert!(calls > 0 && closed.load(Ordering::Relaxed) >= 4);
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// Deterministic garbage.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Reads until the server closes; true if it closed without sending a
/// frame of ours (an alert or nothing).
fn closed_without_reply(mut s: TcpStream) -> bool {
    !read_until_closed(&mut s, Duration::from_secs(10)).starts_with(b"MP")
}

#[test]
fn a_provider_publishes_that_it_requires_tls_and_consumers_follow() {
    use mprpc::registry::{Registrar, ZkDiscover};
    use mprpc::service::ServiceInfo;
    use mprpc::Discover;

    let pki = Pki::new();
    let zk = common::zk::ZkServer::start();
    let tls = server_tls(&pki, false, TlsMode::Required);
    let server = start(Some(tls.clone()), &[]);
    let mut config = Config::default();
    config.registry.zookeeper = Some(zk.connect_string());
    config.registry.session_timeout = Duration::from_millis(1000);
    config.server_tls_files.mode = TlsMode::Required;
    config.server.tls = Some(tls);
    let services = vec![ServiceInfo::new("Test", &["Echo"])];
    let _registrar = Registrar::start(&config, server.local_addr(), services).unwrap();
    let discover = ZkDiscover::connect(&config).unwrap();
    let endpoints = discover.providers("Test").unwrap();
    assert_eq!(endpoints[0].tls, TlsMode::Required);

    let plain = Channel::new(discover.clone(), ChannelOptions::default()).unwrap();
    let status = echo(&plain, "x").unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status
            .message()
            .contains("requires TLS and this channel has none"),
        "{status}"
    );
    let options = ChannelOptions::default().tls(Some(client_tls(&pki, None)));
    let secure = Channel::new(discover, options).unwrap();
    assert_eq!(echo(&secure, "over TLS").unwrap(), "over TLS");
}

#[test]
fn calls_move_on_when_a_providers_handshake_fails() {
    let pki = Pki::new();
    let other = Pki::new(); // a provider whose certificate the consumer does not trust
    let bad = start(Some(server_tls(&other, false, TlsMode::Required)), &[]);
    let good = start(Some(server_tls(&pki, false, TlsMode::Required)), &[]);
    let endpoints = vec![
        mprpc::Endpoint::new(bad.local_addr()),
        mprpc::Endpoint::new(good.local_addr()),
    ];
    let options = ChannelOptions::default().tls(Some(client_tls(&pki, None)));
    let ch = Channel::new(Arc::new(StaticDiscover::new(endpoints)), options).unwrap();
    for i in 0..20 {
        let text = format!("call {i}");
        let reply = echo(&ch, &text).expect("routed to the provider it trusts");
        assert_eq!(reply, text.as_bytes());
    }
    wait_logged(&[&format!(
        "connection to {} lost: TLS handshake failed",
        bad.local_addr()
    )]);
}
