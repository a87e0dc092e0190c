//! A hand-written streaming service (every stream shape, async handlers)
//! and a raw wire client that speaks stream frames, for the stream tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mprpc::protocol::mprpc::{
    encode_request, encode_stream_credit, encode_stream_end, encode_stream_message,
    encode_stream_open, encode_stream_reset, Decoder, Frame, RequestHead, RequestMeta, Response,
    StreamFrame, StreamShape,
};
use mprpc::service::stream::{boxed, reply_once, StreamFuture, StreamIo};
use mprpc::service::{CallContext, Service};
use mprpc::{Code, Metadata, Status};
use prost::Message;

/// A `Count` request of `SENT_BASE + k` sends with no end and counts what
/// it sent in `SENT[k]`.
pub const SENT_BASE: u64 = 5000;
pub static SENT: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

/// `Streams`: `Count` (server stream: the request is how many numbers to
/// send, 0 for no end; a request of 1000 + k fails after k), `Sum`
/// (client stream of numbers, one reply), `Echo` (bidirectional) and
/// `Unary` (a plain call, echoing its request).
pub struct Streams;

impl Service for Streams {
    fn name(&self) -> &'static str {
        "Streams"
    }

    fn methods(&self) -> &'static [&'static str] {
        &["Count", "Sum", "Echo", "Unary", "Spawned"]
    }

    fn call(
        &self,
        method: &str,
        _ctx: &CallContext,
        request: Bytes,
        response: &mut BytesMut,
    ) -> Result<(), Status> {
        match method {
            "Unary" => {
                response.extend_from_slice(&request);
                Ok(())
            }
            "Count" | "Sum" | "Echo" => Err(Status::unimplemented(format!(
                "Streams.{method} is a streaming method"
            ))),
            _ => Err(Status::unknown_method("Streams", method)),
        }
    }

    fn open_stream(
        &self,
        method: &str,
        _ctx: CallContext,
        request: Bytes,
        io: StreamIo,
    ) -> Result<StreamFuture, Status> {
        match method {
            "Count" => {
                io.expect(StreamShape::Server, "Streams", method)?;
                let n = u64::decode(request).map_err(|e| Status::bad_request(e.to_string()))?;
                let sender = io.sender::<u64>();
                let counted = (SENT_BASE..SENT_BASE + SENT.len() as u64).contains(&n);
                if counted {
                    return Ok(boxed(async move {
                        let sent = &SENT[(n - SENT_BASE) as usize];
                        for i in 0.. {
                            sender.send(i).await?;
                            sent.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(())
                    }));
                }
                Ok(boxed(async move {
                    let (end, fail_after) = match n {
                        n if n > 1000 => (u64::MAX, Some(n - 1000)),
                        0 => (u64::MAX, None),
                        n => (n, None),
                    };
                    for i in 0..end {
                        if fail_after == Some(i) {
                            return Err(Status::application(format!("failed after {i}")));
                        }
                        sender.send(i).await?;
                    }
                    Ok(())
                }))
            }
            "Spawned" => {
                // A blocking sender on a thread of the handler's own.
                let n = u64::decode(request).map_err(|e| Status::bad_request(e.to_string()))?;
                let sender = io.sender::<u64>();
                let (responder, reply) = mprpc::Responder::pair();
                std::thread::spawn(move || {
                    responder.send((0..n).try_for_each(|i| sender.send_blocking(i)));
                });
                Ok(boxed(reply))
            }
            "Sum" => {
                io.expect(StreamShape::Client, "Streams", method)?;
                let mut inbound = io.inbound::<u64>();
                Ok(reply_once(&io, async move {
                    let mut sum = 0;
                    while let Some(n) = inbound.message().await? {
                        sum += n;
                    }
                    Ok(sum)
                }))
            }
            "Echo" => {
                io.expect(StreamShape::Bidi, "Streams", method)?;
                let mut inbound = io.inbound::<String>();
                let sender = io.sender::<String>();
                Ok(boxed(async move {
                    while let Some(text) = inbound.message().await? {
                        sender.send(format!("echo {text}")).await?;
                    }
                    Ok(())
                }))
            }
            _ => Err(Status::unimplemented(format!(
                "Streams.{method} is not a streaming method"
            ))),
        }
    }
}

/// What a raw stream client reads.
#[derive(Debug, PartialEq)]
pub enum Got {
    Message(u64, Bytes),
    End(u64, Code, String),
    Reset(u64, Code, String),
    Credit(u64, u32),
    Reply(Response),
    Closed,
}

