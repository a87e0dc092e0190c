//! The client against a small scripted server on 127.0.0.1.
//!
//! The real server is tested elsewhere; here a thread-per-connection test
//! server (std sockets + the codec) does whatever each call's method name
//! says — echo, answer late, never answer, drop the connection, send
//! garbage — so every client path can be forced deterministically.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mprpc::client::{decode_response, Channel, ChannelOptions, LoadBalance, TypedCall};
use mprpc::protocol::mprpc::{encode_response, Decoder, Frame, Request};
use mprpc::{CallOptions, CancelHandle, Code, Endpoint, StaticDiscover, Status};

mod common;
use common::logs::captured_logs;
use common::ports::refusing_addr;

/// Generous bound for "this must not hang".
const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Stats {
    connections: AtomicUsize,
    /// Connections whose serving thread has ended (the peer closed, or
    /// the script dropped it): everything sent on them has been read.
    ended: AtomicUsize,
    requests: AtomicUsize,
    cancels: AtomicUsize,
}

/// A scripted provider. Methods: `echo`; `delay` (payload = milliseconds in
/// ASCII, replied after that long, echoing the payload); `hang` (never
/// answers); `close` (drops the connection); `garbage` (writes non-mprpc
/// bytes); `fail` (an application error).
struct TestServer {
    addr: SocketAddr,
    stats: Arc<Stats>,
}

impl TestServer {
    fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let s = stats.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                s.connections.fetch_add(1, Ordering::SeqCst);
                let s = s.clone();
                thread::spawn(move || {
                    serve(stream, &s);
                    s.ended.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        TestServer { addr, stats }
    }

    fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }

    fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }
}

fn serve(mut stream: TcpStream, stats: &Stats) {
    let _ = stream.set_nodelay(true);
    let writer = Arc::new(Mutex::new(stream.try_clone().expect("clone")));
    let decoder = Decoder::default();
    let mut rbuf = BytesMut::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        rbuf.extend_from_slice(&chunk[..n]);
        let mut out = BytesMut::new();
        loop {
            match decoder.decode(&mut rbuf) {
                Ok(Some(Frame::Request(req))) => {
                    stats.requests.fetch_add(1, Ordering::SeqCst);
                    if !handle(req, &mut out, &writer) {
                        let _ = stream.shutdown(Shutdown::Both);
                        return;
                    }
                }
                Ok(Some(Frame::Cancel { .. })) => {
                    stats.cancels.fetch_add(1, Ordering::SeqCst);
                }
                Ok(None) => break,
                Ok(Some(
                    Frame::Response(_)
                    | Frame::Oversized(_)
                    | Frame::Auth { .. }
                    | Frame::Stream(_),
                ))
                | Err(_) => return,
            }
        }
        if !out.is_empty() && writer.lock().unwrap().write_all(&out).is_err() {
            return;
        }
    }
}

/// Acts on one request; false means "drop the connection now".
fn handle(req: Request, out: &mut BytesMut, writer: &Arc<Mutex<TcpStream>>) -> bool {
    match req.method() {
        "echo" => encode_response(req.id, Code::Ok, "", &req.payload, out),
        "fail" => encode_response(req.id, Code::Application, "handler said no", b"", out),
        "delay" => {
            let ms: u64 = std::str::from_utf8(&req.payload)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let writer = writer.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(ms));
                let mut frame = BytesMut::new();
                encode_response(req.id, Code::Ok, "", &req.payload, &mut frame);
                let _ = writer.lock().unwrap().write_all(&frame);
            });
        }
        "hang" => {}
        "close" => return false,
        "garbage" => out.extend_from_slice(b"HTTP/1.1 400 Bad Request\r\n\r\n"),
        _ => encode_response(req.id, Code::UnknownMethod, "no such method", b"", out),
    }
    true
}

fn channel(addrs: &[SocketAddr], options: ChannelOptions) -> Channel {
    let endpoints = addrs.iter().map(|a| Endpoint::new(*a)).collect();
    Channel::new(Arc::new(StaticDiscover::new(endpoints)), options).unwrap()
}

fn opts() -> CallOptions {
    CallOptions::default()
}

fn call(ch: &Channel, method: &str, payload: &'static str) -> Result<Bytes, Status> {
    ch.call(
        "Test",
        method,
        Bytes::from_static(payload.as_bytes()),
        &opts(),
        None,
    )
}

