//! Memory a hostile peer can make a provider hold: a frame header's
//! announced length reserves nothing, large partial frames are bounded by
//! the process's buffer budget (`max_buffered_bytes`), and the memory of
//! large frames goes back to the kernel once they are done. A test binary
//! of its own: it reads this process's VmSize and VmRSS, which the servers
//! of other tests running beside it would disturb.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mprpc::protocol::mprpc::{encode_request, RequestHead};
use mprpc::server::{Server, ServerOptions};
use mprpc::Code;

mod common;
use common::raw::RawClient;
use common::services::TestService;

const MIB: usize = 1 << 20;

/// A field of /proc/self/status (VmSize, VmRSS), in MiB.
fn status_mib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    kib / 1024
}

/// The start of a request frame whose header announces a `body_len` body:
/// its header and the first bytes of the body.
fn announcing(body_len: usize) -> Vec<u8> {
    let mut frame = BytesMut::new();
    let head = RequestHead {
        id: 1,
        timeout_ms: 0,
        service: "Test",
        method: "Echo",
    };
    encode_request(head, b"", &mut frame);
    frame[4..8].copy_from_slice(&(body_len as u32).to_be_bytes());
    frame.to_vec()
}

/// Connects, sends `head` then `body` (stopping at the first error), and
/// keeps the connection open; `None` if the server closed it meanwhile.
fn send_partial(addr: SocketAddr, head: &[u8], body: &'static [u8]) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head).ok()?;
    s.write_all(body).ok()?;
    Some(s)
}

/// The server closed `stream` (end of stream or a reset) within 500 ms;
/// a stream still held times out instead.
fn closed_by_server(mut stream: &TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(n) => n == 0,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Waits (up to `limit`) for resident memory to fall to `at_most` MiB;
/// the last figure seen.
fn rss_falls_to(at_most: usize, limit: Duration) -> usize {
    let began = Instant::now();
    loop {
        let rss = status_mib("VmRSS");
        if rss <= at_most || began.elapsed() >= limit {
            return rss;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hostile_frame_lengths_cost_only_what_arrives_and_memory_goes_back() {
    mprpc::app::logging::init_for_tests();
    let mut server = Server::with_options(
        ServerOptions::default()
            .reactor_threads(1)
            .worker_threads(1)
            .max_frame_size(16 * MIB)
            .max_buffered_bytes(64 * MIB),
    );
    server.add_service(TestService);
    let server = server.start().unwrap();
    let addr = server.local_addr();
    let body: &'static [u8] = vec![b'x'; 12 * MIB].leak();
    let mut good = RawClient::connect(addr);
    assert_eq!(good.call(1, "Test", "Echo", b"warm").code, Code::Ok);
    let (vm0, rss0) = (status_mib("VmSize"), status_mib("VmRSS"));

    // 1. Forty headers announcing 16 MiB each reserve nothing.
    let header = announcing(16 * MIB - 1);
    let announcers: Vec<_> = (0..40)
        .map(|_| send_partial(addr, &header, b"").expect("a header alone is kept"))
        .collect();
    assert_eq!(good.call(2, "Test", "Echo", b"after").code, Code::Ok);
    std::thread::sleep(Duration::from_millis(200));
    let vm_growth = status_mib("VmSize").saturating_sub(vm0);
    assert!(
        vm_growth < 128,
        "40 announced 16 MiB frames grew the address space by {vm_growth} MiB"
    );
    drop(announcers);

    // 2. Eight 12 MiB partial frames pass the 64 MiB budget: some close.
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let header = header.clone();
            std::thread::spawn(move || send_partial(addr, &header, body))
        })
        .collect();
    let held: Vec<TcpStream> = senders
        .into_iter()
        .filter_map(|s| s.join().unwrap())
        .collect();
    // A refused sender's writes may all have reached the kernel before the
    // server closed it, so closes are read back rather than inferred.
    let kept = held.iter().filter(|s| !closed_by_server(s)).count();
    assert!(kept < 8, "every 12 MiB partial frame was kept");
    assert!(
        server.buffered_bytes() <= 64 * MIB,
        "{} bytes charged over a 64 MiB budget",
        server.buffered_bytes()
    );
    assert_eq!(good.call(3, "Test", "Echo", b"still").code, Code::Ok);
    drop(held);

    // 3. Large frames answered on a connection that stays open.
    for id in 10..14 {
        let reply = good.call(id, "Test", "Echo", &body[..8 * MIB]);
        assert_eq!((reply.code, reply.payload.len()), (Code::Ok, 8 * MIB));
    }
    drop(good);
    let rss = rss_falls_to(rss0 + 32, Duration::from_secs(5));
    assert!(
        rss <= rss0 + 32,
        "resident memory stayed at {rss} MiB (from {rss0} MiB) after the frames were done"
    );
    server.shutdown();
    server.wait();
}
