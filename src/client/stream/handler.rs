//! The callback consumer of a stream: a [`StreamHandler`] the channel's
//! I/O driver calls with the server's messages in batches, on its own
//! thread (as brpc's `StreamInputHandler::on_received_messages`).
//!
//! Why: a blocking or async reader costs a hand-off between threads and a
//! wake-up per batch, and a bidirectional stream's next message a second
//! one back. A handler runs where the messages are read, decodes them
//! there, and may send on the stream from inside the call
//! ([`StreamRequests::try_send`]): the message is packed straight into the
//! connection's output and leaves with the driver's flush of the same
//! loop turn, as a unary callback's next call does.
//!
//! The driver queues a handled stream's messages on its core like a
//! reader's and, once the turn's reads are done, with the driver free,
//! calls the handler with all of them (`ClientCore::deliver`); the whole
//! batch is then granted back to the server as credit. A handler must not
//! block: it holds up every stream and call of its driver.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;

use super::{ClientCore, StreamCmd, StreamRequests};
use crate::call::status::Status;

/// What a stream's consumer does with it, called on the channel's I/O
/// thread. `Req` is what the caller sends (`()` for a server stream),
/// `Resp` what the server sends.
///
/// The calls come in order, never at once: `on_writable` and
/// `on_messages` while the stream is open, then `on_closed` exactly once,
/// last. None may block (no blocking `send`, `recv` or unary call: they
/// fail on this thread); sending with [`StreamRequests::try_send`] and
/// starting calls or streams are fine.
pub trait StreamHandler<Req, Resp>: Send + 'static {
    /// The server granted credit after a [`try_send`](StreamRequests::try_send)
    /// found none (for client and bidirectional streams this includes the
    /// first grant, which opens the stream to the caller's messages).
    fn on_writable(&mut self, requests: &StreamRequests<Req>) {
        let _ = requests;
    }

    /// The server's messages read since the last call, in order, decoded
    /// as the batch is iterated. A message that does not decode ends the
    /// iteration and resets the stream (`on_closed` then says why);
    /// messages left unread in the batch are dropped.
    fn on_messages(&mut self, messages: StreamBatch<'_, Resp>, requests: &StreamRequests<Req>);

    /// The stream is over: `Ok` when the server ended it `Ok`, else its
    /// status (a lost connection `Unavailable`, the deadline
    /// `DeadlineExceeded`, a cancel `Cancelled`).
    fn on_closed(&mut self, outcome: Result<(), Status>);
}

/// One delivery of a stream's messages: an iterator that decodes each
/// as it is taken.
pub struct StreamBatch<'a, M> {
    messages: &'a mut VecDeque<Bytes>,
    error: &'a mut Option<Status>,
    _message: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for StreamBatch<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamBatch")
            .field("len", &self.messages.len())
            .finish()
    }
}

impl<M> StreamBatch<'_, M> {
    /// The messages not taken yet.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// No message is left.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

impl<M: prost::Message + Default> Iterator for StreamBatch<'_, M> {
    type Item = M;

    fn next(&mut self) -> Option<M> {
        let bytes = self.messages.pop_front()?;
        match M::decode(bytes) {
            Ok(message) => Some(message),
            Err(e) => {
                self.messages.clear();
                *self.error = Some(super::handles::undecodable(e));
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.messages.len()))
    }
}

/// A handle on a stream whose messages go to a [`StreamHandler`]: cancel
/// it from any thread. Dropping it leaves the stream to its handler.
#[derive(Debug)]
pub struct StreamControl {
    core: Arc<ClientCore>,
}

impl StreamControl {
    pub(crate) fn new(core: Arc<ClientCore>) -> StreamControl {
        StreamControl { core }
    }

    /// Cancels the stream (nothing if it is over): the server's handler
    /// is dropped and the stream's handler told `Cancelled`.
    pub fn cancel(&self) {
        if !self.core.is_over() {
            self.core.command(StreamCmd::Reset);
        }
    }

    /// The stream has ended (its handler is told, or about to be).
    pub fn is_over(&self) -> bool {
        self.core.is_over()
    }
}

/// A handler with its types erased, as the core keeps it.
pub(crate) trait RawHandler: Send {
    fn writable(&mut self);
    /// Hands `batch` (left empty) to the handler: the status of a message
    /// that did not decode, if one did not.
    fn messages(&mut self, batch: &mut VecDeque<Bytes>) -> Option<Status>;
    fn closed(&mut self, outcome: Result<(), Status>);
}

/// A handler and the stream's requests it sends on.
pub(crate) struct Typed<Req, Resp, H> {
    handler: H,
    requests: StreamRequests<Req>,
    _reply: PhantomData<fn() -> Resp>,
}

impl<Req, Resp, H> Typed<Req, Resp, H> {
    pub(crate) fn new(handler: H, requests: StreamRequests<Req>) -> Typed<Req, Resp, H> {
        Typed {
            handler,
            requests,
            _reply: PhantomData,
        }
    }
}

impl<Req, Resp, H> RawHandler for Typed<Req, Resp, H>
where
    Req: prost::Message,
    Resp: prost::Message + Default,
    H: StreamHandler<Req, Resp>,
{
    fn writable(&mut self) {
        self.handler.on_writable(&self.requests);
    }

    fn messages(&mut self, batch: &mut VecDeque<Bytes>) -> Option<Status> {
        let mut error = None;
        let messages = StreamBatch {
            messages: batch,
            error: &mut error,
            _message: PhantomData,
        };
        self.handler.on_messages(messages, &self.requests);
        batch.clear();
        error
    }

    fn closed(&mut self, outcome: Result<(), Status>) {
        self.handler.on_closed(outcome);
    }
}

/// What a handled stream's core keeps for its deliveries.
pub(crate) struct Handled {
    /// `None` once told the stream is over.
    pub(crate) handler: Option<Box<dyn RawHandler>>,
    /// The batch being delivered (empty between deliveries).
    pub(crate) batch: VecDeque<Bytes>,
}

impl Handled {
    pub(crate) fn new(handler: Box<dyn RawHandler>) -> Handled {
        Handled {
            handler: Some(handler),
            batch: VecDeque::new(),
        }
    }
}