/// Polls `cond` until it holds or PATIENCE runs out.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn many_blocking_callers_share_one_connection() {
    let server = TestServer::start();
    let ch = Channel::direct(server.addr).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let ch = ch.clone();
            thread::spawn(move || {
                for i in 0..200 {
                    let payload = Bytes::from(format!("thread {t} call {i}"));
                    let reply = ch
                        .call("Test", "echo", payload.clone(), &opts(), None)
                        .expect("echo");
                    assert_eq!(reply, payload);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(server.requests(), 1600);
    assert_eq!(
        server.connections(),
        1,
        "calls must share a persistent connection"
    );
    assert_eq!(ch.inflight(), 0);
}

#[test]
fn one_thread_keeps_thousands_of_calls_in_flight() {
    let server = TestServer::start();
    let ch = Channel::direct(server.addr).unwrap();
    let (tx, rx) = mpsc::channel();
    const N: usize = 5000;
    let mut handles = Vec::with_capacity(N);
    for i in 0..N {
        let tx = tx.clone();
        let payload = Bytes::from(i.to_string());
        let expected = payload.clone();
        handles.push(ch.call_with("Test", "echo", payload, &opts(), move |r| {
            tx.send(r.map(|b| b == expected)).unwrap();
        }));
    }
    let mut ok = 0;
    for _ in 0..N {
        match rx.recv_timeout(PATIENCE).expect("every callback runs") {
            Ok(true) => ok += 1,
            Ok(false) => panic!("a reply was matched to the wrong call"),
            Err(s) => panic!("call failed: {s}"),
        }
    }
    assert_eq!(ok, N);
    assert!(handles.iter().all(|h| h.is_done()));
    assert!(rx.try_recv().is_err(), "a callback ran twice");
    assert_eq!(server.connections(), 1);
    eventually("in-flight count back to 0", || ch.inflight() == 0);
}

#[test]
fn out_of_order_replies_reach_the_right_calls() {
    let server = TestServer::start();
    let ch = Channel::direct(server.addr).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    for (name, method, payload) in [
        ("slow", "delay", "400"),
        ("medium", "delay", "150"),
        ("fast", "echo", "now"),
    ] {
        let (order, tx) = (order.clone(), tx.clone());
        ch.call_with(
            "Test",
            method,
            Bytes::from_static(payload.as_bytes()),
            &opts(),
            move |r| {
                assert_eq!(r.expect("reply"), Bytes::from_static(payload.as_bytes()));
                order.lock().unwrap().push(name);
                tx.send(()).unwrap();
            },
        );
    }
    for _ in 0..3 {
        rx.recv_timeout(PATIENCE).unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec!["fast", "medium", "slow"]);
}

#[test]
fn a_call_times_out_with_deadline_exceeded_and_cancels_on_the_server() {
    let server = TestServer::start();
    let ch = Channel::direct(server.addr).unwrap();
    let started = Instant::now();
    let err = ch
        .call(
            "Test",
            "hang",
            Bytes::new(),
            &CallOptions::with_timeout(Duration::from_millis(100)),
            None,
        )
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    assert!(started.elapsed() >= Duration::from_millis(100));
    eventually("cancel frame reaches the server", || {
        server.stats.cancels.load(Ordering::SeqCst) == 1
    });
    // The channel default applies when the call sets no timeout.
    let ch = channel(
        &[server.addr],
        ChannelOptions::default().call_timeout(Duration::from_millis(50)),
    );
    assert_eq!(
        call(&ch, "hang", "").unwrap_err().code(),
        Code::DeadlineExceeded
    );
    assert_eq!(call(&ch, "echo", "still works").unwrap(), "still works");
}

#[test]
fn cancel_completes_the_call_at_once() {
    let server = TestServer::start();
    let ch = Channel::direct(server.addr).unwrap();
    let long = CallOptions::with_timeout(Duration::from_secs(30));

    // PendingCall::cancel from another thread.
    let pending = ch.call_async("Test", "hang", Bytes::new(), &long);
    eventually("request reached the server", || server.requests() == 1);
    let started = Instant::now();
    thread::scope(|s| {
        s.spawn(|| pending.cancel());
    });
    let err = pending.wait().unwrap_err();
    assert_eq!(err.code(), Code::Cancelled);
    assert!(started.elapsed() < PATIENCE);

    // A blocking call cancelled through the controller's CancelHandle.
    let cancel = CancelHandle::default();
    let c2 = cancel.clone();
    let stats = server.stats.clone();
    let canceller = thread::spawn(move || {
        eventually("request reached the server", || {
            stats.requests.load(Ordering::SeqCst) == 2
        });
        c2.cancel();
    });
    let err = ch
        .call("Test", "hang", Bytes::new(), &long, Some(&cancel))
        .unwrap_err();
    assert_eq!(err.code(), Code::Cancelled);
    canceller.join().unwrap();
    // Already cancelled: fails without sending anything.
    let before = server.requests();
    let err = ch
        .call("Test", "echo", Bytes::new(), &long, Some(&cancel))
        .unwrap_err();
    assert_eq!(err.code(), Code::Cancelled);
    assert_eq!(server.requests(), before);

    // CallHandle::cancel runs the callback before it returns.
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let handle = ch.call_with("Test", "hang", Bytes::new(), &long, move |r| {
        *g.lock().unwrap() = Some(r.map(|_| ()).map_err(|s| s.code()));
    });
    eventually("request reached the server", || server.requests() == 3);
    assert!(!handle.is_done());
    handle.cancel();
    assert_eq!(*got.lock().unwrap(), Some(Err(Code::Cancelled)));
    handle.cancel(); // idempotent

    eventually("three cancel frames reach the server", || {
        server.stats.cancels.load(Ordering::SeqCst) == 3
    });
    eventually("in-flight slots released", || ch.inflight() == 0);
    assert_eq!(call(&ch, "echo", "after").unwrap(), "after");
}

#[test]
fn a_dropped_connection_fails_exactly_its_calls_and_the_next_call_reconnects() {
    let server = TestServer::start();
    let a = Channel::direct(server.addr).unwrap();
    let b = Channel::direct(server.addr).unwrap();
    assert_eq!(call(&a, "echo", "warm a").unwrap(), "warm a");
    assert_eq!(call(&b, "echo", "warm b").unwrap(), "warm b");
    assert_eq!(server.connections(), 2);

    let on_b = b.call_async("Test", "delay", Bytes::from_static(b"300"), &opts());
    let on_a: Vec<_> = (0..5)
        .map(|_| a.call_async("Test", "hang", Bytes::new(), &opts()))
        .collect();
    eventually("all requests arrived", || server.requests() == 8);
    let err = call(&a, "close", "").unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains(&server.addr.to_string()), "{err}");
    for p in on_a {
        let err = p.wait().unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");
        assert!(err.message().contains("closed by the server"), "{err}");
    }
    // The other connection's call is untouched.
    assert_eq!(on_b.wait().unwrap(), "300");
    // The next call on the broken channel reconnects.
    assert_eq!(call(&a, "echo", "again").unwrap(), "again");
    assert_eq!(server.connections(), 3);
}

#[test]
fn a_garbage_reply_fails_only_that_connections_calls() {
    let server = TestServer::start();
    let a = Channel::direct(server.addr).unwrap();
    let b = Channel::direct(server.addr).unwrap();
    assert_eq!(call(&b, "echo", "b").unwrap(), "b");
    let hanging: Vec<_> = (0..3)
        .map(|_| a.call_async("Test", "hang", Bytes::new(), &opts()))
        .collect();
    let on_b = b.call_async("Test", "delay", Bytes::from_static(b"200"), &opts());
    let err = call(&a, "garbage", "").unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("protocol error"), "{err}");
    for p in hanging {
        assert_eq!(p.wait().unwrap_err().code(), Code::Unavailable);
    }
    assert_eq!(on_b.wait().unwrap(), "200");
    assert_eq!(call(&a, "echo", "recovered").unwrap(), "recovered");
}

