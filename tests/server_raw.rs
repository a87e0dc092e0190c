//! The server against a hand-written wire client: framing, pipelining,
//! statuses, bad input and shutdown, over real sockets on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mprpc::protocol::mprpc::{encode_request, RequestHead};
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::Code;

mod common;
use common::closed::{assert_closed_silently, read_until_closed};
use common::frames::request_batch;
use common::raw::RawClient;
use common::services::{BlockingTest, TestService, Tracked};

/// A server with `options` and the test services (`Test` inline,
/// `BlockingTest` on the pool), not started yet.
fn server_with(options: ServerOptions) -> Server {
    mprpc::app::logging::init_for_tests();
    let mut server = Server::with_options(options);
    server.add_service(TestService);
    server.add_blocking_service(BlockingTest);
    server
}

fn start(max_frame: usize) -> ServerHandle {
    server_with(
        ServerOptions::default()
            .reactor_threads(2)
            .worker_threads(4)
            .max_frame_size(max_frame)
            .frame_timeout(Some(Duration::from_millis(500))),
    )
    .start()
    .expect("server starts")
}

#[test]
fn echo_and_statuses() {
    let server = start(1 << 20);
    let mut c = RawClient::connect(server.local_addr());
    let r = c.call(1, "Test", "Echo", b"hello");
    assert_eq!((r.id, r.code, &r.payload[..]), (1, Code::Ok, &b"hello"[..]));
    let r = c.call(2, "Nope", "Echo", b"");
    assert_eq!(r.code, Code::UnknownService);
    let r = c.call(3, "Test", "Nope", b"");
    assert_eq!(r.code, Code::UnknownMethod);
    let r = c.call(4, "Test", "Fail", b"");
    assert_eq!(
        (r.code, r.error_str()),
        (Code::Application, "user not found")
    );
    let r = c.call(5, "Test", "Panic", b"");
    assert_eq!(r.code, Code::Internal);
    assert!(r.error_str().contains("boom"));
    // The connection survives all of that.
    let r = c.call(6, "BlockingTest", "Echo", b"still here");
    assert_eq!((r.code, &r.payload[..]), (Code::Ok, &b"still here"[..]));

    let metrics = server.metrics();
    let echo = metrics.get("Test", "Echo").unwrap();
    assert_eq!((echo.calls, echo.errors), (1, 0));
    let fail = metrics.get("Test", "Fail").unwrap();
    assert_eq!((fail.calls, fail.errors), (1, 1));
    assert_eq!(metrics.get("BlockingTest", "Echo").unwrap().calls, 1);
    assert!(metrics.to_string().contains("Test.Panic"), "{metrics}");
    server.shutdown();
    server.wait();
}

#[test]
fn pipelined_requests_in_one_write_all_answered() {
    let server = start(1 << 20);
    let mut c = RawClient::connect(server.local_addr());
    let mut out = BytesMut::new();
    for id in 0..500u64 {
        let payload = id.to_string();
        encode_request(
            RequestHead {
                id,
                timeout_ms: 0,
                service: "Test",
                method: "Echo",
            },
            payload.as_bytes(),
            &mut out,
        );
    }
    c.stream.write_all(&out).unwrap();
    for id in 0..500u64 {
        let r = c.recv().unwrap();
        assert_eq!(r.id, id);
        assert_eq!(&r.payload[..], id.to_string().as_bytes());
    }
    server.shutdown();
    server.wait();
}

#[test]
fn slow_blocking_call_does_not_hold_up_a_fast_one() {
    let server = start(1 << 20);
    let mut c = RawClient::connect(server.local_addr());
    c.send(1, "BlockingTest", "Slow", b"300");
    c.send(2, "Test", "Echo", b"fast");
    let first = c.recv().unwrap();
    let second = c.recv().unwrap();
    assert_eq!(
        (first.id, second.id),
        (2, 1),
        "replies come back out of order"
    );
    server.shutdown();
    server.wait();
}

