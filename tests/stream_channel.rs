//! Streams through the `Channel`, end to end over real sockets on
//! 127.0.0.1 against a server with async stream handlers: blocking and
//! async consumers, a reader that stops (the server holds at its credit)
//! and resumes, unary calls on the same connection meanwhile, cancel from
//! each side, the deadline mid-stream, the provider lost mid-stream,
//! client and bidirectional streams, and a provider in the seed's format.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mprpc::client::stream::StreamReceiver;
use mprpc::client::{Channel, ChannelOptions};
use mprpc::discovery::{Endpoint, StaticDiscover};
use mprpc::protocol::mprpc::StreamShape;
use mprpc::protocol::WireFormat;
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::{CallOptions, Code};

mod common;
use common::streams::{Streams, SENT, SENT_BASE};

fn start(options: ServerOptions) -> ServerHandle {
    mprpc::app::logging::init_for_tests();
    let mut server = Server::with_options(options.reactor_threads(2));
    server.add_service(Streams);
    server.start().expect("server starts")
}

fn channel(server: &ServerHandle, window: usize) -> Channel {
    let discover = StaticDiscover::single(server.local_addr()).unwrap();
    let options = ChannelOptions::default().stream_window(window);
    Channel::new(Arc::new(discover), options).unwrap()
}

fn stop(server: ServerHandle) {
    server.shutdown();
    server.wait();
}

/// Waits (bounded) until the server's metrics show `code` for `method`.
fn wait_for_outcome(server: &ServerHandle, method: &str, code: Code) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = server.metrics();
        let seen = metrics
            .get("Streams", method)
            .is_some_and(|m| m.errors_by_code.iter().any(|(c, n)| *c == code && *n > 0));
        if seen {
            return;
        }
        assert!(Instant::now() < until, "no {code} for {method}: {metrics}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `future` to completion on this thread.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park_timeout(Duration::from_millis(100)),
        }
    }
}

/// The next item of `stream` as a `futures_core::Stream`.
fn next_async(stream: &mut StreamReceiver<u64>) -> Option<Result<u64, mprpc::Status>> {
    block_on(std::future::poll_fn(|cx| {
        futures_core::Stream::poll_next(Pin::new(&mut *stream), cx)
    }))
}

fn count(channel: &Channel, n: u64, options: &CallOptions) -> StreamReceiver<u64> {
    channel.server_stream("Streams", "Count", &n, options)
}

#[test]
fn a_server_stream_read_blocking_and_async() {
    let server = start(ServerOptions::default());
    let channel = channel(&server, 8);
    let got: Vec<u64> = count(&channel, 20, &CallOptions::default())
        .map(|n| n.expect("every message"))
        .collect();
    assert_eq!(got, (0..20).collect::<Vec<_>>());

    let mut stream = count(&channel, 20, &CallOptions::default());
    for i in 0..20 {
        assert_eq!(next_async(&mut stream).unwrap().unwrap(), i);
    }
    assert!(next_async(&mut stream).is_none(), "ends Ok");
    stop(server);
}

#[test]
fn a_reader_that_stops_holds_the_server_at_its_window_and_unary_calls_go_on() {
    let server = start(ServerOptions::default());
    let window = 4;
    let channel = channel(&server, window);
    let slot = 0;
    let mut stream = count(&channel, SENT_BASE + slot, &CallOptions::default());
    assert_eq!(stream.recv().unwrap(), Some(0));
    assert_eq!(stream.recv().unwrap(), Some(1));
    // The reader stops. Unary calls on the same connection are answered.
    for i in 0..20u8 {
        let reply = channel
            .call(
                "Streams",
                "Unary",
                Bytes::from(vec![i]),
                &CallOptions::default(),
                None,
            )
            .unwrap();
        assert_eq!(&reply[..], &[i]);
    }
    // Wait until the server stops sending; it has sent at most what was
    // read plus one window.
    let sent = &SENT[slot as usize];
    let mut last = u64::MAX;
    while sent.load(Ordering::SeqCst) != last {
        last = sent.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        last <= 2 + window as u64,
        "sent {last} past a window of {window}"
    );
    // Reading resumes where it stopped, and the server with it.
    for i in 2..200 {
        assert_eq!(stream.recv().unwrap(), Some(i));
    }
    assert!(sent.load(Ordering::SeqCst) >= 200);
    drop(stream);
    wait_for_outcome(&server, "Count", Code::Cancelled);
    stop(server);
}