#[test]
fn server_errors_are_reported_with_their_code_and_text() {
    let server = TestServer::start();
    let ch = Channel::direct(server.addr).unwrap();
    let err = call(&ch, "fail", "").unwrap_err();
    assert_eq!(err.code(), Code::Application);
    assert_eq!(err.message(), "handler said no");
    assert_eq!(
        call(&ch, "nope", "").unwrap_err().code(),
        Code::UnknownMethod
    );
}

#[test]
fn connection_refused_fails_quickly_with_unavailable() {
    let addr = refusing_addr();
    let ch = Channel::direct(addr).unwrap();
    let started = Instant::now();
    let err = call(&ch, "echo", "x").unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains(&addr.to_string()), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    // Backed off: the next call fails at once, naming the service.
    let err = call(&ch, "echo", "x").unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("'Test'"), "{err}");
}

#[test]
fn too_many_calls_in_flight_fail_fast() {
    let server = TestServer::start();
    let ch = channel(&[server.addr], ChannelOptions::default().max_inflight(10));
    let hanging: Vec<_> = (0..10)
        .map(|_| ch.call_async("Test", "hang", Bytes::new(), &opts()))
        .collect();
    let err = call(&ch, "echo", "one too many").unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    drop(hanging); // dropping unfinished calls cancels them
    eventually("slots released", || ch.inflight() == 0);
    assert_eq!(call(&ch, "echo", "room again").unwrap(), "room again");
}

