//! The Channel under stress against the real server on 127.0.0.1: many
//! threads with thousands of calls in flight, random deadlines (some
//! expiring), random cancels, and the provider restarted mid-run. Every call
//! must complete exactly once, with its own reply or a clear status; none
//! may hang. The same for chains of detached calls started from callbacks
//! on the I/O thread (whose callbacks the driver holds itself). Also:
//! several I/O threads per channel, and their shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mprpc::client::{Channel, ChannelOptions};
use mprpc::discovery::{Endpoint, WireFormat};
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::{CallOptions, Code, StaticDiscover};

mod common;
use common::ledger::CompletionLedger;
use common::services::{BlockingTest, TestService};

fn start_on(addr: &str) -> ServerHandle {
    try_start_on(addr).expect("server starts")
}

/// Restarts a provider on the port a stopped one used. The port was ours a
/// moment ago, but the OS may hand it to another process in between: retry
/// for a while on "address in use" rather than fail at once.
fn restart_on(addr: SocketAddr) -> ServerHandle {
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        match try_start_on(&addr.to_string()) {
            Ok(server) => return server,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("restarting the provider on {addr}: {e}"),
        }
    }
}

fn try_start_on(addr: &str) -> std::io::Result<ServerHandle> {
    mprpc::app::logging::init_for_tests();
    let mut server = Server::with_options(
        ServerOptions::default()
            .addr(addr.to_owned())
            .reactor_threads(2)
            .worker_threads(2)
            // Callers keep sending through the restart: a connection never
            // goes quiet, so the drain ends with the grace period.
            .shutdown_grace(Duration::from_millis(300)),
    );
    server.add_service(TestService);
    server.add_blocking_service(BlockingTest);
    server.start()
}

/// The tests count this process's client I/O threads: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// xorshift: a reproducible stream per thread.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Threads named `mprpc-client-io-*` alive in this process.
fn client_io_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("mprpc-client-io"))
        .count()
}

/// A channel to the provider at `addr` with `io_threads` loops, backing
/// off briefly from a restarting provider.
fn channel_to(addr: SocketAddr, io_threads: usize) -> Channel {
    Channel::new(
        Arc::new(StaticDiscover::single(addr).unwrap()),
        ChannelOptions::default()
            .io_threads(io_threads)
            .backoff_base(Duration::from_millis(10))
            .backoff_max(Duration::from_millis(50)),
    )
    .unwrap()
}

