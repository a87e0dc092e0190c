//! The admin pages over real HTTP on real sockets: `/metrics` read by a
//! Prometheus text-format parser with counters moving as calls are made,
//! `/status` as JSON, `/connections`, the token, `admin_port`, and bad
//! HTTP refused while RPC calls on the same port go on undisturbed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mprpc::client::Channel;
use mprpc::net::auth::AuthToken;
use mprpc::server::{AdminOptions, Server, ServerHandle, ServerOptions};
use mprpc::{CallOptions, Code, Config, RpcProvider, Service};

mod common;
use common::closed::read_until_closed;
use common::services::TestService;
use common::zk::{wait_until, ZkServer};

fn start(options: ServerOptions) -> ServerHandle {
    mprpc::app::logging::init_for_tests();
    let mut server = Server::with_options(options.reactor_threads(2));
    server.add_service(TestService);
    server.start().unwrap()
}

fn default_server() -> ServerHandle {
    start(ServerOptions::default())
}

/// One HTTP response: status, head, body.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// Sends `raw` on a new connection and reads until the server closes.
fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(raw).unwrap();
    // The server closes after its response: a hang fails here instead of
    // reading as an empty reply (status 0).
    let bytes = read_until_closed(&mut s, Duration::from_secs(10));
    parse_reply(&String::from_utf8_lossy(&bytes))
}

fn parse_reply(text: &str) -> Reply {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// GET `path` with extra header lines; the connection closes after it.
fn get_with(addr: SocketAddr, path: &str, headers: &str) -> Reply {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
    exchange(addr, request.as_bytes())
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    get_with(addr, path, "")
}

fn call(channel: &Channel, method: &str, payload: &'static [u8]) -> Result<Bytes, mprpc::Status> {
    let payload = Bytes::from_static(payload);
    channel.call("Test", method, payload, &CallOptions::default(), None)
}

/// The value of sample `name` whose labels include every `(key, value)`.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref buckets) => {
                buckets.last().map_or(f64::NAN, |b| b.count)
            }
            _ => f64::NAN,
        })
}

fn scrape(addr: SocketAddr) -> prometheus_parse::Scrape {
    let reply = get(addr, "/metrics");
    assert_eq!(reply.status, 200, "{}", reply.head);
    assert!(
        reply.head.contains("text/plain; version=0.0.4"),
        "{}",
        reply.head
    );
    let lines = reply.body.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("/metrics parses as Prometheus text")
}

#[test]
fn metrics_parse_and_counters_move_with_calls() {
    let server = default_server();
    let addr = server
        .admin_addr()
        .expect("admin is on for a loopback bind");
    assert_eq!(addr, server.local_addr(), "served on the RPC port");
    let channel = Channel::direct(server.local_addr()).unwrap();
    for _ in 0..5 {
        call(&channel, "Echo", b"hi").unwrap();
    }
    for _ in 0..2 {
        assert_eq!(
            call(&channel, "Fail", b"").unwrap_err().code(),
            Code::Application
        );
    }
    let echo = [("service", "Test"), ("method", "Echo")];
    let fail = [
        ("service", "Test"),
        ("method", "Fail"),
        ("code", "application"),
    ];
    let first = scrape(addr);
    assert_eq!(sample(&first, "mprpc_calls_total", &echo), Some(5.0));
    assert_eq!(sample(&first, "mprpc_errors_total", &fail), Some(2.0));
    assert_eq!(sample(&first, "mprpc_in_flight", &echo), Some(0.0));
    // Histogram: every early call is timed (a thread's first 1024).
    assert_eq!(
        sample(&first, "mprpc_handler_duration_seconds_count", &echo),
        Some(5.0)
    );
    let connections: f64 = ["0", "1"]
        .iter()
        .filter_map(|r| sample(&first, "mprpc_connections", &[("reactor", r)]))
        .sum();
    assert!(
        connections >= 1.0,
        "the channel's connection and ours are open"
    );
    let received = |s: &prometheus_parse::Scrape| -> f64 {
        ["0", "1"]
            .iter()
            .filter_map(|r| sample(s, "mprpc_received_bytes_total", &[("reactor", r)]))
            .sum()
    };
    assert!(received(&first) > 0.0);
    assert!(sample(&first, "mprpc_process_resident_memory_bytes", &[]).unwrap() > 1e6);
    assert!(sample(&first, "mprpc_process_cpu_seconds_total", &[]).is_some());
    assert!(sample(&first, "mprpc_uptime_seconds", &[]).is_some());

    for _ in 0..3 {
        call(&channel, "Echo", b"again").unwrap();
    }
    let second = scrape(addr);
    assert_eq!(sample(&second, "mprpc_calls_total", &echo), Some(8.0));
    assert_eq!(sample(&second, "mprpc_errors_total", &fail), Some(2.0));
    assert!(received(&second) > received(&first));
    assert!(sample(&second, "mprpc_admin_requests_total", &[]).unwrap() >= 2.0);
    server.shutdown();
    server.wait();
}

