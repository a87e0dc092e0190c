//! loadgen end to end over loopback: the engine against our own provider
//! (native and seed formats, including an overload it must report as
//! such) and against a real redis-server started on a free port. Each run
//! is a second or two; servers are stopped when a test ends.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use common::{f, out_dir, provider, read_json, served, u};
use serde_json::Value;

/// The machine's cores, shared by this binary's tests: the overload test
/// saturates them (5M calls/s asked), so it runs alone (`saturate`), never
/// beside a test that checks a held rate (`hold_a_rate`). Other tests run
/// freely.
static CORES: RwLock<()> = RwLock::new(());

fn saturate() -> RwLockWriteGuard<'static, ()> {
    CORES
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn hold_a_rate() -> RwLockReadGuard<'static, ()> {
    CORES
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs loadgen with `args` against `addr`; returns its JSON report.
fn loadgen(name: &str, addr: SocketAddr, args: &[&str]) -> Value {
    loadgen_watching(name, addr, args, || {})
}

/// As `loadgen`, calling `watch` every few milliseconds while it runs.
fn loadgen_watching(name: &str, addr: SocketAddr, args: &[&str], mut watch: impl FnMut()) -> Value {
    let dir = out_dir(name);
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--addr", &addr.to_string(), "--label", name, "--out-dir"])
        .arg(&dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("loadgen runs");
    // Its output is small (a summary and a progress line a second): the
    // pipes cannot fill up before it exits.
    while child.try_wait().expect("loadgen status").is_none() {
        watch();
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().expect("loadgen output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "loadgen {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = read_json(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    report
}

/// A rate no machine here can reach: the run must say so, count the calls
/// it could not send, and let them weigh on the percentiles.
fn check_overload(report: &Value) {
    assert_eq!(report["target_held"], false, "{report}");
    assert!(u(report, "unsent") > 0, "{report}");
    let achieved = f(report, "achieved_qps");
    assert!(
        achieved > 0.0 && achieved < 2_500_000.0,
        "achieved {achieved}"
    );
    // Calls due early in the 2 s window and never sent waited ~2 s.
    let p99 = u(&report["latency_us"], "p99");
    assert!((500_000..=10_000_000).contains(&p99), "p99 {p99} µs");
    let total = u(report, "sent") + u(report, "unsent");
    assert!(total > 5_000_000, "{total} calls scheduled in the window");
    // The report says which rules the run broke.
    let broken = report["not_held_because"].to_string();
    assert!(broken.contains("never sent"), "{broken}");
}

#[test]
fn overload_is_reported_as_not_held_by_both_clients() {
    let _alone = saturate();
    let server = provider();
    let addr = server.addr();
    let common = [
        "--qps",
        "5000000",
        "--duration",
        "2s",
        "--warmup",
        "0s",
        "--connections",
        "4",
        "--in-flight",
        "64",
    ];
    let engine = loadgen(
        "overload-engine",
        addr,
        &[&common[..], &["--client", "raw"]].concat(),
    );
    check_overload(&engine);
    assert_eq!(engine["client"], "engine");
    assert!(u(&engine["send_lag_us"], "p99") > 1_000, "{engine}");
    let channel = loadgen(
        "overload-channel",
        addr,
        &[&common[..], &["--client", "channel"]].concat(),
    );
    check_overload(&channel);
    assert_eq!(channel["client"], "channel");
    server.shutdown_gracefully();
}

#[test]
fn channel_with_two_io_threads_shards_its_connections() {
    let _rate = hold_a_rate();
    let server = provider();
    let mut most = 0;
    let r = loadgen_watching(
        "io-threads",
        server.addr(),
        &[
            "--io-threads",
            "2",
            "--qps",
            "max",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--connections",
            "2",
            "--in-flight",
            "16",
            "--channel-option",
            "ping_interval_ms=500",
        ],
        || most = most.max(server.server().connection_count()),
    );
    assert_eq!(r["client"], "channel", "{r}");
    assert_eq!(r["tls"], false, "{r}");
    assert_eq!(u(&r, "io_threads"), 2, "{r}");
    assert!(u(&r, "completed") > 1_000, "{r}");
    assert_eq!(u(&r, "errors"), 0, "{r}");
    assert_eq!(r["target_held"], true, "{r}");
    // Each I/O thread opened its own one of the two connections: one
    // thread would have opened one, unsplit connections four.
    assert_eq!(most, 2, "connections open at once");
    // Blocking calls from two sender threads, over both I/O threads.
    let b = loadgen(
        "io-threads-blocking",
        server.addr(),
        &[
            "--client",
            "blocking",
            "--io-threads",
            "2",
            "--threads",
            "2",
            "--duration",
            "500ms",
            "--warmup",
            "100ms",
            "--connections",
            "2",
        ],
    );
    assert_eq!(b["client"], "blocking", "{b}");
    assert!(u(&b, "completed") > 100, "{b}");
    assert_eq!(u(&b, "errors"), 0, "{b}");
    server.shutdown_gracefully();
}

#[test]
fn a_modest_rate_is_sent_on_schedule() {
    let _rate = hold_a_rate();
    let server = provider();
    let r = loadgen(
        "modest",
        server.addr(),
        &[
            "--client",
            "raw",
            "--qps",
            "2000",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--connections",
            "2",
            "--in-flight",
            "32",
        ],
    );
    // Every scheduled call is accounted for: sent, or counted unsent when
    // the run ended before its turn. A starved machine (CI beside other
    // builds) may leave the last few unsent (45, 2.3%, at load average 10 on
    // 2 cores); more than 5% is a real lag.
    let (sent, unsent) = (u(&r, "sent"), u(&r, "unsent"));
    assert_eq!(sent + unsent, 2_000, "{r}");
    assert!(unsent <= 100, "{unsent} calls unsent: {r}");
    assert_eq!(u(&r, "unanswered"), 0, "{r}");
    assert_eq!(u(&r, "errors"), 0, "{r}");
    let achieved = f(&r, "achieved_qps");
    assert!(
        (1_900.0..=2_100.0).contains(&achieved),
        "achieved {achieved}"
    );
    assert_eq!(u(&r, "completed"), u(&r, "sent"));
    server.shutdown_gracefully();
}

#[test]
fn cpu_per_call_of_server_and_client_is_reported() {
    // Closed loop: it takes the cores, so it runs alone.
    let _alone = saturate();
    // The provider runs in this test's process: its CPU is ours.
    let server = provider();
    let pid = std::process::id().to_string();
    let r = loadgen(
        "cpu",
        server.addr(),
        &[
            "--client",
            "raw",
            "--qps",
            "max",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--connections",
            "4",
            "--in-flight",
            "16",
            "--cpu-pid",
            &pid,
        ],
    );
    let cpu = &r["cpu"];
    assert_eq!(
        cpu["server_pids"][0].as_u64(),
        Some(u64::from(std::process::id())),
        "{cpu}"
    );
    assert!(u(cpu, "calls") <= u(&r, "sent_total"), "{r}");
    assert!(u(cpu, "calls") > 100, "{cpu}");
    // Each call costs its server and its client some CPU; 10 ms per call
    // would be a unit error, not a slow machine.
    for side in ["server_us_per_call", "client_us_per_call"] {
        let v = f(cpu, side);
        assert!(v > 0.0 && v < 10_000.0, "{side} {v}: {cpu}");
    }
    assert!(u(&r, "sent_total") >= u(&r, "sent"), "{r}");
    assert_eq!(
        r["not_held_because"].as_array().map(Vec::len),
        Some(0),
        "{r}"
    );
    server.shutdown_gracefully();
}

#[test]
fn every_one_of_many_connections_is_refilled_in_closed_loop() {
    // Closed loop: it takes the cores, so it runs alone.
    let _alone = saturate();
    let server = provider();
    let r = loadgen(
        "many-connections",
        server.addr(),
        &[
            "--client",
            "raw",
            "--qps",
            "max",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--connections",
            "300",
            "--in-flight",
            "300",
        ],
    );
    let per: Vec<u64> = r["per_channel"]
        .as_array()
        .expect("per_channel")
        .iter()
        .map(|c| u(c, "calls"))
        .collect();
    assert_eq!(per.len(), 300, "{r}");
    // One call in flight per connection: every connection keeps getting
    // calls, none is left behind after its first reply.
    assert!(per.iter().all(|&n| n >= 2), "{per:?}");
    assert_eq!(u(&r, "errors"), 0, "{r}");
    server.shutdown_gracefully();
}

#[test]
fn also_call_sends_two_calls_per_measured_call_and_counts_them_once() {
    let server = provider();
    let args = [
        "--qps",
        "max",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--connections",
        "2",
        "--in-flight",
        "16",
    ];
    for client in ["channel", "blocking"] {
        let before = served(&server);
        let also = ["--client", client, "--also-call", "EchoService/Echo=0a0178"];
        let r = loadgen(
            &format!("also-{client}"),
            server.addr(),
            &[&args[..], &also].concat(),
        );
        assert_eq!(r["also_call"], "EchoService.Echo", "{r}");
        assert_eq!(u(&r, "errors"), 0, "{r}");
        let sent = u(&r, "sent");
        assert!(sent > 0, "{r}");
        // Two per call (measured or not: calls outside the window are not
        // counted), and the probe's two.
        let calls = served(&server) - before;
        assert!(calls >= 2 * sent + 2, "{client}: {calls} served, {r}");
        assert_eq!(calls % 2, 0, "{client}: {calls} served, {r}");
    }

    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--addr", &server.addr().to_string(), "--no-write"])
        .args(["--duration", "1s", "--also-call", "EchoService/Nope"])
        .output()
        .expect("loadgen runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("probe of --also-call EchoService.Nope on channel 0 failed: unknown_method"),
        "{stderr}"
    );
    server.shutdown_gracefully();
}

#[test]
fn seed_format_against_our_provider() {
    let server = provider();
    let r = loadgen(
        "seed",
        server.addr(),
        &[
            "--target",
            "seed",
            "--qps",
            "max",
            "--duration",
            "1s",
            "--warmup",
            "100ms",
            "--connections",
            "2",
            "--in-flight",
            "4",
        ],
    );
    assert!(u(&r, "completed") > 50, "{r}");
    assert_eq!(u(&r, "errors"), 0, "{r}");
    assert_eq!(r["target_held"], true, "{r}");
    assert_eq!(r["target"], "seed");
    server.shutdown_gracefully();
}

#[test]
fn a_json_request_is_encoded_through_the_services_proto_file() {
    let server = provider();
    let proto = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto/bench.proto");
    // {"payload": "hi"}: field 1, 2 bytes.
    let r = loadgen(
        "json",
        server.addr(),
        &[
            "--request-json",
            r#"{"payload":"hi"}"#,
            "--bytes-text",
            "--proto",
            proto,
            "--qps",
            "200",
            "--duration",
            "500ms",
            "--warmup",
            "0s",
        ],
    );
    assert_eq!(u(&r, "request_bytes"), 4, "{r}");
    assert!(u(&r, "completed") > 0, "{r}");
    assert_eq!(u(&r, "errors"), 0, "{r}");
    // Without --proto the provider is asked; this one's hand-written
    // service has no schema, and the error says what to do.
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--addr", &server.addr().to_string(), "--request-json", "{}"])
        .output()
        .expect("loadgen runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--request-json: provider") && stderr.contains("pass --proto FILE"),
        "{stderr}"
    );
    server.shutdown_gracefully();
}

/// A redis-server on a free port, stopped on drop.
struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis() -> (Redis, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server not found: scripts/setup.sh installs it (CI does)");
    let redis = Redis(child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (redis, addr)
}

#[test]
fn redis_ping_end_to_end() {
    let (_redis, addr) = redis();
    let r = loadgen(
        "redis",
        addr,
        &[
            "--target",
            "redis",
            "--qps",
            "max",
            "--duration",
            "1s",
            "--warmup",
            "100ms",
            "--connections",
            "4",
            "--in-flight",
            "64",
        ],
    );
    assert!(u(&r, "completed") > 1_000, "{r}");
    assert_eq!(u(&r, "errors"), 0, "{r}");
    assert_eq!(r["target"], "redis");
    assert_eq!(u(&r, "window"), 16);
}

#[test]
fn tls_through_the_channel_with_certs_it_wrote() {
    use mprpc::server::{Server, ServerOptions};

    let (dir, tls) = provider_tls_from_loadgen_certs("certs");
    let mut server =
        Server::with_options(ServerOptions::default().reactor_threads(1).tls(Some(tls)));
    server.add_service(common::Echo);
    let server = server.start().unwrap();
    let ca = dir.join("ca.crt");
    let ca = ca.to_str().unwrap();
    let run = [
        "--qps",
        "2000",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--connections",
        "2",
        "--tls-ca",
        ca,
    ];
    let r = loadgen("tls", server.local_addr(), &run);
    assert_eq!(r["tls"], true, "{r}");
    assert_eq!(u(&r, "errors"), 0, "{r}");
    assert!(u(&r, "completed") > 1_000, "{r}");
    let addr = server.local_addr().to_string();
    // The engine over TLS, open and closed loop, the same discipline as plain.
    for (name, qps) in [("tls-raw-open", "2000"), ("tls-raw-closed", "max")] {
        let mut raw = run;
        raw[1] = qps;
        let raw: Vec<&str> = raw.iter().copied().chain(["--client", "raw"]).collect();
        let r = loadgen(name, server.local_addr(), &raw);
        assert_eq!(r["client"], "engine", "{r}");
        assert_eq!(u(&r, "errors"), 0, "{r}");
        assert!(u(&r, "completed") > 1_000, "{r}");
    }
    // Refused up front, with the reason: a plain engine on the TLS port
    // (its probe), a certificate for another name, TLS to a target that
    // does not speak it.
    let refused = |args: &[&str], says: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(["--addr", &addr, "--duration", "1s", "--no-write"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    };
    refused(&["--client", "raw"], "probe");
    refused(
        &["--channel-option", "ping_intervall_ms=500"],
        "--channel-option",
    );
    refused(
        &[
            "--client",
            "raw",
            "--channel-option",
            "ping_interval_ms=500",
        ],
        "--channel-option",
    );
    refused(&["--client", "raw", "--token", "t"], "--token");
    refused(
        &[
            "--client",
            "raw",
            "--tls-ca",
            ca,
            "--tls-server-name",
            "other.example",
        ],
        "probe",
    );
    refused(
        &["--target", "redis", "--tls-ca", ca],
        "--tls-ca: TLS is spoken to --target mprpc and tonic only",
    );
}

#[test]
fn a_tls_provider_with_a_token_is_loaded_with_token_and_its_summary_says_what_held() {
    use mprpc::net::auth::AuthToken;
    use mprpc::server::{Server, ServerOptions};

    let (dir, tls) = provider_tls_from_loadgen_certs("certs-token");
    let mut server = Server::with_options(
        ServerOptions::default()
            .reactor_threads(1)
            .tls(Some(tls))
            .auth_tokens(vec![AuthToken::new("s3cret").unwrap()]),
    );
    server.add_service(common::Echo);
    let server = server.start().unwrap();
    let ca = dir.join("ca.crt");
    let run = |token: Option<&str>| {
        let mut args = vec![
            "--addr".to_owned(),
            server.local_addr().to_string(),
            "--qps".into(),
            "500".into(),
            "--duration".into(),
            "1s".into(),
            "--warmup".into(),
            "200ms".into(),
            "--tls-ca".into(),
            ca.display().to_string(),
            "--no-write".into(),
        ];
        if let Some(token) = token {
            args.extend(["--token".to_owned(), token.to_owned()]);
        }
        Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(&args)
            .output()
            .unwrap()
    };
    let out = run(Some("s3cret"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 errors"), "{stdout}");
    assert!(
        stdout.contains("real calls to the target, not measured"),
        "{stdout}"
    );
    // The verdict names the rule it broke, or says it held.
    assert!(
        stdout.contains("target held") || stdout.contains("TARGET NOT HELD** ("),
        "{stdout}"
    );
    let refused = run(None);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!refused.status.success(), "{said}");
    assert!(said.to_lowercase().contains("token"), "{said}");
    server.shutdown();
    server.wait();
}

/// Runs `loadgen certs` into a fresh directory and loads the provider's
/// certificate from it (`tls=required`).
fn provider_tls_from_loadgen_certs(tag: &str) -> (std::path::PathBuf, mprpc::net::tls::ServerTls) {
    use mprpc::net::tls::{ServerTls, TlsMode};
    let dir = out_dir(tag);
    let wrote = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("certs")
        .arg(&dir)
        .output()
        .expect("loadgen certs runs");
    assert!(wrote.status.success(), "{wrote:?}");
    let tls = ServerTls::from_pem_files(
        &dir.join("provider.crt"),
        &dir.join("provider.key"),
        None,
        TlsMode::Required,
    )
    .unwrap();
    (dir, tls)
}
