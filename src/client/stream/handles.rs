//! What a caller holds of a stream: [`StreamReceiver`] (the server's
//! messages, read blocking or as a `futures_core::Stream`, granting credit
//! back each half window), [`StreamRequests`] (the caller's messages, sent
//! as the server's credit allows) and [`ClientStreamCall`] (a client
//! stream's sender with its single reply). Each talks to the stream's
//! `ClientCore` in the parent module, never to the driver.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;

use super::{ClientCore, StreamCmd, FRAME_OVERHEAD};
use crate::call::status::Status;

/// The server's messages on a stream, in order. Iterate it (blocking) or
/// use it as a `futures_core::Stream`; either ends with `None` when the
/// server ended the stream `Ok`, and yields the error once when it ended
/// otherwise (a lost connection is `Unavailable`, the deadline
/// `DeadlineExceeded`). Dropping it before the end cancels the stream.
pub struct StreamReceiver<M> {
    core: Arc<ClientCore>,
    /// Messages taken from the core in one batch, not read yet.
    batch: VecDeque<Bytes>,
    /// Messages read since the last credit grant, and their bytes (with
    /// their frames' headers, as the server counts them).
    consumed: u32,
    consumed_bytes: usize,
    done: bool,
    _message: PhantomData<fn() -> M>,
}

impl<M: prost::Message + Default> StreamReceiver<M> {
    pub(crate) fn new(core: Arc<ClientCore>) -> StreamReceiver<M> {
        StreamReceiver {
            core,
            batch: VecDeque::new(),
            consumed: 0,
            consumed_bytes: 0,
            done: false,
            _message: PhantomData,
        }
    }

    /// The next message, blocking until it arrives: `Ok(None)` once the
    /// server has ended the stream `Ok`. Not on a channel's I/O thread.
    pub fn recv(&mut self) -> Result<Option<M>, Status> {
        match self.poll_bytes(None) {
            Poll::Ready(next) => self.decoded(next),
            Poll::Pending => unreachable!("a blocking receive never returns Pending"),
        }
    }

