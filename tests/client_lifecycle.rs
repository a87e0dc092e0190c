//! The channel's I/O thread outlives the last `Channel` only as long as
//! calls are still in flight, then exits. Kept in its own test binary so
//! no other test's channels share the process.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mprpc::client::Channel;
use mprpc::protocol::mprpc::{encode_response, Decoder, Frame};
use mprpc::{CallOptions, Code};

/// Threads of this process named like the client's I/O driver.
fn driver_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.trim() == "mprpc-client-io")
                .count()
        })
        .unwrap_or(0)
}

/// Answers every request on one connection after `delay`.
fn slow_echo_server(delay: Duration) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let decoder = Decoder::default();
        let mut rbuf = BytesMut::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            rbuf.extend_from_slice(&chunk[..n]);
            while let Ok(Some(Frame::Request(req))) = decoder.decode(&mut rbuf) {
                thread::sleep(delay);
                let mut out = BytesMut::new();
                encode_response(req.id, Code::Ok, "", &req.payload, &mut out);
                if stream.write_all(&out).is_err() {
                    return;
                }
            }
        }
    });
    addr
}

#[test]
fn the_driver_finishes_in_flight_calls_then_exits_after_the_last_channel_drops() {
    let addr = slow_echo_server(Duration::from_millis(200));
    assert_eq!(driver_threads(), 0);
    let channel = Channel::direct(addr).unwrap();
    let clone = channel.clone();
    // The thread names itself once it runs; clones share it.
    wait_until("the driver thread is up", || driver_threads() == 1);
    let (tx, rx) = mpsc::channel();
    clone.call_with(
        "Test",
        "echo",
        Bytes::from_static(b"late"),
        &CallOptions::default(),
        move |r| tx.send(r).unwrap(),
    );
    drop(channel);
    drop(clone);
    let reply = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("call completes");
    assert_eq!(reply.unwrap(), "late");
    wait_until("the driver thread exits", || driver_threads() == 0);
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}
