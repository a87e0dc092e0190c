//! `loadgen --stream server|client|bidi` end to end: our provider serving
//! the echo provider's `EchoStreamService` on a free loopback port, a short
//! run of each kind, and its counts checked to add up (every stream ended
//! `ok`, every message of each accounted for on both sides). No timing is
//! asserted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use mprpc::app::config::RegistryKind;
use mprpc::app::provider::{ProviderHandle, RpcProvider};
use mprpc::Config;
use mprpc_examples::bench::{EchoServiceServer, EchoStreamServiceServer};
use mprpc_examples::{Echo, EchoStreams};

const MESSAGES: u64 = 20;

/// Our provider serving `EchoStreamService` (and `EchoService`, for the
/// slow-reader run's unary calls) on a free 127.0.0.1 port.
fn provider() -> ProviderHandle {
    let mut config = Config::default();
    config.provider.rpc_server_ip = "127.0.0.1".into();
    config.provider.rpc_server_port = 0;
    config.registry.kind = RegistryKind::None;
    config.server.reactor_threads = 1;
    let mut provider = RpcProvider::new(&config);
    provider
        .without_registry()
        .notify_service(EchoStreamServiceServer::new(EchoStreams))
        .notify_service(EchoServiceServer::new(Echo));
    provider.start().expect("provider starts")
}

