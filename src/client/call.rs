//! How a call's outcome reaches its caller: callback, future or blocking wait.
//!
//! Every call has a completion cell, pooled by its driver (see `cells`).
//! Whoever completes it first — the driver with a reply, a deadline or a
//! lost connection, or a canceller on any thread — delivers the result;
//! later attempts are ignored. That is what lets `cancel()` finish a call
//! at once, from the cancelling thread, while the driver merely forgets it
//! and tells the server.

use std::cell::Cell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;

use super::cells::CellRef;
use super::observe::Watch;
use super::queue::Shared;
use crate::call::status::{Code, Status};

thread_local! {
    /// On a channel's I/O driver thread (where `call_with` callbacks run):
    /// that driver's queue. Null on every other thread.
    static IO_THREAD_OF: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
}

thread_local! {
    /// On a driver thread: the time its current loop turn started.
    static TURN_STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The driver thread records when its loop turn started.
pub(crate) fn set_turn_started(now: Instant) {
    TURN_STARTED.with(|t| t.set(Some(now)));
}

/// The time to start a call's deadline from: on a driver thread (inside a
/// callback) the start of its loop turn, which is at most one turn old and
/// only makes the deadline earlier, saving a clock read per call (a
/// noticeable cost on VMs); elsewhere, now.
pub(crate) fn call_start_time() -> Instant {
    TURN_STARTED.with(Cell::get).unwrap_or_else(Instant::now)
}

/// Marks the calling thread as the I/O thread of the driver behind `shared`.
pub(crate) fn mark_io_thread(shared: &Arc<Shared>) {
    IO_THREAD_OF.with(|of| of.set(Arc::as_ptr(shared)));
}

/// This is the I/O thread of the driver behind `shared`.
pub(crate) fn on_driver_thread(shared: &Shared) -> bool {
    IO_THREAD_OF.with(|of| std::ptr::eq(of.get(), shared))
}

/// This is the I/O thread of some channel's driver, if any.
pub(crate) fn current_driver() -> Option<*const Shared> {
    let of = IO_THREAD_OF.with(Cell::get);
    (!of.is_null()).then_some(of)
}

/// Fails a blocking wait attempted on a client I/O thread, instead of
/// letting it deadlock the channel (its reply could never be read).
pub(crate) fn refuse_blocking_on_io_thread() -> Result<(), Status> {
    if current_driver().is_none() {
        return Ok(());
    }
    tracing::error!("client: a blocking call was made inside a call_with callback; refused");
    Err(Status::new(
        Code::FailedPrecondition,
        "blocking call made on the client's I/O thread (inside a *_with callback): it would \
         wait on itself and stall every call on the channel; start it with *_with or *_async \
         instead, or hand the work to another thread",
    ))
}

/// A call's outcome.
pub(crate) type CallResult = Result<Bytes, Status>;

fn cancelled() -> Status {
    Status::cancelled("call cancelled by the caller")
}

/// Cancels a call started with `Channel::call_with`. Dropping it does not
/// cancel the call.
#[derive(Clone)]
pub struct CallHandle {
    cell: CellRef,
    id: u64,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for CallHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallHandle")
            .field("id", &self.id)
            .field("done", &self.is_done())
            .finish()
    }
}

impl CallHandle {
    pub(crate) fn new(cell: CellRef, id: u64, shared: Arc<Shared>) -> CallHandle {
        CallHandle { cell, id, shared }
    }

    /// Completes the call with `Code::Cancelled` now (running its callback
    /// on this thread) and tells the server to drop it. No-op once done.
    pub fn cancel(&self) {
        if self.shared.cells.complete(self.cell, Err(cancelled())) && self.id != 0 {
            self.shared.cancel(self.id);
        }
    }

    /// True once the call has completed (replied, failed or cancelled).
    pub fn is_done(&self) -> bool {
        self.shared.cells.is_done(self.cell)
    }
}

/// A call in flight, started with `Channel::call_async`. It is a `Future`
/// (for any executor) and can also be waited on by blocking. Dropping it
/// before it completes cancels the call, so ignoring one is a warning:
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// # fn f(channel: &mprpc::Channel) {
/// channel.call_async("S", "M", bytes::Bytes::new(), &mprpc::CallOptions::default());
/// # }
/// ```
///
/// while keeping it (and then awaiting or waiting on it) is fine:
///
/// ```no_run
/// #![deny(unused_must_use)]
/// # fn f(channel: &mprpc::Channel) {
/// let pending = channel.call_async("S", "M", bytes::Bytes::new(), &mprpc::CallOptions::default());
/// let reply = pending.wait();
/// # }
/// ```
#[must_use = "dropping a PendingCall cancels the call: `.await` it, `.wait()` on it, or keep it"]
pub struct PendingCall {
    cell: CellRef,
    id: u64,
    shared: Arc<Shared>,
    /// The channel's interceptors, told of the outcome once it is taken.
    watch: Option<Box<Watch>>,
}

