//! Streams on the consumer side: what a caller holds and what its
//! channel's driver shares with it.
//!
//! [`Channel::open_stream`](super::Channel::open_stream) (`open_stream`)
//! hands the driver
//! the stream's open and returns a [`StreamReceiver`] (the server's
//! messages: an iterator that blocks, and a `futures_core::Stream`) and a
//! [`StreamRequests`] (the caller's messages, for client and bidirectional
//! streams). Both talk to a `ClientCore`: the driver pushes the server's
//! messages into it and ends it (the server's end or reset, the deadline,
//! a lost connection: `Unavailable`); the receiver takes them and, each
//! half window read, queues a credit grant to the driver, so a reader that
//! stops holds the server at about one window. The sender waits for the
//! server's credit before it queues a message.
//!
//! Messages move in batches, not one hand-off each: the driver pushes
//! every message a loop turn read and wakes a waiting reader once at the
//! turn's end (`wake_reader`), and the reader swaps the whole queue into
//! its own buffer under one lock, then reads from that buffer alone. A
//! fast server stream costs a reader one wake-up and one lock per batch,
//! not per message.
//!
//! Dropping the receiver before the stream ended resets it (`Cancelled`).

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use super::observe::Watch;
use super::queue::Shared;
use crate::call::metadata::Metadata;
use crate::call::status::{Code, Status};
use crate::call::trace::TraceId;
use crate::discovery::Endpoint;
use crate::protocol::mprpc::StreamShape;

/// A message frame's bytes besides its payload: the header and the id.
const FRAME_OVERHEAD: usize = crate::protocol::mprpc::HEADER_LEN + 8;

/// Stream ids count up from 1 with the top bit clear, so they never meet
/// a call's id on a connection (a call's id has it set: `cells`).
static NEXT_STREAM_ID: AtomicU64 = AtomicU64::new(1);

/// A new stream's id.
pub(crate) fn next_id() -> u64 {
    NEXT_STREAM_ID.fetch_add(1, Ordering::Relaxed) & !(1 << 63)
}

/// A stream for the driver to open.
pub(crate) struct NewStream {
    pub(crate) core: Arc<ClientCore>,
    pub(crate) service: String,
    pub(crate) method: String,
    pub(crate) shape: StreamShape,
    /// The caller's window: messages the server may send before a grant.
    pub(crate) window: u32,
    /// A server stream's request message (empty otherwise).
    pub(crate) payload: Bytes,
    pub(crate) metadata: Metadata,
    pub(crate) trace: Option<TraceId>,
    /// When the whole stream times out, and the budget sent.
    pub(crate) deadline: Option<Instant>,
    pub(crate) timeout_ms: u32,
    pub(crate) endpoints: Arc<[Endpoint]>,
    pub(crate) hash_key: Option<u64>,
}

/// What a caller asks its driver to do with an open stream.
#[derive(Debug)]
pub(crate) enum StreamCmd {
    /// Send one (encoded) message.
    Message(Bytes),
    /// Half-close: the caller sends nothing more.
    End,
    /// Give up on the stream.
    Reset,
    /// The caller read this many messages: grant the server more.
    Credit(u32),
}

/// What a stream's caller and its driver share.
pub(crate) struct ClientCore {
    state: Mutex<State>,
    changed: Condvar,
    pub(crate) id: u64,
    /// The caller's window: it grants the server credit each half of it
    /// read, in messages or in bytes (`window_bytes`).
    window: u32,
    window_bytes: usize,
    driver: Arc<Shared>,
    /// The channel's interceptors, told the stream's outcome once, when
    /// it ends (`None` without interceptors).
    watch: Option<Box<Watch>>,
}

struct State {
    inbound: VecDeque<Bytes>,
    /// The stream's outcome once it is over (`Ok`: the server ended it).
    ended: Option<Status>,
    /// The async reader waiting for a message.
    recv_waker: Option<Waker>,
    /// A blocking reader waits on `changed` for a message.
    reader_blocked: bool,
    /// The driver has this core in its list of readers to wake.
    wake_queued: bool,
    /// Messages the server still takes from the caller.
    credit: u32,
    /// The sizes of the message frames sent that the server has not read
    /// yet (a grant of n says it read the n oldest), and their sum.
    ahead: VecDeque<u32>,
    ahead_bytes: usize,
    send_waker: Option<Waker>,
}

