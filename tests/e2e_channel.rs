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
    mprpc::logging::init_for_tests();
    let mut server = Server::with_options(options);
    server.add_service(TestService);
    server.add_blocking_service(BlockingTest);
    server.start().unwrap()
}

fn default_server() -> ServerHandle {
    start(ServerOptions {
        reactor_threads: 2,
        worker_threads: 4,
        ..ServerOptions::default()
    })
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
    let slow = channel.call_future(
        "BlockingTest",
        "Slow",
        Bytes::from_static(b"300"),
        &opts(5000),
    );
    std::thread::sleep(Duration::from_millis(20));
    let fast = channel.call(
        "Test",
        "Echo",
        Bytes::from_static(b"fast"),
        &opts(5000),
        None,
    );
    assert_eq!(fast.unwrap(), Bytes::from_static(b"fast"));
    assert!(!slow.is_done(), "the slow call is still running");
    assert_eq!(slow.wait().unwrap(), Bytes::from_static(b"300"));
    server.shutdown();
    server.wait();
}

#[test]
fn statuses_reach_the_caller() {
    let server = default_server();
    let channel = Channel::direct(server.local_addr()).unwrap();
    let call = |s: &str, m: &str| {
        channel
            .call(s, m, Bytes::new(), &opts(5000), None)
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
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        canceller.cancel();
    });
    let began = Instant::now();
    let r = channel.call(
        "BlockingTest",
        "Slow",
        Bytes::from_static(b"1000"),
        &opts(5000),
        Some(&handle),
    );
    assert_eq!(r.unwrap_err().code(), Code::Cancelled);
    assert!(began.elapsed() < Duration::from_millis(900));
    server.shutdown();
    server.wait();
}

#[test]
fn an_oversized_request_closes_only_its_connection() {
    let server = start(ServerOptions {
        max_frame_size: 4096,
        ..ServerOptions::default()
    });
    let addr = server.local_addr();
    let good = Channel::direct(addr).unwrap();
    assert!(good
        .call("Test", "Echo", Bytes::from_static(b"x"), &opts(5000), None)
        .is_ok());
    // This client's own limit is larger than the server's: the server closes it.
    let big = Channel::new(
        Arc::new(StaticDiscover::single(addr).unwrap()),
        ChannelOptions {
            max_frame_size: 1 << 20,
            ..ChannelOptions::default()
        },
    );
    let r = big.call(
        "Test",
        "Echo",
        Bytes::from(vec![1u8; 64 * 1024]),
        &opts(5000),
        None,
    );
    assert_eq!(r.unwrap_err().code(), Code::Unavailable);
    for _ in 0..20 {
        let r = good.call(
            "Test",
            "Echo",
            Bytes::from_static(b"still"),
            &opts(5000),
            None,
        );
        assert_eq!(r.unwrap(), Bytes::from_static(b"still"));
    }
    server.shutdown();
    server.wait();
}

#[test]
fn shutdown_with_calls_in_flight_answers_or_fails_each() {
    let server = default_server();
    let channel = Channel::direct(server.local_addr()).unwrap();
    let pending: Vec<_> = (0..8)
        .map(|_| {
            channel.call_future(
                "BlockingTest",
                "Slow",
                Bytes::from_static(b"200"),
                &opts(10_000),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    server.shutdown();
    let began = Instant::now();
    let mut answered = 0;
    for call in pending {
        match call.wait() {
            Ok(reply) => {
                assert_eq!(reply, Bytes::from_static(b"200"));
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
