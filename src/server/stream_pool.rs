//! Blocking stream handlers on the worker pool.
//!
//! A stream's handler is always, to its reactor, a future in `pending`
//! (that is how the reactor tracks the stream's deadline, its reset and its
//! connection). A blocking handler is a closure instead: [`OnPool::start`]
//! queues it on the worker pool and gives the reactor a small future that
//! waits for its outcome, which the worker hands over and wakes the reactor
//! for when the closure returns. The closure sends and reads through the
//! stream's [`Core`] (`send_blocking`, `recv_blocking`), blocking its worker
//! (never the reactor) while the client has no credit or no message.
//!
//! When the stream ends early (the client resets it, its deadline passes,
//! its connection closes, shutdown's grace period is over) the reactor
//! finishes the core, which wakes a blocked send or read with the stream's
//! status, so the handler returns and its worker is free again; a handler
//! still queued is not run at all (its ticket is cancelled when the
//! reactor drops the waiting future).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use super::handler;
use super::stream::Core;
use super::workers::{JobSender, PoolTicket, StreamJob};
use crate::call::deadline::Serving;
use crate::call::status::Status;
use crate::service::stream::StreamFuture;

/// What a stream needs to run its handler on the pool: the pool, and the
/// span and call the handler runs in (calls it starts inherit its
/// deadline and trace id, as a blocking unary handler's do).
#[derive(Clone)]
pub(crate) struct OnPool {
    pub(crate) jobs: JobSender,
    pub(crate) span: tracing::Span,
    pub(crate) serving: Serving,
}

/// A blocking handler's outcome, and the reactor's task waiting for it.
#[derive(Default)]
struct Outcome {
    result: Option<Result<(), Status>>,
    waker: Option<Waker>,
}

impl OnPool {
    /// Queues `handler` of the stream `core` on the pool; the future ends
    /// with the handler's outcome. `Overloaded` when the pool's queue is
    /// full (the stream ends at once with it).
    pub(crate) fn start(
        &self,
        core: Arc<Core>,
        handler: Box<dyn FnOnce() -> Result<(), Status> + Send>,
    ) -> Result<StreamFuture, Status> {
        if self.jobs.is_full() {
            return Err(Status::overloaded(
                "the worker pool's queue is full (max_queued_calls); the stream's handler did not run",
            ));
        }
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let ticket = self.jobs.ticket();
        let (span, serving, told) = (self.span.clone(), self.serving, outcome.clone());
        let run = move || {
            let result = match core.is_over() {
                true => Err(Status::cancelled("the stream ended before its handler ran")),
                false => handler::guarded(&span, serving, handler).and_then(|r| r),
            };
            tell(&told, result);
        };
        self.jobs.send_stream(StreamJob {
            ticket: ticket.clone(),
            run: Box::new(run),
        });
        Ok(Box::pin(Waiting { outcome, ticket }))
    }
}

/// Hands the handler's outcome to the waiting future and wakes it.
fn tell(outcome: &Mutex<Outcome>, result: Result<(), Status>) {
    let waker = {
        let mut outcome = outcome.lock();
        outcome.result = Some(result);
        outcome.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The reactor's side of a blocking handler: ready with its outcome.
struct Waiting {
    outcome: Arc<Mutex<Outcome>>,
    ticket: PoolTicket,
}

impl Future for Waiting {
    type Output = Result<(), Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut outcome = self.outcome.lock();
        match outcome.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                outcome.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for Waiting {
    /// The stream ended first: a handler still queued never runs (one
    /// running is woken by the stream's end, which its core was told).
    fn drop(&mut self) {
        self.ticket.cancel();
    }
}