/// Runs `loadgen --stream ARGS...` against `addr`: its exit status and output.
fn loadgen(addr: SocketAddr, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--addr", &addr.to_string(), "--no-write"])
        .args(args)
        .output()
        .expect("loadgen runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The `summary:` line's `key=value` pairs.
fn summary(output: &str) -> HashMap<String, String> {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("summary: "))
        .unwrap_or_else(|| panic!("no summary line in:\n{output}"));
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn n(summary: &HashMap<String, String>, key: &str) -> u64 {
    summary[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {summary:?}"))
}

/// A short run of `kind`; returns its summary after checking that every
/// stream ended `ok` and the provider ran one more (the probe) than loadgen
/// counted, none failed.
fn run(kind: &str, method: &str) -> HashMap<String, String> {
    let server = provider();
    let messages = MESSAGES.to_string();
    let (ok, output) = loadgen(
        server.addr(),
        &[
            "--stream",
            kind,
            "--stream-messages",
            &messages,
            "--connections",
            "3",
            "--payload",
            "32",
            "--warmup",
            "0s",
            "--duration",
            "300ms",
        ],
    );
    assert!(ok, "loadgen --stream {kind} failed:\n{output}");
    let s = summary(&output);
    assert_eq!(s["kind"], kind);
    let streams = n(&s, "streams");
    assert!(streams > 0, "no stream ran:\n{output}");
    assert_eq!(n(&s, "ok"), streams, "{output}");
    assert_eq!(n(&s, "failed"), 0, "{output}");
    // The provider's own count: every stream loadgen ran, and the probe.
    let counted = || {
        server
            .server()
            .metrics()
            .get("EchoStreamService", method)
            .map_or((0, 0), |m| (m.calls, m.errors))
    };
    let waited = Instant::now();
    while counted().0 < streams + 1 && waited.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(counted(), (streams + 1, 0), "provider's count:\n{output}");
    s
}

#[test]
fn a_server_stream_run_receives_every_message_of_every_stream() {
    let s = run("server", "Pump");
    assert_eq!(n(&s, "received"), n(&s, "ok") * MESSAGES);
    assert_eq!(n(&s, "sent"), 0);
}

#[test]
fn a_client_stream_run_sends_every_message_and_the_provider_counts_them() {
    let s = run("client", "Collect");
    assert_eq!(n(&s, "sent"), n(&s, "ok") * MESSAGES);
    assert_eq!(n(&s, "provider_counted"), n(&s, "sent"));
    assert_eq!(n(&s, "received"), 0);
}

#[test]
fn a_bidi_run_gets_each_message_echoed() {
    let s = run("bidi", "EchoStream");
    assert_eq!(n(&s, "sent"), n(&s, "ok") * MESSAGES);
    assert_eq!(n(&s, "received"), n(&s, "sent"));
}

#[test]
fn a_method_that_is_not_a_stream_fails_the_probe_with_its_status() {
    let server = provider();
    let (ok, output) = loadgen(
        server.addr(),
        &["--stream", "server", "--method", "NoSuchMethod"],
    );
    assert!(!ok, "loadgen succeeded:\n{output}");
    assert!(
        output.contains("probe stream EchoStreamService.NoSuchMethod failed"),
        "{output}"
    );
}

#[test]
fn stream_mode_refuses_an_open_loop_rate() {
    let server = provider();
    let (ok, output) = loadgen(server.addr(), &["--stream", "bidi", "--qps", "100"]);
    assert!(!ok);
    assert!(output.contains("--stream: not with --qps N"), "{output}");
}

#[test]
fn a_stalled_reader_run_reports_every_phase_and_nothing_fails() {
    let server = provider();
    let pid = std::process::id().to_string();
    let (ok, output) = loadgen(
        server.addr(),
        &[
            "--stream",
            "server",
            "--stall-reader",
            "0.5",
            "--stall-size",
            "1024",
            "--stall-unary",
            "1",
            "--connections",
            "2",
            "--stream-messages",
            "10",
            "--warmup",
            "100ms",
            "--duration",
            "300ms",
            "--cpu-pid",
            &pid,
        ],
    );
    assert!(ok, "loadgen failed:\n{output}");
    let s = summary(&output);
    assert_eq!(s["stalled_outcome"], "ok", "{output}");
    assert_eq!(s["other_failed"], "0", "{output}");
    assert_eq!(s["unary_failed"], "0", "{output}");
    // 1024 messages, or as many 1024-byte ones (1043-byte frames) as the
    // provider's 1 MiB cap takes: 1006.
    assert_eq!(s["window_messages"], "1006", "{output}");
    assert_eq!(s["window_bytes"], (1006 * 1024).to_string(), "{output}");
    for key in [
        "before_other_per_s",
        "stalled_other_per_s",
        "stalled_unary_per_s",
    ] {
        assert!(s[key].parse::<f64>().unwrap() > 0.0, "{key}: {output}");
    }
    // This test process stands in for the provider: its RSS was read.
    assert!(
        s["provider_rss_before_kib"].parse::<u64>().unwrap() > 0,
        "{output}"
    );
}

#[test]
fn an_async_server_stream_run_receives_every_message_of_every_stream() {
    let server = provider();
    let (ok, output) = loadgen(
        server.addr(),
        &[
            "--stream",
            "server",
            "--stream-async",
            "--connections",
            "3",
            "--stream-messages",
            &MESSAGES.to_string(),
            "--warmup",
            "50ms",
            "--duration",
            "300ms",
        ],
    );
    assert!(ok, "loadgen failed:\n{output}");
    let s = summary(&output);
    assert_eq!(s["failed"], "0", "{output}");
    let ok_streams: u64 = s["ok"].parse().unwrap();
    assert!(ok_streams > 0, "{output}");
    assert_eq!(s["received"].parse::<u64>().unwrap(), ok_streams * MESSAGES);
}

/// A `--stream-callback` run of `kind`: every stream of the measured
/// window ends well with all its messages.
fn callback_run(kind: &str) {
    let server = provider();
    let (ok, output) = loadgen(
        server.addr(),
        &[
            "--stream",
            kind,
            "--stream-callback",
            "--connections",
            "3",
            "--stream-messages",
            &MESSAGES.to_string(),
            "--warmup",
            "50ms",
            "--duration",
            "300ms",
        ],
    );
    assert!(ok, "loadgen failed:\n{output}");
    let s = summary(&output);
    assert_eq!(s["failed"], "0", "{output}");
    let ok_streams: u64 = s["ok"].parse().unwrap();
    assert!(ok_streams > 0, "{output}");
    assert_eq!(s["received"].parse::<u64>().unwrap(), ok_streams * MESSAGES);
    if kind == "bidi" {
        assert_eq!(s["sent"].parse::<u64>().unwrap(), ok_streams * MESSAGES);
    }
}

#[test]
fn a_callback_server_stream_run_receives_every_message_of_every_stream() {
    callback_run("server");
}

#[test]
fn a_callback_bidi_run_gets_each_message_echoed() {
    callback_run("bidi");
}

#[test]
fn stream_callback_refuses_a_client_stream() {
    let server = provider();
    let (ok, output) = loadgen(
        server.addr(),
        &[
            "--stream",
            "client",
            "--stream-callback",
            "--duration",
            "100ms",
        ],
    );
    assert!(!ok, "{output}");
    assert!(output.contains("--stream-callback"), "{output}");
}