/// One connection speaking stream frames by hand.
pub struct StreamClient {
    pub stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
    /// The service it opens streams of, and its unary method.
    service: &'static str,
    unary_method: &'static str,
}

impl StreamClient {
    /// A client of [`Streams`].
    pub fn connect(addr: SocketAddr) -> StreamClient {
        StreamClient::connect_to(addr, "Streams", "Unary")
    }

    /// A client of `service`, whose `unary_method` echoes its request.
    pub fn connect_to(
        addr: SocketAddr,
        service: &'static str,
        unary_method: &'static str,
    ) -> StreamClient {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        StreamClient {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::default(),
            service,
            unary_method,
        }
    }

    fn write(&mut self, encode: impl FnOnce(&mut BytesMut)) {
        let mut out = BytesMut::new();
        encode(&mut out);
        self.stream.write_all(&out).unwrap();
    }

    pub fn open(&mut self, id: u64, method: &str, shape: StreamShape, window: u32, request: &[u8]) {
        self.open_with_timeout(id, method, shape, window, request, 0);
    }

    pub fn open_with_timeout(
        &mut self,
        id: u64,
        method: &str,
        shape: StreamShape,
        window: u32,
        request: &[u8],
        timeout_ms: u32,
    ) {
        let head = RequestHead {
            id,
            timeout_ms,
            service: self.service,
            method,
        };
        let none = Metadata::new();
        let meta = RequestMeta {
            metadata: &none,
            trace: None,
            reply_metadata: false,
        };
        self.write(|out| encode_stream_open(head, shape, window, meta, request, out));
    }

    pub fn message(&mut self, id: u64, payload: &[u8]) {
        self.write(|out| encode_stream_message(id, payload, out));
    }

    /// Several messages in one write (so they arrive in one read).
    pub fn messages(&mut self, id: u64, payloads: &[Vec<u8>]) {
        self.write(|out| {
            for payload in payloads {
                encode_stream_message(id, payload, out);
            }
        });
    }

    pub fn end(&mut self, id: u64) {
        self.write(|out| encode_stream_end(id, Code::Ok, "", out));
    }

    pub fn reset(&mut self, id: u64) {
        self.write(|out| encode_stream_reset(id, Code::Cancelled, "the client gave up", out));
    }

    pub fn credit(&mut self, id: u64, credit: u32) {
        self.write(|out| encode_stream_credit(id, credit, out));
    }

    pub fn unary(&mut self, id: u64, payload: &[u8]) {
        let head = RequestHead {
            id,
            timeout_ms: 0,
            service: self.service,
            method: self.unary_method,
        };
        self.write(|out| encode_request(head, payload, out));
    }

    /// The next frame from the server.
    pub fn next(&mut self) -> Got {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).expect("valid frames") {
                return match frame {
                    Frame::Response(r) => Got::Reply(r),
                    Frame::Stream(StreamFrame::Message { id, payload }) => {
                        Got::Message(id, payload)
                    }
                    Frame::Stream(StreamFrame::Credit { id, credit }) => Got::Credit(id, credit),
                    Frame::Stream(end @ StreamFrame::End { .. }) => {
                        let status = end.status().unwrap();
                        Got::End(end.id(), status.code(), status.message().to_owned())
                    }
                    Frame::Stream(reset @ StreamFrame::Reset { .. }) => {
                        let status = reset.status().unwrap();
                        Got::Reset(reset.id(), status.code(), status.message().to_owned())
                    }
                    other => panic!("unexpected frame {other:?}"),
                };
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Got::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Got::Closed,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// The next frame that is not a credit grant.
    pub fn next_not_credit(&mut self) -> Got {
        loop {
            match self.next() {
                Got::Credit(..) => continue,
                other => return other,
            }
        }
    }

    /// Whether a frame arrives within `wait` (false: none did).
    pub fn quiet_for(&mut self, wait: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut chunk = [0u8; 4096];
        let quiet = match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                false
            }
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        self.stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        quiet
    }

    /// The next message of stream `id` as a number (`u64` messages).
    pub fn number(&mut self, id: u64) -> u64 {
        match self.next_not_credit() {
            Got::Message(got, payload) if got == id => u64::decode(payload).unwrap(),
            other => panic!("expected a message of stream {id}, got {other:?}"),
        }
    }
}

/// A number as the bytes of its message.
pub fn encoded(n: u64) -> Vec<u8> {
    n.encode_to_vec()
}
