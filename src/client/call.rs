//! How a call's outcome reaches its caller: callback, future or blocking wait.
//!
//! Every call owns one `Arc<dyn Completion>` (a single allocation that also
//! holds the user's callback). Whoever completes it first — the driver with
//! a reply, a deadline or a lost connection, or a canceller on any thread —
//! delivers the result; later attempts are ignored. That is what lets
//! `cancel()` finish a call at once, from the cancelling thread, while the
//! driver merely forgets it and tells the server.

use std::cell::Cell;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use super::queue::Shared;
use crate::status::{Code, Status};

thread_local! {
    /// On a channel's I/O driver thread (where `call_with` callbacks run):
    /// that driver's queue. Null on every other thread.
    static IO_THREAD_OF: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
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

/// How long a blocking wait spins before it parks.
const SPIN_FOR: std::time::Duration = std::time::Duration::from_micros(100);

/// A call's outcome.
pub(crate) type CallResult = Result<Bytes, Status>;

/// The receiving end of one call.
pub(crate) trait Completion: Send + Sync + 'static {
    /// Delivers `result` unless the call already completed; true if it did.
    fn complete(&self, result: CallResult) -> bool;
    fn is_done(&self) -> bool;
}

/// `call_with`: runs the user's callback once.
pub(crate) struct CallbackCell<F> {
    done: Mutex<Option<F>>,
}

impl<F> CallbackCell<F> {
    pub(crate) fn new(done: F) -> CallbackCell<F> {
        CallbackCell {
            done: Mutex::new(Some(done)),
        }
    }
}

impl<F: FnOnce(CallResult) + Send + 'static> Completion for CallbackCell<F> {
    fn complete(&self, result: CallResult) -> bool {
        let Some(done) = self.done.lock().take() else {
            return false;
        };
        // A panicking callback must not take the I/O driver down with it.
        if catch_unwind(AssertUnwindSafe(|| done(result))).is_err() {
            tracing::error!("client: a call_with callback panicked");
        }
        true
    }

    fn is_done(&self) -> bool {
        self.done.lock().is_none()
    }
}

#[derive(Default)]
struct FutureState {
    result: Option<CallResult>,
    waker: Option<Waker>,
}

/// `call_async` / `call`: a result slot with a condvar and a task waker.
#[derive(Default)]
pub(crate) struct FutureCell {
    done: AtomicBool,
    state: Mutex<FutureState>,
    ready: Condvar,
}

impl Completion for FutureCell {
    fn complete(&self, result: CallResult) -> bool {
        let mut state = self.state.lock();
        if self.done.load(Ordering::Relaxed) {
            return false;
        }
        self.done.store(true, Ordering::Release);
        state.result = Some(result);
        let waker = state.waker.take();
        drop(state);
        self.ready.notify_one();
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

impl FutureCell {
    fn wait(&self) -> CallResult {
        if !self.is_done() {
            refuse_blocking_on_io_thread()?;
            self.spin_until_done();
        }
        let mut state = self.state.lock();
        loop {
            if let Some(result) = state.result.take() {
                return result;
            }
            if self.done.load(Ordering::Relaxed) {
                return Err(already_taken());
            }
            self.ready.wait(&mut state);
        }
    }

    /// Loopback replies often come back within tens of microseconds: a
    /// short spin (then yielding the core, which the I/O and server threads
    /// may need) catches them without the futex sleep and wake-up that
    /// parking costs on both sides. Gives up after [`SPIN_FOR`].
    fn spin_until_done(&self) {
        let started = std::time::Instant::now();
        let mut spins = 0u32;
        while !self.done.load(Ordering::Acquire) {
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
            spins += 1;
            if spins.is_multiple_of(16) && started.elapsed() >= SPIN_FOR {
                return;
            }
        }
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<CallResult> {
        let mut state = self.state.lock();
        if let Some(result) = state.result.take() {
            return Poll::Ready(result);
        }
        if self.done.load(Ordering::Relaxed) {
            return Poll::Ready(Err(already_taken()));
        }
        match &mut state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

fn already_taken() -> Status {
    Status::internal("call result already taken (future polled after completion)")
}

fn cancelled() -> Status {
    Status::cancelled("call cancelled by the caller")
}

/// Cancels a call started with `Channel::call_with`. Dropping it does not
/// cancel the call.
#[derive(Clone)]
pub struct CallHandle {
    cell: Arc<dyn Completion>,
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
    pub(crate) fn new(cell: Arc<dyn Completion>, id: u64, shared: Arc<Shared>) -> CallHandle {
        CallHandle { cell, id, shared }
    }

    /// Completes the call with `Code::Cancelled` now (running its callback
    /// on this thread) and tells the server to drop it. No-op once done.
    pub fn cancel(&self) {
        if self.cell.complete(Err(cancelled())) && self.id != 0 {
            self.shared.cancel(self.id);
        }
    }

    /// True once the call has completed (replied, failed or cancelled).
    pub fn is_done(&self) -> bool {
        self.cell.is_done()
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
    cell: Arc<FutureCell>,
    id: u64,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PendingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCall")
            .field("id", &self.id)
            .field("done", &self.cell.is_done())
            .finish()
    }
}

impl PendingCall {
    pub(crate) fn new(cell: Arc<FutureCell>, id: u64, shared: Arc<Shared>) -> PendingCall {
        PendingCall { cell, id, shared }
    }

    /// Parks this thread until the call completes.
    pub fn wait(self) -> Result<Bytes, Status> {
        self.cell.wait()
    }

    /// Completes the call with `Code::Cancelled` now and tells the server
    /// to drop it. No-op once done.
    pub fn cancel(&self) {
        if self.cell.complete(Err(cancelled())) && self.id != 0 {
            self.shared.cancel(self.id);
        }
    }

    /// True once the call has completed.
    pub fn is_done(&self) -> bool {
        self.cell.is_done()
    }

    /// A handle that can cancel this call from elsewhere.
    pub(crate) fn handle(&self) -> CallHandle {
        CallHandle::new(self.cell.clone(), self.id, self.shared.clone())
    }
}

impl Future for PendingCall {
    type Output = Result<Bytes, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.cell.poll(cx)
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        if !self.cell.is_done() {
            self.cancel();
        }
    }
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
    pub fn wait(self) -> Result<T, Status> {
        self.inner.cell.wait().and_then(decode_response)
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
        self.inner
            .cell
            .poll(cx)
            .map(|r| r.and_then(decode_response))
    }
}

/// Decodes a reply payload; a malformed one is `Code::Internal`.
pub fn decode_response<T: prost::Message + Default>(payload: Bytes) -> Result<T, Status> {
    T::decode(payload).map_err(|e| Status::internal(format!("bad response: {e}")))
}
