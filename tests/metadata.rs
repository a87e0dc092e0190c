//! Call metadata, trace ids and interceptors over real sockets on
//! 127.0.0.1: metadata both ways for inline, pool and async handlers and
//! for blocking, callback and future calls; a version 1 frame (no
//! metadata) still answered; trace ids made up at the first hop, carried
//! through a middle tier and logged in each call's span; interceptors on
//! both sides refusing calls and observing each call once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mprpc::client::Channel;
use mprpc::protocol::mprpc::{
    encode_request_meta, Decoder, Frame, RequestHead, RequestMeta, Response,
};
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::service::ReplyFuture;
use mprpc::{
    CallContext, CallInfo, CallOptions, ChannelOptions, ClientCall, ClientInterceptor, Code,
    Interceptor, Metadata, Outcome, Service, StaticDiscover, Status, TraceId,
};
use parking_lot::Mutex;

mod common;
use common::logs::{captured_logs, wait_logged};

/// `Echo` answers with the trace id it serves under, copies the request's
/// metadata into the reply's and adds `served-by`; it logs one line.
/// `later` makes it a service that answers later (a future).
struct Meta {
    name: &'static str,
    later: bool,
}

/// Counts the run and logs a line (in the call's span).
fn note(ctx: &CallContext) {
    tracing::info!(marker = %ctx.metadata.get("marker").unwrap_or("-"), "meta handler ran");
}

fn echo(name: &str, ctx: &CallContext) -> Result<BytesMut, Status> {
    for (key, value) in ctx.metadata.iter() {
        ctx.set_reply_metadata(key, value).unwrap();
    }
    ctx.set_reply_metadata("served-by", name).unwrap();
    Ok(BytesMut::from(ctx.trace_id.to_string().as_bytes()))
}

impl Service for Meta {
    fn name(&self) -> &'static str {
        self.name
    }

    fn methods(&self) -> &'static [&'static str] {
        &["Echo"]
    }

    fn call(&self, _: &str, ctx: &CallContext, _: Bytes, out: &mut BytesMut) -> Result<(), Status> {
        note(ctx);
        out.extend_from_slice(&echo(self.name, ctx)?);
        Ok(())
    }

    fn answers_later(&self) -> bool {
        self.later
    }

    fn call_later(&self, _: &str, ctx: CallContext, _: Bytes) -> Result<ReplyFuture, Status> {
        let name = self.name;
        Ok(Box::pin(async move {
            note(&ctx);
            // Answer from another thread, as a handler awaiting I/O would.
            let (responder, reply) = mprpc::Responder::pair();
            let ctx2 = ctx.clone();
            std::thread::spawn(move || responder.send(echo(name, &ctx2)));
            reply.await
        }))
    }
}

/// Counts `after` calls and refuses calls whose metadata says `deny`.
#[derive(Default)]
struct Gate {
    before: AtomicUsize,
    seen: Mutex<Vec<(String, Code, String)>>,
}

impl Interceptor for Gate {
    fn before(&self, call: &CallInfo<'_>) -> Result<(), Status> {
        self.before.fetch_add(1, Ordering::SeqCst);
        match call.metadata.get("token") {
            Some("deny") => Err(Status::new(Code::Unauthenticated, "token refused")),
            _ => Ok(()),
        }
    }

    fn after(&self, call: &CallInfo<'_>, outcome: &Outcome) {
        let marker = call.metadata.get("marker").unwrap_or("-").to_owned();
        let service = format!("{}.{}", call.service, call.method);
        self.seen.lock().push((marker, outcome.code, service));
    }
}

fn server(gate: Option<Arc<Gate>>) -> ServerHandle {
    captured_logs();
    let mut server = Server::with_options(
        ServerOptions::default()
            .reactor_threads(1)
            .worker_threads(2),
    );
    server.add_service(Meta {
        name: "Inline",
        later: false,
    });
    server.add_blocking_service(Meta {
        name: "Pool",
        later: false,
    });
    server.add_service(Meta {
        name: "Later",
        later: true,
    });
    if let Some(gate) = gate {
        server.add_interceptor(gate);
    }
    server.start().expect("server starts")
}