#[test]
fn status_is_json_of_the_documented_shape() {
    let server = start(ServerOptions::default().max_frame_size(12345));
    let channel = Channel::direct(server.local_addr()).unwrap();
    call(&channel, "Echo", b"x").unwrap();
    let reply = get(server.local_addr(), "/status");
    assert_eq!(reply.status, 200);
    assert!(reply.head.contains("application/json"));
    let status: serde_json::Value = serde_json::from_str(&reply.body).expect("valid JSON");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["addr"], server.local_addr().to_string());
    assert!(status["uptime_s"].as_f64().unwrap() >= 0.0);
    assert!(status["process"]["rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(status["reactors"].as_array().unwrap().len(), 2);
    assert!(status["connections"].as_u64().unwrap() >= 1);
    let methods = status["methods"].as_array().unwrap();
    let test_methods = methods.iter().filter(|m| m["service"] == "Test").count();
    assert_eq!(
        test_methods,
        TestService.methods().len(),
        "every method, called or not"
    );
    assert!(
        methods.iter().any(|m| m["service"] == "mprpc.Reflection"),
        "the built-in reflection service is counted too"
    );
    let echo = methods.iter().find(|m| m["method"] == "Echo").unwrap();
    assert_eq!(echo["service"], "Test");
    assert_eq!(echo["calls"], 1);
    for key in [
        "errors",
        "in_flight",
        "p50_us",
        "p99_us",
        "max_us",
        "latency_samples",
    ] {
        assert!(echo[key].is_u64(), "{key} in {echo}");
    }
    assert!(echo["errors_by_code"].is_object());
    assert!(status["registry"].is_null(), "no registry here");
    assert_eq!(status["config"]["max_frame_size"], "12345");
    server.shutdown();
    server.wait();
}

#[test]
fn a_token_is_required_when_set() {
    let server = start(
        ServerOptions::default()
            .admin(AdminOptions::default().token(Some(AuthToken::new("s3cret").unwrap()))),
    );
    let addr = server.local_addr();
    for path in ["/metrics", "/status", "/", "/connections", "/nope"] {
        let reply = get(addr, path);
        assert_eq!(reply.status, 401, "{path} without a token");
        assert!(reply.head.contains("WWW-Authenticate: Bearer"));
    }
    assert_eq!(
        get_with(addr, "/status", "Authorization: Bearer wrong\r\n").status,
        401
    );
    assert_eq!(get(addr, "/status?token=s3cre").status, 401);
    assert_eq!(
        get_with(addr, "/status", "Authorization: Bearer s3cret\r\n").status,
        200
    );
    assert_eq!(get(addr, "/metrics?token=s3cret").status, 200);
    // The token is never shown back.
    let status = get(addr, "/status?token=s3cret").body;
    assert!(!status.contains("s3cret"), "{status}");
    server.shutdown();
    server.wait();
}

#[test]
fn pages_methods_keep_alive_and_not_found() {
    let server = default_server();
    let addr = server.local_addr();
    let page = get(addr, "/");
    assert_eq!(page.status, 200);
    assert!(page.head.contains("text/html"));
    assert!(page.body.contains("<canvas"), "the page draws charts");
    let head = exchange(addr, b"HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD has no body");
    let missing = get(addr, "/nope");
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("/nope"));
    let post = exchange(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(post.status, 405);
    assert!(post.head.contains("Allow: GET, HEAD"));
    // Two requests pipelined on one kept-alive connection, both answered.
    let both = exchange(
        addr,
        b"GET /status HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(both.status, 200);
    assert!(
        both.body.contains("HTTP/1.1 404 Not Found"),
        "second reply follows"
    );
    server.shutdown();
    server.wait();
}

#[test]
fn connections_lists_one_line_per_connection() {
    let server = default_server();
    let channels: Vec<Channel> = (0..3)
        .map(|_| Channel::direct(server.local_addr()).unwrap())
        .collect();
    for channel in &channels {
        call(channel, "Echo", b"x").unwrap();
    }
    let reply = get(server.local_addr(), "/connections");
    assert_eq!(reply.status, 200);
    let lines: Vec<&str> = reply.body.lines().collect();
    assert!(lines[0].starts_with("peer"), "a header line: {}", lines[0]);
    let rpc: Vec<&&str> = lines.iter().filter(|l| l.contains(" mprpc ")).collect();
    assert_eq!(rpc.len(), 3, "{}", reply.body);
    for line in rpc {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[4], "1", "one call each: {line}");
        assert!(fields[5].parse::<u64>().unwrap() > 0, "bytes in: {line}");
    }
    assert_eq!(
        lines.iter().filter(|l| l.contains(" http ")).count(),
        1,
        "this request's own"
    );
    server.shutdown();
    server.wait();
}

#[test]
fn connections_are_listed_a_page_at_a_time() {
    let server = default_server();
    let channels: Vec<Channel> = (0..5)
        .map(|_| Channel::direct(server.local_addr()).unwrap())
        .collect();
    for channel in &channels {
        call(channel, "Echo", b"x").unwrap();
    }
    let reply = get(server.local_addr(), "/connections?limit=2");
    let lines: Vec<&str> = reply.body.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "header, two connections, a note: {}",
        reply.body
    );
    assert!(
        lines[3].starts_with("# 4 more of 6 connections not shown: /connections?offset=2&limit=2"),
        "{}",
        lines[3]
    );
    // The rest, on one page (the first request's connection may be gone).
    let rest = get(server.local_addr(), "/connections?offset=2&limit=100");
    // A header line and at least three connections.
    assert!(rest.body.lines().count() > 3, "{}", rest.body);
    assert!(!rest.body.contains("not shown"), "{}", rest.body);
    server.shutdown();
    server.wait();
}

