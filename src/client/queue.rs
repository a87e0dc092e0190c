//! The submission queue between calling threads and the channel's I/O driver.
//!
//! Callers encode their request frame straight into a shared staging buffer
//! and push a small command, under one short parking_lot lock; the driver
//! swaps the whole queue out for an empty one each loop turn (double
//! buffering, so neither side allocates in steady state). The mio `Waker`
//! is rung only when the queue goes from empty to non-empty: under load
//! many calls share one wake-up syscall.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use mio::Waker;
use parking_lot::Mutex;

use super::call::Completion;
use crate::codec::{encode_request, RequestHead};
use crate::discovery::Endpoint;

/// A call handed to the driver.
pub(crate) struct NewCall {
    pub id: u64,
    /// Where its encoded request frame sits in the staging buffer.
    pub frame: Range<usize>,
    pub deadline: Option<Instant>,
    pub endpoints: Arc<[Endpoint]>,
    pub hash_key: Option<u64>,
    pub completion: Arc<dyn Completion>,
}

/// Work for the driver.
pub(crate) enum Command {
    Call(NewCall),
    /// The caller gave up on this call (it is already completed).
    Cancel(u64),
}

/// What callers fill and the driver drains.
#[derive(Default)]
pub(crate) struct Batch {
    pub commands: Vec<Command>,
    pub frames: BytesMut,
}

/// State shared by a channel's handles and its driver thread.
pub(crate) struct Shared {
    queue: Mutex<(Batch, u64)>,
    /// `None` when the driver could not be started.
    waker: Option<Waker>,
    /// Calls submitted and not yet retired by the driver.
    pub inflight: AtomicUsize,
    /// Set when the last `Channel` clone is dropped.
    pub shutdown: AtomicBool,
}

/// The routing part of a call being submitted.
pub(crate) struct Submit<'a> {
    pub service: &'a str,
    pub method: &'a str,
    pub timeout_ms: u32,
    pub deadline: Option<Instant>,
    pub endpoints: Arc<[Endpoint]>,
    pub hash_key: Option<u64>,
}

impl Shared {
    pub(crate) fn new(waker: Option<Waker>) -> Shared {
        Shared {
            queue: Mutex::new((Batch::default(), 1)),
            waker,
            inflight: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
        }
    }

    /// Encodes and queues a call; returns its request id.
    pub(crate) fn submit(
        &self,
        call: Submit<'_>,
        payload: &[u8],
        completion: Arc<dyn Completion>,
    ) -> u64 {
        let mut guard = self.queue.lock();
        let (batch, next_id) = &mut *guard;
        let id = *next_id;
        *next_id += 1;
        let start = batch.frames.len();
        let head = RequestHead {
            id,
            timeout_ms: call.timeout_ms,
            service: call.service,
            method: call.method,
        };
        encode_request(head, payload, &mut batch.frames);
        let frame = start..batch.frames.len();
        let was_empty = batch.commands.is_empty();
        batch.commands.push(Command::Call(NewCall {
            id,
            frame,
            deadline: call.deadline,
            endpoints: call.endpoints,
            hash_key: call.hash_key,
            completion,
        }));
        drop(guard);
        if was_empty {
            self.wake();
        }
        id
    }

    /// Tells the driver to forget call `id` and send the server a cancel.
    pub(crate) fn cancel(&self, id: u64) {
        let mut guard = self.queue.lock();
        let was_empty = guard.0.commands.is_empty();
        guard.0.commands.push(Command::Cancel(id));
        drop(guard);
        if was_empty {
            self.wake();
        }
    }

    /// Swaps the pending batch with `spare` (which must be empty).
    pub(crate) fn take(&self, spare: &mut Batch) {
        std::mem::swap(&mut self.queue.lock().0, spare);
    }

    pub(crate) fn is_running(&self) -> bool {
        self.waker.is_some()
    }

    pub(crate) fn wake(&self) {
        if let Some(waker) = &self.waker {
            if let Err(e) = waker.wake() {
                tracing::warn!("client: cannot wake the I/O driver: {e}");
            }
        }
    }

    /// Releases one in-flight slot.
    #[inline]
    pub(crate) fn retire(&self) {
        self.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}