/// Writes `frame` and reads one reply.
fn exchange(addr: SocketAddr, frame: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(frame).unwrap();
    let (decoder, mut buf) = (Decoder::default(), BytesMut::new());
    loop {
        if let Some(Frame::Response(reply)) = decoder.decode(&mut buf).unwrap() {
            return reply;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the server closed without replying");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn request(service: &str, metadata: &Metadata, reply_metadata: bool) -> BytesMut {
    let mut frame = BytesMut::new();
    let head = RequestHead {
        id: 9,
        timeout_ms: 5000,
        service,
        method: "Echo",
    };
    let meta = RequestMeta {
        metadata,
        trace: None,
        reply_metadata,
    };
    encode_request_meta(head, meta, b"", &mut frame);
    frame
}

#[test]
fn metadata_goes_both_ways_for_inline_pool_and_async_handlers() {
    let handle = server(None);
    for service in ["Inline", "Pool", "Later"] {
        let sent =
            Metadata::from_pairs([("caller", "web"), ("trace-id", "00000000000000aa")]).unwrap();
        let reply = exchange(handle.local_addr(), &request(service, &sent, true));
        assert_eq!(reply.code, Code::Ok, "{service}: {}", reply.error_str());
        assert_eq!(
            &reply.payload[..],
            b"00000000000000aa",
            "{service}: trace id kept"
        );
        assert_eq!(reply.metadata.get("caller"), Some("web"), "{service}");
        assert_eq!(reply.metadata.get("served-by"), Some(service));
    }
    handle.shutdown();
}

#[test]
fn a_version_1_frame_is_answered_in_version_1_with_a_new_trace_id() {
    let handle = server(None);
    // A request as builds before metadata wrote it, byte for byte.
    let old = b"MP\x01\x01\x00\x00\x00\x18\0\0\0\0\0\0\0\x05\0\0\x13\x88\x06\x04InlineEcho";
    let mut stream = TcpStream::connect(handle.local_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(old).unwrap();
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(&header[..4], b"MP\x01\x02", "a version 1 reply");
    let len = u32::from_be_bytes(header[4..].try_into().unwrap()) as usize;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).unwrap();
    assert_eq!(
        &body[..11],
        b"\0\0\0\0\0\0\0\x05\0\0\0",
        "id 5, Ok, no error"
    );
    let trace = std::str::from_utf8(&body[11..]).unwrap();
    assert!(
        TraceId::parse(trace).is_some_and(|t| t.0 != 0),
        "a trace id was made up: {trace:?}"
    );
    // Reply metadata set by the handler is not sent to a version 1 caller.
    let none = Metadata::new();
    let reply = exchange(handle.local_addr(), &request("Pool", &none, false));
    assert_eq!((reply.code, reply.metadata.len()), (Code::Ok, 0));
    handle.shutdown();
}

#[test]
fn each_call_is_logged_in_a_span_with_service_method_peer_and_trace_id() {
    let handle = server(None);
    for (service, trace) in [
        ("Inline", "00000000000abc01"),
        ("Later", "00000000000abc02"),
    ] {
        let marker = format!("span-{service}");
        let sent = Metadata::from_pairs([("trace-id", trace), ("marker", &marker)]).unwrap();
        let reply = exchange(handle.local_addr(), &request(service, &sent, false));
        assert_eq!(reply.code, Code::Ok);
        let line = wait_logged(&["meta handler ran", &marker]);
        for part in [
            "rpc{".to_owned(),
            format!("service=\"{service}\""),
            "method=\"Echo\"".to_owned(),
            "peer=127.0.0.1:".to_owned(),
            format!("trace_id={trace}"),
        ] {
            assert!(line.contains(&part), "{part} missing from: {line}");
        }
    }
    handle.shutdown();
}

#[test]
fn an_interceptor_refuses_before_the_handler_and_sees_each_call_once() {
    let gate = Arc::new(Gate::default());
    let handle = server(Some(gate.clone()));
    for service in ["Inline", "Pool", "Later"] {
        let marker = format!("deny-{service}");
        let deny = Metadata::from_pairs([("token", "deny"), ("marker", &marker)]).unwrap();
        let reply = exchange(handle.local_addr(), &request(service, &deny, true));
        assert_eq!(reply.code, Code::Unauthenticated, "{service}");
        assert_eq!(reply.error_str(), "token refused");
        let marker = format!("allow-{service}");
        let allow = Metadata::from_pairs([("token", "ok"), ("marker", &marker)]).unwrap();
        let reply = exchange(handle.local_addr(), &request(service, &allow, true));
        assert_eq!(reply.code, Code::Ok, "{service}");
        // The allowed call's own handler ran (found by its marker, as
        // other tests in this binary run handlers meanwhile); the refused
        // one's did not (checked on the logs below).
        wait_logged(&["meta handler ran", &format!("marker={marker}")]);
    }
    handle.shutdown();
    let seen = gate.seen.lock().clone();
    let expected: Vec<(String, Code, String)> = ["Inline", "Pool", "Later"]
        .iter()
        .flat_map(|s| {
            [
                (
                    format!("deny-{s}"),
                    Code::Unauthenticated,
                    format!("{s}.Echo"),
                ),
                (format!("allow-{s}"), Code::Ok, format!("{s}.Echo")),
            ]
        })
        .collect();
    assert_eq!(seen, expected, "each call observed once, in order");
    assert_eq!(gate.before.load(Ordering::SeqCst), 6);
    // The refused calls never reached a handler: no log line with their marker.
    let logs = common::logs::logged();
    assert!(
        !logs.contains("marker=deny-"),
        "a refused call's handler ran:\n{logs}"
    );
}

fn channel_to(handle: &ServerHandle, options: ChannelOptions) -> Channel {
    let discover = StaticDiscover::single(handle.local_addr()).unwrap();
    Channel::new(Arc::new(discover), options).unwrap()
}

#[test]
fn a_channel_sends_metadata_and_reads_the_reply_metadata_in_every_call_style() {
    let handle = server(None);
    let channel = channel_to(&handle, ChannelOptions::default());
    for service in ["Inline", "Pool", "Later"] {
        for style in ["blocking", "callback", "future"] {
            let mut options = CallOptions::default()
                .with_metadata("caller", style)
                .unwrap();
            let reply_metadata = options.capture_reply_metadata();
            let reply = match style {
                "blocking" => channel.call(service, "Echo", Bytes::new(), &options, None),
                "callback" => {
                    let (tx, rx) = std::sync::mpsc::channel();
                    channel.call_with(service, "Echo", Bytes::new(), &options, move |r| {
                        tx.send(r).unwrap()
                    });
                    rx.recv().unwrap()
                }
                _ => channel
                    .call_async(service, "Echo", Bytes::new(), &options)
                    .wait(),
            };
            let trace = reply.unwrap_or_else(|e| panic!("{service} {style}: {e}"));
            let got = reply_metadata.get();
            assert_eq!(got.get("caller"), Some(style), "{service} {style}");
            assert_eq!(got.get("served-by"), Some(service), "{service} {style}");
            // The first hop made a trace id up; none was sent.
            assert_eq!(got.get("trace-id"), None);
            assert!(TraceId::parse(std::str::from_utf8(&trace).unwrap()).is_some());
        }
    }
    // Without metadata or a slot the request goes out as version 1 (what
    // an old server reads); with a slot, as version 2.
    assert_eq!(version_the_channel_sends(&CallOptions::default()), 1);
    let mut capturing = CallOptions::default();
    let _slot = capturing.capture_reply_metadata();
    assert_eq!(version_the_channel_sends(&capturing), 2);
    handle.shutdown();
}

/// The header version of the request a channel sends with `options`, read
/// by a one-shot raw server that answers it with a version 1 reply.
fn version_the_channel_sends(options: &CallOptions) -> u8 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (decoder, mut buf) = (Decoder::default(), BytesMut::new());
        let request = loop {
            if let Some(Frame::Request(request)) = decoder.decode(&mut buf).unwrap() {
                break request;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "the channel closed without a request");
            buf.extend_from_slice(&chunk[..n]);
        };
        let mut reply = BytesMut::new();
        mprpc::protocol::mprpc::encode_response(request.id, Code::Ok, "", b"", &mut reply);
        stream.write_all(&reply).unwrap();
        if request.replies_with_metadata {
            2
        } else {
            1
        }
    });
    let channel = Channel::direct(addr).unwrap();
    let reply = channel.call("Inline", "Echo", Bytes::new(), options, None);
    assert_eq!(reply.unwrap(), Bytes::new());
    server.join().expect("the raw server")
}