#[test]
fn cancel_from_the_caller_and_from_the_handler() {
    let server = start(ServerOptions::default());
    let channel = channel(&server, 4);
    let mut stream = count(&channel, 0, &CallOptions::default());
    assert_eq!(stream.recv().unwrap(), Some(0));
    stream.cancel();
    wait_for_outcome(&server, "Count", Code::Cancelled);
    // Messages already here may still be read; then the cancel shows.
    let end = loop {
        match stream.recv() {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert_eq!(end.unwrap_err().code(), Code::Cancelled);

    let mut failing = count(&channel, 1003, &CallOptions::default());
    for i in 0..3 {
        assert_eq!(failing.recv().unwrap(), Some(i));
    }
    let status = failing.recv().unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::Application, "failed after 3")
    );
    assert!(failing.next().is_none(), "the error comes once");
    stop(server);
}

#[test]
fn the_deadline_ends_a_stream_mid_way() {
    let server = start(ServerOptions::default());
    let channel = channel(&server, 4);
    let options = CallOptions::default().timeout(Duration::from_millis(500));
    let mut stream = count(&channel, 0, &options);
    // The server sends with no end (so the deadline comes mid-stream,
    // however slow the machine); the reader reads on until it does.
    let status = loop {
        match stream.recv() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a stream with no end ended Ok"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    stop(server);
}

#[test]
fn a_shutdown_ends_open_streams_after_its_grace_period() {
    let server = start(ServerOptions::default().shutdown_grace(Duration::from_millis(100)));
    let channel = channel(&server, 4);
    let mut stream = count(&channel, 0, &CallOptions::default());
    assert_eq!(stream.recv().unwrap(), Some(0));
    // The reader does not read: the stream is still open when the grace
    // period runs out.
    stop(server);
    let status = loop {
        match stream.recv() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a stream cut by a shutdown ended Ok"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::ShuttingDown, "{status}");
}

/// Forwards one connection to `to` until `cut` is set, then drops both
/// sides: the provider lost, as a caller sees it.
fn proxy(to: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = cut.clone();
    std::thread::spawn(move || {
        let (client, _) = listener.accept().unwrap();
        let server = std::net::TcpStream::connect(to).unwrap();
        for (mut from, mut into) in [
            (client.try_clone().unwrap(), server.try_clone().unwrap()),
            (server.try_clone().unwrap(), client.try_clone().unwrap()),
        ] {
            let stop = stop.clone();
            from.set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while !stop.load(Ordering::SeqCst) {
                    match from.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if into.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => break,
                    }
                }
                let _ = from.shutdown(std::net::Shutdown::Both);
                let _ = into.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    (addr, cut)
}

#[test]
fn losing_the_connection_mid_stream_ends_it_unavailable() {
    let server = start(ServerOptions::default());
    let (addr, cut) = proxy(server.local_addr());
    let discover = StaticDiscover::single(addr).unwrap();
    let channel = Channel::new(Arc::new(discover), ChannelOptions::default()).unwrap();
    let mut stream = count(&channel, 0, &CallOptions::default());
    assert_eq!(stream.recv().unwrap(), Some(0));
    cut.store(true, Ordering::SeqCst);
    let status = loop {
        match stream.recv() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a lost stream ended Ok"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Unavailable, "{status}");
    wait_for_outcome(&server, "Count", Code::Cancelled);
    stop(server);
}

#[test]
fn client_and_bidi_streams() {
    let server = start(ServerOptions::default().stream_window(2));
    let channel = channel(&server, 4);
    let sum = channel.client_stream::<u64, u64>("Streams", "Sum", &CallOptions::default());
    for n in 1..=100 {
        sum.send(&n).unwrap();
    }
    assert_eq!(sum.finish().unwrap(), 5050);

    let (requests, mut replies) =
        channel.bidi_stream::<String, String>("Streams", "Echo", &CallOptions::default());
    for word in ["a", "b", "c"] {
        requests.send(&word.to_owned()).unwrap();
        assert_eq!(replies.recv().unwrap(), Some(format!("echo {word}")));
    }
    requests.finish();
    assert_eq!(replies.recv().unwrap(), None);
    stop(server);
}

#[test]
fn a_stream_to_a_seed_format_provider_is_unimplemented() {
    let server = start(ServerOptions::default());
    let endpoint = Endpoint::new(server.local_addr()).format(WireFormat::Seed);
    let discover = StaticDiscover::new(vec![endpoint]);
    let channel = Channel::new(Arc::new(discover), ChannelOptions::default()).unwrap();
    let status = count(&channel, 3, &CallOptions::default())
        .recv()
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status}");
    // A streaming method called in the seed's format, as a unary call: the
    // server refuses it Unimplemented (counted; the seed's format cannot
    // carry a status, so the caller sees the connection close unanswered).
    let payload = Bytes::from(prost::Message::encode_to_vec(&3u64));
    let refused = channel
        .call("Streams", "Count", payload, &CallOptions::default(), None)
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused}");
    wait_for_outcome(&server, "Count", Code::Unimplemented);
    stop(server);
}

#[test]
fn a_thousand_streams_on_one_connection_beside_unary_calls() {
    let server = start(ServerOptions::default());
    let channel = channel(&server, 8);
    let mut streams: Vec<StreamReceiver<u64>> = (0..1000)
        .map(|_| count(&channel, 5, &CallOptions::default()))
        .collect();
    for i in 0..50u8 {
        let reply = channel
            .call(
                "Streams",
                "Unary",
                Bytes::from(vec![i]),
                &CallOptions::default(),
                None,
            )
            .unwrap();
        assert_eq!(&reply[..], &[i]);
    }
    for stream in &mut streams {
        let got: Vec<u64> = stream.by_ref().map(|n| n.unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 3, 4]);
    }
    let metrics = server.metrics();
    assert_eq!(metrics.get("Streams", "Count").unwrap().calls, 1000);
    stop(server);
}

/// The sum over reactors of sample `name` in a /metrics scrape.
/// The body of an admin page.
fn page(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut http = std::net::TcpStream::connect(addr).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    http.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    http.read_to_string(&mut reply).unwrap();
    reply.split("\r\n\r\n").nth(1).unwrap_or("").to_owned()
}

fn metric(addr: std::net::SocketAddr, name: &str) -> f64 {
    let body = page(addr, "/metrics");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("/metrics parses");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
            _ => f64::NAN,
        })
        .sum()
}

