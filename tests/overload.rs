//! Overload protection over real sockets: a method over its concurrency
//! limit answers `Overloaded` at once without running the handler, the
//! calls it admits keep their latency, the adaptive limit finds its level
//! under a flood, and a consumer retries a refused call once on another
//! provider. Assertions are on counts and orderings, never on
//! timings a busy machine could break.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mprpc::client::Channel;
use mprpc::client::ChannelOptions;
use mprpc::server::{ConcurrencyLimiter, MethodConcurrency, Server, ServerHandle, ServerOptions};
use mprpc::{CallOptions, Code, Endpoint, StaticDiscover};

mod common;
use common::services::{slow_request, wait_slow_started, BlockingTest};

fn start(options: ServerOptions) -> ServerHandle {
    mprpc::app::logging::init_for_tests();
    let mut server = Server::with_options(options.reactor_threads(1));
    server.add_blocking_service(BlockingTest);
    server.start().unwrap()
}

/// Sends `n` calls of `BlockingTest.Slow` (`ms` each) at once; returns
/// each one's status code and how long it took, in completion order.
fn flood(server: &ServerHandle, n: usize, ms: u64) -> Vec<(Code, Duration)> {
    let channel = Channel::direct(server.local_addr()).unwrap();
    let (tx, rx) = mpsc::channel();
    let options = CallOptions::with_timeout(Duration::from_secs(30));
    for _ in 0..n {
        let tx = tx.clone();
        let sent = Instant::now();
        channel.call_with(
            "BlockingTest",
            "Slow",
            Bytes::from(ms.to_string()),
            &options,
            move |result| {
                let code = result.err().map_or(Code::Ok, |s| s.code());
                let _ = tx.send((code, sent.elapsed()));
            },
        );
    }
    drop(tx);
    rx.iter().collect()
}

/// The limit and counts of `BlockingTest.Slow`.
fn slow_limit(server: &ServerHandle) -> MethodConcurrency {
    server
        .concurrency()
        .into_iter()
        .find(|m| m.method == "Slow")
        .expect("Slow is limited")
}

fn count(results: &[(Code, Duration)], code: Code) -> usize {
    results.iter().filter(|(c, _)| *c == code).count()
}

fn slowest(results: &[(Code, Duration)], code: Code) -> Duration {
    results
        .iter()
        .filter(|(c, _)| *c == code)
        .map(|(_, d)| *d)
        .max()
        .unwrap_or_default()
}

#[test]
fn a_fixed_limit_refuses_the_surplus_at_once_and_admitted_calls_keep_their_latency() {
    const CALLS: usize = 64;
    const WORKERS: usize = 4;
    let limited = start(
        ServerOptions::default()
            .worker_threads(WORKERS)
            .max_concurrency("BlockingTest.Slow:4".parse().unwrap()),
    );
    let shed = flood(&limited, CALLS, 50);

    // Every call was answered, either served or refused: nothing else.
    let (ok, overloaded) = (count(&shed, Code::Ok), count(&shed, Code::Overloaded));
    assert_eq!(ok + overloaded, CALLS, "{shed:?}");
    // The limit admits 4 at a time: at least those ran, most were refused.
    assert!(ok >= WORKERS, "{ok} served");
    assert!(overloaded >= CALLS / 2, "{overloaded} refused");
    // Refused at once: every refusal arrived before the first served call
    // (whose handler alone sleeps 50 ms).
    let first_ok = shed.iter().position(|(c, _)| *c == Code::Ok).unwrap();
    assert_eq!(
        count(&shed[..first_ok], Code::Overloaded),
        count(&shed[..first_ok + ok], Code::Overloaded),
        "a refusal came after a served call: {shed:?}"
    );
    let report = limited.concurrency();
    assert_eq!(report.len(), 1, "{report:?}");
    let slow = &report[0];
    assert_eq!((slow.service, slow.method), ("BlockingTest", "Slow"));
    assert_eq!((slow.limit, slow.adaptive), (4, false));
    assert_eq!(slow.refused, overloaded as u64);
    // The metrics count refusals as answered calls with an error.
    let metrics = limited.metrics();
    let metrics = metrics.get("BlockingTest", "Slow").unwrap();
    assert_eq!(
        (metrics.calls, metrics.errors),
        (CALLS as u64, overloaded as u64)
    );

    // The same flood without a limit queues every call for the 4 workers:
    // the last waits for all the others.
    let unlimited = start(ServerOptions::default().worker_threads(WORKERS));
    let queued = flood(&unlimited, CALLS, 50);
    assert_eq!(count(&queued, Code::Ok), CALLS);
    assert!(unlimited.concurrency().is_empty());
    // Admitted calls keep their latency: the slowest served call under the
    // limit is faster than the slowest without it (16 handler times).
    assert!(
        slowest(&shed, Code::Ok) < slowest(&queued, Code::Ok),
        "limited {:?} vs unlimited {:?}",
        slowest(&shed, Code::Ok),
        slowest(&queued, Code::Ok)
    );
    for server in [limited, unlimited] {
        server.shutdown();
        server.wait();
    }
}