/// `Hop` calls `Inline.Echo` on the next server (blocking on the pool, or
/// awaiting it when it answers later) and answers `<own trace id>/<the
/// next hop's>`.
struct Relay {
    name: &'static str,
    later: bool,
    next: Channel,
}

fn hop_reply(own: TraceId, next: Result<Bytes, Status>) -> Result<BytesMut, Status> {
    let next = next?;
    let text = format!("{own}/{}", String::from_utf8_lossy(&next));
    Ok(BytesMut::from(text.as_bytes()))
}

fn pass_marker(ctx: &CallContext) -> CallOptions {
    tracing::info!("relay hop");
    let marker = ctx.metadata.get("marker").unwrap_or("-");
    CallOptions::default()
        .with_metadata("marker", marker)
        .unwrap()
}

impl Service for Relay {
    fn name(&self) -> &'static str {
        self.name
    }

    fn methods(&self) -> &'static [&'static str] {
        &["Hop"]
    }

    fn call(&self, _: &str, ctx: &CallContext, _: Bytes, out: &mut BytesMut) -> Result<(), Status> {
        let options = pass_marker(ctx);
        let next = self
            .next
            .call("Inline", "Echo", Bytes::new(), &options, None);
        out.extend_from_slice(&hop_reply(ctx.trace_id, next)?);
        Ok(())
    }

    fn answers_later(&self) -> bool {
        self.later
    }

    fn call_later(&self, _: &str, ctx: CallContext, _: Bytes) -> Result<ReplyFuture, Status> {
        let options = pass_marker(&ctx);
        let next = self
            .next
            .call_async("Inline", "Echo", Bytes::new(), &options);
        Ok(Box::pin(async move { hop_reply(ctx.trace_id, next.await) }))
    }
}

