//! The periodic metrics log of a real provider process: with
//! `metrics_log_interval_s=1` the `provider` binary logs one line per called
//! method every second (its totals moving with the calls); with 0 it logs
//! none.

use std::path::Path;
use std::time::{Duration, Instant};

use mprpc::client::Channel;
use mprpc::Controller;
use mprpc_examples::fixbug::{LoginRequest, UserServiceRpcStub};

mod common;
use common::provider_process::{self, Proc};

/// Starts `provider` (no registry) with `interval` seconds; returns it and
/// the port it announced.
fn start_provider(dir: &Path, interval: u64) -> (Proc, u16) {
    let conf = dir.join("p.conf");
    let text = format!(
        "rpcserverip=127.0.0.1\nrpcserverport=0\nregistry=none\nreactor_threads=1\n\
         metrics_log_interval_s={interval}\nlog_dir={}\n",
        dir.join("logs").display()
    );
    std::fs::write(&conf, text).unwrap();
    let started = provider_process::start(env!("CARGO_BIN_EXE_provider"), &conf);
    (started.proc, started.port)
}

fn login(port: u16, times: usize) {
    let users = UserServiceRpcStub::new(Channel::direct(("127.0.0.1", port)).unwrap());
    let request = LoginRequest {
        name: "zhang san".into(),
        pwd: "123456".into(),
    };
    for _ in 0..times {
        // The seed's Login answers false; the call itself succeeds.
        assert!(
            !users
                .login(&mut Controller::new(), &request)
                .unwrap()
                .sucess
        );
    }
}

/// Every metrics line logged so far (the log files in `dir/logs`).
fn metrics_lines(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join("logs")) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .flat_map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| line.contains("mprpc::metrics"))
        .collect()
}

/// The `calls=` total of the last Login line.
fn last_login_total(lines: &[String]) -> Option<u64> {
    lines
        .iter()
        .rev()
        .find_map(|l| l.split("metrics UserServiceRpc.Login calls=").nth(1))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn a_line_per_called_method_every_interval_with_moving_totals() {
    let dir = tempfile::tempdir().unwrap();
    let (_provider, port) = start_provider(dir.path(), 1);
    login(port, 7);
    let limit = Duration::from_secs(15);
    assert!(
        wait_for(limit, || last_login_total(&metrics_lines(dir.path()))
            == Some(7)),
        "no line with calls=7: {:?}",
        metrics_lines(dir.path())
    );
    login(port, 5);
    assert!(
        wait_for(limit, || last_login_total(&metrics_lines(dir.path()))
            == Some(12)),
        "the total did not move to 12: {:?}",
        metrics_lines(dir.path())
    );
    let lines = metrics_lines(dir.path());
    assert!(
        lines.iter().all(|l| !l.contains("Register")),
        "methods never called are not logged: {lines:?}"
    );
    let line = lines.iter().rev().find(|l| l.contains("Login")).unwrap();
    for field in ["errors=0", "in_flight=0", "p50_us=", "p99_us=", "/s)"] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
}

#[test]
fn zero_turns_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let (_provider, port) = start_provider(dir.path(), 0);
    login(port, 3);
    // Two and a half would-be intervals; the log file itself exists (the
    // provider logs its start), so an empty result is not a missing file.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(wait_for(Duration::from_secs(5), || {
        std::fs::read_dir(dir.path().join("logs")).is_ok_and(|mut d| d.next().is_some())
    }));
    assert_eq!(metrics_lines(dir.path()), Vec::<String>::new());
}
