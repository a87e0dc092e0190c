//! Worker pool for services published as blocking.
//!
//! A reactor must never block, so handlers that may (disk, locks, calls to
//! other services) run here. A job carries everything the handler needs plus
//! the address of its connection (reactor, slab token, connection id); the
//! finished reply frame is pushed onto that reactor's completion queue and
//! the reactor is woken through its mio `Waker`.
//!
//! The queue is bounded (`max_queued_calls`): beyond it a call is answered
//! `Overloaded` at once instead of waiting behind work nobody may still
//! want. A closed connection's queued calls are flagged cancelled by its
//! reactor, so a worker drops them unrun when it reaches them.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::BytesMut;
use parking_lot::{Condvar, Mutex};

use super::limit::Permit;
use super::metrics::{MetricsRegistry, ThreadStats};
use super::protocol::{run_call, write_error};
use super::reactor::{PoolReply, ReactorShared};
use super::table::Entry;
use crate::call::interceptor::Interceptors;
use crate::call::status::Code;
use crate::call::status::Status;
use crate::codec::{Request, WireFormat};
use crate::service::CallContext;

/// One blocking call waiting for a worker.
pub(crate) struct Job {
    pub(crate) entry: Entry,
    pub(crate) request: Request,
    pub(crate) ctx: CallContext,
    /// Set when the client cancels the call: the handler does not start.
    pub(crate) cancelled: Arc<AtomicBool>,
    /// How the reply is framed (ours, or the seed's bare message).
    pub(crate) format: WireFormat,
    pub(crate) reply_to: Arc<ReactorShared>,
    pub(crate) token: usize,
    pub(crate) conn_id: u64,
    /// The method's concurrency slot, held until the reply is written.
    pub(crate) permit: Option<Permit>,
    /// The server's interceptors, when any is installed.
    pub(crate) interceptors: Option<Interceptors>,
}

/// The jobs waiting for a worker, and whether the pool is stopping.
#[derive(Default)]
struct Jobs {
    waiting: VecDeque<Job>,
    stopping: bool,
}

struct Queue {
    jobs: Mutex<Jobs>,
    ready: Condvar,
    /// Jobs waiting, readable without the lock (`is_full`).
    queued: AtomicUsize,
    /// The most jobs that may wait.
    max_queued: usize,
}

/// Hands jobs to the pool; cloned into every reactor.
#[derive(Clone)]
pub(crate) struct JobSender {
    queue: Arc<Queue>,
}

impl JobSender {
    pub(crate) fn send(&self, job: Job) {
        self.queue.jobs.lock().waiting.push_back(job);
        self.queue.queued.fetch_add(1, Ordering::Relaxed);
        self.queue.ready.notify_one();
    }

    /// The queue holds its most: a new call is refused rather than queued.
    /// Reactors check and send apart, so it may run over by one call per
    /// reactor.
    pub(crate) fn is_full(&self) -> bool {
        self.queue.queued.load(Ordering::Relaxed) >= self.queue.max_queued
    }
}

/// The pool's threads; `stop()` lets them finish the calls they are running,
/// drops the queued ones and joins them.
pub(crate) struct WorkerPool {
    queue: Arc<Queue>,
    threads: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// `count` threads taking calls from a queue of at most `max_queued`.
    pub(crate) fn start(
        count: usize,
        max_queued: usize,
        metrics: &MetricsRegistry,
    ) -> io::Result<WorkerPool> {
        let queue = Arc::new(Queue {
            jobs: Mutex::new(Jobs::default()),
            ready: Condvar::new(),
            queued: AtomicUsize::new(0),
            max_queued,
        });
        let threads = (0..count)
            .map(|i| {
                let queue = queue.clone();
                let stats = metrics.register_thread();
                std::thread::Builder::new()
                    .name(format!("mprpc-worker-{i}"))
                    .spawn(move || work(&queue, &stats))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(WorkerPool { queue, threads })
    }

    pub(crate) fn sender(&self) -> JobSender {
        JobSender {
            queue: self.queue.clone(),
        }
    }

    /// Called once the reactors are gone: every connection is closed, so
    /// queued calls have nobody to answer (their callers were told the
    /// connection closed) and are dropped unrun instead of holding up the
    /// shutdown for as long as the queue takes.
    pub(crate) fn stop(self) {
        let dropped = {
            let mut jobs = self.queue.jobs.lock();
            jobs.stopping = true;
            std::mem::take(&mut jobs.waiting)
        };
        if !dropped.is_empty() {
            tracing::warn!(
                calls = dropped.len(),
                "shutdown: dropping blocking calls still queued (their connections are closed)"
            );
        }
        drop(dropped);
        self.queue.ready.notify_all();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn work(queue: &Queue, stats: &ThreadStats) {
    loop {
        let job = {
            let mut guard = queue.jobs.lock();
            loop {
                if let Some(job) = guard.waiting.pop_front() {
                    queue.queued.fetch_sub(1, Ordering::Relaxed);
                    break job;
                }
                if guard.stopping {
                    return;
                }
                queue.ready.wait(&mut guard);
            }
        };
        let Job {
            entry,
            request,
            ctx,
            cancelled,
            format,
            reply_to,
            token,
            conn_id,
            permit,
            interceptors,
        } = job;
        let id = request.id;
        let mut frame = BytesMut::new();
        let unrun = |code| {
            if let Some(chain) = &interceptors {
                let (service, method) = (entry.service.name(), request.method());
                super::protocol::observe(chain, service, method, &ctx, code);
            }
        };
        if cancelled.load(Ordering::Acquire) {
            // The client gave up: do not run it (the reactor drops the
            // empty reply; it only counts the call as finished).
            unrun(Code::Cancelled);
        } else if ctx.expired() {
            // It waited in the queue past its deadline: nobody is waiting
            // for the answer, so do not run it.
            let status = Status::deadline_exceeded("deadline passed before the handler started");
            write_error(format, id, &status, &mut frame);
            unrun(status.code());
        } else {
            frame.reserve(256);
            let started = std::time::Instant::now();
            let chain = interceptors.as_ref();
            let ok = run_call(&entry, request, &ctx, format, &mut frame, stats, chain);
            if let Some(permit) = permit {
                permit.finish(ok, started);
            }
        }
        reply_to.complete(PoolReply {
            token,
            conn_id,
            id,
            frame,
        });
    }
}
