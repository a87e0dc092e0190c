//! A service that answers later, run the blocking way instead: on the
//! provider's worker pool, each call's future driven to its end by the pool
//! thread that took the call, which sleeps (parks) while it waits.
//!
//! This is how a middle tier has to be written without handlers that
//! answer later: a sync handler that makes its downstream calls and waits.
//! It holds one of `worker_threads` threads per call in flight, so at most
//! that many calls progress at once. The `gateway` binary's `--blocking`
//! publishes its handler this way, so the two can be measured side by side
//! with the same code (`scripts/chain.sh`). Deadline inheritance still
//! applies: the future is polled inside the pool's call.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use bytes::{Bytes, BytesMut};
use mprpc::service::Schema;
use mprpc::{CallContext, Service, Status};

/// Publishes `S` (a service whose handlers answer later) as a sync
/// service; give it to `RpcProvider::notify_blocking_service`.
#[derive(Debug, Clone)]
pub struct OnWorkerPool<S>(pub S);

impl<S: Service> Service for OnWorkerPool<S> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn methods(&self) -> &'static [&'static str] {
        self.0.methods()
    }

    fn schema(&self) -> Option<Schema> {
        self.0.schema()
    }

    fn call(
        &self,
        method: &str,
        ctx: &CallContext,
        request: Bytes,
        response: &mut BytesMut,
    ) -> Result<(), Status> {
        let reply = block_on(self.0.call_later(method, ctx.clone(), request)?)?;
        response.extend_from_slice(&reply);
        Ok(())
    }
}

/// Wakes the thread that waits in [`block_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread until it is ready, parking in between.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // A wake between the poll and here leaves the token set: no sleep.
        thread::park();
    }
}
