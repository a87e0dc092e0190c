//! Streams on the server, end to end over real sockets on 127.0.0.1,
//! driven frame by frame by a hand-written wire client: each shape with
//! async handlers, credit exhaustion and resumption, cancel from each
//! side, a deadline mid-stream, a connection dropped mid-stream, and unary
//! calls answered beside a stalled stream on the same connection.

use std::time::{Duration, Instant};

use mprpc::protocol::mprpc::StreamShape;
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::Code;

mod common;
use common::streams::{encoded, Got, StreamClient, Streams};

fn start() -> ServerHandle {
    mprpc::app::logging::init_for_tests();
    let mut server =
        Server::with_options(ServerOptions::default().reactor_threads(2).stream_window(4));
    server.add_service(Streams);
    server.start().expect("server starts")
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

fn stop(server: ServerHandle) {
    server.shutdown();
    server.wait();
}

#[test]
fn a_server_stream_sends_every_message_then_ends_ok() {
    let server = start();
    let mut c = StreamClient::connect(server.local_addr());
    c.open(1, "Count", StreamShape::Server, 64, &encoded(10));
    for i in 0..10 {
        assert_eq!(c.number(1), i);
    }
    assert_eq!(c.next(), Got::End(1, Code::Ok, String::new()));
    let count = server.metrics().get("Streams", "Count").unwrap().calls;
    assert_eq!(count, 1);
    stop(server);
}

#[test]
fn a_sender_out_of_credit_waits_and_resumes_and_unary_calls_go_on() {
    let server = start();
    let mut c = StreamClient::connect(server.local_addr());
    c.open(1, "Count", StreamShape::Server, 3, &encoded(50));
    for i in 0..3 {
        assert_eq!(c.number(1), i);
    }
    // Out of credit: the handler waits; the connection's unary calls do not.
    for id in 100..110u64 {
        c.unary(id, b"ping");
        match c.next() {
            Got::Reply(r) => {
                assert_eq!((r.id, r.code, &r.payload[..]), (id, Code::Ok, &b"ping"[..]))
            }
            other => panic!("a stalled stream held a unary call back: {other:?}"),
        }
    }
    assert!(
        c.quiet_for(Duration::from_millis(200)),
        "nothing is sent past the credit"
    );
    c.credit(1, 2);
    assert_eq!((c.number(1), c.number(1)), (3, 4));
    c.credit(1, 1000);
    for i in 5..50 {
        assert_eq!(c.number(1), i);
    }
    assert_eq!(c.next(), Got::End(1, Code::Ok, String::new()));
    stop(server);
}

#[test]
fn a_client_reset_drops_the_handler_and_the_connection_goes_on() {
    let server = start();
    let mut c = StreamClient::connect(server.local_addr());
    c.open(7, "Count", StreamShape::Server, 2, &encoded(0));
    assert_eq!((c.number(7), c.number(7)), (0, 1));
    c.reset(7);
    wait_for_outcome(&server, "Count", Code::Cancelled);
    // Credit for the reset stream is dropped; the id can be used again.
    c.credit(7, 10);
    c.unary(7, b"again");
    match c.next() {
        Got::Reply(r) => assert_eq!((r.id, &r.payload[..]), (7, &b"again"[..])),
        other => panic!("{other:?}"),
    }
    stop(server);
}

#[test]
fn a_handler_that_fails_ends_its_stream_with_its_status() {
    let server = start();
    let mut c = StreamClient::connect(server.local_addr());
    c.open(3, "Count", StreamShape::Server, 64, &encoded(1002));
    assert_eq!((c.number(3), c.number(3)), (0, 1));
    assert_eq!(
        c.next(),
        Got::End(3, Code::Application, "failed after 2".into())
    );
    stop(server);
}

#[test]
fn the_deadline_ends_a_stream_mid_way() {
    let server = start();
    let mut c = StreamClient::connect(server.local_addr());
    c.open_with_timeout(5, "Count", StreamShape::Server, 1, &encoded(0), 300);
    assert_eq!(c.number(5), 0);
    match c.next() {
        Got::End(5, Code::DeadlineExceeded, _) => {}
        other => panic!("expected the deadline, got {other:?}"),
    }
    stop(server);
}

#[test]
fn a_dropped_connection_ends_its_streams_and_the_server_serves_on() {
    let server = start();
    let mut c = StreamClient::connect(server.local_addr());
    c.open(1, "Count", StreamShape::Server, 1, &encoded(0));
    c.open(2, "Echo", StreamShape::Bidi, 1, b"");
    assert_eq!(c.number(1), 0);
    common::raw::reset(c.stream);
    wait_for_outcome(&server, "Count", Code::Cancelled);
    wait_for_outcome(&server, "Echo", Code::Cancelled);
    let mut again = StreamClient::connect(server.local_addr());
    again.open(1, "Count", StreamShape::Server, 8, &encoded(2));
    assert_eq!((again.number(1), again.number(1)), (0, 1));
    assert_eq!(again.next(), Got::End(1, Code::Ok, String::new()));
    stop(server);
}

#[test]
fn a_client_stream_is_granted_credit_and_gets_one_reply() {
    let server = start();
    let mut c = StreamClient::connect(server.local_addr());
    c.open(4, "Sum", StreamShape::Client, 1, b"");
    assert_eq!(c.next(), Got::Credit(4, 4), "the server's window");
    let mut granted = 4;
    for n in 1..=10u64 {
        while granted == 0 {
            match c.next() {
                Got::Credit(4, more) => granted += more,
                other => panic!("expected credit, got {other:?}"),
            }
        }
        c.message(4, &encoded(n));
        granted -= 1;
    }
    c.end(4);
    assert_eq!(c.number(4), 55);
    assert_eq!(c.next_not_credit(), Got::End(4, Code::Ok, String::new()));
    stop(server);
}

#[test]
fn a_client_past_its_credit_has_its_stream_reset() {
    let server = start();
    let mut c = StreamClient::connect(server.local_addr());
    c.open(4, "Sum", StreamShape::Client, 1, b"");
    assert_eq!(c.next(), Got::Credit(4, 4));
    // In one write: a handler reading them one by one may grant credit
    // between reads (it grants what it read before it waits).
    let five: Vec<Vec<u8>> = (0..5).map(encoded).collect();
    c.messages(4, &five);
    loop {
        match c.next() {
            Got::Credit(4, _) => continue,
            Got::Reset(4, code, _) => {
                assert_eq!(code, Code::ResourceExhausted);
                break;
            }
            other => panic!("expected a reset, got {other:?}"),
        }
    }
    stop(server);
}

#[test]
fn a_bidi_stream_echoes_each_message() {
    let server = start();
    let mut c = StreamClient::connect(server.local_addr());
    c.open(9, "Echo", StreamShape::Bidi, 16, b"");
    assert_eq!(c.next(), Got::Credit(9, 4));
    for word in ["a", "b", "c"] {
        c.message(9, &prost::Message::encode_to_vec(&word.to_string()));
        match c.next_not_credit() {
            Got::Message(9, reply) => {
                assert_eq!(
                    <String as prost::Message>::decode(reply).unwrap(),
                    format!("echo {word}")
                )
            }
            other => panic!("{other:?}"),
        }
    }
    c.end(9);
    assert_eq!(c.next_not_credit(), Got::End(9, Code::Ok, String::new()));
    stop(server);
}

#[test]
fn shapes_and_kinds_that_do_not_match_are_unimplemented() {
    let server = start();
    let mut c = StreamClient::connect(server.local_addr());
    // A streaming method called as a unary call.
    let mut raw = common::raw::RawClient::connect(server.local_addr());
    let r = raw.call(1, "Streams", "Count", &encoded(3));
    assert_eq!(r.code, Code::Unimplemented, "{}", r.error_str());
    // A unary method opened as a stream, and a stream in the wrong shape.
    c.open(2, "Unary", StreamShape::Server, 4, b"");
    assert!(matches!(c.next(), Got::End(2, Code::Unimplemented, _)));
    c.open(3, "Count", StreamShape::Bidi, 4, b"");
    match c.next() {
        Got::Credit(3, _) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(c.next(), Got::End(3, Code::Unimplemented, _)));
    // An unknown service is reset at once.
    let mut other = StreamClient::connect(server.local_addr());
    let head = mprpc::protocol::mprpc::RequestHead {
        id: 4,
        timeout_ms: 0,
        service: "Nope",
        method: "M",
    };
    let none = mprpc::Metadata::new();
    let meta = mprpc::protocol::mprpc::RequestMeta {
        metadata: &none,
        trace: None,
        reply_metadata: false,
    };
    let mut out = bytes::BytesMut::new();
    mprpc::protocol::mprpc::encode_stream_open(head, StreamShape::Server, 1, meta, b"", &mut out);
    std::io::Write::write_all(&mut other.stream, &out).unwrap();
    assert!(matches!(
        other.next(),
        Got::Reset(4, Code::UnknownService, _)
    ));
    stop(server);
}
