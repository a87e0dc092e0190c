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
//!
//! A stream may instead be consumed by a [`StreamHandler`] on the
//! driver's thread (`handler`): its core keeps the handler, the driver
//! lists the core once per turn it got messages, credit or its end, and
//! calls `ClientCore::deliver` with the driver free.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use super::observe::Watch;
use super::queue::Shared;
use crate::call::controller::ReplyMetadata;
use crate::call::metadata::Metadata;
use crate::call::status::{Code, Status};
use crate::call::trace::TraceId;
use crate::discovery::Endpoint;
use crate::protocol::mprpc::{SendCredit, StreamShape};

mod handler;
mod handles;

pub(crate) use handler::{Handled, Typed};
pub use handler::{StreamBatch, StreamControl, StreamHandler};
pub use handles::{ClientStreamCall, StreamReceiver, StreamRequests};

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
    /// Where the server's reply metadata goes (`None`: not wanted, and
    /// the open is version 3).
    pub(crate) reply_metadata: Option<ReplyMetadata>,
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
    /// The stream's handler, when one consumes it (set before it opens).
    handled: std::sync::OnceLock<Mutex<Handled>>,
}

struct State {
    inbound: VecDeque<Bytes>,
    /// The stream's outcome once it is over (`Ok`: the server ended it).
    ended: Option<Status>,
    /// The async reader waiting for a message.
    recv_waker: Option<Waker>,
    /// A blocking reader waits on `changed` for a message.
    reader_blocked: bool,
    /// The driver has this core in its list of readers to wake (or, for
    /// a handled stream, of streams to deliver).
    wake_queued: bool,
    /// A handled stream's sender found no credit: tell its handler when
    /// some comes (`writable_due`).
    want_writable: bool,
    writable_due: bool,
    /// Messages the server still takes from the caller, and the frames
    /// sent that it has not read yet.
    credit: SendCredit,
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
                want_writable: false,
                writable_due: false,
                credit: SendCredit::new(0),
                send_waker: None,
            }),
            changed: Condvar::new(),
            id,
            window,
            window_bytes,
            driver,
            watch,
            handled: std::sync::OnceLock::new(),
        })
    }

    /// Hands the stream to `handler` (before it opens); `writable`: tell
    /// it when the first credit comes (the caller sends messages).
    pub(crate) fn set_handler(&self, handler: Handled, writable: bool) {
        self.state.lock().want_writable = writable;
        let _ = self.handled.set(Mutex::new(handler));
    }

    /// A handler consumes this stream (the driver delivers to it instead
    /// of waking a reader).
    pub(crate) fn is_handled(&self) -> bool {
        self.handled.get().is_some()
    }

    /// For a handled stream not listed yet: lists it (true: the driver
    /// must add it to its deliveries).
    fn queue_delivery(&self, state: &mut State) -> bool {
        if self.is_handled() && !state.wake_queued {
            state.wake_queued = true;
            return true;
        }
        false
    }

    // --- the driver's side ----------------------------------------------

    /// Messages from the server (`batch`, left empty), queued at once
    /// under one lock without waking the reader: true when the reader
    /// waits for one (or, for a handled stream, it is not listed yet) and
    /// the driver must call [`wake_reader`](Self::wake_reader) (or
    /// deliver it) once its turn's reads are done.
    pub(crate) fn push_batch(&self, batch: &mut VecDeque<Bytes>) -> bool {
        let mut state = self.state.lock();
        if state.ended.is_some() {
            batch.clear();
            return false;
        }
        if state.inbound.is_empty() {
            std::mem::swap(&mut state.inbound, batch);
        } else {
            state.inbound.append(batch);
        }
        if self.is_handled() {
            return self.queue_delivery(&mut state);
        }
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

    /// The server grants `credit` more messages: true when a handled
    /// stream must be delivered (its handler waits for credit).
    pub(crate) fn grant(&self, credit: u32) -> bool {
        let mut state = self.state.lock();
        state.credit.grant(credit);
        self.notify(&mut state);
        if std::mem::take(&mut state.want_writable) {
            state.writable_due = true;
            return self.queue_delivery(&mut state);
        }
        false
    }

    /// The stream is over with `status` (messages already pushed are still
    /// read first): true when a handled stream must be delivered (its
    /// handler is told).
    pub(crate) fn end(&self, status: Status) -> bool {
        let mut state = self.state.lock();
        if state.ended.is_some() {
            return false;
        }
        let code = status.code();
        state.ended = Some(status);
        self.notify(&mut state);
        let deliver = self.queue_delivery(&mut state);
        drop(state);
        if let Some(watch) = &self.watch {
            watch.ended_with(code);
        }
        deliver
    }

    /// Delivers a handled stream, on its driver's thread with the driver
    /// free: the writable news, the messages queued (then granted back as
    /// credit), and, once it is over, its outcome (once, last).
    pub(crate) fn deliver(&self) {
        let Some(handled) = self.handled.get() else {
            return;
        };
        let mut handled = handled.lock();
        let handled = &mut *handled;
        let writable = {
            let mut state = self.state.lock();
            state.wake_queued = false;
            std::mem::swap(&mut state.inbound, &mut handled.batch);
            std::mem::take(&mut state.writable_due)
        };
        let Some(handler) = handled.handler.as_mut() else {
            handled.batch.clear();
            return;
        };
        if writable && !self.is_over() {
            handler.writable();
        }
        if !handled.batch.is_empty() {
            let read = handled.batch.len() as u32;
            match handler.messages(&mut handled.batch) {
                Some(undecodable) => {
                    // Ended first, so the reset does not say `Cancelled`.
                    self.end(undecodable);
                    self.command(StreamCmd::Reset);
                }
                None if !self.is_over() => self.command(StreamCmd::Credit(read)),
                None => {}
            }
        }
        let ended = self.state.lock().ended.clone();
        if let Some(status) = ended {
            let outcome = match status.code() {
                Code::Ok => Ok(()),
                _ => Err(status),
            };
            if let Some(mut handler) = handled.handler.take() {
                handler.closed(outcome);
            }
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
                    // Waiting on a channel's I/O thread (inside a handler
                    // or callback) would stop the message from being read.
                    crate::client::call::refuse_blocking_on_io_thread()?;
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
                return Poll::Ready(Err(Self::over(status)));
            }
            if state.credit.may_send(self.window_bytes) {
                state.credit.spend(len + FRAME_OVERHEAD);
                return Poll::Ready(Ok(()));
            }
            match cx {
                Some(cx) => {
                    state.send_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                None => {
                    // No credit: waiting on a channel's I/O thread would
                    // stop the grant from ever being read.
                    crate::client::call::refuse_blocking_on_io_thread()?;
                    self.changed.wait(&mut state)
                }
            }
        }
    }

    /// Takes credit for a message of `len` bytes if there is some now:
    /// `Ok(false)` when not (a handled stream's handler is told when
    /// some comes), `Err` once the stream is over.
    fn try_credit(&self, len: usize) -> Result<bool, Status> {
        let mut state = self.state.lock();
        if let Some(status) = &state.ended {
            return Err(Self::over(status));
        }
        if state.credit.may_send(self.window_bytes) {
            state.credit.spend(len + FRAME_OVERHEAD);
            return Ok(true);
        }
        state.want_writable = true;
        Ok(false)
    }

    /// What a send on a stream that ended with `status` gets.
    fn over(status: &Status) -> Status {
        match status.code() {
            Code::Ok => Status::new(Code::FailedPrecondition, "the stream has ended"),
            _ => status.clone(),
        }
    }

    fn is_over(&self) -> bool {
        self.state.lock().ended.is_some()
    }

    /// Sends `message` (`len`: its encoded length, its credit taken):
    /// encoded straight into the connection's output on the driver's own
    /// free thread, else encoded here and queued.
    pub(crate) fn send_message<M: prost::Message>(&self, message: &M, len: usize) {
        let mut write = |out: &mut bytes::BytesMut| message.encode_raw(out);
        if !crate::client::driver::stream_message(&self.driver, self.id, len, &mut write) {
            let mut buf = Vec::with_capacity(len);
            message.encode_raw(&mut buf);
            self.command(StreamCmd::Message(buf.into()));
        }
    }

    /// Hands `cmd` to the driver: packed at once when this is the
    /// driver's own thread and the driver is free (a handler sending),
    /// else through its queue.
    pub(crate) fn command(&self, cmd: StreamCmd) {
        crate::client::driver::stream_command(&self.driver, self.id, cmd);
    }
}

impl std::fmt::Debug for ClientCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCore").field("id", &self.id).finish()
    }
}