impl std::fmt::Debug for PendingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCall")
            .field("id", &self.id)
            .field("done", &self.is_done())
            .finish()
    }
}

impl PendingCall {
    pub(crate) fn new(
        cell: CellRef,
        id: u64,
        shared: Arc<Shared>,
        watch: Option<Box<Watch>>,
    ) -> PendingCall {
        PendingCall {
            cell,
            id,
            shared,
            watch,
        }
    }

    /// Parks this thread until the call completes.
    pub fn wait(mut self) -> Result<Bytes, Status> {
        self.take()
    }

    /// Waits for the result and takes it (the cell is freed on drop).
    fn take(&mut self) -> CallResult {
        let result = self
            .shared
            .cells
            .wait(self.cell, refuse_blocking_on_io_thread, || {
                self.shared.rouse_to_poll()
            });
        self.watched(&result);
        result
    }

    fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<CallResult> {
        let polled = self.shared.cells.poll(self.cell, cx);
        if let Poll::Ready(result) = &polled {
            self.watched(result);
        }
        polled
    }

    /// Tells the interceptors (if any) how the call ended, once.
    fn watched(&mut self, result: &CallResult) {
        if let Some(watch) = self.watch.take() {
            watch.ended(result);
        }
    }

    /// Completes the call with `Code::Cancelled` now and tells the server
    /// to drop it. No-op once done.
    pub fn cancel(&self) {
        if self.shared.cells.complete(self.cell, Err(cancelled())) && self.id != 0 {
            self.shared.cancel(self.id);
        }
    }

    /// True once the call has completed.
    pub fn is_done(&self) -> bool {
        self.shared.cells.is_done(self.cell)
    }

    /// A handle that can cancel this call from elsewhere.
    pub(crate) fn handle(&self) -> CallHandle {
        CallHandle::new(self.cell, self.id, self.shared.clone())
    }
}

impl Future for PendingCall {
    type Output = Result<Bytes, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_result(cx)
    }
}

impl Drop for PendingCall {
    /// Frees the call's cell; a call still pending is cancelled.
    fn drop(&mut self) {
        if let Some(watch) = self.watch.take() {
            // Its outcome was never taken: it is its result if there is
            // one, else the cancel this drop makes.
            if self.is_done() {
                let waker = std::task::Waker::from(Arc::new(NoWake));
                let mut cx = Context::from_waker(&waker);
                if let Poll::Ready(result) = self.shared.cells.poll(self.cell, &mut cx) {
                    watch.ended(&result);
                }
            } else {
                watch.ended_with(Code::Cancelled);
            }
        }
        if self.shared.cells.release(self.cell) && self.id != 0 {
            self.shared.cancel(self.id);
        }
    }
}

/// A waker for a poll that only peeks.
struct NoWake;

impl std::task::Wake for NoWake {
    fn wake(self: Arc<Self>) {}
}

/// A `PendingCall` whose reply is decoded as a protobuf `T`. Dropping it
/// before it completes cancels the call.
#[must_use = "dropping a TypedCall cancels the call: `.await` it, `.wait()` on it, or keep it"]
pub struct TypedCall<T> {
    inner: PendingCall,
    _reply: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for TypedCall<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T: prost::Message + Default> TypedCall<T> {
    /// Decodes `inner`'s reply as a `T` (generated `*_async` stubs use this).
    pub fn new(inner: PendingCall) -> TypedCall<T> {
        TypedCall {
            inner,
            _reply: PhantomData,
        }
    }

    /// Parks this thread until the call completes, then decodes the reply.
    pub fn wait(mut self) -> Result<T, Status> {
        self.inner.take().and_then(decode_response)
    }

    /// Completes the call with `Code::Cancelled` now and tells the server
    /// to drop it. No-op once done.
    pub fn cancel(&self) {
        self.inner.cancel()
    }

    /// True once the call has completed.
    pub fn is_done(&self) -> bool {
        self.inner.is_done()
    }
}

impl<T: prost::Message + Default> Future for TypedCall<T> {
    type Output = Result<T, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut()
            .inner
            .poll_result(cx)
            .map(|r| r.and_then(decode_response))
    }
}

/// Decodes a reply payload; a malformed one is `Code::Internal`.
pub fn decode_response<T: prost::Message + Default>(payload: Bytes) -> Result<T, Status> {
    T::decode(payload).map_err(|e| Status::internal(format!("bad response: {e}")))
}