impl ClientCore {
    /// The core of stream `id`; `(window, window_bytes)`: see the fields.
    pub(crate) fn new(
        id: u64,
        (window, window_bytes): (u32, usize),
        driver: Arc<Shared>,
        watch: Option<Box<Watch>>,
    ) -> Arc<ClientCore> {
        Arc::new(ClientCore {
            state: Mutex::new(State {
                inbound: VecDeque::new(),
                ended: None,
                recv_waker: None,
                reader_blocked: false,
                wake_queued: false,
                credit: 0,
                ahead: VecDeque::new(),
                ahead_bytes: 0,
                send_waker: None,
            }),
            changed: Condvar::new(),
            id,
            window,
            window_bytes,
            driver,
            watch,
        })
    }

    // --- the driver's side ----------------------------------------------

    /// A message from the server, queued without waking the reader: true
    /// when the reader waits for one and the driver must call
    /// [`wake_reader`](Self::wake_reader) (once, however many it pushes
    /// meanwhile) when its batch is in.
    pub(crate) fn push(&self, message: Bytes) -> bool {
        let mut state = self.state.lock();
        if state.ended.is_some() {
            return false;
        }
        state.inbound.push_back(message);
        let waiting = state.reader_blocked || state.recv_waker.is_some();
        if waiting && !state.wake_queued {
            state.wake_queued = true;
            return true;
        }
        false
    }

    /// Wakes the reader to the messages pushed since it waited.
    pub(crate) fn wake_reader(&self) {
        let mut state = self.state.lock();
        state.wake_queued = false;
        if let Some(waker) = state.recv_waker.take() {
            waker.wake();
        }
        if state.reader_blocked {
            self.changed.notify_all();
        }
    }

    /// The server grants `credit` more messages.
    pub(crate) fn grant(&self, credit: u32) {
        let mut state = self.state.lock();
        state.credit = state.credit.saturating_add(credit);
        for _ in 0..credit {
            let Some(size) = state.ahead.pop_front() else {
                break;
            };
            state.ahead_bytes -= size as usize;
        }
        self.notify(&mut state);
    }

    /// The stream is over with `status` (messages already pushed are still
    /// read first).
    pub(crate) fn end(&self, status: Status) {
        let mut state = self.state.lock();
        if state.ended.is_some() {
            return;
        }
        let code = status.code();
        state.ended = Some(status);
        self.notify(&mut state);
        drop(state);
        if let Some(watch) = &self.watch {
            watch.ended_with(code);
        }
    }

    fn notify(&self, state: &mut State) {
        for waker in [state.recv_waker.take(), state.send_waker.take()]
            .into_iter()
            .flatten()
        {
            waker.wake();
        }
        self.changed.notify_all();
    }

    // --- the caller's side ----------------------------------------------

    /// Moves every message queued into `into` (empty): `Ok(true)` when
    /// there were some, `Ok(false)` at a clean end, the stream's status
    /// once it ended otherwise; `Pending` (with `cx`) or, without one,
    /// blocks while none came.
    fn poll_take(
        &self,
        into: &mut VecDeque<Bytes>,
        cx: Option<&mut Context<'_>>,
    ) -> Poll<Result<bool, Status>> {
        let mut state = self.state.lock();
        loop {
            if let Some(taken) = Self::take_now(&mut state, into) {
                return Poll::Ready(taken);
            }
            match cx {
                Some(cx) => {
                    let waker = cx.waker();
                    if !state
                        .recv_waker
                        .as_ref()
                        .is_some_and(|w| w.will_wake(waker))
                    {
                        state.recv_waker = Some(waker.clone());
                    }
                    return Poll::Pending;
                }
                None => {
                    state.reader_blocked = true;
                    self.changed.wait(&mut state);
                    state.reader_blocked = false;
                }
            }
        }
    }

    /// What [`poll_take`](Self::poll_take) gets without waiting, if anything.
    fn try_take(&self, into: &mut VecDeque<Bytes>) -> Option<Result<bool, Status>> {
        Self::take_now(&mut self.state.lock(), into)
    }

