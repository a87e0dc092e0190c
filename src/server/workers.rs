//! Worker pool for services published as blocking, and for blocking
//! stream handlers (`server::stream_pool`).
//!
//! A reactor must never block, so handlers that may (disk, locks, calls to
//! other services) run here. A job carries everything the handler needs plus
//! the address of its connection (reactor, slab token, connection id); the
//! finished reply frame is pushed onto that reactor's completion queue and
//! the reactor is woken through its mio `Waker`.
//!
//! The queue is bounded (`max_queued_calls`): beyond it a call is answered
//! `Overloaded` at once instead of waiting behind work nobody may still
//! want. Each call has a [`PoolTicket`] shared with its connection: a
//! worker takes it, or a cancel (the client's, or its connection closing)
//! stops it first. A stopped call leaves the bound at once, so cancelled
//! calls never make the queue refuse live ones; it stays in the queue
//! until a worker drops it unrun, or until the queue holds twice its bound
//! and the stopped calls are swept out (so memory stays bounded too).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::BytesMut;
use parking_lot::{Condvar, Mutex};

use super::handler::{self, run_call};
use super::limit::Permit;
use super::mailbox::{PoolReply, ReactorShared};
use super::metrics::{MetricsRegistry, ThreadStats};
use super::table::Entry;
use crate::call::interceptor::Interceptors;
use crate::call::status::Code;
use crate::call::status::Status;
use crate::protocol::mprpc::Request;
use crate::protocol::WireFormat;
use crate::service::CallContext;

/// One blocking call waiting for a worker.
pub(crate) struct Job {
    pub(crate) entry: Entry,
    pub(crate) request: Request,
    pub(crate) ctx: CallContext,
    /// Taken by the worker that runs it, unless a cancel came first.
    pub(crate) ticket: PoolTicket,
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

/// A blocking stream's handler waiting for a worker: it runs for as long
/// as the stream does (`server::stream_pool` makes it).
pub(crate) struct StreamJob {
    /// Taken by the worker that runs it, unless the stream ended first.
    pub(crate) ticket: PoolTicket,
    /// Runs the handler and hands its outcome to the stream's reactor.
    pub(crate) run: Box<dyn FnOnce() + Send>,
}

/// What waits for a worker: a blocking call or a blocking stream. A call
/// is queued by value, as before there were streams: boxing it to shrink
/// the enum would allocate once per blocking call.
#[allow(clippy::large_enum_variant)]
enum Work {
    Call(Job),
    Stream(StreamJob),
}

impl Work {
    fn ticket(&self) -> &PoolTicket {
        match self {
            Work::Call(job) => &job.ticket,
            Work::Stream(job) => &job.ticket,
        }
    }
}

/// The jobs waiting for a worker, and whether the pool is stopping.
#[derive(Default)]
struct Jobs {
    waiting: VecDeque<Work>,
    stopping: bool,
}

struct Queue {
    jobs: Mutex<Jobs>,
    ready: Condvar,
    /// Jobs waiting and not cancelled, readable without the lock (`is_full`).
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
    /// A ticket for a call about to be sent.
    pub(crate) fn ticket(&self) -> PoolTicket {
        PoolTicket(Arc::new(Ticket {
            state: AtomicU8::new(QUEUED),
            queue: self.queue.clone(),
        }))
    }

    pub(crate) fn send(&self, job: Job) {
        self.push(Work::Call(job));
    }

    /// Queues a blocking stream's handler (its ticket from [`Self::ticket`]).
    pub(crate) fn send_stream(&self, job: StreamJob) {
        self.push(Work::Stream(job));
    }

    fn push(&self, work: Work) {
        self.queue.queued.fetch_add(1, Ordering::Relaxed);
        let swept = {
            let mut jobs = self.queue.jobs.lock();
            let swept = sweep_if_crowded(&mut jobs.waiting, self.queue.max_queued);
            jobs.waiting.push_back(work);
            swept
        };
        self.queue.ready.notify_one();
        swept.into_iter().for_each(drop_unrun);
    }