/// The run's seed: `MPRPC_STRESS_SEED`, else the clock (printed, to repeat
/// the run).
fn stress_seed(what: &str) -> u64 {
    let seed = std::env::var("MPRPC_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    println!("{what} seed {seed} (MPRPC_STRESS_SEED to repeat)");
    seed
}

/// Fails if a call ended with a code not `allowed` (`outcomes`: calls by
/// code).
fn assert_outcomes_within(outcomes: &[usize; 16], allowed: &[Code]) {
    println!("outcomes by code: {outcomes:?}");
    for (code, n) in outcomes.iter().enumerate() {
        if *n > 0 {
            let code = Code::from_u8(code as u8);
            assert!(allowed.contains(&code), "{n} calls ended {code:?}");
        }
    }
}

fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn every_call_completes_once_through_deadlines_cancels_and_a_restart() {
    const THREADS: u64 = 8;
    const IN_FLIGHT: u64 = 1000;
    const RUN_FOR: Duration = Duration::from_millis(900);
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = start_on("127.0.0.1:0");
    let addr: SocketAddr = server.local_addr();
    let channel = channel_to(addr, 2);
    let seed0 = stress_seed("stress");
    // Completions are counted per call outside the callbacks (which run
    // under the channel's catch_unwind), and checked after the run.
    let ledger = Arc::new(CompletionLedger::new());
    let outcomes: Arc<Mutex<[usize; 16]>> = Arc::default();
    let started: Arc<Mutex<Vec<u64>>> = Arc::default();
    let run_until = Instant::now() + RUN_FOR;
    let callers: Vec<_> = (0..THREADS)
        .map(|t| {
            let channel = channel.clone();
            let (ledger, outcomes, started) = (ledger.clone(), outcomes.clone(), started.clone());
            std::thread::spawn(move || {
                let mut seed = seed0 ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mine = Arc::new(AtomicU64::new(0)); // this thread's calls in flight
                let mut key = t << 32;
                while Instant::now() < run_until {
                    if mine.load(Ordering::Relaxed) >= IN_FLIGHT {
                        std::thread::sleep(Duration::from_micros(200));
                        continue;
                    }
                    key += 1;
                    let r = next(&mut seed);
                    // A few calls get deadlines too short to make it.
                    let timeout = if r.is_multiple_of(10) { 1 } else { 5000 };
                    let (service, method, payload) = match r % 50 {
                        0 => ("BlockingTest", "Slow", Bytes::from_static(b"5")),
                        1..=5 => ("Test", "Fail", Bytes::new()),
                        6..=12 => ("BlockingTest", "Echo", Bytes::from(format!("call {key}"))),
                        _ => ("Test", "Echo", Bytes::from(format!("call {key}"))),
                    };
                    let expect = payload.clone();
                    let (ledger, outcomes, mine2) =
                        (ledger.clone(), outcomes.clone(), mine.clone());
                    mine.fetch_add(1, Ordering::Relaxed);
                    started.lock().unwrap().push(key);
                    let handle = channel.call_with(
                        service,
                        method,
                        payload,
                        &CallOptions::with_timeout(Duration::from_millis(timeout)),
                        move |result| {
                            ledger.complete(key);
                            let code = match result {
                                Ok(reply) => {
                                    ledger.check(key, || {
                                        assert_eq!(reply, expect, "another call's reply")
                                    });
                                    Code::Ok
                                }
                                Err(status) => status.code(),
                            };
                            outcomes.lock().unwrap()[code as usize] += 1;
                            mine2.fetch_sub(1, Ordering::Relaxed);
                        },
                    );
                    if r.is_multiple_of(13) {
                        handle.cancel();
                    }
                }
            })
        })
        .collect();
    // Restart the provider on the same port while calls are in flight.
    std::thread::sleep(RUN_FOR / 3);
    server.shutdown();
    server.wait();
    let restarted = restart_on(addr);
    for c in callers {
        c.join().unwrap();
    }
    let started = std::mem::take(&mut *started.lock().unwrap());
    wait_for(Duration::from_secs(20), "every call to complete", || {
        ledger.completions() >= started.len() as u64
    });
    ledger.assert_each_exactly_once(started);
    assert_eq!(channel.inflight(), 0);
    let outcomes = *outcomes.lock().unwrap();
    let allowed = [
        Code::Ok,
        Code::Application,
        Code::DeadlineExceeded,
        Code::Cancelled,
        Code::Unavailable,
        Code::ShuttingDown,
        // The worker pool's queue is bounded (max_queued_calls): timed-out
        // calls still hold their place until a worker drops them, so a burst
        // of Slow calls may be refused at once rather than queued.
        Code::Overloaded,
    ];
    assert_outcomes_within(&outcomes, &allowed);
    assert!(outcomes[Code::Ok as usize] > 0, "{outcomes:?}");
    // The channel works against the restarted provider.
    let r = channel.call(
        "Test",
        "Echo",
        Bytes::from_static(b"after"),
        &CallOptions::default(),
        None,
    );
    assert_eq!(r.unwrap(), Bytes::from_static(b"after"));
    drop(channel);
    wait_for(Duration::from_secs(5), "the I/O threads to stop", || {
        client_io_threads() == 0
    });
    restarted.shutdown();
    restarted.wait();
}

/// What the detached chains of the next test share.
struct Chains {
    channel: Channel,
    ledger: CompletionLedger,
    /// Keys of the calls started, and outcomes by code.
    started: Mutex<Vec<u64>>,
    outcomes: Mutex<[usize; 16]>,
    /// Chains start no call after this.
    until: Instant,
}

/// Chains running at once in the next test (call `key` of a chain is
/// followed by `key + DETACHED_CHAINS`).
const DETACHED_CHAINS: u64 = 64;
/// The call of a chain (counted from 0) whose callback panics, in the
/// chains numbered below `PANICKING_CHAINS`.
const PANICKING_CALL: u64 = 5;
const PANICKING_CHAINS: u64 = 4;

/// The call of chain `key % DETACHED_CHAINS` numbered `key / DETACHED_CHAINS`
/// has a callback that panics.
fn panics(key: u64) -> bool {
    key / DETACHED_CHAINS == PANICKING_CALL && key % DETACHED_CHAINS < PANICKING_CHAINS
}

/// Starts call `key` of a chain of `call_detached` calls; its callback,
/// on the I/O thread, starts the next (whose callback the driver then
/// holds itself, with no completion cell). The callback of the call
/// [`PANICKING_CALL`] of the first [`PANICKING_CHAINS`] chains panics after
/// starting the next call (a few: every panic is logged with its
/// backtrace).
fn detached_link(chains: &Arc<Chains>, key: u64, mut seed: u64) {
    if Instant::now() >= chains.until {
        return;
    }
    let r = next(&mut seed);
    let timeout = if r.is_multiple_of(10) { 1 } else { 5000 };
    let (service, method, payload) = match r % 50 {
        0 => ("BlockingTest", "Slow", Bytes::from_static(b"5")),
        1..=5 => ("Test", "Fail", Bytes::new()),
        _ => ("Test", "Echo", Bytes::from(format!("call {key}"))),
    };
    chains.started.lock().unwrap().push(key);
    let (follow, expect) = (chains.clone(), payload.clone());
    let options = CallOptions::with_timeout(Duration::from_millis(timeout));
    chains
        .channel
        .call_detached(service, method, payload, &options, move |result| {
            follow.ledger.complete(key);
            let code = match result {
                Ok(reply) => {
                    follow
                        .ledger
                        .check(key, || assert_eq!(reply, expect, "another call's reply"));
                    Code::Ok
                }
                Err(status) => status.code(),
            };
            follow.outcomes.lock().unwrap()[code as usize] += 1;
            detached_link(&follow, key + DETACHED_CHAINS, seed);
            assert!(!panics(key), "a chain's callback panics");
        });
}

#[test]
fn detached_chains_on_the_io_thread_end_once_through_deadlines_failures_and_a_restart() {
    const RUN_FOR: Duration = Duration::from_millis(900);
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = start_on("127.0.0.1:0");
    let addr: SocketAddr = server.local_addr();
    let channel = channel_to(addr, 1);
    let seed0 = stress_seed("detached chains");
    let chains = Arc::new(Chains {
        channel: channel.clone(),
        ledger: CompletionLedger::new(),
        started: Mutex::default(),
        outcomes: Mutex::default(),
        until: Instant::now() + RUN_FOR,
    });
    for chain in 0..DETACHED_CHAINS {
        let seed = seed0 ^ (chain + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        detached_link(&chains, chain, seed);
    }
    // Restart the provider on the same port while the chains run: the
    // calls on the broken connection fail, and the chains go on against
    // the new provider.
    std::thread::sleep(RUN_FOR / 3);
    server.shutdown();
    server.wait();
    let restarted = restart_on(addr);
    std::thread::sleep(RUN_FOR * 2 / 3);
    // The chains stop starting calls at `until`: wait for the last ones.
    let mut settled = (0, Instant::now());
    wait_for(Duration::from_secs(20), "every chained call to end", || {
        let started = chains.started.lock().unwrap().len();
        if started != settled.0 {
            settled = (started, Instant::now());
        }
        chains.ledger.completions() >= started as u64
            && settled.1.elapsed() > Duration::from_millis(50)
    });
    let started = std::mem::take(&mut *chains.started.lock().unwrap());
    // A chain goes on past its panicking callback.
    for chain in 0..PANICKING_CHAINS {
        let after = (PANICKING_CALL + 1) * DETACHED_CHAINS + chain;
        assert!(
            started.contains(&after),
            "chain {chain} stopped at its panic"
        );
    }
    chains.ledger.assert_each_exactly_once(started);
    wait_for(Duration::from_secs(5), "no call in flight", || {
        channel.inflight() == 0
    });
    let outcomes = *chains.outcomes.lock().unwrap();
    let allowed = [
        Code::Ok,
        Code::Application,
        Code::DeadlineExceeded,
        Code::Unavailable,
        Code::ShuttingDown,
        Code::Overloaded,
    ];
    assert_outcomes_within(&outcomes, &allowed);
    for code in [Code::Ok, Code::Application, Code::DeadlineExceeded] {
        assert!(
            outcomes[code as usize] > 0,
            "no call ended {code:?}: {outcomes:?}"
        );
    }
    // A detached call from a callback to a provider called in the seed's
    // format (one short connection per call, completed off the I/O
    // thread) ends once too.
    let seed_format = Endpoint::new(addr).format(WireFormat::Seed);
    let seed_channel = Channel::new(
        Arc::new(StaticDiscover::new(vec![seed_format])),
        ChannelOptions::default(),
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let inner = seed_channel.clone();
    seed_channel.call_detached(
        "Test",
        "Echo",
        b"first",
        &CallOptions::default(),
        move |r| {
            assert_eq!(r.unwrap(), Bytes::from_static(b"first"));
            inner.call_detached(
                "Test",
                "Echo",
                b"second",
                &CallOptions::default(),
                move |r| {
                    tx.send(r).unwrap();
                },
            );
        },
    );
    let reply = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the second call ends");
    assert_eq!(reply.unwrap(), Bytes::from_static(b"second"));
    assert!(
        rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "it ends once"
    );
    drop((chains, channel, seed_channel));
    wait_for(Duration::from_secs(5), "the I/O threads to stop", || {
        client_io_threads() == 0
    });
    restarted.shutdown();
    restarted.wait();
}

#[test]
fn several_io_threads_share_the_calls_and_all_stop_with_the_channel() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = start_on("127.0.0.1:0");
    let before = server.connection_count();
    let channel = Channel::new(
        Arc::new(StaticDiscover::single(server.local_addr()).unwrap()),
        ChannelOptions::default().io_threads(3),
    )
    .unwrap();
    // (A thread names itself once it runs.)
    wait_for(Duration::from_secs(5), "three I/O threads", || {
        client_io_threads() == 3
    });
    // From one thread, calls go to the drivers in turn: each opens its own
    // connection, and replies on each come back to the right call.
    let done = Arc::new(AtomicUsize::new(0));
    let pending: Vec<_> = (0..300)
        .map(|i| {
            let p = Bytes::from(format!("{i}"));
            (
                p.clone(),
                channel.call_async("Test", "Echo", p, &CallOptions::default()),
            )
        })
        .collect();
    for (payload, call) in pending {
        assert_eq!(call.wait().unwrap(), payload);
        done.fetch_add(1, Ordering::Relaxed);
    }
    wait_for(Duration::from_secs(5), "three connections", || {
        server.connection_count() == before + 3
    });
    // A callback's follow-up call stays on its own driver.
    let (tx, rx) = std::sync::mpsc::channel();
    let inner = channel.clone();
    let _h = channel.call_with(
        "Test",
        "Echo",
        Bytes::from_static(b"a"),
        &CallOptions::default(),
        move |r| {
            assert_eq!(r.unwrap(), Bytes::from_static(b"a"));
            let _h = inner.call_with(
                "Test",
                "Echo",
                Bytes::from_static(b"b"),
                &CallOptions::default(),
                move |r| {
                    tx.send(r).unwrap();
                },
            );
        },
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap(),
        Bytes::from_static(b"b")
    );
    drop(channel);
    wait_for(Duration::from_secs(5), "every I/O thread to stop", || {
        client_io_threads() == 0
    });
    server.shutdown();
    server.wait();
}

/// Pins this thread to the core it runs on; threads it starts from then
/// on (a channel's I/O threads) inherit the pin.
fn pin_to_this_core() {
    // SAFETY: plain libc calls on this thread's own affinity; the set is
    // a local, zeroed then filled by the CPU_* helpers.
    unsafe {
        let cpu = usize::try_from(libc::sched_getcpu()).expect("sched_getcpu");
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            rc,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// CPU time (user + system, in clock ticks) of this process's client I/O
/// threads so far.
fn client_io_ticks() -> u64 {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .filter(|stat| stat.contains("(mprpc-client-io"))
        .map(|stat| {
            // After the name, in parentheses: fields 3 on; utime and stime
            // are fields 14 and 15.
            let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
            fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
        })
        .sum()
}

#[test]
fn blocking_calls_sharing_the_io_threads_core_complete_once_and_a_long_wait_costs_it_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = start_on("127.0.0.1:0");
    let addr = server.local_addr();
    // Caller and I/O thread on one core: the caller parks at once and the
    // I/O thread polls for its reply (see `Cells::wait`).
    std::thread::spawn(move || {
        pin_to_this_core();
        let channel = channel_to(addr, 1);
        // Echo on the reactors, Slow on the provider's workers.
        let call = |method: &str, request: Bytes, options: &CallOptions, cancel| {
            let service = if method == "Echo" {
                "Test"
            } else {
                "BlockingTest"
            };
            channel.call(service, method, request, options, cancel)
        };
        let echo = |request: Bytes| {
            let reply = call("Echo", request.clone(), &CallOptions::default(), None);
            assert_eq!(reply.unwrap(), request, "a call got another call's reply");
        };
        for i in 0..2_000u32 {
            echo(Bytes::from(format!("call {i}")));
        }
        // A deadline still ends a parked wait.
        let short = CallOptions::default().timeout(Duration::from_millis(50));
        let started = Instant::now();
        let late = call("Slow", common::services::slow_request(400), &short, None);
        assert_eq!(late.unwrap_err().code(), Code::DeadlineExceeded);
        let took = started.elapsed();
        assert!(took < Duration::from_millis(350), "{took:?}");
        // So does a cancel from another thread.
        let cancel = mprpc::CancelHandle::default();
        let slow = common::services::slow_request(400);
        let canceller = {
            let (cancel, slow) = (cancel.clone(), slow.clone());
            std::thread::spawn(move || {
                common::services::wait_slow_started(&slow, 1);
                cancel.cancel();
            })
        };
        let cancelled = call("Slow", slow, &CallOptions::default(), Some(&cancel));
        assert_eq!(cancelled.unwrap_err().code(), Code::Cancelled);
        canceller.join().unwrap();
        // The I/O thread polls for a parked caller's reply 200 µs at most,
        // then sleeps: waiting 300 ms costs it next to no CPU (polling all
        // along would cost at least the whole 300 ms: 30 ticks or more).
        let before = client_io_ticks();
        let slow = common::services::slow_request(300);
        let reply = call("Slow", slow.clone(), &CallOptions::default(), None);
        assert_eq!(reply.unwrap(), slow);
        let spent = client_io_ticks() - before;
        assert!(
            spent <= 10,
            "the I/O thread used {spent} ticks of CPU in a 300 ms wait"
        );
        // Calls go on as before.
        echo(Bytes::from_static(b"after"));
    })
    .join()
    .unwrap();
    server.shutdown();
    server.wait();
}

/// This process's resident set, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[test]
fn one_thread_holds_10_000_future_calls_and_memory_stays_bounded() {
    const IN_FLIGHT: usize = 10_000;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = start_on("127.0.0.1:0");
    let channel = Channel::direct(server.local_addr()).unwrap();
    let round = |channel: &Channel| {
        let calls: Vec<_> = (0..IN_FLIGHT)
            .map(|i| {
                let p = Bytes::from(format!("{i:08}"));
                let call = channel.call_async("Test", "Echo", p.clone(), &CallOptions::default());
                (p, call)
            })
            .collect();
        for (payload, call) in calls {
            assert_eq!(call.wait().unwrap(), payload);
        }
        assert_eq!(channel.inflight(), 0);
    };
    // The first rounds grow the pools (completion cells, buffers; the
    // in-process server's too, whose high-water marks depend on how the
    // threads were scheduled: on a starved machine they may still rise in
    // the second round) ...
    for _ in 0..3 {
        round(&channel);
    }
    // ... later rounds reuse them: a per-call leak of even 100 bytes would
    // show as 4 MB over 40,000 calls, and again over the next 40,000. A
    // high-water mark that still rose once (the allocator's, after the
    // tests before this one churned the heap) does not rise again: so a
    // window over the limit is followed by a second, which must not be.
    let window = |channel: &Channel| {
        let before = rss_kib();
        for _ in 0..4 {
            round(channel);
        }
        rss_kib().saturating_sub(before)
    };
    let mut grown = window(&channel);
    if grown >= 4 * 1024 {
        println!("RSS grew by {grown} KiB over the first window; measuring a second");
        grown = window(&channel);
    }
    assert!(
        grown < 4 * 1024,
        "RSS grew by {grown} KiB over 4 rounds of {IN_FLIGHT} calls in flight, twice"
    );
    drop(channel);
    server.shutdown();
    server.wait();
}
