//! Keepalive pings over real sockets on 127.0.0.1: a provider reached
//! through a relay that, on command, stops forwarding its replies (one way:
//! requests still arrive and run, and the relay's kernel still acknowledges
//! every byte, so TCP itself never notices). The channel must declare the
//! connection dead within `ping_interval + ping_timeout` and fail every
//! call in flight on it with `Unavailable`, long before their deadline; a
//! relay that forwards keeps its one connection however long it idles.
//! (`scripts/faults.sh` checks the same across network namespaces, with the
//! link cut one way by nftables.)

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mprpc::client::{Channel, ChannelOptions};
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::{CallOptions, Code, Endpoint, StaticDiscover};

mod common;
use common::services::Tracked;

const PING_INTERVAL: Duration = Duration::from_millis(200);
const PING_TIMEOUT: Duration = Duration::from_millis(300);
/// The calls' own deadline: far beyond the ping's bound, so a call that
/// fails before it was failed by the ping.
const DEADLINE: Duration = Duration::from_secs(30);
/// Slack on top of interval + timeout for timers and a busy machine.
const SLACK: Duration = Duration::from_secs(3);

type Runs = Arc<parking_lot::Mutex<Vec<Bytes>>>;

fn provider() -> (ServerHandle, Runs) {
    let (service, runs) = Tracked::new();
    let mut server = Server::with_options(
        ServerOptions::default()
            .reactor_threads(1)
            .worker_threads(2),
    );
    server.add_blocking_service(service);
    (server.start().expect("start a provider"), runs)
}

/// A TCP relay to `upstream`, one thread per direction per connection.
/// With `drop_replies` set it reads what the provider sends and throws it
/// away: the client's connection stays open and acknowledged, and silent.
struct Relay {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    drop_replies: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        listener.set_nonblocking(true).unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap(),
            accepted: Arc::default(),
            drop_replies: Arc::default(),
            stop: Arc::default(),
        };
        let (accepted, drop, stop) = (
            relay.accepted.clone(),
            relay.drop_replies.clone(),
            relay.stop.clone(),
        );
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(2));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                accepted.fetch_add(1, Ordering::SeqCst);
                let server = TcpStream::connect(upstream).expect("relay connects upstream");
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    None,
                    &stop,
                );
                pump(server, client, Some(drop.clone()), &stop);
            }
        });
        relay
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either ends or the relay stops; while
/// `drop` is set, what is read is discarded instead.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    drop: Option<Arc<AtomicBool>>,
    stop: &Arc<AtomicBool>,
) {
    let stop = stop.clone();
    from.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while !stop.load(Ordering::SeqCst) {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(_) => break,
            };
            if drop.as_ref().is_some_and(|d| d.load(Ordering::SeqCst)) {
                continue;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

fn channel(to: SocketAddr, ping: Option<Duration>) -> Channel {
    Channel::new(
        Arc::new(StaticDiscover::new(vec![Endpoint::new(to)])),
        ChannelOptions::default()
            .ping_interval(ping)
            .ping_timeout(PING_TIMEOUT)
            .eject_after_timeouts(0),
    )
    .unwrap()
}

#[test]
fn a_connection_whose_replies_stop_is_declared_dead_and_its_calls_fail_unavailable() {
    let (server, runs) = provider();
    let relay = Relay::start(server.local_addr());
    let ch = channel(relay.addr, Some(PING_INTERVAL));
    let options = CallOptions::with_timeout(DEADLINE);
    ch.call(
        "Tracked",
        "Run",
        Bytes::from_static(b"first"),
        &options,
        None,
    )
    .expect("a call through the relay");

    relay.drop_replies.store(true, Ordering::SeqCst);
    let began = Instant::now();
    let calls: Vec<_> = (0..5)
        .map(|i| ch.call_async("Tracked", "Run", Bytes::from(format!("lost-{i}")), &options))
        .collect();
    let outcomes: Vec<_> = calls.into_iter().map(|c| c.wait()).collect();
    let took = began.elapsed();

    // Every call in flight has exactly one outcome: Unavailable, naming
    // the dead connection, well within the ping's bound (not the deadline).
    for outcome in &outcomes {
        let e = outcome
            .as_ref()
            .expect_err("a call succeeded with replies dropped");
        assert_eq!(e.code(), Code::Unavailable, "{e}");
        assert!(e.message().contains("declared dead"), "{e}");
    }
    assert!(
        took < PING_INTERVAL + PING_TIMEOUT + SLACK,
        "calls failed after {took:?}, the ping bound is {:?}",
        PING_INTERVAL + PING_TIMEOUT
    );
    // The requests did arrive (the cut is one way): the handlers ran.
    let lost = |r: &Bytes| r.starts_with(b"lost-");
    let deadline = Instant::now() + SLACK;
    while runs.lock().iter().filter(|r| lost(r)).count() < 5 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(runs.lock().iter().filter(|r| lost(r)).count(), 5);

    // Forwarding again: the channel connects afresh and calls succeed.
    relay.drop_replies.store(false, Ordering::SeqCst);
    let began = Instant::now();
    loop {
        match ch.call(
            "Tracked",
            "Run",
            Bytes::from_static(b"again"),
            &CallOptions::with_timeout(Duration::from_secs(2)),
            None,
        ) {
            Ok(_) => break,
            Err(e) => assert!(began.elapsed() < SLACK * 3, "no recovery: {e}"),
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        relay.accepted.load(Ordering::SeqCst) >= 2,
        "the dead connection was reused"
    );
    drop(ch);
    server.shutdown();
}

#[test]
fn without_pings_the_same_calls_wait_for_their_deadline() {
    // The control: the same cut with pings off is only found by deadlines.
    let (server, _runs) = provider();
    let relay = Relay::start(server.local_addr());
    let ch = channel(relay.addr, None);
    let short = CallOptions::with_timeout(PING_INTERVAL + PING_TIMEOUT + SLACK);
    ch.call("Tracked", "Run", Bytes::from_static(b"first"), &short, None)
        .expect("a call through the relay");
    relay.drop_replies.store(true, Ordering::SeqCst);
    let e = ch
        .call("Tracked", "Run", Bytes::from_static(b"lost"), &short, None)
        .expect_err("a call succeeded with replies dropped");
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    drop(ch);
    server.shutdown();
}

#[test]
fn an_idle_connection_to_a_live_provider_is_kept() {
    let (server, runs) = provider();
    let relay = Relay::start(server.local_addr());
    let ch = channel(relay.addr, Some(PING_INTERVAL));
    let options = CallOptions::with_timeout(DEADLINE);
    ch.call("Tracked", "Run", Bytes::from_static(b"a"), &options, None)
        .unwrap();
    // Idle for several intervals, then a call: pinged at once (idle past
    // the interval), answered, and carried on the same connection.
    thread::sleep(PING_INTERVAL * 5);
    for i in 0..20 {
        ch.call(
            "Tracked",
            "Run",
            Bytes::from(format!("b-{i}")),
            &options,
            None,
        )
        .expect("calls on a live connection");
        thread::sleep(PING_INTERVAL / 4);
    }
    assert_eq!(runs.lock().len(), 21);
    assert_eq!(
        relay.accepted.load(Ordering::SeqCst),
        1,
        "the live connection was closed"
    );
    drop(ch);
    server.shutdown();
}
