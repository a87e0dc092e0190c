//! Reply metadata on streams, end to end over real sockets on 127.0.0.1
//! (issue 26): a handler's metadata set before its first message reaches
//! a caller that asked for it (`CallOptions::capture_reply_metadata`)
//! with that message, what it set later with the stream's end, for async
//! and blocking handlers read by blocking and async consumers, on a
//! failed stream, a stream without messages and a client stream. On the
//! wire: a caller that did not ask opens in version 3 and gets version 3
//! frames only; one that asked opens in version 4 and gets a headers
//! frame just before the first message and an end with the trailers.

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mprpc::call::controller::ReplyMetadata;
use mprpc::client::stream::StreamReceiver;
use mprpc::client::{Channel, ChannelOptions};
use mprpc::discovery::StaticDiscover;
use mprpc::protocol::mprpc::{
    encode_stream_open, Decoder, Frame, RequestHead, RequestMeta, StreamFrame, StreamShape,
};
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::service::blocking_stream::on_pool;
use mprpc::service::stream::{boxed, reply_once, StreamFuture, StreamIo};
use mprpc::service::{CallContext, Service};
use mprpc::{CallOptions, Code, Metadata, Status};
use prost::Message;

/// `Tagged`: `Async` and `Blocking` (server streams: the request is how
/// many numbers to send; 1000 + k fails after k) set `phase = open`
/// before their first message and `sent = <n>` after their last;
/// `Quiet` sends nothing and sets both; `Sum` (a client stream) sets
/// `count` before its reply.
struct Tagged;

/// How many numbers a request of `n` sends, and after how many it fails.
fn limits(n: u64) -> (u64, Option<u64>) {
    match n {
        n if n > 1000 => (u64::MAX, Some(n - 1000)),
        n => (n, None),
    }
}

/// Sends `0..n` (failing after `n - 1000` when `n > 1000`) with `send`,
/// setting the metadata around it (the blocking handler's body).
fn run(
    ctx: &CallContext,
    n: u64,
    mut send: impl FnMut(u64) -> Result<(), Status>,
) -> Result<(), Status> {
    ctx.set_reply_metadata("phase", "open").unwrap();
    let (end, fail_after) = limits(n);
    for i in 0..end {
        if fail_after == Some(i) {
            ctx.set_reply_metadata("sent", &i.to_string()).unwrap();
            return Err(Status::application(format!("failed after {i}")));
        }
        send(i)?;
    }
    ctx.set_reply_metadata("sent", &end.to_string()).unwrap();
    Ok(())
}

impl Service for Tagged {
    fn name(&self) -> &'static str {
        "Tagged"
    }

    fn methods(&self) -> &'static [&'static str] {
        &["Async", "Blocking", "Quiet", "Sum"]
    }

    fn call(
        &self,
        method: &str,
        _ctx: &CallContext,
        _request: Bytes,
        _response: &mut BytesMut,
    ) -> Result<(), Status> {
        Err(Status::unimplemented(format!(
            "Tagged.{method} is a streaming method"
        )))
    }

    fn blocking_streams(&self) -> bool {
        true
    }

    fn open_stream(
        &self,
        method: &str,
        ctx: CallContext,
        request: Bytes,
        io: StreamIo,
    ) -> Result<StreamFuture, Status> {
        let number =
            || u64::decode(request.clone()).map_err(|e| Status::bad_request(e.to_string()));
        match method {
            "Async" => {
                let n = number()?;
                let sender = io.sender::<u64>();
                Ok(boxed(async move {
                    ctx.set_reply_metadata("phase", "open").unwrap();
                    let (end, fail_after) = limits(n);
                    for i in 0..end {
                        if fail_after == Some(i) {
                            ctx.set_reply_metadata("sent", &i.to_string()).unwrap();
                            return Err(Status::application(format!("failed after {i}")));
                        }
                        sender.send(i).await?;
                    }
                    ctx.set_reply_metadata("sent", &end.to_string()).unwrap();
                    Ok(())
                }))
            }
            "Blocking" => {
                let n = number()?;
                let sender = io.blocking_sender::<u64>();
                on_pool(&io, move || run(&ctx, n, |i| sender.send(i)))
            }
            "Quiet" => Ok(boxed(async move { run(&ctx, 0, |_| Ok(())) })),
            "Sum" => {
                let mut inbound = io.inbound::<u64>();
                Ok(reply_once(&io, async move {
                    let (mut sum, mut count) = (0, 0);
                    while let Some(n) = inbound.message().await? {
                        sum += n;
                        count += 1;
                    }
                    ctx.set_reply_metadata("count", &count.to_string()).unwrap();
                    Ok(sum)
                }))
            }
            _ => Err(Status::unimplemented(format!(
                "Tagged.{method} is not a streaming method"
            ))),
        }
    }
}