#[test]
fn a_trace_id_made_at_the_first_hop_reaches_the_last_and_is_in_both_spans() {
    let last = server(None);
    let mut middle = Server::with_options(
        ServerOptions::default()
            .reactor_threads(1)
            .worker_threads(2),
    );
    let next = channel_to(&last, ChannelOptions::default());
    middle.add_blocking_service(Relay {
        name: "PoolRelay",
        later: false,
        next: next.clone(),
    });
    middle.add_service(Relay {
        name: "LaterRelay",
        later: true,
        next,
    });
    let middle = middle.start().unwrap();
    let client = channel_to(&middle, ChannelOptions::default());
    for service in ["PoolRelay", "LaterRelay"] {
        let marker = format!("hop-{service}");
        let options = CallOptions::default()
            .with_metadata("marker", &marker)
            .unwrap();
        let reply = client.call(service, "Hop", Bytes::new(), &options, None);
        let reply = String::from_utf8(reply.unwrap().to_vec()).unwrap();
        let (first, last_hop) = reply.split_once('/').unwrap();
        assert_eq!(first, last_hop, "{service}: the last hop saw another id");
        // Both hops logged inside a span carrying that id.
        let relay_line = wait_logged(&["relay hop", &format!("trace_id={first}")]);
        assert!(relay_line.contains(service), "{relay_line}");
        let last_line = wait_logged(&["meta handler ran", &marker]);
        assert!(
            last_line.contains(&format!("trace_id={first}")),
            "{last_line}"
        );
    }
    // A trace id the caller sets is the one every hop uses.
    let options = CallOptions::default()
        .with_metadata("trace-id", "0000000000c0ffee")
        .unwrap();
    let reply = client.call("LaterRelay", "Hop", Bytes::new(), &options, None);
    assert_eq!(&reply.unwrap()[..], b"0000000000c0ffee/0000000000c0ffee");
    middle.shutdown();
    last.shutdown();
}

/// Adds `client-tag` to every call and refuses calls whose metadata says
/// `local-deny`; records every outcome it is shown.
#[derive(Default)]
struct ClientGate {
    outcomes: Mutex<Vec<(String, Code)>>,
}

