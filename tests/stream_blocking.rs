//! Blocking stream handlers end to end over real sockets on 127.0.0.1:
//! `TickerRpc` of mprpc-examples, generated with `blocking_stream`, its
//! handlers plain functions on the worker pool. Each stream kind through
//! the generated stub (on a worker, never a reactor); a blocking sender
//! out of credit that resumes when credit comes, unary calls answered
//! meanwhile; a client cancel, the deadline and a dropped connection each
//! waking a handler blocked in `send` or in a read, its worker free again;
//! streams past the pool queued and past its queue refused; a shutdown
//! ending a blocked handler after its grace period.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mprpc::client::{Channel, ChannelOptions};
use mprpc::discovery::StaticDiscover;
use mprpc::protocol::mprpc::StreamShape;
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::{CallOptions, Code};
use mprpc_examples::blocking::{Tick, TickRequest, TickerRpcServer, TickerRpcStub};
use mprpc_examples::{Ticker, TickerStats};
use prost::Message;

mod common;
use common::streams::{Got, StreamClient};

/// A server of a `Ticker` published the ordinary (not blocking) way:
/// its stream handlers still get a worker pool of `workers` threads.
fn start(workers: usize) -> (ServerHandle, Arc<TickerStats>) {
    start_with(options(workers))
}

fn options(workers: usize) -> ServerOptions {
    ServerOptions::default()
        .reactor_threads(2)
        .worker_threads(workers)
        .stream_window(4)
}

fn start_with(options: ServerOptions) -> (ServerHandle, Arc<TickerStats>) {
    mprpc::app::logging::init_for_tests();
    let ticker = Ticker::new();
    let stats = ticker.stats();
    let mut server = Server::with_options(options);
    server.add_service(TickerRpcServer::new(ticker));
    (server.start().expect("server starts"), stats)
}

/// A stub whose streams grant the server `window` messages at a time.
fn stub(server: &ServerHandle, window: usize) -> TickerRpcStub {
    let discover = StaticDiscover::single(server.local_addr()).unwrap();
    let options = ChannelOptions::default().stream_window(window);
    TickerRpcStub::new(Channel::new(Arc::new(discover), options).unwrap())
}

/// A raw client of `TickerRpc` (its unary method is `Ping`).
fn raw(server: &ServerHandle) -> StreamClient {
    StreamClient::connect_to(server.local_addr(), "TickerRpc", "Ping")
}

fn stop(server: ServerHandle) {
    server.shutdown();
    server.wait();
}

