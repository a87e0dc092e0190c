//! The acceptor under file-descriptor exhaustion: when accept(2) fails with
//! EMFILE, connections already queued raise no new readiness event, so the
//! acceptor must retry on its own once descriptors are free again.
//!
//! This binary lowers its own RLIMIT_NOFILE, so it holds this test only.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use mprpc::protocol::mprpc::{encode_request, Decoder, Frame, RequestHead};
use mprpc::server::{Server, ServerOptions};
use mprpc::Code;

mod common;
use common::services::TestService;

fn lower_fd_limit(soft: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = soft.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
}

fn echo(stream: &mut TcpStream, id: u64) -> Code {
    let mut out = BytesMut::new();
    let head = RequestHead {
        id,
        timeout_ms: 0,
        service: "Test",
        method: "Echo",
    };
    encode_request(head, b"hi", &mut out);
    stream.write_all(&out).unwrap();
    let (decoder, mut buf, mut chunk) = (Decoder::default(), BytesMut::new(), [0u8; 256]);
    loop {
        if let Some(Frame::Response(r)) = decoder.decode(&mut buf).unwrap() {
            return r.code;
        }
        let n = stream
            .read(&mut chunk)
            .expect("a reply before the read timeout");
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn queued_connections_are_accepted_once_descriptors_free_up() {
    common::logs::captured_logs();
    let mut server = Server::with_options(ServerOptions::default().reactor_threads(1));
    server.add_service(TestService);
    let server = server.start().unwrap();
    let addr = server.local_addr();
    // Lowered after the start, which raises the limit and fits
    // max_connections to it: descriptors can still run out when something
    // else in the process takes them (here: the clients).
    lower_fd_limit(64);

    // Client and server sockets share this process's 64 descriptors: the
    // server runs out while accepting, leaving the last clients queued (and
    // at some point the clients cannot connect either).
    let mut clients = Vec::new();
    while clients.len() < 60 {
        match TcpStream::connect(addr) {
            Ok(stream) => clients.push(stream),
            Err(_) => break,
        }
    }
    // The limit was reached: accept(2) failed for lack of descriptors
    // (not merely "the server has not accepted them all yet").
    // The connection whose accept failed stays queued; how many are still
    // queued when the clients stop is a race (a client's failed connect
    // frees a descriptor the server may take), so it is not asserted.
    let line = common::logs::wait_logged_by(addr, &["accept failed"]);
    assert!(line.contains("Too many open files"), "{line}");

    // Free descriptors: the server sees these close and closes its ends.
    let keep = clients.split_off(clients.len() * 2 / 3);
    drop(clients);

    // No new connection arrives, yet every queued one must be served.
    for (id, mut stream) in keep.into_iter().enumerate() {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(echo(&mut stream, id as u64), Code::Ok, "client {id}");
    }
    server.shutdown();
    server.wait();
}
