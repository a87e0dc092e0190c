//! Streams consumed by a `StreamHandler` on the channel's I/O thread, end
//! to end over real sockets on 127.0.0.1: each stream kind (a bidi handler
//! answering from inside its callback, a client stream sent from
//! `on_writable`), cancel, the provider lost mid-stream (`Unavailable`),
//! a stream that cannot open, and the generated stub's `<method>_with`
//! variants.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel as queue, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use mprpc::client::stream::{StreamBatch, StreamHandler, StreamRequests};
use mprpc::client::{Channel, ChannelOptions};
use mprpc::discovery::StaticDiscover;
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::{CallOptions, Code, Status};
use mprpc_examples::bench::{
    EchoRequest, EchoResponse, EchoStreamServiceServer, EchoStreamServiceStub, PumpRequest,
    StreamSummary,
};
use mprpc_examples::EchoStreams;
use prost::Message as _;

mod common;
use common::streams::Streams;

const WAIT: Duration = Duration::from_secs(20);

fn start() -> ServerHandle {
    mprpc::app::logging::init_for_tests();
    let mut server = Server::with_options(ServerOptions::default().reactor_threads(2));
    server.add_service(Streams);
    server.start().expect("server starts")
}

fn channel_to(addr: std::net::SocketAddr, window: usize) -> Channel {
    let discover = StaticDiscover::single(addr).unwrap();
    let options = ChannelOptions::default().stream_window(window);
    Channel::new(Arc::new(discover), options).unwrap()
}

fn stop(server: ServerHandle) {
    server.shutdown();
    server.wait();
}

/// What a handler saw, sent to the test's thread.
#[derive(Debug, PartialEq)]
enum Seen<T> {
    Message(T),
    Closed(Result<(), Code>),
    /// A call came on a thread that is not the channel's I/O thread.
    WrongThread,
}

/// Forwards every message and the outcome to the test.
struct Forward<T>(Sender<Seen<T>>);

fn on_io_thread() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("mprpc-client-io"))
}

impl<Req, T: prost::Message + Default + 'static> StreamHandler<Req, T> for Forward<T> {
    fn on_messages(&mut self, messages: StreamBatch<'_, T>, _: &StreamRequests<Req>) {
        if !on_io_thread() {
            let _ = self.0.send(Seen::WrongThread);
        }
        for message in messages {
            let _ = self.0.send(Seen::Message(message));
        }
    }

    fn on_closed(&mut self, outcome: Result<(), Status>) {
        let _ = self.0.send(Seen::Closed(outcome.map_err(|s| s.code())));
    }
}

fn next<T>(seen: &Receiver<Seen<T>>) -> Seen<T> {
    seen.recv_timeout(WAIT)
        .expect("the handler was called in time")
}

#[test]
fn a_server_stream_delivered_to_a_handler_on_the_io_thread() {
    let server = start();
    let channel = channel_to(server.local_addr(), 4);
    let (tx, seen) = queue();
    let options = CallOptions::default();
    channel.server_stream_with("Streams", "Count", &100u64, &options, Forward::<u64>(tx));
    for i in 0..100 {
        assert_eq!(next(&seen), Seen::Message(i));
    }
    assert_eq!(next(&seen), Seen::Closed(Ok(())));
    assert!(seen.recv_timeout(Duration::from_millis(100)).is_err());
    stop(server);
}

/// Sends `"0"` once the stream opens, then answers each echo with the
/// next number from inside `on_messages`, up to `last`, then half-closes.
struct PingPong {
    next: u32,
    last: u32,
    echoes: Vec<String>,
    done: Sender<(Vec<String>, Result<(), Code>, bool)>,
    every_call_on_io_thread: bool,
}

impl PingPong {
    fn send_next(&mut self, requests: &StreamRequests<String>) {
        if self.next > self.last {
            return requests.half_close();
        }
        // One message in flight, a window of 4: credit is always there.
        assert!(requests.try_send(&self.next.to_string()).unwrap());
        self.next += 1;
    }
}