#[test]
fn an_oversized_request_is_answered_alone_and_garbage_closes_only_its_connection() {
    let server = start(1024);
    let mut good = RawClient::connect(server.local_addr());
    assert_eq!(good.call(1, "Test", "Echo", b"x").code, Code::Ok);
    // One write: a small call, an oversized one, another small one. The big
    // one gets ResourceExhausted; its body is skipped; the others are answered.
    let mut big = RawClient::connect(server.local_addr());
    let (small, huge) = (vec![1u8; 10], vec![7u8; 200_000]);
    let out = request_batch(
        "Test",
        "Echo",
        [(1, &small[..]), (2, &huge[..]), (3, &small[..])],
    );
    big.stream.write_all(&out).unwrap();
    let mut replies: Vec<_> = (0..3).map(|_| big.recv().expect("a reply")).collect();
    replies.sort_by_key(|r| r.id);
    let codes: Vec<_> = replies.iter().map(|r| (r.id, r.code)).collect();
    assert_eq!(
        codes,
        [(1, Code::Ok), (2, Code::ResourceExhausted), (3, Code::Ok)]
    );
    assert_eq!(big.call(4, "Test", "Echo", b"still").code, Code::Ok);
    let mut garbage = TcpStream::connect(server.local_addr()).unwrap();
    // (Not "GET / HTTP/1.1": that is a request for the admin pages.)
    garbage
        .write_all(b"\xde\xad\xbe\xef garbage, no format")
        .unwrap();
    // The garbage sender is disconnected (not left hanging).
    assert_closed_silently(&mut garbage, Duration::from_secs(10));
    for id in 2..20 {
        assert_eq!(good.call(id, "Test", "Echo", b"ok").code, Code::Ok);
    }
    server.shutdown();
    server.wait();
}

#[test]
fn shutdown_answers_calls_in_flight() {
    let server = start(1 << 20);
    let mut c = RawClient::connect(server.local_addr());
    let request = common::services::slow_request(202);
    for id in 0..4 {
        c.send(id, "BlockingTest", "Slow", &request);
    }
    common::services::wait_slow_started(&request, 4);
    let began = Instant::now();
    server.shutdown();
    let mut answered = 0;
    while let Some(r) = c.recv() {
        assert_eq!(r.code, Code::Ok);
        answered += 1;
    }
    assert_eq!(
        answered, 4,
        "every in-flight call got its reply before the close"
    );
    server.wait();
    assert!(began.elapsed() < Duration::from_secs(5));
    assert!(
        TcpStream::connect(server.local_addr()).is_err(),
        "port is closed"
    );
}

#[test]
fn expired_deadline_is_not_run() {
    let server = start(1 << 20);
    let mut c = RawClient::connect(server.local_addr());
    // Occupy all four workers, then send a call whose 50 ms budget runs out
    // while it waits in the queue.
    for id in 0..4 {
        c.send(id, "BlockingTest", "Slow", b"300");
    }
    let mut out = BytesMut::new();
    encode_request(
        RequestHead {
            id: 99,
            timeout_ms: 50,
            service: "BlockingTest",
            method: "Echo",
        },
        b"late",
        &mut out,
    );
    c.stream.write_all(&out).unwrap();
    let mut late = None;
    for _ in 0..5 {
        let r = c.recv().unwrap();
        if r.id == 99 {
            late = Some(r);
        }
    }
    assert_eq!(late.unwrap().code, Code::DeadlineExceeded);
    server.shutdown();
    server.wait();
}

/// Sends one seed-format request and reads the bare reply until the server
/// closes, as the seed's consumer does.
fn seed_call(addr: SocketAddr, service: &str, method: &str, args: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    mprpc::protocol::seed::encode_request(service, method, args, &mut out);
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&out).unwrap();
    // The seed ends its reply by closing: a hang fails here.
    read_until_closed(&mut s, Duration::from_secs(10))
}

#[test]
fn seed_format_and_ours_share_one_port() {
    let server = start(1 << 20);
    let addr = server.local_addr();
    let mut ours = RawClient::connect(addr);
    assert_eq!(
        seed_call(addr, "Test", "Echo", b"seed says hi"),
        b"seed says hi"
    );
    assert_eq!(
        seed_call(addr, "BlockingTest", "Echo", b"via pool"),
        b"via pool"
    );
    assert_eq!(ours.call(1, "Test", "Echo", b"ours").payload, &b"ours"[..]);
    // Unknown names and handler errors: logged, closed, no reply (as the seed).
    assert!(seed_call(addr, "Nope", "Echo", b"x").is_empty());
    assert!(seed_call(addr, "Test", "Nope", b"x").is_empty());
    assert!(seed_call(addr, "Test", "Fail", b"x").is_empty());
    // An empty request omits args_size in the header.
    assert!(seed_call(addr, "Test", "Echo", b"").is_empty());
    assert_eq!(ours.call(2, "Test", "Echo", b"still fine").code, Code::Ok);
    server.shutdown();
    server.wait();
}