#[test]
fn oversized_requests_and_names_are_refused_locally() {
    let server = TestServer::start();
    let ch = channel(
        &[server.addr],
        ChannelOptions::default().max_frame_size(1024),
    );
    let big = Bytes::from(vec![0u8; 2048]);
    let err = ch.call("Test", "echo", big, &opts(), None).unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    let long = "x".repeat(300);
    let err = ch
        .call(&long, "echo", Bytes::new(), &opts(), None)
        .unwrap_err();
    assert_eq!(err.code(), Code::BadRequest);
    assert_eq!(server.requests(), 0);
}

#[test]
fn pending_call_is_a_future_and_typed_calls_decode() {
    struct ThreadWaker(thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    fn block_on<F: std::future::Future + Unpin>(mut f: F) -> F::Output {
        let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
        let mut cx = Context::from_waker(&waker);
        let start = Instant::now();
        loop {
            if let Poll::Ready(v) = std::pin::Pin::new(&mut f).poll(&mut cx) {
                return v;
            }
            assert!(start.elapsed() < PATIENCE, "future never woke");
            thread::park_timeout(Duration::from_millis(100));
        }
    }
    let server = TestServer::start();
    let ch = Channel::direct(server.addr).unwrap();
    let f = ch.call_async("Test", "delay", Bytes::from_static(b"50"), &opts());
    assert_eq!(block_on(f).unwrap(), "50");

    let request = prost::Message::encode_to_vec(&"hello".to_string());
    let typed: TypedCall<String> =
        TypedCall::new(ch.call_async("Test", "echo", request.clone().into(), &opts()));
    assert_eq!(typed.wait().unwrap(), "hello");
    let typed: TypedCall<String> =
        TypedCall::new(ch.call_async("Test", "echo", request.into(), &opts()));
    assert_eq!(block_on(typed).unwrap(), "hello");
    let bad = decode_response::<String>(Bytes::from_static(b"\xff\xff\xff")).unwrap_err();
    assert_eq!(bad.code(), Code::Internal, "{bad}");
}

#[test]
fn failover_skips_a_refusing_endpoint() {
    let logs = captured_logs();
    let server = TestServer::start();
    let dead = refusing_addr();
    let ch = channel(
        &[dead, server.addr],
        ChannelOptions::default()
            .backoff_base(Duration::from_secs(30))
            .backoff_max(Duration::from_secs(30)),
    );
    for i in 0..50 {
        let payload = Bytes::from(format!("call {i}"));
        let reply = ch.call("Test", "echo", payload.clone(), &opts(), None);
        assert_eq!(reply.expect("failover to the live endpoint"), payload);
    }
    // Non-blocking calls too.
    let calls: Vec<_> = (0..50)
        .map(|_| ch.call_async("Test", "echo", Bytes::from_static(b"x"), &opts()))
        .collect();
    for c in calls {
        assert_eq!(c.wait().unwrap(), "x");
    }
    assert_eq!(server.requests(), 100);
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let attempts = text.matches(&format!("connect to {dead} failed")).count();
    assert_eq!(
        attempts, 1,
        "the refusing endpoint was tried again:\n{text}"
    );
}

#[test]
fn all_endpoints_down_names_the_service() {
    let ch = channel(
        &[refusing_addr(), refusing_addr()],
        ChannelOptions::default(),
    );
    let err = call(&ch, "echo", "x").unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("'Test'"), "{err}");
    assert!(err.message().contains("refused"), "{err}");
}

fn spread(policy: LoadBalance, key: impl Fn(usize) -> Option<u64>) -> Vec<usize> {
    let servers: Vec<_> = (0..3).map(|_| TestServer::start()).collect();
    let addrs: Vec<_> = servers.iter().map(|s| s.addr).collect();
    let ch = channel(&addrs, ChannelOptions::default().load_balance(policy));
    for i in 0..300 {
        let mut options = CallOptions::default();
        options.hash_key = key(i);
        ch.call("Test", "echo", Bytes::new(), &options, None)
            .expect("echo");
    }
    servers.iter().map(|s| s.requests()).collect()
}