    /// The queue holds its most: a new call is refused rather than queued.
    /// Reactors check and send apart, so it may run over by one call per
    /// reactor.
    pub(crate) fn is_full(&self) -> bool {
        self.queue.queued.load(Ordering::Relaxed) >= self.queue.max_queued
    }
}

/// A queued job's ticket is waiting for a worker.
const QUEUED: u8 = 0;
/// A worker took it: the handler runs.
const RUNNING: u8 = 1;
/// Cancelled: it will not start, or its reply is dropped.
const CANCELLED: u8 = 2;

struct Ticket {
    state: AtomicU8,
    /// Whose bound a cancelled queued call leaves.
    queue: Arc<Queue>,
}

/// A pool call's fate, shared by its job and its connection's bookkeeping.
#[derive(Clone)]
pub(crate) struct PoolTicket(Arc<Ticket>);

impl std::fmt::Debug for PoolTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.0.state.load(Ordering::Relaxed) {
            QUEUED => "queued",
            RUNNING => "running",
            _ => "cancelled",
        };
        f.debug_tuple("PoolTicket").field(&state).finish()
    }
}

impl PoolTicket {
    /// The call will not start (if still queued: it leaves the queue's
    /// bound now) or, if running, its reply is dropped.
    pub(crate) fn cancel(&self) {
        let state = &self.0.state;
        let from_queue =
            state.compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire);
        match from_queue {
            Ok(_) => {
                self.0.queue.queued.fetch_sub(1, Ordering::Relaxed);
            }
            Err(RUNNING) => state.store(CANCELLED, Ordering::Release),
            Err(_) => {}
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.state.load(Ordering::Acquire) == CANCELLED
    }

    /// A worker takes the call; false if it was cancelled first.
    fn take(&self) -> bool {
        let taken =
            self.0
                .state
                .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire);
        if taken.is_ok() {
            self.0.queue.queued.fetch_sub(1, Ordering::Relaxed);
        }
        taken.is_ok()
    }
}

/// Once the queue physically holds twice its bound, the cancelled calls in
/// it are taken out (returned, to be answered outside the lock), so
/// cancelled calls cannot grow it without bound while every worker is busy.
fn sweep_if_crowded(waiting: &mut VecDeque<Work>, max_queued: usize) -> Vec<Work> {
    if waiting.len() < max_queued.saturating_mul(2).max(1) {
        return Vec::new();
    }
    let (stopped, live): (VecDeque<Work>, VecDeque<Work>) = std::mem::take(waiting)
        .into_iter()
        .partition(|work| work.ticket().is_cancelled());
    *waiting = live;
    stopped.into()
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
                super::thread::spawn(format!("mprpc-worker-{i}"), move || work(&queue, &stats))
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
        let work = {
            let mut guard = queue.jobs.lock();
            loop {
                if let Some(work) = guard.waiting.pop_front() {
                    break work;
                }
                if guard.stopping {
                    return;
                }
                queue.ready.wait(&mut guard);
            }
        };
        match work {
            Work::Call(job) if job.ticket.take() => run(job, stats),
            Work::Stream(job) if job.ticket.take() => (job.run)(),
            unrun => drop_unrun(unrun),
        }
    }
}

/// Runs a taken job, unless it waited in the queue past its deadline
/// (nobody is waiting for that answer), and sends its reply home.
fn run(job: Job, stats: &ThreadStats) {
    let id = job.request.id;
    let mut frame = BytesMut::new();
    if job.ctx.expired() {
        let status = Status::deadline_exceeded("deadline passed before the handler started");
        let failure = (status.code(), status.message());
        handler::write_failure(job.format, id, failure, &mut frame);
        observe_unrun(&job, status.code());
    } else {
        frame.reserve(256);
        let started = std::time::Instant::now();
        let chain = job.interceptors.as_ref();
        let ok = run_call(
            &job.entry,
            job.request,
            &job.ctx,
            job.format,
            &mut frame,
            stats,
            chain,
        );
        if let Some(permit) = job.permit {
            permit.finish(ok, started);
        }
    }
    job.reply_to.complete(PoolReply {
        token: job.token,
        conn_id: job.conn_id,
        id,
        frame,
    });
}

/// A cancelled job: its handler does not run; for a call the reactor gets
/// an empty reply, which it drops, counting the call as finished (a
/// stream's end was counted when it ended).
fn drop_unrun(work: Work) {
    let job = match work {
        Work::Call(job) => job,
        Work::Stream(_) => return,
    };
    observe_unrun(&job, Code::Cancelled);
    job.reply_to.complete(PoolReply {
        token: job.token,
        conn_id: job.conn_id,
        id: job.request.id,
        frame: BytesMut::new(),
    });
}

/// Shows the interceptors a call that ended without its handler.
fn observe_unrun(job: &Job, code: Code) {
    if let Some(chain) = &job.interceptors {
        let (service, method) = (job.entry.service.name(), job.request.method());
        handler::observe(chain, service, method, &job.ctx, code);
    }
}
