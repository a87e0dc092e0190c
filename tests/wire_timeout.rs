//! What goes on the wire: the `timeout_ms` a channel sends is the call's
//! budget left at the moment the request is written, including after the
//! channel had to wait for its connect. The "provider" is a raw listener
//! that reads the request frame itself.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mprpc::protocol::mprpc::{Decoder, Frame, Request};
use mprpc::{CallOptions, Channel};

const BUDGET_MS: u64 = 4000;

/// Reads one request frame from `stream`, or `None` if nothing comes
/// within `wait` (a connection that sends nothing).
fn read_request(stream: &mut TcpStream, wait: Duration) -> Option<Request> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = BytesMut::new();
    let decoder = Decoder::default();
    loop {
        if let Some(frame) = decoder.decode(&mut buf).expect("a valid stream") {
            let Frame::Request(r) = frame else {
                panic!("not a request: {frame:?}")
            };
            return Some(r);
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Starts a call whose reply never comes (the test reads its request and
/// then drops the channel).
fn start_call(channel: &Channel) -> mprpc::client::PendingCall {
    let opts = CallOptions::with_timeout(Duration::from_millis(BUDGET_MS));
    channel.call_async("Svc", "Method", Bytes::from_static(b"x"), &opts)
}

#[test]
fn an_immediate_send_carries_the_whole_budget() {
    mprpc::app::logging::init_for_tests();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let channel = Channel::direct(listener.local_addr().unwrap()).unwrap();
    let began = Instant::now();
    let _call = start_call(&channel);
    let (mut stream, _) = listener.accept().unwrap();
    let request = read_request(&mut stream, Duration::from_secs(5)).expect("a request");
    let waited = began.elapsed().as_millis() as u64;
    let sent = request.timeout_ms as u64;
    assert!(
        sent <= BUDGET_MS && sent + waited + 5 >= BUDGET_MS,
        "sent {sent} ms after {waited} ms"
    );
}

#[test]
fn a_send_after_waiting_for_a_connect_carries_what_is_left() {
    mprpc::app::logging::init_for_tests();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen(2) again on our own socket, to shrink the accept queue.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let addr: SocketAddr = listener.local_addr().unwrap();
    // Fill the accept queue: the kernel drops further SYNs until we accept,
    // so the channel's connect waits for a SYN retransmission (about 1 s).
    let fillers: Vec<_> = (0..3)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok())
        .collect();
    let channel = Channel::direct(addr).unwrap();
    let began = Instant::now();
    let _call = start_call(&channel);
    // The wait for the connect is the scenario under test, not a guess at
    // when something is ready.
    std::thread::sleep(Duration::from_millis(300));
    let freed = began.elapsed().as_millis() as u64;
    let mut request = None;
    while request.is_none() {
        let (mut stream, _) = listener.accept().unwrap();
        request = read_request(&mut stream, Duration::from_millis(300));
    }
    let received = began.elapsed().as_millis() as u64;
    let sent = request.unwrap().timeout_ms as u64;
    drop(fillers);
    println!("freed at {freed} ms, received at {received} ms, timeout_ms {sent}");
    assert!(
        sent + freed <= BUDGET_MS + 5,
        "sent {sent} ms, but the connect could not finish before {freed} ms"
    );
    assert!(
        sent + received + 5 >= BUDGET_MS,
        "sent {sent} ms, received at {received} ms"
    );
}