#[test]
fn seed_request_split_across_reads_is_reassembled() {
    let server = start(1 << 20);
    let mut out = BytesMut::new();
    mprpc::protocol::seed::encode_request("Test", "Echo", b"in pieces", &mut out);
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    for piece in out.chunks(3) {
        s.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"in pieces");
    server.shutdown();
    server.wait();
}

#[test]
fn truncated_and_garbage_seed_headers_do_not_disturb_others() {
    let server = start(1024);
    let addr = server.local_addr();
    // Truncated: announces a header, sends half, stalls. Must not block anyone.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.write_all(b"\x20\x00\x00\x00\x0a\x04Te").unwrap();
    // Garbage header bytes and a hostile header size: closed.
    for junk in [
        &b"\x05\x00\x00\x00\xff\xff\xff\xff\xff"[..],
        &b"\xff\xff\xff\x7f"[..],
    ] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(junk).unwrap();
        assert_closed_silently(&mut s, Duration::from_secs(10));
    }
    let mut ours = RawClient::connect(addr);
    assert_eq!(ours.call(1, "Test", "Echo", b"unaffected").code, Code::Ok);
    assert_eq!(seed_call(addr, "Test", "Echo", b"also fine"), b"also fine");
    drop(stalled);
    server.shutdown();
    server.wait();
}

#[test]
fn half_a_frame_then_silence_is_closed_by_the_frame_timer() {
    let server = start(1 << 20);
    let mut slow = TcpStream::connect(server.local_addr()).unwrap();
    slow.write_all(b"MP\x01\x01\x00\x00\x01\x00partial")
        .unwrap();
    let began = Instant::now();
    assert_closed_silently(&mut slow, Duration::from_secs(10));
    let waited = began.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "closed too early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "closed too late: {waited:?}"
    );
    let mut good = RawClient::connect(server.local_addr());
    assert_eq!(good.call(1, "Test", "Echo", b"fine").code, Code::Ok);
    server.shutdown();
    server.wait();
}

#[test]
fn idle_connections_are_closed_busy_ones_are_not() {
    const IDLE: Duration = Duration::from_secs(1);
    let server = server_with(
        ServerOptions::default()
            .reactor_threads(1)
            .idle_timeout(Some(IDLE)),
    )
    .start()
    .expect("server starts");
    let mut idle = RawClient::connect(server.local_addr());
    let mut busy = RawClient::connect(server.local_addr());
    assert_eq!(idle.call(1, "Test", "Echo", b"once").code, Code::Ok);
    // The busy one calls ten times per idle period (a loaded machine may
    // stretch a tick severalfold and the connection is still busy) for
    // longer than one period; the idle one is closed meanwhile.
    let busy_until = Instant::now() + IDLE * 3 / 2;
    let mut id = 0;
    while Instant::now() < busy_until {
        id += 1;
        assert_eq!(busy.call(id, "Test", "Echo", b"tick").code, Code::Ok);
        std::thread::sleep(IDLE / 10);
    }
    assert!(idle.recv().is_none(), "the idle connection was closed");
    assert_eq!(busy.call(99, "Test", "Echo", b"alive").code, Code::Ok);
    server.shutdown();
    server.wait();
}

#[test]
fn connection_limit_refuses_cleanly() {
    let server = server_with(
        ServerOptions::default()
            .reactor_threads(1)
            .max_connections(2),
    )
    .start()
    .expect("server starts");
    let mut a = RawClient::connect(server.local_addr());
    let mut b = RawClient::connect(server.local_addr());
    assert_eq!(a.call(1, "Test", "Echo", b"a").code, Code::Ok);
    assert_eq!(b.call(1, "Test", "Echo", b"b").code, Code::Ok);
    let mut c = RawClient::connect(server.local_addr());
    c.send(1, "Test", "Echo", b"c");
    assert!(c.recv().is_none(), "the third connection is closed");
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.connection_count() >= 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut d = RawClient::connect(server.local_addr());
    assert_eq!(
        d.call(1, "Test", "Echo", b"d").code,
        Code::Ok,
        "a freed slot is reused"
    );
    server.shutdown();
    server.wait();
}