#[test]
fn metrics_count_streams_and_their_messages() {
    let server = start(ServerOptions::default());
    let addr = server.admin_addr().expect("admin pages on the RPC port");
    let channel = channel(&server, 4);
    let done: Vec<u64> = count(&channel, 5, &CallOptions::default())
        .map(|n| n.unwrap())
        .collect();
    assert_eq!(done.len(), 5);
    let sum = channel.client_stream::<u64, u64>("Streams", "Sum", &CallOptions::default());
    for n in [1, 2, 3] {
        sum.send(&n).unwrap();
    }
    assert_eq!(sum.finish().unwrap(), 6);
    let mut open = count(&channel, 0, &CallOptions::default());
    assert_eq!(open.recv().unwrap(), Some(0));

    assert_eq!(metric(addr, "mprpc_streams_opened_total"), 3.0);
    assert_eq!(metric(addr, "mprpc_streams_open"), 1.0, "the stalled one");
    assert_eq!(metric(addr, "mprpc_stream_messages_received_total"), 3.0);
    let sent = metric(addr, "mprpc_stream_messages_sent_total");
    // 5 + the sum's reply + what the open one sent (its window at most).
    assert!((7.0..=10.0).contains(&sent), "sent {sent}");
    // The status page's JSON (what the page at / shows) agrees.
    let status: serde_json::Value = serde_json::from_str(&page(addr, "/status")).unwrap();
    let streams = &status["streams"];
    assert_eq!(streams["open"], 1, "{streams}");
    assert_eq!(streams["opened"], 3, "{streams}");
    assert_eq!(streams["ended"], 2, "{streams}");
    assert_eq!(streams["messages_received"], 3, "{streams}");
    assert_eq!(streams["messages_sent"].as_f64(), Some(sent), "{streams}");
    // How they ended: the usual outcomes always, others once seen.
    let by_code = &streams["ended_by_code"];
    let expected =
        serde_json::json!({"ok": 2, "cancelled": 0, "deadline_exceeded": 0, "unavailable": 0});
    assert_eq!(by_code, &expected, "{streams}");
    assert_eq!(ended_metric(addr, "ok"), 2.0);
    drop(open);
    wait_for_outcome(&server, "Count", Code::Cancelled);
    assert_eq!(metric(addr, "mprpc_streams_open"), 0.0);
    assert_eq!(ended_metric(addr, "cancelled"), 1.0);
    // A failed stream and one past its deadline add their codes.
    let failed: Result<Vec<u64>, _> = count(&channel, 1002, &CallOptions::default()).collect();
    assert_eq!(failed.unwrap_err().code(), Code::Application);
    // The server's deadline, not the caller's: a raw client that never
    // resets (a channel's own deadline would reset it first: cancelled).
    let mut raw = common::streams::StreamClient::connect(server.local_addr());
    let endless = common::streams::encoded(0);
    raw.open_with_timeout(7, "Count", StreamShape::Server, 4, &endless, 100);
    wait_for_outcome(&server, "Count", Code::DeadlineExceeded);
    assert_eq!(ended_metric(addr, "application"), 1.0);
    assert_eq!(ended_metric(addr, "deadline_exceeded"), 1.0);
    let status: serde_json::Value = serde_json::from_str(&page(addr, "/status")).unwrap();
    let by_code = &status["streams"]["ended_by_code"];
    let expected = serde_json::json!({"ok": 2, "cancelled": 1, "deadline_exceeded": 1,
        "unavailable": 0, "application": 1});
    assert_eq!(by_code, &expected, "{status}");
    stop(server);
}

