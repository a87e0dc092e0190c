//! What every server thread shares: the shutdown flag, the connection
//! count, backpressure counters, concurrency limits and the input-buffer
//! budget, and the count of running threads `wait()` blocks on.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::budget;
use super::limit::Limits;

/// How often backpressure acted, since the server started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackpressureStats {
    /// Times a connection stopped reading because its unsent output or its
    /// calls in flight reached the limit.
    pub read_pauses: u64,
    /// The most reply bytes any connection held unsent after a flush the
    /// socket could not take whole (bounded by `write_high_water` plus the
    /// replies of the requests read in the same turn).
    pub peak_unsent_bytes: usize,
}

/// The counters behind [`BackpressureStats`]; touched only when
/// backpressure acts, never on the fast path.
#[derive(Debug, Default)]
pub(crate) struct BackpressureCounters {
    read_pauses: AtomicU64,
    peak_unsent: AtomicUsize,
}

impl BackpressureCounters {
    pub(crate) fn read_paused(&self) {
        self.read_pauses.fetch_add(1, Ordering::Relaxed);
    }

    /// A flush left `unsent` bytes behind.
    pub(crate) fn output_blocked(&self, unsent: usize) {
        self.peak_unsent.fetch_max(unsent, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> BackpressureStats {
        BackpressureStats {
            read_pauses: self.read_pauses.load(Ordering::Relaxed),
            peak_unsent_bytes: self.peak_unsent.load(Ordering::Relaxed),
        }
    }
}

/// State every server thread can see.
pub(crate) struct ServerShared {
    shutting_down: AtomicBool,
    connections: AtomicUsize,
    backpressure: BackpressureCounters,
    limits: Arc<Limits>,
    /// Input bytes buffered over all connections (`max_buffered_bytes`).
    buffers: budget::BufferBudget,
    running_threads: Mutex<usize>,
    stopped: Condvar,
}

impl ServerShared {
    pub(super) fn new(limits: Limits, max_buffered_bytes: usize) -> ServerShared {
        ServerShared {
            shutting_down: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            backpressure: BackpressureCounters::default(),
            limits: Arc::new(limits),
            buffers: budget::BufferBudget::new(max_buffered_bytes),
            running_threads: Mutex::new(0),
            stopped: Condvar::new(),
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Marks the server as shutting down; true if it already was.
    pub(super) fn begin_shutdown(&self) -> bool {
        self.shutting_down.swap(true, Ordering::AcqRel)
    }

    /// Blocks until every thread holding a [`ThreadGuard`] has let go.
    pub(super) fn wait_until_threads_stop(&self) {
        let mut running = self.running_threads.lock();
        while *running > 0 {
            self.stopped.wait(&mut running);
        }
    }

    pub(crate) fn connections(&self) -> &AtomicUsize {
        &self.connections
    }

    pub(crate) fn backpressure(&self) -> &BackpressureCounters {
        &self.backpressure
    }

    pub(crate) fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    pub(crate) fn buffers(&self) -> &budget::BufferBudget {
        &self.buffers
    }

    /// Counts a server thread as running until the guard drops (even by a
    /// panic), so `wait()` knows when everything has stopped.
    pub(crate) fn thread_guard(self: &Arc<Self>) -> ThreadGuard {
        *self.running_threads.lock() += 1;
        ThreadGuard(self.clone())
    }
}

pub(crate) struct ThreadGuard(Arc<ServerShared>);

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        let mut running = self.0.running_threads.lock();
        *running -= 1;
        if *running == 0 {
            self.0.stopped.notify_all();
        }
    }
}