/// Bad HTTP (garbage, oversized, slow) is refused connection by
/// connection, with a reply where HTTP allows one, while RPC calls on the
/// same port all succeed.
#[test]
fn bad_http_is_refused_without_disturbing_rpc_calls() {
    let server = start(ServerOptions::default().frame_timeout(Some(Duration::from_millis(300))));
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let ok_calls = Arc::new(AtomicU64::new(0));
    let caller = {
        let (stop, ok_calls) = (stop.clone(), ok_calls.clone());
        std::thread::spawn(move || {
            let channel = Channel::direct(addr).unwrap();
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(call(&channel, "Echo", b"steady").unwrap(), "steady");
                ok_calls.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let before = ok_calls.load(Ordering::Relaxed);
    for round in 0..20 {
        // A head that never ends: refused once over the bound.
        let huge = format!("GET /{} HTTP/1.1\r\n", "a".repeat(16 * 1024));
        assert_eq!(exchange(addr, huge.as_bytes()).status, 431, "round {round}");
        assert_eq!(exchange(addr, b"GETX / HTTP/1.1\r\n\r\n").status, 405);
        assert_eq!(exchange(addr, b"GET / HTTP/9\r\n\r\n").status, 400);
        assert_eq!(
            exchange(addr, b"GET /\xff\xfe HTTP/1.1\r\n\r\n").status,
            400
        );
        let body = b"GET /status HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
        assert_eq!(exchange(addr, body).status, 400);
    }
    // A slow head falls under the frame timer like a slow RPC frame.
    let started = Instant::now();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(
        slow.read(&mut buf).unwrap_or(0),
        0,
        "closed without a reply"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        wait_until(Duration::from_secs(10), || ok_calls.load(Ordering::Relaxed)
            > before + 50),
        "RPC calls went on"
    );
    stop.store(true, Ordering::Relaxed);
    caller.join().expect("every RPC call succeeded");
    let rejected: f64 = {
        let s = scrape(addr);
        ["0", "1"]
            .iter()
            .filter_map(|r| sample(&s, "mprpc_frames_rejected_total", &[("reactor", r)]))
            .sum()
    };
    assert!(rejected >= 100.0, "every bad request counted: {rejected}");
    server.shutdown();
    server.wait();
}

#[test]
fn admin_port_serves_http_alone_and_the_rpc_port_then_refuses_it() {
    let server = start(ServerOptions::default().admin(AdminOptions::default().port(Some(0))));
    let admin = server.admin_addr().unwrap();
    assert_ne!(admin, server.local_addr());
    assert_eq!(get(admin, "/metrics").status, 200);
    // HTTP on the RPC port: closed without a reply.
    assert_eq!(get(server.local_addr(), "/metrics").status, 0);
    // RPC bytes on the admin port: closed too; RPC on its port works.
    let wrong = Channel::direct(admin).unwrap();
    assert!(call(&wrong, "Echo", b"x").is_err());
    let right = Channel::direct(server.local_addr()).unwrap();
    assert_eq!(call(&right, "Echo", b"x").unwrap(), "x");
    server.shutdown();
    server.wait();
}

#[test]
fn admin_is_off_by_default_on_a_wildcard_bind_and_when_turned_off() {
    let wildcard = start(ServerOptions::default().addr("0.0.0.0:0".into()));
    assert_eq!(wildcard.admin_addr(), None);
    let port = wildcard.local_addr().port();
    let loopback = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(get(loopback, "/metrics").status, 0, "closed, no reply");
    wildcard.shutdown();
    wildcard.wait();
    let off = start(ServerOptions::default().admin(AdminOptions::default().enabled(Some(false))));
    assert_eq!(off.admin_addr(), None);
    assert_eq!(get(off.local_addr(), "/status").status, 0);
    off.shutdown();
    off.wait();
}

#[test]
fn a_registered_provider_shows_its_zookeeper_session_and_nodes() {
    mprpc::app::logging::init_for_tests();
    let zk = ZkServer::start();
    let mut config = Config::default();
    config.registry.zookeeper = Some(zk.connect_string());
    config.registry.session_timeout = Duration::from_millis(2000);
    config.provider.rpc_server_port = 0;
    config.server.reactor_threads = 1;
    config.server.admin.token = Some(AuthToken::new("tok").unwrap());
    config.registry.digest = Some("user:hidden-pass".into());
    let mut provider = RpcProvider::new(&config);
    provider.notify_service(TestService);
    let handle = provider.start().expect("registers");
    let addr = handle.server().admin_addr().unwrap();
    let status: serde_json::Value =
        serde_json::from_str(&get(addr, "/status?token=tok").body).unwrap();
    let registry = &status["registry"];
    assert_eq!(registry["registered"], true, "{status}");
    assert_eq!(registry["connect"], zk.connect_string());
    let nodes: Vec<&str> = registry["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let ours = format!("/mprpc/services/Test/providers/{}", handle.addr());
    assert!(nodes.contains(&ours.as_str()), "{nodes:?}");
    assert!(nodes.contains(&"/Test/Echo"), "seed layout too: {nodes:?}");
    assert!(!get(addr, "/status?token=tok").body.contains("hidden-pass"));
    let metrics = get_with(addr, "/metrics", "Authorization: Bearer tok\r\n").body;
    let lines = metrics.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    assert_eq!(sample(&scrape, "mprpc_zk_registered", &[]), Some(1.0));
    assert_eq!(
        sample(&scrape, "mprpc_zk_registered_nodes", &[]),
        Some(nodes.len() as f64)
    );
    handle.shutdown_gracefully();
}
