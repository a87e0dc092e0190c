//! Failover from a provider whose link went silent, over real sockets on
//! 127.0.0.1: a peer that accepts connections and never reads or answers
//! (what a cut link looks like to the client: no reset, no reply). The
//! channel must stop choosing it once calls on it time out, probe it, and
//! choose it again once a real provider answers on that address.
//! (`scripts/faults.sh` checks the same across network namespaces, with the
//! link cut by nftables.)

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mprpc::client::{Channel, ChannelOptions};
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::{CallOptions, Code, Endpoint, StaticDiscover};

mod common;
use common::logs::{captured_logs, logged};
use common::services::Tracked;

/// Each call's deadline.
const DEADLINE: Duration = Duration::from_millis(200);
/// Time between two calls of the steady load.
const PACE: Duration = Duration::from_millis(10);
/// Generous bound for "this must happen".
const PATIENCE: Duration = Duration::from_secs(10);

type Runs = Arc<parking_lot::Mutex<Vec<Bytes>>>;

fn provider(addr: &str) -> (ServerHandle, Runs) {
    let (service, runs) = Tracked::new();
    let mut server = Server::with_options(
        ServerOptions::default()
            .addr(addr.to_owned())
            .reactor_threads(1)
            .worker_threads(2),
    );
    server.add_blocking_service(service);
    (server.start().expect("start a provider"), runs)
}

/// A peer that accepts every connection and never reads or writes: calls
/// sent to it go unanswered and nothing resets the connection.
struct SilentPeer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl SilentPeer {
    fn start() -> SilentPeer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
            // Dropping the listener and the held connections.
        });
        SilentPeer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Closes the port and every connection it held.
    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

/// A steady load of `Run` calls for `length`: each call's send time (from
/// `t0`) and whether it succeeded; failures must be timeouts or
/// "unavailable" (a connection given up with its calls on it).
fn steady_load(ch: &Channel, t0: Instant, length: Duration, tag: &str) -> Vec<(Duration, bool)> {
    let options = CallOptions::with_timeout(DEADLINE);
    let mut calls = Vec::new();
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < length {
        let payload = Bytes::from(format!("{tag}-{i}"));
        calls.push((
            t0.elapsed(),
            ch.call_async("Tracked", "Run", payload, &options),
        ));
        i += 1;
        thread::sleep(PACE);
    }
    calls
        .into_iter()
        .map(|(sent, call)| match call.wait() {
            Ok(_) => (sent, true),
            Err(e) => {
                assert!(
                    matches!(e.code(), Code::DeadlineExceeded | Code::Unavailable),
                    "unexpected failure: {e}"
                );
                (sent, false)
            }
        })
        .collect()
}

#[test]
fn a_silent_provider_is_ejected_and_chosen_again_once_it_answers() {
    captured_logs();
    let silent = SilentPeer::start();
    let flaky_addr = silent.addr;
    let (live, live_runs) = provider("127.0.0.1:0");
    let endpoints = vec![Endpoint::new(flaky_addr), Endpoint::new(live.local_addr())];
    let ch = Channel::new(
        Arc::new(StaticDiscover::new(endpoints)),
        ChannelOptions::default()
            .connect_timeout(Duration::from_millis(300))
            .backoff_base(Duration::from_millis(50))
            .backoff_max(Duration::from_millis(200)),
    )
    .unwrap();

    // Round robin sends every other call to the silent peer until it is
    // ejected: the third call on its connection to pass its deadline.
    let t0 = Instant::now();
    let first = steady_load(&ch, t0, Duration::from_millis(2000), "a");
    let failed: Vec<Duration> = first.iter().filter(|c| !c.1).map(|c| c.0).collect();
    assert!(!failed.is_empty(), "no call reached the silent peer");
    let last_failed = *failed.last().unwrap();
    // Ejected once the first calls time out (one deadline after the start,
    // plus timer and scheduling slack on a busy machine: 853 ms was seen at
    // load average 10 on 2 cores); every call after that succeeds. Without
    // ejection, calls fail to the end of the load.
    assert!(
        last_failed < DEADLINE * 5,
        "calls kept failing until {last_failed:?} (of {} sent, {} failed)",
        first.len(),
        failed.len()
    );
    let ok_after = first.iter().filter(|c| c.0 > last_failed).count();
    assert!(
        ok_after > 50,
        "only {ok_after} calls after the last failure"
    );
    assert!(
        logged().contains(&format!("to {flaky_addr} passed their deadline")),
        "the ejection was not logged"
    );
    // Still ejected: probes go unanswered, calls keep succeeding.
    let held = steady_load(&ch, t0, Duration::from_millis(700), "b");
    assert!(held.iter().all(|c| c.1), "a call failed while ejected");

    // The provider comes back on the same address: a probe finds it and
    // calls reach it again.
    silent.stop();
    let (back, back_runs) = provider(&flaky_addr.to_string());
    let options = CallOptions::with_timeout(Duration::from_secs(2));
    let began = Instant::now();
    let mut i = 0;
    while back_runs.lock().is_empty() {
        assert!(
            began.elapsed() < PATIENCE,
            "the recovered provider was not chosen again"
        );
        let payload = Bytes::from(format!("c-{i}"));
        ch.call("Tracked", "Run", payload, &options, None)
            .expect("calls succeed after the recovery");
        i += 1;
        thread::sleep(PACE);
    }
    // Back in rotation: round robin shares the calls again.
    let before = (back_runs.lock().len(), live_runs.lock().len());
    for j in 0..40 {
        let payload = Bytes::from(format!("d-{j}"));
        ch.call("Tracked", "Run", payload, &options, None).unwrap();
    }
    let back_share = back_runs.lock().len() - before.0;
    let live_share = live_runs.lock().len() - before.1;
    assert_eq!(back_share + live_share, 40);
    assert!(
        (15..=25).contains(&back_share),
        "the recovered provider got {back_share} of 40 calls"
    );
    back.shutdown();
    live.shutdown();
}
