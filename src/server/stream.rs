//! One open stream on the server: what its handler and its reactor share.
//!
//! A stream's handler is a future polled on the reactor that read the open
//! (`pending`, like a call that answers later); it sends through a
//! [`StreamSender`](crate::service::stream::StreamSender) and reads the
//! client's messages through a
//! [`Streaming`](crate::service::stream::Streaming). Both only touch this
//! [`Core`]: a send frames the message into the core's output and posts
//! the core to its reactor's mailbox (once per batch), which moves the
//! frames into the connection's output at its next turn; a read pops a
//! message the reactor pushed and, every half window, posts a credit
//! grant the same way. Nothing waits on the connection: a stream with no
//! credit parks its own handler, never the reactor, so a slow reader
//! stalls its stream alone. A blocking handler (on the worker pool,
//! `stream_pool`) sends and reads through the same core, waiting on its
//! condition variable instead of parking a future; the stream's end wakes
//! it there too.
//!
//! The stream ends when its handler's future finishes (`Done` writes what
//! is left and the end frame), when the client resets it or its deadline
//! passes (the future is dropped), or with its connection.
//!
//! A client that opened the stream in version 4 reads its reply metadata
//! (shared with the handler's context): what the handler set before its
//! first message goes out as a headers frame just ahead of that message,
//! the rest with the end frame.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use parking_lot::{Condvar, Mutex};

use super::stats::{bump, ReactorStats};
use crate::call::metadata::Metadata;
use crate::call::status::{Code, Status};
use crate::protocol::mprpc::{
    encode_stream_credit, encode_stream_end_meta, encode_stream_headers, put_stream_message_head,
    SendCredit, StreamShape, MESSAGE_HEAD_LEN,
};

/// The reactor a stream reports to: its mailbox, which moves a stream's
/// frames into the connection, and its counters. The reactor's shared
/// state implements it (server/mailbox.rs), so this module need not know it.
pub(crate) trait StreamHome: Send + Sync {
    /// Stream `core` has frames for its connection.
    fn stream_ready(&self, core: Arc<Core>);
    /// The reactor's counters (for /metrics).
    fn stats(&self) -> &ReactorStats;
}

/// What a stream's handler and its reactor share.
pub(crate) struct Core {
    state: Mutex<State>,
    /// Wakes a sender or reader blocked off the reactor
    /// ([`Core::send_blocking`], [`Core::recv_blocking`]).
    changed: Condvar,
    reactor: Weak<dyn StreamHome>,
    /// The connection's slab key and unique id, and the stream's id on it.
    pub(crate) key: usize,
    pub(crate) conn_id: u64,
    pub(crate) id: u64,
    pub(crate) shape: StreamShape,
    /// The most bytes of message frames sent ahead of the client's reading.
    bytes_cap: usize,
    /// The handler's reply metadata, shared with its context, when the
    /// client reads it (`None`: a version 3 open).
    reply: Option<Arc<Mutex<Metadata>>>,
}

struct State {
    /// Message frames sent and not yet moved to the connection.
    out: BytesMut,
    /// Messages the client still takes (its window and grants), and the
    /// frames sent that it has not read yet.
    credit: SendCredit,
    /// Messages sent and not yet added to the reactor's counter (it is
    /// bumped once per move to the connection, not once per message).
    uncounted: u64,
    /// The handler waiting for credit.
    send_waker: Option<Waker>,
    /// The client's messages not yet read.
    inbound: VecDeque<Bytes>,
    /// The client half-closed: no message comes after `inbound`.
    inbound_ended: bool,
    /// The handler waiting for a message.
    recv_waker: Option<Waker>,
    /// Messages the client may still send (what this side granted).
    allowance: u32,
    /// This side's window, and messages read since the last grant.
    window: u32,
    consumed: u32,
    /// Credit to grant at the next move to the connection.
    to_grant: u32,
    /// Posted to the reactor and not yet moved.
    posted: bool,
    /// The reply metadata set so far still goes out as headers before the
    /// next message (only until the first message, and only when the
    /// client reads it).
    headers_due: bool,
    /// The stream is over: nothing more is sent or read.
    over: Option<Status>,
}

