//! Blocking stream handlers: what a streaming method's handler works with
//! when it runs on the server's worker pool instead of as a future on a
//! reactor — a [`BlockingSender`] whose `send` blocks while the client has
//! no credit, and a [`BlockingStreaming`] iterator over the client's
//! messages — and [`on_pool`] / [`reply_once_on_pool`], which start such a
//! handler from [`Service::open_stream`](super::Service::open_stream).
//!
//! Code generated with `mprpc_build::Builder::blocking_streams` uses them:
//! its sync trait's streaming methods are plain functions
//! (`fn watch(&self, ctx, request, sink: BlockingSender<Event>) ->
//! Result<(), Status>`), each run on a worker for as long as its stream
//! is open. The stream ends with the handler's result; when it ends first
//! (the client resets it, its deadline passes, its connection closes) a
//! blocked `send` or read returns that status at once, so the handler
//! returns and its worker is free again. A handler that neither sends nor
//! reads for long should check `ctx.expired()` as a blocking unary one
//! does.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::call::status::Status;
use crate::server::stream::Core;

use super::stream::{outgoing, StreamFuture, StreamIo};

impl StreamIo {
    /// The blocking sender of the stream's replies (for a handler on the
    /// worker pool: never call it on a reactor).
    pub fn blocking_sender<M: prost::Message>(&self) -> BlockingSender<M> {
        BlockingSender {
            core: self.core.clone(),
            _message: PhantomData,
        }
    }

    /// The client's messages, read blocking (for a handler on the worker
    /// pool).
    pub fn blocking_inbound<M: prost::Message + Default>(&self) -> BlockingStreaming<M> {
        BlockingStreaming {
            core: self.core.clone(),
            done: false,
            _message: PhantomData,
        }
    }
}

/// Runs blocking `handler` on the server's worker pool: the stream ends
/// with its result. Errors (the stream ends at once with them):
/// `Overloaded` when the pool's queue is full, `Internal` when the service
/// did not say its streams block
/// ([`Service::blocking_streams`](super::Service::blocking_streams)), so
/// the server gave it no pool.
pub fn on_pool<F>(io: &StreamIo, handler: F) -> Result<StreamFuture, Status>
where
    F: FnOnce() -> Result<(), Status> + Send + 'static,
{
    let pool = io.pool.as_ref().ok_or_else(|| {
        Status::internal(
            "a blocking stream handler, but the service's blocking_streams() is false: no worker pool",
        )
    })?;
    pool.start(io.core.clone(), Box::new(handler))
}

/// Runs a client stream's blocking `handler` on the worker pool: its one
/// reply is sent as the stream's last message.
pub fn reply_once_on_pool<M, F>(io: &StreamIo, handler: F) -> Result<StreamFuture, Status>
where
    M: prost::Message + 'static,
    F: FnOnce() -> Result<M, Status> + Send + 'static,
{
    let core = io.core.clone();
    on_pool(io, move || {
        let message = handler()?;
        outgoing(&message, |outgoing| core.send_reply(outgoing));
        Ok(())
    })
}

/// Sends a stream's messages to the client from a blocking handler.
pub struct BlockingSender<M> {
    core: Arc<Core>,
    _message: PhantomData<fn(M)>,
}

impl<M: prost::Message> BlockingSender<M> {
    /// Sends `message`, blocking while the client has no credit for it (it
    /// grants as it reads). `Err` once the stream is over (the client
    /// reset it, its deadline passed, its connection closed, the server is
    /// shutting down), at once even if blocked: stop sending and return.
    pub fn send(&self, message: M) -> Result<(), Status> {
        outgoing(&message, |outgoing| self.core.send_blocking(outgoing))
    }

    /// Whether the stream is over: nothing sent now reaches the client.
    pub fn is_closed(&self) -> bool {
        self.core.is_over()
    }
}

impl<M> std::fmt::Debug for BlockingSender<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingSender")
            .field("core", &self.core)
            .finish()
    }
}

/// The client's messages on a stream, in order, read blocking: iterate it
/// (it ends when the client half-closes, after yielding an error once if
/// the stream ended otherwise) or call [`BlockingStreaming::message`].
pub struct BlockingStreaming<M> {
    core: Arc<Core>,
    done: bool,
    _message: PhantomData<fn() -> M>,
}

impl<M: prost::Message + Default> BlockingStreaming<M> {
    /// The next message, blocking until it comes; `Ok(None)` once the
    /// client sent its last; `Err` once the stream is over (as for
    /// [`BlockingSender::send`]).
    pub fn message(&mut self) -> Result<Option<M>, Status> {
        let next = match self.core.recv_blocking() {
            None => Ok(None),
            Some(Ok(bytes)) => M::decode(bytes)
                .map(Some)
                .map_err(|e| Status::bad_request(format!("cannot decode a stream message: {e}"))),
            Some(Err(status)) => Err(status),
        };
        if !matches!(next, Ok(Some(_))) {
            self.done = true;
        }
        next
    }
}

impl<M: prost::Message + Default> Iterator for BlockingStreaming<M> {
    type Item = Result<M, Status>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.message().transpose()
    }
}

impl<M> std::fmt::Debug for BlockingStreaming<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingStreaming")
            .field("core", &self.core)
            .finish()
    }
}
