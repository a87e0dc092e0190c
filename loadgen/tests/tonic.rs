//! `loadgen --target tonic` end to end (a build with the `tonic` feature:
//! `cargo test -p loadgen --features tonic --test tonic`) against
//! `tonic-echo-server` on a free loopback port: a short unary run at a
//! modest fixed rate (loadgen's own HTTP/2 client) and a short `--stream
//! server` run (tonic's generated client), each checked to have done its
//! work without an error. No timing is asserted; each run is bounded by
//! its `--duration`.
#![cfg(feature = "tonic")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

mod common;
use common::{out_dir, read_json, u};

/// `tonic-echo-server` on a free 127.0.0.1 port, killed when dropped.
struct TonicServer {
    child: Child,
    addr: SocketAddr,
}

impl Drop for TonicServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server and reads the address it says it listens on.
fn tonic_server() -> TonicServer {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tonic-echo-server"))
        .args(["--addr", "127.0.0.1:0", "--workers", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tonic-echo-server runs");
    let stdout = child.stdout.take().expect("its stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("it says where it listens");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not an address line: {line:?}"));
    TonicServer { child, addr }
}

/// Runs loadgen with `args` against `addr`: its stdout, after checking it
/// succeeded.
fn loadgen(addr: SocketAddr, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--target", "tonic", "--addr", &addr.to_string()])
        .args(args)
        .output()
        .expect("loadgen runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "loadgen {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn unary_calls_to_a_tonic_server_complete_without_errors() {
    let server = tonic_server();
    let dir = out_dir("tonic-unary");
    let dir_arg = dir.to_string_lossy().into_owned();
    loadgen(
        server.addr,
        &[
            "--label",
            "tonic-unary",
            "--out-dir",
            &dir_arg,
            "--qps",
            "2000",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--connections",
            "2",
            "--in-flight",
            "8",
        ],
    );
    let report = read_json(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(u(&report, "errors"), 0, "{report}");
    assert!(u(&report, "completed") > 100, "{report}");
}

#[test]
fn server_streams_from_a_tonic_server_are_all_read() {
    let server = tonic_server();
    let output = loadgen(
        server.addr,
        &[
            "--stream",
            "server",
            "--stream-messages",
            "20",
            "--payload",
            "16",
            "--connections",
            "3",
            "--duration",
            "300ms",
            "--warmup",
            "100ms",
            "--no-write",
        ],
    );
    let summary: HashMap<&str, &str> = output
        .lines()
        .find_map(|l| l.strip_prefix("summary: "))
        .unwrap_or_else(|| panic!("no summary line in:\n{output}"))
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let n = |key: &str| -> u64 { summary[key].parse().expect(key) };
    assert_eq!(n("failed"), 0, "{output}");
    assert!(n("streams") > 0, "{output}");
    assert_eq!(n("ok"), n("streams"), "{output}");
    assert_eq!(
        n("received"),
        20 * n("streams"),
        "every message of every stream: {output}"
    );
}