/// `mprpc_streams_ended_total` for `code` (0 when the line is absent).
fn ended_metric(addr: std::net::SocketAddr, code: &str) -> f64 {
    let line = format!("mprpc_streams_ended_total{{code=\"{code}\"}} ");
    page(addr, "/metrics")
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0.0, |n| n.parse().unwrap())
}

#[test]
fn a_handler_thread_sends_blocking_within_the_window() {
    let server = start(ServerOptions::default());
    let channel = channel(&server, 2);
    let got: Vec<u64> = channel
        .server_stream::<u64, u64>("Streams", "Spawned", &50, &CallOptions::default())
        .map(|n| n.unwrap())
        .collect();
    assert_eq!(got, (0..50).collect::<Vec<_>>());
    stop(server);
}

/// A client interceptor that records each stream's open and outcome, adds
/// a tenant to the open's metadata, and refuses `Sum` streams locally.
#[derive(Default)]
struct Recorder {
    opened: parking_lot::Mutex<Vec<String>>,
    ended: parking_lot::Mutex<Vec<(String, Code)>>,
}

impl mprpc::ClientInterceptor for Recorder {
    fn before(&self, call: &mut mprpc::ClientCall<'_>) -> Result<(), mprpc::Status> {
        self.opened.lock().push(call.method.to_owned());
        if call.method == "Sum" {
            return Err(mprpc::Status::new(Code::FailedPrecondition, "no sums here"));
        }
        call.metadata.insert("x-tenant", "t1").expect("short");
        Ok(())
    }

    fn after(&self, _service: &str, method: &str, outcome: &mprpc::Outcome) {
        self.ended.lock().push((method.to_owned(), outcome.code));
    }
}

/// A server interceptor that refuses a call or stream without the tenant.
struct NeedsTenant;

impl mprpc::Interceptor for NeedsTenant {
    fn before(&self, call: &mprpc::CallInfo<'_>) -> Result<(), mprpc::Status> {
        match call.metadata.get("x-tenant") {
            Some("t1") => Ok(()),
            _ => Err(mprpc::Status::new(Code::Unauthenticated, "no tenant")),
        }
    }
}

#[test]
fn client_interceptors_see_each_stream_open_and_its_outcome_once() {
    let server = start(ServerOptions::default().with_interceptor(NeedsTenant));
    let recorder = Arc::new(Recorder::default());
    let discover = StaticDiscover::single(server.local_addr()).unwrap();
    let options = ChannelOptions::default()
        .stream_window(4)
        .with_interceptor(recorder.clone());
    let channel = Channel::new(Arc::new(discover), options).unwrap();

    // The tenant the interceptor added reaches the server's interceptor.
    let got: Vec<u64> = count(&channel, 10, &CallOptions::default())
        .map(|n| n.expect("every message"))
        .collect();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    // A stream the caller cancels, one the handler fails.
    let mut cancelled = count(&channel, 0, &CallOptions::default());
    assert_eq!(cancelled.recv().unwrap(), Some(0));
    cancelled.cancel();
    drop(cancelled);
    let failing: Vec<_> = count(&channel, 1002, &CallOptions::default()).collect();
    assert_eq!(
        failing.last().unwrap().as_ref().unwrap_err().code(),
        Code::Application
    );
    // A stream the interceptor refuses fails locally with its status.
    let refused = channel.client_stream::<u64, u64>("Streams", "Sum", &CallOptions::default());
    assert_eq!(
        refused.finish().unwrap_err().code(),
        Code::FailedPrecondition
    );

    let until = Instant::now() + Duration::from_secs(20);
    while recorder.ended.lock().len() < 4 {
        assert!(
            Instant::now() < until,
            "outcomes: {:?}",
            recorder.ended.lock()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(*recorder.opened.lock(), ["Count", "Count", "Count", "Sum"]);
    let mut ended = recorder.ended.lock().clone();
    ended.sort_by_key(|(_, code)| *code as u8);
    let want = [
        ("Count", Code::Ok),
        ("Count", Code::Cancelled),
        ("Count", Code::Application),
        ("Sum", Code::FailedPrecondition),
    ];
    let mut want: Vec<(String, Code)> = want.iter().map(|(m, c)| (m.to_string(), *c)).collect();
    want.sort_by_key(|(_, code)| *code as u8);
    assert_eq!(ended, want, "each stream's outcome, once");
    stop(server);
}

#[test]
fn a_server_interceptor_refuses_a_stream_without_what_it_needs() {
    let server = start(ServerOptions::default().with_interceptor(NeedsTenant));
    let channel = channel(&server, 4);
    let mut stream = count(&channel, 3, &CallOptions::default());
    assert_eq!(stream.recv().unwrap_err().code(), Code::Unauthenticated);
    stop(server);
}