impl ClientInterceptor for ClientGate {
    fn before(&self, call: &mut ClientCall<'_>) -> Result<(), Status> {
        if call.metadata.get("local-deny").is_some() {
            return Err(Status::new(
                Code::FailedPrecondition,
                "refused by the client gate",
            ));
        }
        call.metadata.insert("client-tag", "gate").unwrap();
        Ok(())
    }

    fn after(&self, service: &str, method: &str, outcome: &Outcome) {
        self.outcomes
            .lock()
            .push((format!("{service}.{method}"), outcome.code));
    }
}

#[test]
fn a_client_interceptor_adds_metadata_refuses_locally_and_sees_each_outcome_once() {
    let server_gate = Arc::new(Gate::default());
    let handle = server(Some(server_gate.clone()));
    let client_gate = Arc::new(ClientGate::default());
    let options = ChannelOptions::default().with_interceptor(client_gate.clone());
    let channel = channel_to(&handle, options);

    let mut options = CallOptions::default();
    let reply_metadata = options.capture_reply_metadata();
    channel
        .call("Inline", "Echo", Bytes::new(), &options, None)
        .unwrap();
    assert_eq!(reply_metadata.get().get("client-tag"), Some("gate"));

    let refused = CallOptions::default()
        .with_metadata("local-deny", "1")
        .unwrap();
    let err = channel
        .call_async("Pool", "Echo", Bytes::new(), &refused)
        .wait()
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(err.message(), "refused by the client gate");

    // A callback call is seen once too, before its callback runs.
    let (tx, rx) = std::sync::mpsc::channel();
    let gate = client_gate.clone();
    channel.call_with(
        "Inline",
        "Echo",
        Bytes::new(),
        &CallOptions::default(),
        move |r| {
            let seen = gate.outcomes.lock().len();
            tx.send((r.is_ok(), seen)).unwrap()
        },
    );
    assert_eq!(
        rx.recv().unwrap(),
        (true, 3),
        "after ran before the callback"
    );

    // Refused by the server's interceptor: the caller gets its status.
    let denied = CallOptions::default()
        .with_metadata("token", "deny")
        .unwrap();
    let err = channel
        .call("Later", "Echo", Bytes::new(), &denied, None)
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // A cancelled call is an outcome too, seen once: a provider that
    // never answers (a listener nobody accepts on).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let discover = StaticDiscover::single(silent.local_addr().unwrap()).unwrap();
    let options = ChannelOptions::default().with_interceptor(client_gate.clone());
    let stuck = Channel::new(Arc::new(discover), options).unwrap();
    let pending = stuck.call_async("Silent", "Echo", Bytes::new(), &CallOptions::default());
    pending.cancel();
    assert_eq!(pending.wait().unwrap_err().code(), Code::Cancelled);

    handle.shutdown();
    assert_eq!(
        server_gate.before.load(Ordering::SeqCst),
        3,
        "the locally refused call never reached the server"
    );
    let outcomes = client_gate.outcomes.lock().clone();
    assert_eq!(
        outcomes,
        vec![
            ("Inline.Echo".to_owned(), Code::Ok),
            ("Pool.Echo".to_owned(), Code::FailedPrecondition),
            ("Inline.Echo".to_owned(), Code::Ok),
            ("Later.Echo".to_owned(), Code::Unauthenticated),
            ("Silent.Echo".to_owned(), Code::Cancelled),
        ]
    );
}

#[test]
fn an_entry_too_long_for_the_wire_fails_the_call_before_it_is_sent() {
    // Nothing listens there: a call that was sent would fail Unavailable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let channel = Channel::direct(addr).unwrap();
    let long = "x".repeat(mprpc::call::metadata::MAX_VALUE_LEN + 1);
    let options = CallOptions::new()
        .timeout(Duration::from_secs(1))
        .metadata("blob", &long);
    let status = channel
        .call("Echo", "Echo", Bytes::new(), &options, None)
        .unwrap_err();
    assert_eq!(status.code(), Code::BadRequest, "{status}");
    assert!(status.message().contains("'blob'"), "{status}");
}
