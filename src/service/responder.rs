//! Answering a call later, from anywhere: a [`Responder`] and its [`Reply`].
//!
//! An async handler (see [`Service::answers_later`](crate::Service::answers_later))
//! returns a future. When the answer comes from another thread — a worker
//! of your own, a callback, a tokio runtime — the handler makes a pair with
//! [`Responder::pair`], moves the `Responder` there and returns the `Reply`
//! (a future) to the server. `Responder::send` completes the call and wakes
//! the connection's reactor; no thread of the server waits meanwhile.
//!
//! The reply is never lost: a `Responder` dropped without answering (its
//! thread panicked, a branch forgot it) answers `Internal`, and the caller
//! hears about it at once instead of waiting for its deadline.
//!
//! Awaiting a tokio-based future (a database client, say) from a handler:
//! keep a `tokio::runtime::Handle` in the service and bridge through a pair,
//! so the server needs no tokio runtime of its own:
//!
//! ```ignore
//! fn get_user(self: Arc<Self>, ctx: CallContext, req: GetUserRequest)
//!     -> impl Future<Output = Result<GetUserResponse, Status>> + Send + 'static {
//!     let (responder, reply) = mprpc::Responder::pair();
//!     self.tokio.spawn(async move {
//!         responder.send(self.db.get_user(req.id).await.map_err(to_status));
//!     });
//!     reply
//! }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::call::status::Status;

/// What a dropped, unanswered [`Responder`] answers.
const DROPPED: &str = "the handler dropped its Responder without answering";

struct Slot<T> {
    result: Option<Result<T, Status>>,
    waker: Option<Waker>,
    /// The `Reply` is gone (its call was cancelled or its connection
    /// closed): nobody will read an answer.
    abandoned: bool,
}

/// Completes one call later; `Send`, so it can move to any thread.
/// Dropping it unanswered answers `Internal`.
pub struct Responder<T> {
    slot: Option<Arc<Mutex<Slot<T>>>>,
}

/// The future of a [`Responder`]'s answer; return it from an async handler.
pub struct Reply<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> std::fmt::Debug for Responder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("answered", &self.slot.is_none())
            .finish()
    }
}

impl<T> std::fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ready = self.slot.lock().result.is_some();
        f.debug_struct("Reply").field("ready", &ready).finish()
    }
}

impl<T> Responder<T> {
    /// A responder and the reply future it completes.
    pub fn pair() -> (Responder<T>, Reply<T>) {
        let slot = Arc::new(Mutex::new(Slot {
            result: None,
            waker: None,
            abandoned: false,
        }));
        (
            Responder {
                slot: Some(slot.clone()),
            },
            Reply { slot },
        )
    }

    /// Answers the call (and wakes the reactor polling its reply).
    pub fn send(mut self, result: Result<T, Status>) {
        self.complete(result);
    }

    /// True once nobody waits for the answer any more (the call was
    /// cancelled or its connection closed): long work can stop early.
    pub fn is_abandoned(&self) -> bool {
        match &self.slot {
            Some(slot) => slot.lock().abandoned,
            None => true,
        }
    }

    fn complete(&mut self, result: Result<T, Status>) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let waker = {
            let mut slot = slot.lock();
            slot.result = Some(result);
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for Responder<T> {
    fn drop(&mut self) {
        if self.slot.is_some() {
            tracing::warn!("{DROPPED}; answering Internal");
            self.complete(Err(Status::internal(DROPPED)));
        }
    }
}

impl<T> Future for Reply<T> {
    type Output = Result<T, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.slot.lock();
        if let Some(result) = slot.result.take() {
            return Poll::Ready(result);
        }
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        let mut slot = self.slot.lock();
        slot.abandoned = true;
        slot.waker = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::status::Code;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll<T>(reply: &mut Reply<T>, waker: &Waker) -> Poll<Result<T, Status>> {
        Pin::new(reply).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn an_answer_from_another_thread_wakes_the_reply() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let (responder, mut reply) = Responder::<u32>::pair();
        assert!(poll(&mut reply, &waker).is_pending());
        std::thread::spawn(move || responder.send(Ok(7)))
            .join()
            .unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(matches!(poll(&mut reply, &waker), Poll::Ready(Ok(7))));
    }

    #[test]
    fn a_dropped_responder_answers_internal() {
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let (responder, mut reply) = Responder::<u32>::pair();
        drop(responder);
        match poll(&mut reply, &waker) {
            Poll::Ready(Err(status)) => assert_eq!(status.code(), Code::Internal),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_dropped_reply_marks_the_responder_abandoned() {
        let (responder, reply) = Responder::<u32>::pair();
        assert!(!responder.is_abandoned());
        drop(reply);
        assert!(responder.is_abandoned());
        responder.send(Ok(1)); // nobody listens; no panic
    }
}
