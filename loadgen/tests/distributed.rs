//! Distributed runs end to end on one machine: a real ZooKeeper (started by
//! the harness), our provider on loopback, `loadgen worker` processes and
//! the coordinator (`loadgen --zk ... --workers K`). Covers the exact
//! accounting (merged count = sum of the workers' = calls the provider
//! served), a worker killed with SIGKILL mid-run, too few workers, and the
//! coordinator's death stopping the load. Tests share one ZooKeeper (each
//! under its own --zk-root) and run one at a time: they measure load, and
//! the machine has two cores. Each run is a few seconds.

mod common;
#[allow(dead_code)]
#[path = "../../tests/common/zk.rs"]
mod zk;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{f, out_dir, provider, read_json, registered_provider, served, u};
use serde_json::Value;
use zk::{wait_until, RawZk, ZkServer};

/// One ZooKeeper for the file (killed by its watchdog when the test
/// process ends); tests take turns.
fn zk() -> (&'static ZkServer, std::sync::MutexGuard<'static, ()>) {
    static ZK: OnceLock<ZkServer> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    (ZK.get_or_init(ZkServer::start), turn)
}

/// A loadgen process, killed (SIGKILL) on drop, its output in a file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// `loadgen worker --zk ... --zk-root root --name name`.
fn worker(zk: &ZkServer, root: &str, name: &str) -> Proc {
    worker_with(zk, root, name, &[])
}

/// [`worker`] with more flags.
fn worker_with(zk: &ZkServer, root: &str, name: &str, extra: &[&str]) -> Proc {
    let log = std::env::temp_dir()
        .join(format!("loadgen-{root}-{name}-{}.log", std::process::id()).replace('/', ""));
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "worker",
            "--zk",
            &zk.connect_string(),
            "--zk-root",
            root,
            "--name",
            name,
        ])
        .args(extra)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("loadgen worker starts");
    Proc { child, log }
}

/// Waits until `names` are registered and idle under `root`.
fn wait_idle(raw: &RawZk, root: &str, names: &[&str], procs: &[&Proc]) {
    let idle = wait_until(Duration::from_secs(20), || {
        names.iter().all(|n| {
            raw.get(&format!("{root}/loadgen/workers/{n}"))
                .is_some_and(|(data, _)| data.starts_with(b"state=idle"))
        })
    });
    let logs: Vec<String> = procs.iter().map(|p| p.log()).collect();
    assert!(idle, "workers {names:?} not idle; logs: {logs:#?}");
}

/// The coordinator's flags for a run against `addr`, its report in `dir`.
fn coordinator(zk: &ZkServer, root: &str, dir: &std::path::Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.args([
        "--zk",
        &zk.connect_string(),
        "--zk-root",
        root,
        "--label",
        "dist",
        "--out-dir",
    ])
    .arg(dir)
    .args(extra);
    cmd
}

/// Rows of the report's worker table, by name.
fn row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["workers"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no row for {name} in {report}"))
}

fn sum(report: &Value, key: &str) -> u64 {
    report["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| u(r, key))
        .sum()
}

/// Reads the coordinator's stdout until a progress line of the measured
/// window appears; returns what it read.
fn until_measuring(child: &mut Child) -> (String, BufReader<std::process::ChildStdout>) {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = out.read_line(&mut line).unwrap();
        assert!(n > 0, "coordinator ended before measuring:\n{seen}");
        seen.push_str(&line);
        if line.contains("] measure") {
            return (seen, out);
        }
    }
}