#[test]
fn a_slow_reader_gets_every_reply_once_it_reads() {
    let server = start(1 << 20);
    let mut c = RawClient::connect(server.local_addr());
    let mut writer = c.stream.try_clone().unwrap();
    // 200 × 64 KiB of replies: far more than the socket buffers hold, so the
    // server's writes block, reading pauses at the high-water mark, and
    // everything must resume once we read.
    let sender = std::thread::spawn(move || {
        let payload = vec![9u8; 64 * 1024];
        for id in 0..200u64 {
            let mut out = BytesMut::new();
            let head = RequestHead {
                id,
                timeout_ms: 0,
                service: "Test",
                method: "Echo",
            };
            encode_request(head, &payload, &mut out);
            writer.write_all(&out).unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    for id in 0..200u64 {
        let r = c.recv().expect("a reply");
        assert_eq!((r.id, r.code, r.payload.len()), (id, Code::Ok, 64 * 1024));
    }
    sender.join().unwrap();
    let pressure = server.backpressure();
    assert!(pressure.read_pauses > 0, "reading paused: {pressure:?}");
    let high_water = ServerOptions::default().write_high_water;
    assert!(
        pressure.peak_unsent_bytes <= high_water + 2 * 64 * 1024,
        "output stayed bounded: {pressure:?}"
    );
    server.shutdown();
    server.wait();
}

#[test]
fn a_cancelled_pool_call_never_runs_and_its_reply_is_dropped() {
    let mut server = server_with(
        ServerOptions::default()
            .reactor_threads(1)
            .worker_threads(1),
    );
    let (tracked, runs) = Tracked::new();
    server.add_blocking_service(tracked);
    let server = server.start().unwrap();
    let mut c = RawClient::connect(server.local_addr());
    // The one worker is busy for 500 ms; the queue is first in, first out,
    // so calls 2..=4 wait behind call 1 while the cancel and the deadline
    // take effect.
    c.send(1, "BlockingTest", "Slow", b"500");
    c.send(2, "Tracked", "Run", b"cancelled");
    c.cancel(2);
    c.send_with_timeout(3, 50, "Tracked", "Run", b"expired");
    c.send(4, "Tracked", "Run", b"runs");
    let mut got = Vec::new();
    while got.last() != Some(&4) {
        let r = c.recv().expect("a reply");
        let want = match r.id {
            1 | 4 => Code::Ok,
            3 => Code::DeadlineExceeded,
            other => panic!("reply for call {other}, which was cancelled"),
        };
        assert_eq!(r.code, want, "call {}", r.id);
        got.push(r.id);
    }
    assert_eq!(got, [1, 3, 4], "one reply each, the cancelled call none");
    assert_eq!(*runs.lock(), ["runs"], "only the live call ran its handler");
    server.shutdown();
    server.wait();
}

#[test]
fn shutdown_past_the_grace_period_does_not_run_the_queued_pool_calls() {
    let server = server_with(
        ServerOptions::default()
            .reactor_threads(1)
            .worker_threads(1)
            .shutdown_grace(Duration::from_millis(100)),
    )
    .start()
    .expect("server starts");
    // 100 calls of 30 ms each on one worker: 3 s of queued work.
    let mut c = RawClient::connect(server.local_addr());
    let request = common::services::slow_request(30);
    let out = request_batch(
        "BlockingTest",
        "Slow",
        (0..100).map(|id| (id, &request[..])),
    );
    c.stream.write_all(&out).unwrap();
    common::services::wait_slow_started(&request, 1);
    server.shutdown();
    server.wait();
    // The calls that ran: the one running, and those the 100 ms grace let
    // start (about three); not the queue. Counted, not timed.
    let ran = common::services::slow_started(&request);
    assert!(
        ran < 50,
        "{ran} of the 100 queued calls ran after the shutdown"
    );
}
