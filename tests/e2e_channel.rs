//! The real client against the real server over 127.0.0.1: concurrency,
//! pipelining, out-of-order completion, statuses, timeouts, cancellation,
//! an oversized frame, and shutdown with calls in flight.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mprpc::client::{Channel, ChannelOptions};
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::{CallOptions, CancelHandle, Code, StaticDiscover};

mod common;
use common::services::{BlockingTest, TestService};

fn start(options: ServerOptions) -> ServerHandle {
    mprpc::app::logging::init_for_tests();
    let mut server = Server::with_options(options);
    server.add_service(TestService);
    server.add_blocking_service(BlockingTest);
    server.start().unwrap()
}

fn default_server() -> ServerHandle {
    start(
        ServerOptions::default()
            .reactor_threads(2)
            .worker_threads(4),
    )
}

fn opts(ms: u64) -> CallOptions {
    CallOptions::with_timeout(Duration::from_millis(ms))
}

#[test]
fn concurrent_clients_each_get_their_own_replies() {
    let server = default_server();
    let addr = server.local_addr();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            // Each thread has its own channel, so its own connection.
            let channel = Channel::direct(addr).unwrap();
            std::thread::spawn(move || {
                for i in 0..300 {
                    let payload = Bytes::from(format!("{t}/{i}"));
                    let reply = channel.call("Test", "Echo", payload.clone(), &opts(5000), None);
                    assert_eq!(reply.unwrap(), payload);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    server.shutdown();
    server.wait();
}

#[test]
fn thousands_in_flight_on_one_connection_from_one_thread() {
    let server = default_server();
    let channel = Channel::direct(server.local_addr()).unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(AtomicUsize::new(0));
    let n = 5000;
    for i in 0..n {
        let payload = Bytes::from(i.to_string());
        let (done, wrong, expect) = (done.clone(), wrong.clone(), payload.clone());
        channel.call_with("Test", "Echo", payload, &opts(10_000), move |r| {
            if r.as_ref().ok() != Some(&expect) {
                wrong.fetch_add(1, Ordering::SeqCst);
            }
            done.fetch_add(1, Ordering::SeqCst);
        });
    }
    let began = Instant::now();
    while done.load(Ordering::SeqCst) < n && began.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(done.load(Ordering::SeqCst), n);
    assert_eq!(wrong.load(Ordering::SeqCst), 0);
    server.shutdown();
    server.wait();
}

#[test]
fn a_slow_call_completes_after_a_fast_one_sent_later() {
    let server = default_server();
    let channel = Channel::direct(server.local_addr()).unwrap();
    let request = common::services::slow_request(300);
    let slow = channel.call_async("BlockingTest", "Slow", request.clone(), &opts(5000));
    common::services::wait_slow_started(&request, 1);
    let fast = channel.call(
        "Test",
        "Echo",
        Bytes::from_static(b"fast"),
        &opts(5000),
        None,
    );
    assert_eq!(fast.unwrap(), Bytes::from_static(b"fast"));
    assert!(!slow.is_done(), "the slow call is still running");
    assert_eq!(slow.wait().unwrap(), request);
    server.shutdown();
    server.wait();
}

#[test]
fn statuses_reach_the_caller() {
    let server = default_server();
    let channel = Channel::direct(server.local_addr()).unwrap();
    // A long deadline: with RUST_BACKTRACE=1 the "Panic" handler's first
    // backtrace is symbolised before the Internal reply goes out, seconds
    // in a debug build under load (see examples/tests/async_handlers.rs).
    let call = |s: &str, m: &str| {
        channel
            .call(s, m, Bytes::new(), &opts(60_000), None)
            .unwrap_err()
    };
    assert_eq!(call("Nope", "Echo").code(), Code::UnknownService);
    assert_eq!(call("Test", "Nope").code(), Code::UnknownMethod);
    let app = call("Test", "Fail");
    assert_eq!(
        (app.code(), app.message()),
        (Code::Application, "user not found")
    );
    assert_eq!(call("BlockingTest", "Panic").code(), Code::Internal);
    server.shutdown();
    server.wait();
}

#[test]
fn a_timeout_fires_and_the_connection_stays_usable() {
    let server = default_server();
    let channel = Channel::direct(server.local_addr()).unwrap();
    let began = Instant::now();
    let r = channel.call(
        "BlockingTest",
        "Slow",
        Bytes::from_static(b"1000"),
        &opts(100),
        None,
    );
    assert_eq!(r.unwrap_err().code(), Code::DeadlineExceeded);
    assert!(began.elapsed() < Duration::from_millis(900));
    let r = channel.call(
        "Test",
        "Echo",
        Bytes::from_static(b"next"),
        &opts(5000),
        None,
    );
    assert_eq!(r.unwrap(), Bytes::from_static(b"next"));
    server.shutdown();
    server.wait();
}

#[test]
fn a_pending_call_is_cancelled_from_another_thread() {
    let server = default_server();
    let channel = Channel::direct(server.local_addr()).unwrap();
    let handle = CancelHandle::default();
    let canceller = handle.clone();
    // Cancelled once its handler runs: the call is pending on the server,
    // not queued or lost before it got there.
    let request = common::services::slow_request(3000);
    let started = request.clone();
    std::thread::spawn(move || {
        common::services::wait_slow_started(&started, 1);
        canceller.cancel();
    });
    let began = Instant::now();
    let r = channel.call(
        "BlockingTest",
        "Slow",
        request,
        &opts(20_000),
        Some(&handle),
    );
    assert_eq!(r.unwrap_err().code(), Code::Cancelled);
    // Ended by the cancel, not by the handler's reply three seconds on.
    assert!(
        began.elapsed() < Duration::from_millis(2500),
        "{:?}",
        began.elapsed()
    );
    server.shutdown();
    server.wait();
}

/// Starts `n` small echo calls on `channel` around one `odd` call, and
/// checks the small ones all succeed with their own payloads.
fn calls_around(
    channel: &Channel,
    n: usize,
    odd: impl FnOnce() -> Result<Bytes, mprpc::Status>,
) -> Result<Bytes, mprpc::Status> {
    let before: Vec<_> = (0..n / 2)
        .map(|i| {
            let p = Bytes::from(format!("before {i}"));
            (
                p.clone(),
                channel.call_async("Test", "Echo", p, &opts(10_000)),
            )
        })
        .collect();
    let odd = odd();
    let after: Vec<_> = (0..n - n / 2)
        .map(|i| {
            let p = Bytes::from(format!("after {i}"));
            (
                p.clone(),
                channel.call_async("Test", "Echo", p, &opts(10_000)),
            )
        })
        .collect();
    for (payload, call) in before.into_iter().chain(after) {
        assert_eq!(call.wait().expect("a neighbour call failed"), payload);
    }
    odd
}

#[test]
fn an_oversized_request_fails_alone() {
    let server = start(ServerOptions::default().max_frame_size(4096));
    let addr = server.local_addr();
    // This client's own limit is larger than the server's, so the request
    // goes out; the server answers that one call and keeps the connection.
    let big = Channel::new(
        Arc::new(StaticDiscover::single(addr).unwrap()),
        ChannelOptions::default().max_frame_size(1 << 20),
    )
    .unwrap();
    let huge = Bytes::from(vec![1u8; 512 * 1024]);
    let r = calls_around(&big, 1000, || {
        big.call_async("Test", "Echo", huge.clone(), &opts(10_000))
            .wait()
    });
    let status = r.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(
        status.message().contains("max_frame_size of 4096"),
        "{status}"
    );
    // The endpoint was never marked down: the next call works at once, on
    // the same connection (no reconnect, no backoff).
    let connections = server.connection_count();
    let started = Instant::now();
    let ok = big.call(
        "Test",
        "Echo",
        Bytes::from_static(b"next"),
        &opts(5000),
        None,
    );
    assert_eq!(ok.unwrap(), Bytes::from_static(b"next"));
    assert_eq!(server.connection_count(), connections, "it reconnected");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    server.shutdown();
    server.wait();
}

#[test]
fn an_oversized_reply_fails_alone() {
    let server = default_server();
    let small = Channel::new(
        Arc::new(StaticDiscover::single(server.local_addr()).unwrap()),
        ChannelOptions::default().max_frame_size(4096),
    )
    .unwrap();
    let r = calls_around(&small, 1000, || {
        small
            .call_async("Test", "Grow", Bytes::from_static(b"300000"), &opts(10_000))
            .wait()
    });
    let status = r.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(status.message().contains("reply of"), "{status}");
    let ok = small.call(
        "Test",
        "Grow",
        Bytes::from_static(b"100"),
        &opts(5000),
        None,
    );
    assert_eq!(ok.unwrap().len(), 100);
    server.shutdown();
    server.wait();
}

#[test]
fn a_blocking_call_inside_a_callback_fails_at_once_and_the_channel_goes_on() {
    let server = default_server();
    let channel = Channel::direct(server.local_addr()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let inner = channel.clone();
    let _handle = channel.call_with(
        "Test",
        "Echo",
        Bytes::from_static(b"outer"),
        &opts(5000),
        move |outer| {
            let started = Instant::now();
            // The seed-style mistake: a blocking call on the I/O thread.
            let nested = inner.call(
                "Test",
                "Echo",
                Bytes::from_static(b"inner"),
                &opts(1000),
                None,
            );
            let waited = inner
                .call_async("Test", "Echo", Bytes::from_static(b"inner2"), &opts(1000))
                .wait();
            tx.send((outer, nested, waited, started.elapsed())).unwrap();
        },
    );
    let (outer, nested, waited, took) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(outer.unwrap(), Bytes::from_static(b"outer"));
    for r in [nested, waited] {
        let status = r.unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{status}");
    }
    // At once: well within either call's 1 s deadline.
    assert!(
        took < Duration::from_millis(800),
        "refused at once, took {took:?}"
    );
    // The channel still serves calls from other threads.
    let r = channel.call(
        "Test",
        "Echo",
        Bytes::from_static(b"after"),
        &opts(500),
        None,
    );
    assert_eq!(r.unwrap(), Bytes::from_static(b"after"));
    server.shutdown();
    server.wait();
}

#[test]
fn shutdown_with_calls_in_flight_answers_or_fails_each() {
    let server = default_server();
    let channel = Channel::direct(server.local_addr()).unwrap();
    let request = common::services::slow_request(201);
    let pending: Vec<_> = (0..8)
        .map(|_| channel.call_async("BlockingTest", "Slow", request.clone(), &opts(10_000)))
        .collect();
    // The pool has 4 workers: wait until they run four of the calls.
    common::services::wait_slow_started(&request, 4);
    server.shutdown();
    let began = Instant::now();
    let mut answered = 0;
    for call in pending {
        match call.wait() {
            Ok(reply) => {
                assert_eq!(reply, request);
                answered += 1;
            }
            Err(status) => assert!(
                matches!(status.code(), Code::Unavailable | Code::ShuttingDown),
                "unexpected {status}"
            ),
        }
    }
    assert!(began.elapsed() < Duration::from_secs(5), "no call hung");
    assert!(
        answered >= 4,
        "calls already running were answered ({answered}/8)"
    );
    server.wait();
    let after = channel.call("Test", "Echo", Bytes::new(), &opts(1000), None);
    assert_eq!(after.unwrap_err().code(), Code::Unavailable);
}