impl StreamHandler<String, String> for PingPong {
    fn on_writable(&mut self, requests: &StreamRequests<String>) {
        self.every_call_on_io_thread &= on_io_thread();
        if self.next == 0 {
            self.send_next(requests);
        }
    }

    fn on_messages(
        &mut self,
        messages: StreamBatch<'_, String>,
        requests: &StreamRequests<String>,
    ) {
        self.every_call_on_io_thread &= on_io_thread();
        for echo in messages {
            self.echoes.push(echo);
            self.send_next(requests);
        }
    }

    fn on_closed(&mut self, outcome: Result<(), Status>) {
        let echoes = std::mem::take(&mut self.echoes);
        let outcome = outcome.map_err(|s| s.code());
        let _ = self
            .done
            .send((echoes, outcome, self.every_call_on_io_thread));
    }
}

#[test]
fn a_bidi_handler_answers_each_echo_from_inside_its_callback() {
    let server = start();
    let channel = channel_to(server.local_addr(), 4);
    let (done, finished) = queue();
    let handler = PingPong {
        next: 0,
        last: 49,
        echoes: Vec::new(),
        done,
        every_call_on_io_thread: true,
    };
    channel.bidi_stream_with("Streams", "Echo", &CallOptions::default(), handler);
    let (echoes, outcome, on_io) = finished.recv_timeout(WAIT).unwrap();
    let expected: Vec<String> = (0..50).map(|i| format!("echo {i}")).collect();
    assert_eq!((echoes, outcome, on_io), (expected, Ok(()), true));
    stop(server);
}

/// Sends 1..=100 as the server's credit allows (`try_send` finding none
/// waits for `on_writable`), then half-closes; forwards the reply.
struct Upload {
    next: u64,
    seen: Sender<Seen<u64>>,
    saw_no_credit: Arc<AtomicBool>,
}

impl StreamHandler<u64, u64> for Upload {
    fn on_writable(&mut self, requests: &StreamRequests<u64>) {
        while self.next <= 100 {
            if !requests.try_send(&self.next).unwrap() {
                self.saw_no_credit.store(true, Ordering::SeqCst);
                return;
            }
            self.next += 1;
        }
        requests.half_close();
    }

    fn on_messages(&mut self, messages: StreamBatch<'_, u64>, _: &StreamRequests<u64>) {
        for sum in messages {
            let _ = self.seen.send(Seen::Message(sum));
        }
    }

    fn on_closed(&mut self, outcome: Result<(), Status>) {
        let _ = self.seen.send(Seen::Closed(outcome.map_err(|s| s.code())));
    }
}

#[test]
fn a_client_stream_sent_from_its_handler_as_credit_comes() {
    mprpc::app::logging::init_for_tests();
    let mut server = Server::with_options(ServerOptions::default().stream_window(2));
    server.add_service(Streams);
    let server = server.start().expect("server starts");
    let channel = channel_to(server.local_addr(), 4);
    let (tx, seen) = queue();
    let saw_no_credit = Arc::new(AtomicBool::new(false));
    let upload = Upload {
        next: 1,
        seen: tx,
        saw_no_credit: saw_no_credit.clone(),
    };
    channel.client_stream_with("Streams", "Sum", &CallOptions::default(), upload);
    assert_eq!(next(&seen), Seen::Message(5050));
    assert_eq!(next(&seen), Seen::Closed(Ok(())));
    assert!(
        saw_no_credit.load(Ordering::SeqCst),
        "a window of 2 ran out of credit"
    );
    stop(server);
}

#[test]
fn cancel_ends_a_handled_stream_cancelled() {
    let server = start();
    let channel = channel_to(server.local_addr(), 4);
    let (tx, seen) = queue();
    let options = CallOptions::default();
    // Count 0: no end.
    let control =
        channel.server_stream_with("Streams", "Count", &0u64, &options, Forward::<u64>(tx));
    assert_eq!(next(&seen), Seen::Message(0));
    control.cancel();
    let outcome = loop {
        match next(&seen) {
            Seen::Message(_) => continue,
            other => break other,
        }
    };
    assert_eq!(outcome, Seen::Closed(Err(Code::Cancelled)));
    assert!(control.is_over());
    stop(server);
}