    fn take_now(state: &mut State, into: &mut VecDeque<Bytes>) -> Option<Result<bool, Status>> {
        if !state.inbound.is_empty() {
            std::mem::swap(&mut state.inbound, into);
            return Some(Ok(true));
        }
        match &state.ended {
            Some(status) if status.code() == Code::Ok => Some(Ok(false)),
            Some(status) => Some(Err(status.clone())),
            None => None,
        }
    }

    /// Waits for credit for a message of `len` bytes and takes it (`Err`
    /// once the stream is over): one of the server's messages, while what
    /// it has not read yet is under `window_bytes`.
    fn poll_credit(&self, len: usize, cx: Option<&mut Context<'_>>) -> Poll<Result<(), Status>> {
        let mut state = self.state.lock();
        loop {
            if let Some(status) = &state.ended {
                let status = match status.code() {
                    Code::Ok => Status::new(Code::FailedPrecondition, "the stream has ended"),
                    _ => status.clone(),
                };
                return Poll::Ready(Err(status));
            }
            if state.credit > 0 && state.ahead_bytes < self.window_bytes {
                state.credit -= 1;
                let size = len + FRAME_OVERHEAD;
                state.ahead.push_back(size as u32);
                state.ahead_bytes += size;
                return Poll::Ready(Ok(()));
            }
            match cx {
                Some(cx) => {
                    state.send_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                None => self.changed.wait(&mut state),
            }
        }
    }

    fn is_over(&self) -> bool {
        self.state.lock().ended.is_some()
    }

    /// Hands `cmd` to the driver.
    pub(crate) fn command(&self, cmd: StreamCmd) {
        self.driver.stream_command(self.id, cmd);
    }
}

impl std::fmt::Debug for ClientCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCore").field("id", &self.id).finish()
    }
}

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

    fn decoded(&mut self, next: Result<Option<Bytes>, Status>) -> Result<Option<M>, Status> {
        let next = next.and_then(|bytes| {
            bytes
                .map(|bytes| {
                    M::decode(bytes).map_err(|e| {
                        Status::bad_request(format!("cannot decode a stream message: {e}"))
                    })
                })
                .transpose()
        });
        if !matches!(next, Ok(Some(_))) {
            self.done = true;
        }
        next
    }
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
    finished: bool,
    _message: PhantomData<fn(M)>,
}

impl<M: prost::Message> StreamRequests<M> {
    /// The requests of a stream; `finished` for a server stream (the
    /// caller sends none, so nothing is half-closed).
    pub(crate) fn new(core: Arc<ClientCore>, finished: bool) -> StreamRequests<M> {
        StreamRequests {
            core,
            finished,
            _message: PhantomData,
        }
    }

    /// Sends `message`, blocking while the server has no credit for it.
    /// `Err` once the stream is over. Not on a channel's I/O thread.
    pub fn send(&self, message: &M) -> Result<(), Status> {
        match self.core.poll_credit(message.encoded_len(), None) {
            Poll::Ready(granted) => granted?,
            Poll::Pending => unreachable!("a blocking wait never returns Pending"),
        }
        self.core
            .command(StreamCmd::Message(message.encode_to_vec().into()));
        Ok(())
    }

    /// Sends `message` once the server has credit for it.
    pub async fn send_async(&self, message: &M) -> Result<(), Status> {
        let len = message.encoded_len();
        std::future::poll_fn(|cx| self.core.poll_credit(len, Some(cx))).await?;
        self.core
            .command(StreamCmd::Message(message.encode_to_vec().into()));
        Ok(())
    }

    /// Tells the server the caller sends nothing more (half-close).
    pub fn finish(mut self) {
        self.half_close();
    }

    fn half_close(&mut self) {
        if !std::mem::replace(&mut self.finished, true) && !self.core.is_over() {
            self.core.command(StreamCmd::End);
        }
    }
}

impl<M> Drop for StreamRequests<M> {
    fn drop(&mut self) {
        if !std::mem::replace(&mut self.finished, true) && !self.core.is_over() {
            self.core.command(StreamCmd::End);
        }
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