    /// The next message's bytes: from the batch taken, else the core's
    /// next batch. Each half window read (in messages or bytes) grants
    /// the server as much credit, and so does a reader about to wait
    /// having read anything: a server held by its own cap in bytes
    /// (`stream_window_bytes`, maybe not ours) is never left waiting for
    /// a grant this side holds back.
    fn poll_bytes(&mut self, cx: Option<&mut Context<'_>>) -> Poll<Result<Option<Bytes>, Status>> {
        if self.batch.is_empty() {
            let taken = match self.core.try_take(&mut self.batch) {
                Some(taken) => Poll::Ready(taken),
                None => {
                    self.grant();
                    self.core.poll_take(&mut self.batch, cx)
                }
            };
            match taken {
                Poll::Ready(Ok(true)) => {}
                Poll::Ready(Ok(false)) => return Poll::Ready(Ok(None)),
                Poll::Ready(Err(status)) => return Poll::Ready(Err(status)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let Some(message) = self.batch.pop_front() else {
            return Poll::Ready(Ok(None));
        };
        self.consumed += 1;
        self.consumed_bytes += message.len() + FRAME_OVERHEAD;
        if self.consumed >= (self.core.window / 2).max(1)
            || self.consumed_bytes >= self.core.window_bytes / 2
        {
            self.grant();
        }
        Poll::Ready(Ok(Some(message)))
    }

    /// Grants the server what was read since the last grant (once the
    /// stream is over the driver drops it).
    fn grant(&mut self) {
        if self.consumed > 0 {
            self.consumed_bytes = 0;
            self.core
                .command(StreamCmd::Credit(std::mem::take(&mut self.consumed)));
        }
    }

    /// Cancels the stream: the server's handler is dropped; `recv` then
    /// gives `Cancelled`.
    pub fn cancel(&self) {
        if !self.core.is_over() {
            self.core.command(StreamCmd::Reset);
        }
    }

    /// The message `next` holds, decoded; anything else (the end, an
    /// error, a message that does not decode) ends the receiver.
    fn decoded(&mut self, next: Result<Option<Bytes>, Status>) -> Result<Option<M>, Status> {
        match next {
            Ok(Some(bytes)) => match M::decode(bytes) {
                Ok(message) => Ok(Some(message)),
                Err(e) => {
                    self.done = true;
                    Err(undecodable(e))
                }
            },
            end => {
                self.done = true;
                end.map(|_| None)
            }
        }
    }
}

/// The status of a stream message that does not decode.
#[cold]
pub(super) fn undecodable(e: prost::DecodeError) -> Status {
    Status::bad_request(format!("cannot decode a stream message: {e}"))
}

impl<M: prost::Message + Default> Iterator for StreamReceiver<M> {
    type Item = Result<M, Status>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.recv().transpose()
    }
}

impl<M: prost::Message + Default> futures_core::Stream for StreamReceiver<M> {
    type Item = Result<M, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.poll_bytes(Some(cx)) {
            Poll::Ready(next) => Poll::Ready(this.decoded(next).transpose()),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<M> Drop for StreamReceiver<M> {
    fn drop(&mut self) {
        if !self.core.is_over() {
            self.core.command(StreamCmd::Reset);
        }
    }
}

impl<M> std::fmt::Debug for StreamReceiver<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReceiver")
            .field("core", &self.core)
            .finish()
    }
}

/// The caller's messages on a client or bidirectional stream: each send
/// waits for the server's credit. [`finish`](Self::finish) (or dropping
/// it) tells the server no more come.
pub struct StreamRequests<M> {
    core: Arc<ClientCore>,
    finished: AtomicBool,
    _message: PhantomData<fn(M)>,
}

impl<M: prost::Message> StreamRequests<M> {
    /// The requests of a stream; `finished` for a server stream (the
    /// caller sends none, so nothing is half-closed).
    pub(crate) fn new(core: Arc<ClientCore>, finished: bool) -> StreamRequests<M> {
        StreamRequests {
            core,
            finished: AtomicBool::new(finished),
            _message: PhantomData,
        }
    }

    /// Sends `message` if the server has credit for it now: `Ok(false)`
    /// when it has none (nothing is sent; a [`StreamHandler`]'s
    /// `on_writable` is called when some comes). `Err` once the stream is
    /// over. Never blocks: the way to send from a handler.
    ///
    /// [`StreamHandler`]: super::StreamHandler
    pub fn try_send(&self, message: &M) -> Result<bool, Status> {
        self.check_open()?;
        let len = message.encoded_len();
        if !self.core.try_credit(len)? {
            return Ok(false);
        }
        self.core.send_message(message, len);
        Ok(true)
    }

    /// Sends `message`, blocking while the server has no credit for it.
    /// `Err` once the stream is over, and on a channel's I/O thread when
    /// there is no credit (use [`try_send`](Self::try_send) there).
    pub fn send(&self, message: &M) -> Result<(), Status> {
        self.check_open()?;
        let len = message.encoded_len();
        match self.core.poll_credit(len, None) {
            Poll::Ready(granted) => granted?,
            Poll::Pending => unreachable!("a blocking wait never returns Pending"),
        }
        self.core.send_message(message, len);
        Ok(())
    }

    /// Sends `message` once the server has credit for it.
    pub async fn send_async(&self, message: &M) -> Result<(), Status> {
        self.check_open()?;
        let len = message.encoded_len();
        std::future::poll_fn(|cx| self.core.poll_credit(len, Some(cx))).await?;
        self.core.send_message(message, len);
        Ok(())
    }

    /// Tells the server the caller sends nothing more (half-close).
    pub fn finish(self) {
        self.half_close();
    }
}

impl<M> StreamRequests<M> {
    /// `Err` once this side half-closed (or never sends: a server stream).
    fn check_open(&self) -> Result<(), Status> {
        if self.finished.load(Ordering::Relaxed) {
            return Err(Status::new(
                crate::call::status::Code::FailedPrecondition,
                "this stream's requests are finished",
            ));
        }
        Ok(())
    }

    /// Half-closes, as [`finish`](Self::finish) does, through a shared
    /// reference (a [`StreamHandler`](super::StreamHandler) is lent its
    /// requests); later sends go nowhere.
    pub fn half_close(&self) {
        if !self.finished.swap(true, Ordering::Relaxed) && !self.core.is_over() {
            self.core.command(StreamCmd::End);
        }
    }
}

impl<M> Drop for StreamRequests<M> {
    fn drop(&mut self) {
        self.half_close();
    }
}

impl<M> std::fmt::Debug for StreamRequests<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRequests")
            .field("core", &self.core)
            .finish()
    }
}

/// A client stream in progress: send the requests, then
/// [`finish`](Self::finish) for the server's one reply.
pub struct ClientStreamCall<Req, Resp> {
    /// Where the requests go.
    pub requests: StreamRequests<Req>,
    replies: StreamReceiver<Resp>,
}

impl<Req, Resp> ClientStreamCall<Req, Resp> {
    pub(crate) fn new(
        requests: StreamRequests<Req>,
        replies: StreamReceiver<Resp>,
    ) -> ClientStreamCall<Req, Resp> {
        ClientStreamCall { requests, replies }
    }
}

impl<Req: prost::Message, Resp: prost::Message + Default> ClientStreamCall<Req, Resp> {
    /// Sends one request, blocking while the server has no credit for it.
    pub fn send(&self, message: &Req) -> Result<(), Status> {
        self.requests.send(message)
    }

    /// Half-closes and waits for the server's reply.
    pub fn finish(self) -> Result<Resp, Status> {
        let ClientStreamCall {
            requests,
            mut replies,
        } = self;
        requests.finish();
        let reply = replies.recv()?.ok_or_else(|| {
            Status::internal("the server ended a client stream without its reply")
        })?;
        replies.recv()?;
        Ok(reply)
    }
}

impl<Req, Resp> std::fmt::Debug for ClientStreamCall<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStreamCall")
            .field("requests", &self.requests)
            .finish()
    }
}