/// Forwards one connection to `to` until `cut` is set, then drops both
/// sides: the provider lost, as a caller sees it.
fn proxy(to: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<AtomicBool>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let cut = Arc::new(AtomicBool::new(false));
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
fn losing_the_connection_ends_a_handled_stream_unavailable() {
    let server = start();
    let (addr, cut) = proxy(server.local_addr());
    let channel = channel_to(addr, 4);
    let (tx, seen) = queue();
    let options = CallOptions::default();
    channel.server_stream_with("Streams", "Count", &0u64, &options, Forward::<u64>(tx));
    assert_eq!(next(&seen), Seen::Message(0));
    cut.store(true, Ordering::SeqCst);
    let outcome = loop {
        match next(&seen) {
            Seen::Message(_) => continue,
            other => break other,
        }
    };
    assert_eq!(outcome, Seen::Closed(Err(Code::Unavailable)));
    stop(server);
}

#[test]
fn a_stream_that_cannot_open_tells_its_handler_at_once() {
    let server = start();
    let channel = channel_to(server.local_addr(), 4);
    let (tx, seen) = queue();
    let options = CallOptions::default();
    // A method name over the wire's limit is refused before it opens.
    let method = "m".repeat(300);
    channel.server_stream_with("Streams", &method, &1u64, &options, Forward::<u64>(tx));
    assert_eq!(
        seen.try_recv().unwrap(),
        Seen::Closed(Err(Code::BadRequest))
    );
    stop(server);
}

/// Inside its callback, a blocking read of another stream (which would
/// wait on the thread that reads it) fails instead of hanging the channel.
struct BlocksInside {
    channel: Channel,
    seen: Sender<Result<Option<u64>, Code>>,
}

impl StreamHandler<(), u64> for BlocksInside {
    fn on_messages(&mut self, _: StreamBatch<'_, u64>, _: &StreamRequests<()>) {
        let options = CallOptions::default();
        let mut other = self
            .channel
            .server_stream::<_, u64>("Streams", "Count", &5u64, &options);
        let _ = self.seen.send(other.recv().map_err(|s| s.code()));
    }

    fn on_closed(&mut self, _: Result<(), Status>) {}
}

#[test]
fn a_blocking_read_inside_a_handler_fails_instead_of_hanging() {
    let server = start();
    let channel = channel_to(server.local_addr(), 4);
    let (tx, seen) = queue();
    let handler = BlocksInside {
        channel: channel.clone(),
        seen: tx,
    };
    let options = CallOptions::default();
    channel.server_stream_with("Streams", "Count", &1u64, &options, handler);
    let got = seen.recv_timeout(WAIT).expect("the handler was called");
    assert_eq!(got, Err(Code::FailedPrecondition));
    stop(server);
}

/// Opens, from its `on_closed`, a stream that cannot open; that stream's
/// handler must not run inside this `on_closed` (a handler reopening
/// on failure would recurse).
struct Reopens {
    channel: Channel,
    inside: Arc<AtomicBool>,
    seen: Sender<Seen<u64>>,
}

impl StreamHandler<(), u64> for Reopens {
    fn on_messages(&mut self, _: StreamBatch<'_, u64>, _: &StreamRequests<()>) {}

    fn on_closed(&mut self, _: Result<(), Status>) {
        self.inside.store(true, Ordering::SeqCst);
        let failing = NotInside {
            inside: self.inside.clone(),
            seen: self.seen.clone(),
        };
        let method = "m".repeat(300);
        let options = CallOptions::default();
        self.channel
            .server_stream_with("Streams", &method, &1u64, &options, failing);
        self.inside.store(false, Ordering::SeqCst);
    }
}

struct NotInside {
    inside: Arc<AtomicBool>,
    seen: Sender<Seen<u64>>,
}

impl StreamHandler<(), u64> for NotInside {
    fn on_messages(&mut self, _: StreamBatch<'_, u64>, _: &StreamRequests<()>) {}

    fn on_closed(&mut self, outcome: Result<(), Status>) {
        if self.inside.load(Ordering::SeqCst) || !on_io_thread() {
            let _ = self.seen.send(Seen::WrongThread);
        }
        let _ = self.seen.send(Seen::Closed(outcome.map_err(|s| s.code())));
    }
}

#[test]
fn a_stream_a_handler_opens_that_fails_at_once_is_told_after_the_handler_returns() {
    let server = start();
    let channel = channel_to(server.local_addr(), 4);
    let (tx, seen) = queue();
    let handler = Reopens {
        channel: channel.clone(),
        inside: Arc::new(AtomicBool::new(false)),
        seen: tx,
    };
    let options = CallOptions::default();
    channel.server_stream_with("Streams", "Count", &2u64, &options, handler);
    assert_eq!(next(&seen), Seen::Closed(Err(Code::BadRequest)));
    stop(server);
}

/// Sends `total` requests of `size` bytes as credit allows, each from a
/// handler call (for a bidi stream: the first `try_send`s, then one per
/// echo), then half-closes; forwards what the server sends.
struct Echoer {
    sent: u64,
    total: u64,
    seen: Sender<Seen<Vec<u8>>>,
}

impl Echoer {
    fn send_all(&mut self, requests: &StreamRequests<EchoRequest>) {
        while self.sent < self.total {
            let request = EchoRequest {
                payload: vec![self.sent as u8; 8].into(),
            };
            if !requests.try_send(&request).unwrap() {
                return;
            }
            self.sent += 1;
        }
        requests.half_close();
    }
}

impl<T: prost::Message + Default + 'static> StreamHandler<EchoRequest, T> for Echoer
where
    T: std::fmt::Debug,
{
    fn on_writable(&mut self, requests: &StreamRequests<EchoRequest>) {
        self.send_all(requests);
    }

    fn on_messages(&mut self, messages: StreamBatch<'_, T>, _: &StreamRequests<EchoRequest>) {
        for message in messages {
            let _ = self.seen.send(Seen::Message(message.encode_to_vec()));
        }
    }

    fn on_closed(&mut self, outcome: Result<(), Status>) {
        let _ = self.seen.send(Seen::Closed(outcome.map_err(|s| s.code())));
    }
}

/// The generated stub's `<method>_with` variants, one per stream kind,
/// against `bench.proto`'s `EchoStreamService`.
#[test]
fn a_generated_stub_opens_each_stream_kind_with_a_handler() {
    mprpc::app::logging::init_for_tests();
    let mut server = Server::with_options(ServerOptions::default().stream_window(4));
    server.add_service(EchoStreamServiceServer::new(EchoStreams));
    let server = server.start().expect("server starts");
    let stub = EchoStreamServiceStub::new(channel_to(server.local_addr(), 4));
    let options = CallOptions::default();

    let (tx, seen) = queue();
    let pump = PumpRequest {
        count: 300,
        size: 16,
    };
    stub.pump_with(&pump, &options, Forward::<EchoResponse>(tx));
    for _ in 0..300 {
        let Seen::Message(reply) = next(&seen) else {
            panic!("a message before the end")
        };
        assert_eq!(reply.payload.len(), 16);
    }
    assert_eq!(next(&seen), Seen::Closed(Ok(())));

    let (tx, seen) = queue();
    let upload = Echoer {
        sent: 0,
        total: 50,
        seen: tx,
    };
    stub.collect_with(&options, upload);
    let summary = StreamSummary {
        messages: 50,
        bytes: 400,
    };
    assert_eq!(next(&seen), Seen::Message(summary.encode_to_vec()));
    assert_eq!(next(&seen), Seen::Closed(Ok(())));

    let (tx, seen) = queue();
    let chat = Echoer {
        sent: 0,
        total: 40,
        seen: tx,
    };
    stub.echo_stream_with(&options, chat);
    for i in 0..40u8 {
        let echo = EchoResponse {
            payload: vec![i; 8].into(),
        };
        assert_eq!(next(&seen), Seen::Message(echo.encode_to_vec()));
    }
    assert_eq!(next(&seen), Seen::Closed(Ok(())));
    stop(server);
}