fn start() -> ServerHandle {
    mprpc::app::logging::init_for_tests();
    let options = ServerOptions::default()
        .reactor_threads(2)
        .worker_threads(2)
        .stream_window(4);
    let mut server = Server::with_options(options);
    server.add_service(Tagged);
    server.start().expect("server starts")
}

fn channel(server: &ServerHandle) -> Channel {
    let discover = StaticDiscover::single(server.local_addr()).unwrap();
    let options = ChannelOptions::default().stream_window(4);
    Channel::new(Arc::new(discover), options).unwrap()
}

fn stop(server: ServerHandle) {
    server.shutdown();
    server.wait();
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

/// The next item of `stream` read as a `futures_core::Stream` (`async`),
/// or with the blocking `recv`.
fn next(stream: &mut StreamReceiver<u64>, async_: bool) -> Option<Result<u64, Status>> {
    if !async_ {
        return stream.recv().transpose();
    }
    block_on(std::future::poll_fn(|cx| {
        futures_core::Stream::poll_next(Pin::new(&mut *stream), cx)
    }))
}

fn entries(metadata: &Metadata) -> Vec<(String, String)> {
    let mut entries: Vec<_> = metadata
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    entries.sort();
    entries
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    pairs.sort();
    pairs
}

/// A server stream of `method` with `n`, its reply metadata captured.
fn open(channel: &Channel, method: &str, n: u64) -> (StreamReceiver<u64>, ReplyMetadata) {
    let mut options = CallOptions::default();
    let reply = options.capture_reply_metadata();
    let stream = channel.server_stream("Tagged", method, &n, &options);
    (stream, reply)
}

#[test]
fn headers_come_with_the_first_message_and_trailers_with_the_end() {
    let server = start();
    let channel = channel(&server);
    for method in ["Async", "Blocking"] {
        for async_ in [false, true] {
            let case = format!("{method} handler, async consumer: {async_}");
            let (mut stream, reply) = open(&channel, method, 10);
            assert_eq!(next(&mut stream, async_).unwrap().unwrap(), 0, "{case}");
            assert_eq!(entries(&reply.get()), pairs(&[("phase", "open")]), "{case}");
            for i in 1..10 {
                assert_eq!(next(&mut stream, async_).unwrap().unwrap(), i, "{case}");
            }
            assert!(next(&mut stream, async_).is_none(), "{case}: ends Ok");
            let both = pairs(&[("phase", "open"), ("sent", "10")]);
            assert_eq!(entries(&reply.get()), both, "{case}");
        }
    }
    stop(server);
}

#[test]
fn a_failed_stream_and_one_without_messages_carry_their_metadata_in_the_end() {
    let server = start();
    let channel = channel(&server);
    for method in ["Async", "Blocking"] {
        let (mut stream, reply) = open(&channel, method, 1003);
        for i in 0..3 {
            assert_eq!(stream.recv().unwrap(), Some(i), "{method}");
        }
        let failed = stream.recv().unwrap_err();
        assert_eq!(
            (failed.code(), failed.message()),
            (Code::Application, "failed after 3")
        );
        let both = pairs(&[("phase", "open"), ("sent", "3")]);
        assert_eq!(entries(&reply.get()), both, "{method}");
    }
    let (mut stream, reply) = open(&channel, "Quiet", 0);
    assert_eq!(stream.recv().unwrap(), None);
    assert_eq!(
        entries(&reply.get()),
        pairs(&[("phase", "open"), ("sent", "0")])
    );
    stop(server);
}

#[test]
fn a_client_stream_reply_carries_its_metadata_and_uncaptured_streams_work_as_before() {
    let server = start();
    let channel = channel(&server);
    let mut options = CallOptions::default();
    let reply = options.capture_reply_metadata();
    let sum = channel.client_stream::<u64, u64>("Tagged", "Sum", &options);
    for n in 1..=10 {
        sum.send(&n).unwrap();
    }
    assert_eq!(sum.finish().unwrap(), 55);
    assert_eq!(entries(&reply.get()), pairs(&[("count", "10")]));

    // The same options again: the second stream's metadata replaces the
    // first's.
    let stream = channel.server_stream::<u64, u64>("Tagged", "Quiet", &0, &options);
    assert_eq!(stream.count(), 0);
    assert_eq!(
        entries(&reply.get()),
        pairs(&[("phase", "open"), ("sent", "0")])
    );

    // Not asked for: the stream reads the same, nothing is stored.
    let got: Vec<u64> = channel
        .server_stream("Tagged", "Async", &5u64, &CallOptions::default())
        .map(|n| n.unwrap())
        .collect();
    assert_eq!(got, (0..5).collect::<Vec<_>>());
    stop(server);
}

/// The frames of one server stream as they came: each one's header
/// version and the frame decoded, up to its end.
fn raw_stream(server: &ServerHandle, reply_metadata: bool) -> Vec<(u8, StreamFrame)> {
    let mut socket = TcpStream::connect(server.local_addr()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let head = RequestHead {
        id: 3,
        timeout_ms: 0,
        service: "Tagged",
        method: "Async",
    };
    let none = Metadata::new();
    let meta = RequestMeta {
        metadata: &none,
        trace: None,
        reply_metadata,
    };
    let mut out = BytesMut::new();
    encode_stream_open(
        head,
        StreamShape::Server,
        16,
        meta,
        &3u64.encode_to_vec(),
        &mut out,
    );
    socket.write_all(&out).unwrap();
    let (decoder, mut buf, mut frames) = (Decoder::default(), BytesMut::new(), Vec::new());
    loop {
        let version = buf.get(2).copied();
        match decoder.decode(&mut buf).expect("valid frames") {
            Some(Frame::Stream(frame)) => {
                let end = matches!(frame, StreamFrame::End { .. } | StreamFrame::Reset { .. });
                frames.push((version.unwrap(), frame));
                if end {
                    return frames;
                }
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => {
                let mut chunk = [0u8; 4096];
                let n = socket.read(&mut chunk).unwrap();
                assert!(n > 0, "closed before the stream's end: {frames:?}");
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

#[test]
fn on_the_wire_version_4_frames_go_only_to_a_caller_that_opened_in_version_4() {
    let server = start();
    let old = raw_stream(&server, false);
    assert!(old.iter().all(|(version, _)| *version == 3), "{old:?}");
    assert_eq!(old.len(), 4, "three messages and the end: {old:?}");
    assert!(
        matches!(&old[3].1, StreamFrame::End { status: Code::Ok, metadata, .. } if metadata.is_empty())
    );

    let new = raw_stream(&server, true);
    let kinds: Vec<(u8, &str)> = new
        .iter()
        .map(|(version, frame)| {
            let kind = match frame {
                StreamFrame::Headers { .. } => "headers",
                StreamFrame::Message { .. } => "message",
                StreamFrame::End { .. } => "end",
                _ => "other",
            };
            (*version, kind)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (4, "headers"),
            (3, "message"),
            (3, "message"),
            (3, "message"),
            (4, "end")
        ]
    );
    let StreamFrame::Headers { id: 3, metadata } = &new[0].1 else {
        panic!("{new:?}")
    };
    assert_eq!(entries(metadata), pairs(&[("phase", "open")]));
    let StreamFrame::End { metadata, .. } = &new[4].1 else {
        panic!("{new:?}")
    };
    assert_eq!(entries(metadata), pairs(&[("sent", "3")]));
    stop(server);
}