#[test]
fn balancing_policies_spread_calls() {
    assert_eq!(
        spread(LoadBalance::RoundRobin, |_| None),
        vec![100, 100, 100]
    );
    let random = spread(LoadBalance::Random, |_| None);
    assert!(random.iter().all(|n| *n >= 50), "{random:?}");
    let least = spread(LoadBalance::LeastOutstanding, |_| None);
    assert!(least.iter().all(|n| *n >= 30), "{least:?}");
    // One key: one provider. Many keys: all providers.
    let one = spread(LoadBalance::ConsistentHash, |_| Some(42));
    assert_eq!(one.iter().filter(|n| **n > 0).count(), 1, "{one:?}");
    let many = spread(LoadBalance::ConsistentHash, |i| Some(i as u64));
    assert!(many.iter().all(|n| *n >= 30), "{many:?}");
}

/// Serves one endpoint list until told to switch to another.
struct SwitchDiscover {
    second: std::sync::atomic::AtomicBool,
    before: Arc<[Endpoint]>,
    after: Arc<[Endpoint]>,
}

impl mprpc::Discover for SwitchDiscover {
    fn providers(&self, _service: &str) -> Result<Arc<[Endpoint]>, Status> {
        Ok(if self.second.load(Ordering::SeqCst) {
            self.after.clone()
        } else {
            self.before.clone()
        })
    }
}

#[test]
fn least_outstanding_avoids_a_busy_provider() {
    let busy = TestServer::start();
    let idle = TestServer::start();
    let discover = Arc::new(SwitchDiscover {
        second: Default::default(),
        before: vec![Endpoint::new(busy.addr)].into(),
        after: vec![Endpoint::new(busy.addr), Endpoint::new(idle.addr)].into(),
    });
    let ch = Channel::new(
        discover.clone(),
        ChannelOptions::default().load_balance(LoadBalance::LeastOutstanding),
    )
    .unwrap();
    // 20 calls pile up on the only provider known so far...
    let hanging: Vec<_> = (0..20)
        .map(|_| ch.call_async("Test", "hang", Bytes::new(), &opts()))
        .collect();
    eventually("hanging calls arrive", || busy.requests() == 20);
    // ...then a second provider appears: new calls go to it.
    discover.second.store(true, Ordering::SeqCst);
    for _ in 0..20 {
        call(&ch, "echo", "x").unwrap();
    }
    assert_eq!(idle.requests(), 20, "echo calls went to the busy provider");
    assert_eq!(busy.requests(), 20);
    drop(hanging);
}

#[test]
fn a_connect_that_times_out_sends_nothing_and_fails_unavailable() {
    let server = TestServer::start();
    // A zero connect timeout expires before the connect can complete.
    let ch = channel(
        &[server.addr],
        ChannelOptions::default().connect_timeout(Duration::ZERO),
    );
    let err = call(&ch, "echo", "x").unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("timed out"), "{err}");
    assert!(err.message().contains(&server.addr.to_string()), "{err}");
    // The abandoned connection reached the server and was closed by the
    // channel: all it ever sent has been read, so the count is final.
    eventually("the abandoned connection to be closed", || {
        let connections = server.connections();
        connections >= 1 && server.stats.ended.load(Ordering::SeqCst) == connections
    });
    assert_eq!(
        server.requests(),
        0,
        "a request left before the connect finished"
    );
}

#[test]
fn calls_queued_on_a_refused_connect_are_retried_on_another_endpoint() {
    let server = TestServer::start();
    let ch = channel(&[refusing_addr(), server.addr], ChannelOptions::default());
    // Fired at once from a cold channel: half are routed to the refusing
    // endpoint while its connect is still pending, and must move over.
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let payload = Bytes::from(format!("{i}"));
            (
                payload.clone(),
                ch.call_async("Test", "echo", payload, &opts()),
            )
        })
        .collect();
    for (payload, call) in calls {
        assert_eq!(call.wait().expect("retried on the live endpoint"), payload);
    }
    assert_eq!(server.requests(), 200, "each call was sent exactly once");
    eventually("slots released", || ch.inflight() == 0);
}
