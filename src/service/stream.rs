//! What a streaming method's handler works with: a [`StreamSender`] for
//! its replies (server and bidirectional streams) and a [`Streaming`] of
//! the client's messages (client and bidirectional streams), both made
//! from the [`StreamIo`] the server hands to
//! [`Service::open_stream`](super::Service::open_stream).
//!
//! Handlers are futures polled on the reactor that read the stream's open
//! (like services that answer later). [`StreamSender::send`] waits for the
//! client's credit: a client that stops reading parks its stream's handler
//! at about one window of messages, and nothing else on the connection
//! waits for it.
//!
//! Handlers that block instead (on the server's worker pool) use the
//! blocking twins in [`super::blocking_stream`].

use std::future::{poll_fn, Future};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;

use crate::call::status::Status;
use crate::protocol::mprpc::StreamShape;
use crate::server::stream::{Core, Outgoing};
use crate::server::stream_pool::OnPool;

/// A stream handler's work to come: `Ok` ends the stream with `Ok`, an
/// error ends it with that status.
pub type StreamFuture = Pin<Box<dyn Future<Output = Result<(), Status>> + Send + 'static>>;

/// One open stream as its handler receives it.
pub struct StreamIo {
    pub(super) core: Arc<Core>,
    /// The worker pool, for a service whose stream handlers block
    /// ([`Service::blocking_streams`](super::Service::blocking_streams)).
    pub(super) pool: Option<OnPool>,
}

impl StreamIo {
    pub(crate) fn new(core: Arc<Core>, pool: Option<OnPool>) -> StreamIo {
        StreamIo { core, pool }
    }

    /// Which way the client opened the stream.
    pub fn shape(&self) -> StreamShape {
        self.core.shape
    }

    /// Fails unless the client opened the stream as `shape` (the method's
    /// own): what generated code checks first.
    pub fn expect(&self, shape: StreamShape, service: &str, method: &str) -> Result<(), Status> {
        match self.shape() {
            opened if opened == shape => Ok(()),
            opened => Err(Status::unimplemented(format!(
                "{service}.{method} is a {shape:?} stream; it was opened as a {opened:?} stream"
            ))),
        }
    }

    /// The sender of the stream's replies.
    pub fn sender<M: prost::Message>(&self) -> StreamSender<M> {
        StreamSender {
            core: self.core.clone(),
            _message: PhantomData,
        }
    }

    /// The client's messages.
    pub fn inbound<M: prost::Message + Default>(&self) -> Streaming<M> {
        Streaming {
            core: self.core.clone(),
            _message: PhantomData,
        }
    }
}

impl std::fmt::Debug for StreamIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamIo")
            .field("core", &self.core)
            .finish()
    }
}

/// Sends a stream's messages to the client, as its credit allows.
pub struct StreamSender<M> {
    core: Arc<Core>,
    _message: PhantomData<fn(M)>,
}

impl<M: prost::Message> StreamSender<M> {
    /// Sends `message` once the client has credit for it (it grants as it
    /// reads). `Err` once the stream is over (the client reset it, its
    /// deadline passed or its connection closed): stop sending.
    pub async fn send(&self, message: M) -> Result<(), Status> {
        let len = message.encoded_len();
        poll_fn(|cx| {
            let mut write = |out: &mut BytesMut| encode_raw(&message, out);
            let mut outgoing = Outgoing {
                len,
                write: &mut write,
            };
            self.core.poll_send(cx, &mut outgoing)
        })
        .await
    }

    /// Sends `message` from a thread of the handler's own (never on the
    /// reactor: it blocks while the client has no credit). A handler that
    /// hands its sender to a thread keeps its future pending until the
    /// thread is done (a [`Responder`](crate::Responder) does that).
    pub fn send_blocking(&self, message: M) -> Result<(), Status> {
        outgoing(&message, |outgoing| self.core.send_blocking(outgoing))
    }

    /// Whether the stream is over: nothing sent now reaches the client.
    pub fn is_closed(&self) -> bool {
        self.core.is_over()
    }
}

impl<M> std::fmt::Debug for StreamSender<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSender")
            .field("core", &self.core)
            .finish()
    }
}

/// Appends `message`'s bytes, exactly its `encoded_len`: the caller has
/// reserved room for them (with the frame's head), so prost's own check of
/// the room left (another `encoded_len`) is skipped. `encode_raw` is what
/// `Message::encode` calls once that check passed.
fn encode_raw<M: prost::Message>(message: &M, out: &mut BytesMut) {
    message.encode_raw(out);
}

/// Runs `send` with `message` as an [`Outgoing`] (its length taken once).
pub(crate) fn outgoing<M: prost::Message, R>(
    message: &M,
    send: impl FnOnce(&mut Outgoing<'_>) -> R,
) -> R {
    let mut write = |out: &mut BytesMut| encode_raw(message, out);
    send(&mut Outgoing {
        len: message.encoded_len(),
        write: &mut write,
    })
}

/// The client's messages on a stream, in order: `next` gives `None` once
/// the client has half-closed and every message was read.
pub struct Streaming<M> {
    core: Arc<Core>,
    _message: PhantomData<fn() -> M>,
}

impl<M: prost::Message + Default> Streaming<M> {
    /// The next message; `Ok(None)` once the client sent its last.
    pub async fn message(&mut self) -> Result<Option<M>, Status> {
        poll_fn(|cx| self.poll_message(cx)).await.transpose()
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<M, Status>>> {
        self.core.poll_recv(cx).map(|next| {
            next.map(|bytes| {
                bytes.and_then(|bytes| {
                    M::decode(bytes).map_err(|e| {
                        Status::bad_request(format!("cannot decode a stream message: {e}"))
                    })
                })
            })
        })
    }
}

impl<M: prost::Message + Default> futures_core::Stream for Streaming<M> {
    type Item = Result<M, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_message(cx)
    }
}

impl<M> std::fmt::Debug for Streaming<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("core", &self.core)
            .finish()
    }
}

/// A client stream's handler as a [`StreamFuture`]: its one reply is sent
/// as the stream's last message (what generated code wraps handlers in).
pub fn reply_once<M, F>(io: &StreamIo, reply: F) -> StreamFuture
where
    M: prost::Message + 'static,
    F: Future<Output = Result<M, Status>> + Send + 'static,
{
    let core = io.core.clone();
    Box::pin(async move {
        let message = reply.await?;
        outgoing(&message, |outgoing| core.send_reply(outgoing));
        Ok(())
    })
}

/// A stream handler's typed future as a [`StreamFuture`].
pub fn boxed<F>(handler: F) -> StreamFuture
where
    F: Future<Output = Result<(), Status>> + Send + 'static,
{
    Box::pin(handler)
}