/// Polls (bounded) until `done` holds.
fn wait_until(what: &str, stats: &TickerStats, done: impl Fn(&TickerStats) -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !done(stats) {
        assert!(
            Instant::now() < until,
            "timed out waiting for {what}: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn count(n: u64) -> Vec<u8> {
    TickRequest { count: n }.encode_to_vec()
}

fn tick(seq: u64) -> Tick {
    Tick {
        seq,
        ..Tick::default()
    }
}

/// The next tick of stream `id` on a raw client.
fn next_tick(c: &mut StreamClient, id: u64) -> u64 {
    match c.next_not_credit() {
        Got::Message(got, payload) if got == id => Tick::decode(payload).unwrap().seq,
        other => panic!("expected a tick of stream {id}, got {other:?}"),
    }
}

#[test]
fn each_kind_runs_its_blocking_handler_on_the_worker_pool() {
    let (server, stats) = start(2);
    let stub = stub(&server, 4);
    // A server stream past many windows: the sender blocks and resumes.
    let seqs: Vec<u64> = stub
        .ticks(&TickRequest { count: 100 }, &CallOptions::default())
        .map(|t| t.map(|t| t.seq))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(seqs, (0..100).collect::<Vec<_>>());
    // A client stream past the server's window of 4: reading grants more.
    let upload = stub.total(&CallOptions::default());
    for seq in 0..200 {
        upload.send(&tick(seq)).unwrap();
    }
    let total = upload.finish().unwrap();
    assert_eq!((total.count, total.sum), (200, 199 * 200 / 2));
    // A bidirectional stream: each tick back, doubled.
    let (ticks, mut back) = stub.echo(&CallOptions::default());
    for seq in 1..=20 {
        ticks.send(&tick(seq)).unwrap();
        assert_eq!(back.recv().unwrap().unwrap().seq, seq * 2);
    }
    ticks.finish();
    assert!(back.recv().unwrap().is_none());
    assert_eq!(stats.ended(), [Code::Ok, Code::Ok, Code::Ok]);
    assert_eq!(stats.off_pool.load(Ordering::SeqCst), 0, "ran on a reactor");
    stop(server);
}

#[test]
fn a_blocking_sender_out_of_credit_waits_and_resumes_beside_unary_calls() {
    let (server, stats) = start(1);
    let mut c = raw(&server);
    c.open(1, "Ticks", StreamShape::Server, 3, &count(50));
    for seq in 0..3 {
        assert_eq!(next_tick(&mut c, 1), seq);
    }
    // The handler is blocked in its fourth send, holding the only worker;
    // unary calls on the same connection are answered meanwhile.
    wait_until("the fourth send blocked", &stats, |s| {
        s.sending.load(Ordering::SeqCst) == 1 && s.sent.load(Ordering::SeqCst) == 3
    });
    for id in 100..105u64 {
        let ping = tick(id).encode_to_vec();
        c.unary(id, &ping);
        match c.next_not_credit() {
            Got::Reply(r) => assert_eq!((r.id, r.code, &r.payload[..]), (id, Code::Ok, &ping[..])),
            other => panic!("a blocked stream held a unary call back: {other:?}"),
        }
    }
    c.credit(1, 2);
    assert_eq!((next_tick(&mut c, 1), next_tick(&mut c, 1)), (3, 4));
    wait_until("a send blocked again", &stats, |s| {
        s.sending.load(Ordering::SeqCst) == 1 && s.sent.load(Ordering::SeqCst) == 5
    });
    c.credit(1, 1000);
    for seq in 5..50 {
        assert_eq!(next_tick(&mut c, 1), seq);
    }
    assert_eq!(c.next_not_credit(), Got::End(1, Code::Ok, String::new()));
    assert_eq!(stats.ended(), [Code::Ok]);
    stop(server);
}

#[test]
fn a_client_cancel_wakes_a_handler_blocked_in_send_and_frees_its_worker() {
    let (server, stats) = start(1);
    let stub = stub(&server, 2);
    let mut endless = stub.ticks(&TickRequest { count: 0 }, &CallOptions::default());
    assert_eq!(endless.recv().unwrap().unwrap().seq, 0);
    wait_until("a send blocked", &stats, |s| {
        s.sending.load(Ordering::SeqCst) == 1
    });
    endless.cancel();
    wait_until("the handler to return", &stats, |s| {
        s.running.load(Ordering::SeqCst) == 0 && !s.ended().is_empty()
    });
    assert_eq!(stats.ended(), [Code::Cancelled]);
    // The pool's one worker serves the next stream.
    let seqs: Vec<u64> = stub
        .ticks(&TickRequest { count: 3 }, &CallOptions::default())
        .map(|t| t.unwrap().seq)
        .collect();
    assert_eq!(seqs, [0, 1, 2]);
    assert_eq!(stats.ended(), [Code::Cancelled, Code::Ok]);
    stop(server);
}

#[test]
fn the_deadline_wakes_handlers_blocked_in_send_and_in_a_read() {
    let (server, stats) = start(2);
    let mut c = raw(&server);
    // Blocked in send (a window of one), then in a read (no message comes).
    c.open_with_timeout(5, "Ticks", StreamShape::Server, 1, &count(0), 300);
    assert_eq!(next_tick(&mut c, 5), 0);
    c.open_with_timeout(7, "Total", StreamShape::Client, 8, b"", 300);
    let mut ended = Vec::new();
    while ended.len() < 2 {
        match c.next_not_credit() {
            Got::End(id, Code::DeadlineExceeded, _) => ended.push(id),
            other => panic!("expected the deadline, got {other:?}"),
        }
    }
    ended.sort();
    assert_eq!(ended, [5, 7]);
    wait_until("both handlers to return", &stats, |s| s.ended().len() == 2);
    assert_eq!(stats.ended(), [Code::DeadlineExceeded; 2]);
    stop(server);
}

#[test]
fn a_dropped_connection_wakes_its_blocked_handlers_and_frees_their_workers() {
    let (server, stats) = start(2);
    let mut c = raw(&server);
    c.open(1, "Ticks", StreamShape::Server, 1, &count(0));
    c.open(3, "Echo", StreamShape::Bidi, 8, b"");
    assert_eq!(next_tick(&mut c, 1), 0);
    wait_until("one handler in send, one in a read", &stats, |s| {
        s.running.load(Ordering::SeqCst) == 2 && s.sending.load(Ordering::SeqCst) == 1
    });
    common::raw::reset(c.stream);
    wait_until("both handlers to return", &stats, |s| {
        s.running.load(Ordering::SeqCst) == 0 && s.ended().len() == 2
    });
    assert_eq!(stats.ended(), [Code::Cancelled; 2]);
    // Both workers are free: two streams at once run to their end.
    let stub = stub(&server, 8);
    let (ticks, mut back) = stub.echo(&CallOptions::default());
    let seqs: Vec<u64> = stub
        .ticks(&TickRequest { count: 4 }, &CallOptions::default())
        .map(|t| t.unwrap().seq)
        .collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    ticks.send(&tick(21)).unwrap();
    assert_eq!(back.recv().unwrap().unwrap().seq, 42);
    ticks.finish();
    assert!(back.recv().unwrap().is_none());
    assert_eq!(stats.off_pool.load(Ordering::SeqCst), 0);
    stop(server);
}

#[test]
fn a_shutdown_ends_a_blocked_handler_after_its_grace_period() {
    let options = options(1).shutdown_grace(Duration::from_millis(100));
    let (server, stats) = start_with(options);
    let stub = stub(&server, 1);
    let mut endless = stub.ticks(&TickRequest { count: 0 }, &CallOptions::default());
    assert_eq!(endless.recv().unwrap().unwrap().seq, 0);
    wait_until("a send blocked", &stats, |s| {
        s.sending.load(Ordering::SeqCst) == 1
    });
    // Stopping joins the pool: a handler left blocked would hold it.
    let (stopped, told) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        stop(server);
        let _ = stopped.send(());
    });
    told.recv_timeout(Duration::from_secs(20))
        .expect("the server stops");
    assert_eq!(stats.ended(), [Code::ShuttingDown]);
    let status = loop {
        match endless.recv() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a stream cut by a shutdown ended Ok"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::ShuttingDown, "{status}");
}

#[test]
fn streams_past_the_pool_wait_in_its_queue_and_past_the_queue_are_overloaded() {
    let (server, stats) = start_with(options(1).max_queued_calls(1));
    let mut c = raw(&server);
    c.open(1, "Ticks", StreamShape::Server, 1, &count(0));
    assert_eq!(next_tick(&mut c, 1), 0);
    wait_until("the only worker blocked in send", &stats, |s| {
        s.sending.load(Ordering::SeqCst) == 1
    });
    // The second waits in the queue; the third finds it full.
    c.open(2, "Ticks", StreamShape::Server, 8, &count(2));
    c.open(3, "Ticks", StreamShape::Server, 8, &count(2));
    match c.next_not_credit() {
        Got::End(3, Code::Overloaded, _) => {}
        other => panic!("expected the third stream refused, got {other:?}"),
    }
    // The first ends: its worker takes the second.
    c.reset(1);
    assert_eq!((next_tick(&mut c, 2), next_tick(&mut c, 2)), (0, 1));
    assert_eq!(c.next_not_credit(), Got::End(2, Code::Ok, String::new()));
    assert_eq!(stats.ended(), [Code::Cancelled, Code::Ok]);
    stop(server);
}