/// The first state: the client takes `credit` messages and may send
/// `window`.
fn state(credit: u32, window: u32, headers_due: bool) -> State {
    State {
        out: BytesMut::new(),
        credit: SendCredit::new(credit),
        uncounted: 0,
        send_waker: None,
        inbound: VecDeque::new(),
        inbound_ended: false,
        recv_waker: None,
        allowance: window,
        window,
        consumed: 0,
        to_grant: 0,
        posted: false,
        headers_due,
        over: None,
    }
}

/// One message for a stream's client: its encoded length, and what
/// appends exactly that many bytes (the encoded message).
pub(crate) struct Outgoing<'a> {
    pub(crate) len: usize,
    pub(crate) write: &'a mut dyn FnMut(&mut BytesMut),
}

/// Where a stream is: its reactor, connection and id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamAt {
    pub(crate) key: usize,
    pub(crate) conn_id: u64,
    pub(crate) id: u64,
}

impl Core {
    /// The core of stream `at` of `shape`; `(credit, window, bytes_cap)`:
    /// its client takes `credit` messages first and may send `window`
    /// (this side's window), and no more than about `bytes_cap` bytes of
    /// frames are sent ahead of its reading. `reply`: the handler's reply
    /// metadata, when the client reads it.
    pub(crate) fn new(
        reactor: Weak<dyn StreamHome>,
        at: StreamAt,
        shape: StreamShape,
        (credit, window, bytes_cap): (u32, u32, usize),
        reply: Option<Arc<Mutex<Metadata>>>,
    ) -> Arc<Core> {
        if let Some(reactor) = reactor.upgrade() {
            bump(&reactor.stats().streams_opened, 1);
        }
        Arc::new(Core {
            state: Mutex::new(state(credit, window, reply.is_some())),
            changed: Condvar::new(),
            reactor,
            key: at.key,
            conn_id: at.conn_id,
            id: at.id,
            shape,
            bytes_cap,
            reply,
        })
    }

    // --- the handler's side -----------------------------------------------
    //
    // A message to send comes as an [`Outgoing`]: its encoded length and
    // what appends exactly that many bytes.