#[test]
fn three_workers_merge_exactly_what_the_provider_served() {
    let (zk, _turn) = zk();
    let root = "/t-merge";
    let raw = RawZk::connect(&zk.connect_string(), None);
    let server = provider();
    let names = ["w1", "w2", "w3"];
    let workers: Vec<Proc> = names.iter().map(|n| worker(zk, root, n)).collect();
    wait_idle(&raw, root, &names, &workers.iter().collect::<Vec<_>>());
    let dir = out_dir("dist-merge");
    let addr = server.addr().to_string();
    let output = coordinator(
        zk,
        root,
        &dir,
        &[
            "--workers",
            "3",
            "--addr",
            &addr,
            "--client",
            "raw",
            "--qps",
            "600",
            "--duration",
            "2s",
            "--warmup",
            "0s",
            "--connections",
            "3",
            "--in-flight",
            "30",
        ],
    )
    .output()
    .expect("coordinator runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let logs: Vec<String> = workers.iter().map(Proc::log).collect();
    assert!(
        output.status.success(),
        "coordinator failed:\n{stdout}\n{}\nworkers: {logs:#?}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("workers 3/3 running"), "{stdout}");
    assert!(
        stdout.contains("| w2 | complete |"),
        "per-worker table:\n{stdout}"
    );
    let r = read_json(&dir);
    // Exact accounting: the merged count is the workers' sum, and every
    // call the provider served is one of them, plus one probe per worker.
    let completed = u(&r, "completed");
    assert_eq!(completed, sum(&r, "completed"), "{r}");
    assert_eq!(u(&r, "sent"), sum(&r, "sent"), "{r}");
    assert_eq!(served(&server), completed + names.len() as u64, "{r}");
    assert_eq!((u(&r, "errors"), u(&r, "unanswered")), (0, 0), "{r}");
    // Every call of the one schedule (600/s for 2 s, three ways) is counted
    // once: sent, or unsent if a busy machine fell behind at the very end.
    assert_eq!(u(&r, "sent") + u(&r, "unsent"), 600 * 2, "{r}");
    let recorded = u(&r["latency_us"], "count");
    assert_eq!(
        recorded,
        completed + u(&r, "unsent"),
        "the merged histogram holds every call"
    );
    // The rate is a speed figure (benchmarks hold it to ±5%); here it only
    // shows the schedule was followed, with room for a busy 2-core machine.
    let achieved = f(&r, "achieved_qps");
    assert!((480.0..=630.0).contains(&achieved), "achieved {achieved}");
    for n in names {
        let w = row(&r, n);
        assert_eq!(
            (w["status"].as_str(), w["partial"].as_bool()),
            (Some("complete"), Some(false))
        );
        assert_eq!(f(w, "target_qps"), 200.0);
        assert_eq!(u(w, "connections"), 1);
    }
    assert_eq!(r["per_channel"].as_array().unwrap().len(), 3);
    assert!(
        r["per_channel"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("w1/"),
        "{r}"
    );
    // The .hgrm is the merged histogram's.
    let hgrm = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "hgrm"))
        .expect("an .hgrm report");
    let text = std::fs::read_to_string(hgrm).unwrap();
    assert!(
        text.contains(&format!("Total count    = {recorded:>12}")),
        "{text}"
    );
    // The run's nodes are gone, the workers idle again.
    assert_eq!(raw.children(&format!("{root}/loadgen/runs")), Some(vec![]));
    wait_idle(&raw, root, &names, &workers.iter().collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown_gracefully();
}

/// `pid`'s state letter from /proc (`None` once it is gone).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

/// The run process a worker started (found by the worker's pid in its
/// environment: once the worker is dead it is no longer its parent).
fn run_process_of(worker: u32) -> Option<u32> {
    let mark = format!("LOADGEN_WORKER_PID={worker}\0");
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        String::from_utf8_lossy(&env).contains(&mark).then_some(pid)
    })
}

