//! Misbehaving peers must not disturb anyone else: while garbage senders,
//! huge-length announcers, half-frame stallers, silent connections and a
//! client that pipelines requests but never reads its replies all hammer the
//! server at once, every well-behaved call gets exactly its own reply, and
//! the process's memory stays bounded. Loopback only, bounded in time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mprpc::client::Channel;
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::CallOptions;

mod common;
use common::frames::request_batch;
use common::raw::RawClient;
use common::services::{
    slow_request, wait_slow_started, wait_until_count, BlockingTest, Parked, TestService, Tracked,
};

const RUN_FOR: Duration = Duration::from_secs(3);

fn start_server() -> ServerHandle {
    mprpc::app::logging::init_for_tests();
    let mut server = Server::with_options(
        ServerOptions::default()
            .reactor_threads(2)
            .worker_threads(2)
            .max_frame_size(64 * 1024)
            .max_inflight_per_connection(64)
            .write_high_water(256 * 1024)
            .frame_timeout(Some(Duration::from_millis(500))),
    );
    server.add_service(TestService);
    server.add_blocking_service(BlockingTest);
    server.start().unwrap()
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Reads until the server closes (or `limit` passes); true if it closed.
fn closed_by_server(mut s: TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut sink = [0u8; 4096];
    loop {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A tiny deterministic generator for garbage bytes.
fn garbage(seed: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (*seed >> 33) as u8
        })
        .collect()
}

/// Until `stop`: connect, send `bytes()`, wait to be disconnected by the
/// server (counted in `closed`), again.
fn reconnecting(
    stop: &Arc<AtomicBool>,
    closed: &Arc<AtomicU64>,
    addr: SocketAddr,
    mut bytes: impl FnMut() -> Vec<u8> + Send + 'static,
) -> JoinHandle<()> {
    let closed = closed.clone();
    spawn_until(stop, move |stop| {
        while !stop.load(Ordering::Relaxed) {
            let mut s = TcpStream::connect(addr).unwrap();
            let _ = s.write_all(&bytes());
            if closed_by_server(s, Duration::from_secs(5)) {
                closed.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

fn spawn_until(
    stop: &Arc<AtomicBool>,
    f: impl FnOnce(&AtomicBool) + Send + 'static,
) -> JoinHandle<()> {
    let stop = stop.clone();
    std::thread::spawn(move || f(&stop))
}

#[test]
fn well_behaved_calls_succeed_while_others_misbehave() {
    let server = start_server();
    let addr: SocketAddr = server.local_addr();
    let baseline = rss_kib();
    let stop = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicU64::new(0));
    let mut bad = Vec::new();

    // Garbage senders: random bytes, then wait to be disconnected.
    let mut seed = 42;
    bad.push(reconnecting(&stop, &closed, addr, move || {
        garbage(&mut seed, 512)
    }));
    // Huge announced lengths.
    bad.push(reconnecting(&stop, &closed, addr, || {
        b"MP\x01\x01\xff\xff\xff\xf0".to_vec()
    }));
    // Half a frame, then silence (slow loris): the frame timer closes them.
    let half = || b"MP\x01\x01\x00\x00\x04\x00only-a-little".to_vec();
    bad.push(reconnecting(&stop, &closed, addr, half));
    // Connections that say nothing at all, held for the whole run.
    let silent: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    // Pipelines 4 KiB requests and never reads a reply.
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    bad.push(spawn_until(&stop, move |stop| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let batch = request_batch("Test", "Echo", (0..64).map(|id| (id, &[7u8; 4096][..])));
        while !stop.load(Ordering::Relaxed) {
            match s.write(&batch) {
                Ok(n) => {
                    w.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }));

    // Well-behaved callers: every reply must be exactly its own payload.
    let channel = Channel::direct(addr).unwrap();
    let mut peak = baseline;
    let good: Vec<_> = (0..4)
        .map(|t| {
            let channel = channel.clone();
            std::thread::spawn(move || {
                let began = Instant::now();
                let mut ok = 0u64;
                let opts = CallOptions::with_timeout(Duration::from_secs(5));
                while began.elapsed() < RUN_FOR {
                    let payload = Bytes::from(format!("caller {t} call {ok}"));
                    let service = if ok.is_multiple_of(4) {
                        "BlockingTest"
                    } else {
                        "Test"
                    };
                    let reply = channel
                        .call(service, "Echo", payload.clone(), &opts, None)
                        .unwrap_or_else(|e| panic!("well-behaved call failed: {e}"));
                    assert_eq!(reply, payload, "a reply went to the wrong call");
                    ok += 1;
                }
                ok
            })
        })
        .collect();
    while good.iter().any(|g| !g.is_finished()) {
        peak = peak.max(rss_kib());
        std::thread::sleep(Duration::from_millis(50));
    }
    let succeeded: u64 = good.into_iter().map(|g| g.join().unwrap()).sum();
    stop.store(true, Ordering::Relaxed);
    for b in bad {
        b.join().unwrap();
    }
    drop(silent);

    eprintln!(
        "hostile run: {succeeded} good calls, {} bad connections closed by the server, \
         non-reader pushed {} KiB, RSS {} -> peak {} KiB",
        closed.load(Ordering::Relaxed),
        written.load(Ordering::Relaxed) >> 10,
        baseline,
        peak
    );
    assert!(
        succeeded > 100,
        "only {succeeded} well-behaved calls completed"
    );
    assert!(
        closed.load(Ordering::Relaxed) >= 3,
        "misbehaving connections were closed"
    );
    let growth_mib = peak.saturating_sub(baseline) / 1024;
    assert!(
        growth_mib < 256,
        "memory grew by {growth_mib} MiB while a peer pipelined {} MiB it never read",
        written.load(Ordering::Relaxed) >> 20
    );
    // The server still serves normally afterwards.
    let reply = channel.call(
        "Test",
        "Echo",
        Bytes::from_static(b"after"),
        &CallOptions::default(),
        None,
    );
    assert_eq!(reply.unwrap(), Bytes::from_static(b"after"));
    server.shutdown();
    server.wait();
}

#[test]
fn random_bytes_on_live_connections_never_take_the_server_down() {
    let server = start_server();
    let addr = server.local_addr();
    // FUZZ_ROUNDS and FUZZ_SEED let scripts/fuzz.sh run this for longer.
    let rounds: usize = env_or("FUZZ_ROUNDS", 300);
    let mut seed: u64 = env_or("FUZZ_SEED", 7);
    for round in 0..rounds {
        let mut s = TcpStream::connect(addr).unwrap();
        // Half the rounds start like a real frame, so the garbage reaches
        // past the magic into lengths, names and kinds.
        let mut bytes = if round.is_multiple_of(2) {
            b"MP\x01".to_vec()
        } else {
            Vec::new()
        };
        bytes.extend(garbage(&mut seed, 1 + round * 7 % 300));
        let _ = s.write_all(&bytes);
        drop(s);
    }
    let channel = Channel::direct(addr).unwrap();
    let reply = channel.call(
        "Test",
        "Echo",
        Bytes::from_static(b"alive"),
        &CallOptions::default(),
        None,
    );
    assert_eq!(reply.unwrap(), Bytes::from_static(b"alive"));
    server.shutdown();
    server.wait();
}

// --- second round: work and state a peer leaves behind ---------------------

/// A server with `options` (one reactor unless they say otherwise), the
/// test services, the `Tracked` pool service and the `Parked` async one;
/// returns the handle, what `Tracked` ran and how many `Parked` calls live.
fn start_with(
    options: ServerOptions,
) -> (
    ServerHandle,
    Arc<parking_lot::Mutex<Vec<Bytes>>>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    mprpc::app::logging::init_for_tests();
    let mut server = Server::with_options(options.reactor_threads(1).worker_threads(1));
    let (tracked, runs) = Tracked::new();
    let (parked, live) = Parked::new();
    server.add_service(TestService);
    server.add_blocking_service(BlockingTest);
    server.add_blocking_service(tracked);
    server.add_service(parked);
    (server.start().unwrap(), runs, live)
}

#[test]
fn a_reset_connections_queued_pool_calls_never_run() {
    let (server, runs, _) = start_with(ServerOptions::default());
    let mut c = RawClient::connect(server.local_addr());
    // The one worker is busy for 300 ms; 200 calls queue behind it.
    let slow = slow_request(300);
    let mut batch = request_batch("BlockingTest", "Slow", [(1, &slow[..])]);
    batch.extend_from_slice(&request_batch(
        "Tracked",
        "Run",
        (2..202).map(|id| (id, &b"orphan"[..])),
    ));
    c.stream.write_all(&batch).unwrap();
    wait_slow_started(&slow, 1);
    c.reset();
    let mut good = RawClient::connect(server.local_addr());
    let reply = good.call(1, "Tracked", "Run", b"good");
    assert_eq!(reply.code, mprpc::Code::Ok);
    let ran = runs.lock().len();
    assert_eq!(ran, 1, "{} calls of a reset connection ran", ran - 1);
    server.shutdown();
    server.wait();
}

#[test]
fn the_pool_queue_is_bounded_and_answers_overloaded_beyond_it() {
    let (server, runs, _) = start_with(ServerOptions::default().max_queued_calls(4));
    let mut c = RawClient::connect(server.local_addr());
    let mut batch = request_batch("BlockingTest", "Slow", [(1, &b"302"[..])]);
    batch.extend_from_slice(&request_batch(
        "Tracked",
        "Run",
        (2..22).map(|id| (id, &b"queued"[..])),
    ));
    c.stream.write_all(&batch).unwrap();
    let mut overloaded = 0;
    let mut answered = std::collections::BTreeSet::new();
    while answered.len() < 21 {
        let r = c.recv().expect("every call is answered");
        assert!(answered.insert(r.id), "call {} answered twice", r.id);
        match r.code {
            mprpc::Code::Ok => {}
            mprpc::Code::Overloaded => overloaded += 1,
            other => panic!("call {}: {other:?}", r.id),
        }
    }
    // At most the bound waits (plus the one a worker took off the queue).
    assert!(overloaded >= 15, "only {overloaded} of 20 refused");
    assert_eq!(
        runs.lock().len(),
        20 - overloaded,
        "refused calls never ran"
    );
    server.shutdown();
    server.wait();
}

#[test]
fn cancelled_queued_calls_leave_the_pool_bound_at_once() {
    let (server, runs, _) = start_with(ServerOptions::default().max_queued_calls(4));
    let mut c = RawClient::connect(server.local_addr());
    // The one worker is busy for 300 ms; four calls fill the queue and are
    // cancelled; four more must then be queued, not refused: cancelled
    // calls wait for no worker, so they no longer count.
    let slow = slow_request(300);
    c.send(1, "BlockingTest", "Slow", &slow);
    wait_slow_started(&slow, 1);
    c.stream
        .write_all(&request_batch(
            "Tracked",
            "Run",
            (2..6).map(|id| (id, &b"cancelled"[..])),
        ))
        .unwrap();
    (2..6).for_each(|id| c.cancel(id));
    c.stream
        .write_all(&request_batch(
            "Tracked",
            "Run",
            (6..10).map(|id| (id, &b"live"[..])),
        ))
        .unwrap();
    let mut codes = std::collections::BTreeMap::new();
    while codes.len() < 5 {
        let r = c.recv().expect("the live calls are answered");
        assert!(
            codes.insert(r.id, r.code).is_none(),
            "call {} answered twice",
            r.id
        );
    }
    let expected: std::collections::BTreeMap<u64, mprpc::Code> =
        [1, 6, 7, 8, 9].map(|id| (id, mprpc::Code::Ok)).into();
    assert_eq!(codes, expected, "cancelled calls still filled the queue");
    assert_eq!(*runs.lock(), vec![Bytes::from_static(b"live"); 4]);
    server.shutdown();
    server.wait();
}

#[test]
fn a_trickled_seed_request_is_decoded_once_not_once_per_read() {
    let (server, _, _) = start_with(ServerOptions::default().max_frame_size(4 << 20));
    // A 1 MiB service name: re-decoding the header per read costs 1 MiB each.
    let mut frame = bytes::BytesMut::new();
    let name = "S".repeat(1 << 20);
    mprpc::protocol::seed::encode_request(&name, "Echo", &[1u8; 400], &mut frame);
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_nodelay(true).unwrap();
    let before = mprpc::protocol::seed::headers_decoded();
    let (head, trickle) = frame.split_at(frame.len() - 300);
    s.write_all(head).unwrap();
    for byte in trickle {
        s.write_all(std::slice::from_ref(byte)).unwrap();
        std::thread::sleep(Duration::from_micros(500));
    }
    // An unknown service: the server closes without a reply.
    assert!(closed_by_server(s, Duration::from_secs(5)));
    let decoded = mprpc::protocol::seed::headers_decoded() - before;
    // Other tests of this binary may decode a few seed headers meanwhile.
    assert!(
        decoded < 30,
        "the header was decoded {decoded} times for 300 reads"
    );
    server.shutdown();
    server.wait();
}

#[test]
fn a_connection_paused_at_its_inflight_limit_sees_its_peer_reset() {
    let (server, _, live) = start_with(ServerOptions::default().max_inflight_per_connection(16));
    let mut c = RawClient::connect(server.local_addr());
    let batch = request_batch("Parked", "Wait", (1..=64).map(|id| (id, &b""[..])));
    c.stream.write_all(&batch).unwrap();
    let count = || live.load(Ordering::SeqCst);
    assert_eq!(wait_until_count(count, 16, Duration::from_secs(5)), 16);
    c.reset();
    let left = wait_until_count(count, 0, Duration::from_secs(5));
    assert_eq!(left, 0, "calls of a reset connection still in flight");
    server.shutdown();
    server.wait();
}

#[test]
fn a_call_name_that_is_not_utf8_closes_only_its_connection() {
    // The server checks names cheaply (an ASCII test first, issue 25); a
    // byte over 0x7f that is not UTF-8 must still fail the connection
    // ("service/method name is not UTF-8"), the call never looked up.
    let server = start_server();
    let mut good = RawClient::connect(server.local_addr());
    assert_eq!(good.call(1, "Test", "Echo", b"x").code, mprpc::Code::Ok);
    for at in [0, 3, 4, 7] {
        // Header 8 bytes, id 8, timeout 4, two name lengths: the names
        // start at byte 22 ("TestEcho": 0..4 is the service, 4..8 the method).
        let mut frame = request_batch("Test", "Echo", [(1, &b"x"[..])]);
        frame[22 + at] = 0xff;
        let mut bad = TcpStream::connect(server.local_addr()).unwrap();
        bad.write_all(&frame).unwrap();
        assert!(
            closed_by_server(bad, Duration::from_secs(5)),
            "a name with 0xff at {at} was served"
        );
    }
    assert_eq!(good.call(2, "Test", "Echo", b"y").code, mprpc::Code::Ok);
    server.shutdown();
    server.wait();
}

#[test]
fn a_reused_request_id_closes_the_connection_and_orphans_nothing() {
    let (server, runs, live) = start_with(ServerOptions::default());
    let count = || live.load(Ordering::SeqCst);
    // Async calls: ten with id 7.
    let mut c = RawClient::connect(server.local_addr());
    let batch = request_batch("Parked", "Wait", (0..10).map(|_| (7, &b""[..])));
    c.stream.write_all(&batch).unwrap();
    assert!(c.recv().is_none(), "the server closes the connection");
    assert_eq!(wait_until_count(count, 0, Duration::from_secs(5)), 0);
    // Pool calls: a second id 5 while the first waits for the worker.
    let mut c = RawClient::connect(server.local_addr());
    let mut batch = request_batch("BlockingTest", "Slow", [(1, &b"303"[..])]);
    batch.extend_from_slice(&request_batch("Tracked", "Run", [(5, &b"first"[..])]));
    batch.extend_from_slice(&request_batch("Tracked", "Run", [(5, &b"again"[..])]));
    c.stream.write_all(&batch).unwrap();
    assert!(c.recv().is_none(), "the server closes the connection");
    let mut good = RawClient::connect(server.local_addr());
    assert_eq!(
        good.call(9, "Tracked", "Run", b"good").code,
        mprpc::Code::Ok
    );
    assert_eq!(
        *runs.lock(),
        ["good"],
        "no call of the closed connection ran"
    );
    server.shutdown();
    server.wait();
}

// --- weak defaults: peers that hold a connection and do nothing useful ---

#[test]
fn a_peer_that_never_sends_its_token_is_closed_at_the_auth_deadline() {
    let (server, _, _) = start_with(
        ServerOptions::default()
            .auth_tokens(vec![mprpc::net::auth::AuthToken::new("s3cret").unwrap()])
            .auth_timeout(Some(Duration::from_millis(300)))
            .idle_timeout(None),
    );
    let silent = TcpStream::connect(server.local_addr()).unwrap();
    let began = Instant::now();
    assert!(closed_by_server(silent, Duration::from_secs(5)));
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    server.shutdown();
    server.wait();
}

#[test]
fn a_peer_that_never_reads_its_replies_is_closed_when_they_stall() {
    let (server, _, _) = start_with(
        ServerOptions::default()
            .write_stall_timeout(Some(Duration::from_millis(300)))
            .idle_timeout(None),
    );
    let mut c = RawClient::connect(server.local_addr());
    // 64 replies of 256 KiB: far more than the socket buffers take.
    let batch = request_batch("Test", "Grow", (0..64).map(|id| (id, &b"262144"[..])));
    c.stream.write_all(&batch).unwrap();
    let open = || server.connection_count();
    let left = wait_until_count(open, 0, Duration::from_secs(5));
    assert_eq!(left, 0, "a peer that never reads is still connected");
    server.shutdown();
    server.wait();
}