#[test]
fn the_adaptive_limit_falls_to_what_the_workers_can_take_under_a_flood() {
    const WORKERS: usize = 2;
    const CALLERS: usize = 48;
    let server = start(
        ServerOptions::default()
            .worker_threads(WORKERS)
            .concurrency_limiter(ConcurrencyLimiter::Auto),
    );
    let initial = slow_limit(&server).limit;
    assert!(slow_limit(&server).adaptive);
    assert!(initial as usize > CALLERS / 2, "{initial}");

    // CALLERS threads call Slow (5 ms) in a closed loop, far more than 2
    // workers serve, until the limit has adapted (or 20 s, a failure).
    let channel = Channel::direct(server.local_addr()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let served_early = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let served_late = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let refused = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (channel, stop, refused) = (channel.clone(), stop.clone(), refused.clone());
            let (early, late) = (served_early.clone(), served_late.clone());
            let server = server.clone();
            std::thread::spawn(move || {
                let options = CallOptions::with_timeout(Duration::from_secs(30));
                while !stop.load(Ordering::Relaxed) {
                    let adapted = slow_limit(&server).limit < initial;
                    let sent = Instant::now();
                    match channel.call("BlockingTest", "Slow", Bytes::from("5"), &options, None) {
                        Ok(_) if adapted => late.lock().push(sent.elapsed()),
                        Ok(_) => early.lock().push(sent.elapsed()),
                        Err(s) if s.code() == Code::Overloaded => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(5)); // back off a little
                        }
                        Err(s) => panic!("unexpected {s}"),
                    }
                }
            })
        })
        .collect();
    let began = Instant::now();
    while served_late.lock().len() < 200 && began.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }

    let report = slow_limit(&server);
    let (early, late) = (served_early.lock().clone(), served_late.lock().clone());
    assert!(late.len() >= 200, "the limit never adapted: {report:?}");
    // The limit fell to about what the workers hold (never below twice
    // the workers), and the surplus was refused.
    assert!(report.limit >= 2 * WORKERS as u32, "{report:?}");
    assert!(report.limit < initial, "{report:?}");
    assert!(refused.load(Ordering::Relaxed) > 0);
    assert_eq!(report.refused, refused.load(Ordering::Relaxed));
    // Served calls waited in a shorter queue once the limit had adapted.
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    assert!(!early.is_empty());
    assert!(
        median(late.clone()) < median(early.clone()),
        "late {:?} vs early {:?}",
        median(late),
        median(early)
    );
    server.shutdown();
    server.wait();
}

/// A provider whose `Slow` takes one call at a time, that one call held
/// (a `Slow` of `hold_ms`, its handler started): every other `Slow` call
/// is refused until it ends.
fn busy_provider(hold_ms: u64) -> (ServerHandle, mprpc::client::PendingCall) {
    let server = start(
        ServerOptions::default()
            .worker_threads(1)
            .max_concurrency("BlockingTest.Slow:1".parse().unwrap()),
    );
    let request = slow_request(hold_ms);
    let hold = Channel::direct(server.local_addr()).unwrap().call_async(
        "BlockingTest",
        "Slow",
        request.clone(),
        &CallOptions::with_timeout(Duration::from_secs(30)),
    );
    wait_slow_started(&request, 1);
    (server, hold)
}

/// A channel over `servers`, round robin.
fn channel_over(servers: &[&ServerHandle]) -> Channel {
    let endpoints = servers
        .iter()
        .map(|s| Endpoint::new(s.local_addr()))
        .collect();
    Channel::new(
        Arc::new(StaticDiscover::new(endpoints)),
        ChannelOptions::default(),
    )
    .unwrap()
}

#[test]
fn a_consumer_retries_a_refused_call_once_on_another_provider() {
    const CALLS: usize = 20;
    let (busy, hold) = busy_provider(3001);
    let idle = start(
        ServerOptions::default()
            .worker_threads(2)
            .max_concurrency("BlockingTest.Slow:100".parse().unwrap()),
    );
    let channel = channel_over(&[&busy, &idle]);
    let options = CallOptions::with_timeout(Duration::from_secs(10));
    for i in 0..CALLS {
        // Slow with a 0 ms sleep; round robin sends every other call to
        // the busy provider, which refuses it; the retry lands on the idle one.
        let reply = channel.call("BlockingTest", "Slow", Bytes::from("0"), &options, None);
        assert!(reply.is_ok(), "call {i}: {reply:?}");
    }
    let refused = slow_limit(&busy).refused;
    assert!(refused >= 1, "no call went to the busy provider");
    let served = idle.metrics().get("BlockingTest", "Slow").unwrap().calls;
    assert_eq!(served, CALLS as u64);
    let busy_metrics = busy.metrics();
    let busy_slow = busy_metrics.get("BlockingTest", "Slow").unwrap();
    assert_eq!(busy_slow.errors, refused, "every refusal counted");
    assert_eq!(slow_limit(&idle).refused, 0);
    assert!(hold.wait().is_ok());
    for server in [busy, idle] {
        server.shutdown();
        server.wait();
    }
}

#[test]
fn when_every_provider_refuses_the_caller_gets_overloaded_after_one_retry() {
    let (a, hold_a) = busy_provider(3002);
    let (b, hold_b) = busy_provider(3003);
    let channel = channel_over(&[&a, &b]);
    let options = CallOptions::with_timeout(Duration::from_secs(10));
    let status = channel
        .call("BlockingTest", "Slow", Bytes::from("0"), &options, None)
        .unwrap_err();
    assert_eq!(status.code(), Code::Overloaded, "{status}");
    // Refused by one, retried once on the other, refused again: no more.
    assert_eq!((slow_limit(&a).refused, slow_limit(&b).refused), (1, 1));
    // One provider: nowhere else to go, no retry.
    let single = Channel::direct(a.local_addr()).unwrap();
    let status = single
        .call("BlockingTest", "Slow", Bytes::from("0"), &options, None)
        .unwrap_err();
    assert_eq!(status.code(), Code::Overloaded, "{status}");
    assert_eq!(slow_limit(&a).refused, 2);
    assert!(hold_a.wait().is_ok() && hold_b.wait().is_ok());
    for server in [a, b] {
        server.shutdown();
        server.wait();
    }
}