#[test]
fn a_worker_killed_mid_run_is_reported_by_name_with_partial_data() {
    let (zk, _turn) = zk();
    let root = "/t-kill";
    let raw = RawZk::connect(&zk.connect_string(), None);
    let server = provider();
    let names = ["k1", "k2", "k3"];
    let mut workers: Vec<Proc> = names.iter().map(|n| worker(zk, root, n)).collect();
    wait_idle(&raw, root, &names, &workers.iter().collect::<Vec<_>>());
    let dir = out_dir("dist-kill");
    let addr = server.addr().to_string();
    let mut child = coordinator(
        zk,
        root,
        &dir,
        &[
            "--workers",
            "3",
            "--addr",
            &addr,
            "--client",
            "raw",
            "--qps",
            "300",
            "--duration",
            "4s",
            "--warmup",
            "0s",
            "--connections",
            "3",
            "--in-flight",
            "30",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (mut seen, mut rest) = until_measuring(&mut child);
    // One more second, so k2 has published figures to be partial about.
    let mut line = String::new();
    rest.read_line(&mut line).unwrap();
    seen.push_str(&line);
    let victim = workers[1].child.id();
    let run_process = run_process_of(victim).expect("k2 runs its slice in a child process");
    let _ = workers[1].child.kill(); // SIGKILL
    let _ = workers[1].child.wait();
    // Its run process dies with it: no load is left behind.
    let gone = wait_until(Duration::from_secs(2), || {
        proc_state(run_process).is_none_or(|s| s == 'Z')
    });
    assert!(gone, "k2's run process {run_process} outlived it");
    std::io::Read::read_to_string(&mut rest, &mut seen).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "an incomplete run is an error:\n{seen}"
    );
    assert!(
        stderr.contains("incomplete run: k2 (died (gone at +"),
        "{stderr}"
    );
    assert!(seen.contains("**INCOMPLETE RUN**: k2"), "{seen}");
    let r = read_json(&dir);
    let k2 = row(&r, "k2");
    let status = k2["status"].as_str().unwrap();
    assert!(
        status.starts_with("died (gone at +") && status.contains("last report at +"),
        "{k2}"
    );
    assert_eq!(k2["partial"], true);
    assert!(
        u(k2, "completed") > 0,
        "its published seconds are kept: {k2}"
    );
    for n in ["k1", "k3"] {
        assert_eq!(row(&r, n)["status"], "complete", "{r}");
    }
    assert_eq!(
        r["target_held"], false,
        "a run with a dead worker holds nothing"
    );
    assert_eq!(u(&r, "completed"), sum(&r, "completed"), "{r}");
    assert!(served(&server) >= u(&r, "completed"));
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown_gracefully();
}

#[test]
fn too_few_workers_time_out_with_a_clear_message() {
    let (zk, _turn) = zk();
    let root = "/t-few";
    let raw = RawZk::connect(&zk.connect_string(), None);
    let lone = worker(zk, root, "only");
    wait_idle(&raw, root, &["only"], &[&lone]);
    let dir = out_dir("dist-few");
    // Never called (the run does not start), and not assumed closed.
    let nobody = format!("127.0.0.1:{}", zk::free_port());
    let started = Instant::now();
    let output = coordinator(
        zk,
        root,
        &dir,
        &[
            "--workers",
            "2",
            "--wait-workers",
            "1500ms",
            "--addr",
            &nobody,
            "--qps",
            "10",
            "--duration",
            "1s",
        ],
    )
    .output()
    .unwrap();
    let waited = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("only 1 of 2 workers came within 1.5s (idle: only; busy: none)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("loadgen worker --zk HOST:PORT"),
        "says what to do: {stderr}"
    );
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
    // Nothing was claimed or left behind.
    assert_eq!(raw.children(&format!("{root}/loadgen/runs")), Some(vec![]));
    wait_idle(&raw, root, &["only"], &[&lone]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_coordinator_s_death_stops_the_load_within_a_second() {
    let (zk, _turn) = zk();
    let root = "/t-orphan";
    let raw = RawZk::connect(&zk.connect_string(), None);
    let server = provider();
    let names = ["o1", "o2"];
    let workers: Vec<Proc> = names.iter().map(|n| worker(zk, root, n)).collect();
    wait_idle(&raw, root, &names, &workers.iter().collect::<Vec<_>>());
    let dir = out_dir("dist-orphan");
    let addr = server.addr().to_string();
    let mut child = coordinator(
        zk,
        root,
        &dir,
        &[
            "--workers",
            "2",
            "--addr",
            &addr,
            "--client",
            "raw",
            "--qps",
            "400",
            "--duration",
            "30s",
            "--warmup",
            "0s",
            "--connections",
            "2",
            "--in-flight",
            "20",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let _ = until_measuring(&mut child);
    let _ = child.kill(); // SIGKILL: no goodbye, its session lingers
    let killed = Instant::now();
    let _ = child.wait();
    // Each worker notices the stale heartbeat (0.8 s) and stops its load;
    // waited for, not slept on, so a busy machine cannot race it.
    let all_stopped = || {
        workers
            .iter()
            .all(|w| w.log().contains("heartbeat stopped"))
    };
    assert!(
        wait_until(Duration::from_secs(10), all_stopped),
        "a worker never noticed the coordinator's death"
    );
    let noticed = killed.elapsed();
    assert!(
        noticed < Duration::from_secs(3),
        "noticed after {noticed:?}"
    );
    // Calls already in flight may still land; then nothing more does.
    let settled = settled_count(|| served(&server));
    assert!(settled > 0);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        served(&server),
        settled,
        "load went on after the workers stopped"
    );
    wait_idle(&raw, root, &names, &workers.iter().collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown_gracefully();
}

/// `count()` once it has stopped changing for 200 ms (bounded at 10 s).
fn settled_count(count: impl Fn() -> u64) -> u64 {
    let give_up = Instant::now() + Duration::from_secs(10);
    let mut last = count();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = count();
        if now == last || Instant::now() > give_up {
            return now;
        }
        last = now;
    }
}

#[test]
fn workers_discover_the_providers_in_zookeeper() {
    let (zk, _turn) = zk();
    let root = "/t-discover";
    let raw = RawZk::connect(&zk.connect_string(), None);
    let providers = [
        registered_provider(&zk.connect_string(), root),
        registered_provider(&zk.connect_string(), root),
    ];
    let names = ["d1", "d2"];
    let workers: Vec<Proc> = names.iter().map(|n| worker(zk, root, n)).collect();
    wait_idle(&raw, root, &names, &workers.iter().collect::<Vec<_>>());
    let dir = out_dir("dist-discover");
    // No --addr: each worker finds the providers in its own ZooKeeper
    // session, and drives them through the framework's Channel.
    let output = coordinator(
        zk,
        root,
        &dir,
        &[
            "--workers",
            "2",
            "--qps",
            "300",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--connections",
            "2",
            "--in-flight",
            "20",
        ],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let logs: Vec<String> = workers.iter().map(Proc::log).collect();
    assert!(
        output.status.success(),
        "coordinator failed:\n{stdout}\n{}\nworkers: {logs:#?}",
        String::from_utf8_lossy(&output.stderr)
    );
    let r = read_json(&dir);
    assert_eq!(r["client"], "channel", "{r}");
    let mut found: Vec<String> = r["discovered_providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    found.sort();
    let mut expected: Vec<String> = providers.iter().map(|p| p.addr().to_string()).collect();
    expected.sort();
    assert_eq!(found, expected);
    // Every call landed on one of them: one probe per worker's channel,
    // the rest measured.
    let served_all: u64 = providers.iter().map(served).sum();
    assert_eq!(served_all, u(&r, "completed") + names.len() as u64, "{r}");
    assert_eq!(u(&r, "completed"), sum(&r, "completed"));
    assert_eq!(u(&r, "errors"), 0, "{r}");
    let _ = std::fs::remove_dir_all(&dir);
    for p in &providers {
        p.shutdown_gracefully();
    }
}

#[test]
fn a_worker_that_cannot_run_says_why_and_the_run_stops() {
    let (zk, _turn) = zk();
    let root = "/t-fail";
    let raw = RawZk::connect(&zk.connect_string(), None);
    let lone = worker(zk, root, "f1");
    wait_idle(&raw, root, &["f1"], &[&lone]);
    let dir = out_dir("dist-fail");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let output = coordinator(
        zk,
        root,
        &dir,
        &[
            "--workers",
            "1",
            "--addr",
            &closed,
            "--qps",
            "10",
            "--duration",
            "1s",
            "--timeout",
            "1s",
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("worker f1 cannot run: probe call"),
        "{stderr}"
    );
    assert_eq!(raw.children(&format!("{root}/loadgen/runs")), Some(vec![]));
    wait_idle(&raw, root, &["f1"], &[&lone]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_digest_keeps_strangers_from_claiming_workers() {
    let (zk, _turn) = zk();
    let root = "/t-digest";
    let raw = RawZk::connect(&zk.connect_string(), None);
    let server = provider();
    let secret = ["--zk-digest", "load:secret"];
    let guarded = worker_with(zk, root, "g1", &secret);
    wait_idle(&raw, root, &["g1"], &[&guarded]);
    let acl = raw.acl(&format!("{root}/loadgen/workers/g1"));
    assert!(acl.iter().any(|a| a.scheme() == "digest"), "{acl:?}");
    assert!(
        !acl.iter()
            .any(|a| a.scheme() == "world" && a.permission() != zookeeper_client::Permission::READ),
        "{acl:?}"
    );
    let dir = out_dir("dist-digest");
    let addr = server.addr().to_string();
    let flags = [
        "--workers",
        "1",
        "--addr",
        &addr,
        "--client",
        "raw",
        "--qps",
        "100",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--wait-workers",
        "2s",
    ];
    // Without the secret: the worker is seen but cannot be claimed.
    let stranger = coordinator(zk, root, &dir, &flags).output().unwrap();
    assert!(!stranger.status.success());
    let stderr = String::from_utf8_lossy(&stranger.stderr);
    assert!(stderr.contains("cannot create"), "{stderr}");
    assert!(
        stderr.contains("give --zk-digest user:password"),
        "{stderr}"
    );
    wait_idle(&raw, root, &["g1"], &[&guarded]);
    // With it, the run goes ahead.
    let output = coordinator(zk, root, &dir, &[&flags[..], &secret[..]].concat())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        guarded.log()
    );
    let r = read_json(&dir);
    assert_eq!(u(&r, "completed"), sum(&r, "completed"));
    assert!(u(&r, "completed") > 0);
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown_gracefully();
}