    /// Sends `message` once the client has credit for it. `Err` once the
    /// stream is over.
    pub(crate) fn poll_send(
        self: &Arc<Self>,
        cx: &mut Context<'_>,
        message: &mut Outgoing<'_>,
    ) -> Poll<Result<(), Status>> {
        let mut state = self.state.lock();
        if let Some(status) = &state.over {
            return Poll::Ready(Err(status.clone()));
        }
        if !self.may_send(&state) {
            state.send_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        self.send_one(&mut state, message);
        Poll::Ready(Ok(()))
    }

    /// Sends one message from a thread off the reactor (one the handler
    /// started), blocking while the client has no credit for it.
    pub(crate) fn send_blocking(
        self: &Arc<Self>,
        message: &mut Outgoing<'_>,
    ) -> Result<(), Status> {
        let mut state = self.state.lock();
        loop {
            if let Some(status) = &state.over {
                return Err(status.clone());
            }
            if self.may_send(&state) {
                break;
            }
            self.changed.wait(&mut state);
        }
        self.send_one(&mut state, message);
        Ok(())
    }

    /// The client has credit, and has read enough of what was sent.
    fn may_send(&self, state: &State) -> bool {
        state.credit.may_send(self.bytes_cap)
    }

    /// Frames one message into the output, spending one credit.
    fn send_one(self: &Arc<Self>, state: &mut State, message: &mut Outgoing<'_>) {
        let size = self.frame(state, message);
        state.credit.spend(size);
    }

    /// Sends a client stream's one reply, credit or not (the client asked
    /// for exactly one).
    pub(crate) fn send_reply(self: &Arc<Self>, message: &mut Outgoing<'_>) {
        let mut state = self.state.lock();
        if state.over.is_none() {
            self.frame(&mut state, message);
        }
    }

    /// Appends `message`'s frame (after the headers, before the first
    /// one) to the output and posts the core; returns the frame's size.
    fn frame(self: &Arc<Self>, state: &mut State, message: &mut Outgoing<'_>) -> usize {
        if state.headers_due {
            self.send_headers(state);
        }
        let at = state.out.len();
        put_stream_message_head(self.id, message.len, &mut state.out);
        (message.write)(&mut state.out);
        debug_assert_eq!(state.out.len() - at, MESSAGE_HEAD_LEN + message.len);
        state.uncounted += 1;
        if !state.posted {
            self.post(state);
        }
        MESSAGE_HEAD_LEN + message.len
    }

    /// Before the first message: the reply metadata set so far, as a
    /// headers frame (none when nothing was set).
    #[cold]
    fn send_headers(&self, state: &mut State) {
        state.headers_due = false;
        let headers = self.take_reply_metadata();
        if !headers.is_empty() {
            encode_stream_headers(self.id, &headers, &mut state.out);
        }
    }

    /// The reply metadata set since it was last taken (empty when the
    /// client does not read it).
    fn take_reply_metadata(&self) -> Metadata {
        match &self.reply {
            Some(reply) => std::mem::take(&mut *reply.lock()),
            None => Metadata::new(),
        }
    }

    /// The client's next message: `None` once it half-closed and every
    /// message was read; `Err` once the stream is over.
    pub(crate) fn poll_recv(
        self: &Arc<Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Status>>> {
        let mut state = self.state.lock();
        if let Some(next) = self.next_inbound(&mut state) {
            return Poll::Ready(next);
        }
        self.grant_read(&mut state);
        state.recv_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The client's next message, read from a thread off the reactor (a
    /// blocking handler on the worker pool), blocking until it comes, the
    /// client half-closes (`None`) or the stream is over (`Err`).
    pub(crate) fn recv_blocking(self: &Arc<Self>) -> Option<Result<Bytes, Status>> {
        let mut state = self.state.lock();
        loop {
            if let Some(next) = self.next_inbound(&mut state) {
                return next;
            }
            self.grant_read(&mut state);
            self.changed.wait(&mut state);
        }
    }

    /// A reader about to wait grants what it read since the last grant:
    /// a client held by its own cap in bytes is never left waiting for a
    /// grant this side holds back.
    fn grant_read(self: &Arc<Self>, state: &mut State) {
        if state.consumed > 0 && state.over.is_none() {
            state.to_grant += std::mem::take(&mut state.consumed);
            self.post(state);
        }
    }

    /// What a read gets now: a message (granting credit every half
    /// window), the end, or the stream's status; `None`: nothing yet.
    fn next_inbound(self: &Arc<Self>, state: &mut State) -> Option<Option<Result<Bytes, Status>>> {
        if let Some(message) = state.inbound.pop_front() {
            state.consumed += 1;
            if state.consumed >= (state.window / 2).max(1) {
                state.to_grant += state.consumed;
                state.consumed = 0;
                self.post(state);
            }
            return Some(Some(Ok(message)));
        }
        if let Some(status) = &state.over {
            return Some(Some(Err(status.clone())));
        }
        if state.inbound_ended {
            return Some(None);
        }
        None
    }

    /// Whether the stream is over (reset, expired, connection lost).
    pub(crate) fn is_over(&self) -> bool {
        self.state.lock().over.is_some()
    }

    /// Adds one to a counter of its reactor's (for /metrics).
    fn count(&self, counter: impl FnOnce(&ReactorStats) -> &AtomicU64) {
        self.count_n(counter, 1);
    }

    fn count_n(&self, counter: impl FnOnce(&ReactorStats) -> &AtomicU64, n: u64) {
        if let Some(reactor) = self.reactor.upgrade() {
            bump(counter(reactor.stats()), n);
        }
    }

    /// Counts the messages sent since the last count.
    fn count_sent(&self, state: &mut State) {
        let sent = std::mem::take(&mut state.uncounted);
        if sent > 0 {
            self.count_n(|s| &s.stream_messages_sent, sent);
        }
    }

    /// Queues the core on its reactor, once until the reactor moves it.
    fn post(self: &Arc<Self>, state: &mut State) {
        if !state.posted {
            state.posted = true;
            if let Some(reactor) = self.reactor.upgrade() {
                reactor.stream_ready(self.clone());
            }
        }
    }

    // --- the reactor's side ---------------------------------------------

    /// The client grants `credit` more messages.
    pub(crate) fn grant(&self, credit: u32) {
        let mut state = self.state.lock();
        state.credit.grant(credit);
        if let Some(waker) = state.send_waker.take() {
            waker.wake();
        }
        self.changed.notify_all();
    }

    /// A message from the client; `Err` when it sent past its credit.
    pub(crate) fn push_inbound(&self, message: Bytes) -> Result<(), Status> {
        let mut state = self.state.lock();
        if state.inbound_ended || !self.shape.client_streams() {
            return Err(Status::bad_request(
                "a stream message after the client's end, or on a server stream",
            ));
        }
        if state.allowance == 0 {
            return Err(Status::resource_exhausted(
                "the client sent past its stream credit",
            ));
        }
        state.allowance -= 1;
        state.inbound.push_back(message);
        self.count(|s| &s.stream_messages_received);
        if let Some(waker) = state.recv_waker.take() {
            waker.wake();
        }
        self.changed.notify_all();
        Ok(())
    }

    /// The client half-closed its direction.
    pub(crate) fn end_inbound(&self) {
        let mut state = self.state.lock();
        state.inbound_ended = true;
        if let Some(waker) = state.recv_waker.take() {
            waker.wake();
        }
        self.changed.notify_all();
    }

    /// Moves the frames sent (and a credit grant) into `out`.
    pub(crate) fn take_output(&self, out: &mut BytesMut) {
        let mut state = self.state.lock();
        state.posted = false;
        self.count_sent(&mut state);
        if state.over.is_some() {
            return;
        }
        move_output(self.id, &mut state, out);
    }

    /// The stream is over with `status`: what its handler sent goes out
    /// first (into `out`; `None`: nobody to send to), then the end frame.
    pub(crate) fn finish(&self, status: &Status, out: Option<&mut BytesMut>) {
        let mut state = self.state.lock();
        if state.over.is_some() {
            return;
        }
        self.count_sent(&mut state);
        if let Some(out) = out {
            move_output(self.id, &mut state, out);
            let trailers = self.take_reply_metadata();
            encode_stream_end_meta(self.id, status.code(), message(status), &trailers, out);
        }
        state.out = BytesMut::new();
        state.inbound.clear();
        state.over = Some(status.clone());
        if let Some(reactor) = self.reactor.upgrade() {
            reactor.stats().stream_ended(status.code());
        }
        for waker in [state.send_waker.take(), state.recv_waker.take()]
            .into_iter()
            .flatten()
        {
            waker.wake();
        }
        self.changed.notify_all();
    }
}

/// The text an end frame carries: none on `Ok`.
fn message(status: &Status) -> &str {
    match status.code() {
        Code::Ok => "",
        _ => status.message(),
    }
}

fn move_output(id: u64, state: &mut State, out: &mut BytesMut) {
    if out.is_empty() {
        // Hand the frames over whole (the connection's empty buffer comes
        // back for the next batch): no copy.
        std::mem::swap(out, &mut state.out);
    } else {
        out.extend_from_slice(&state.out);
        state.out.clear();
    }
    if state.to_grant > 0 {
        encode_stream_credit(id, state.to_grant, out);
        state.allowance = state.allowance.saturating_add(state.to_grant);
        state.to_grant = 0;
    }
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("conn_id", &self.conn_id)
            .field("id", &self.id)
            .field("shape", &self.shape)
            .finish()
    }
}
