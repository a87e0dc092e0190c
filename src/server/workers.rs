//! Worker pool for services published as blocking.
//!
//! A reactor must never block, so handlers that may (disk, locks, calls to
//! other services) run here. A job carries everything the handler needs plus
//! the address of its connection (reactor, slab token, connection id); the
//! finished reply frame is pushed onto that reactor's completion queue and
//! the reactor is woken through its mio `Waker`.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::BytesMut;
use parking_lot::{Condvar, Mutex};

use super::dispatch::{reply_error, run_call, Entry};
use super::metrics::{MetricsRegistry, ThreadStats};
use super::reactor::{Completion, ReactorShared};
use crate::codec::Request;
use crate::discovery::WireFormat;
use crate::service::CallContext;
use crate::status::Status;

/// One blocking call waiting for a worker.
pub(crate) struct Job {
    pub entry: Entry,
    pub request: Request,
    pub ctx: CallContext,
    /// How the reply is framed (ours, or the seed's bare message).
    pub format: WireFormat,
    pub reply_to: Arc<ReactorShared>,
    pub token: usize,
    pub conn_id: u64,
}

#[derive(Default)]
struct Queue {
    jobs: Mutex<(VecDeque<Job>, bool)>,
    ready: Condvar,
}

/// Hands jobs to the pool; cloned into every reactor.
#[derive(Clone)]
pub(crate) struct JobSender {
    queue: Arc<Queue>,
}

impl JobSender {
    pub fn send(&self, job: Job) {
        self.queue.jobs.lock().0.push_back(job);
        self.queue.ready.notify_one();
    }
}

/// The pool's threads; `stop()` lets them finish the queue and exit.
pub(crate) struct WorkerPool {
    queue: Arc<Queue>,
    threads: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    pub fn start(count: usize, metrics: &MetricsRegistry) -> io::Result<WorkerPool> {
        let queue = Arc::new(Queue::default());
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

    pub fn sender(&self) -> JobSender {
        JobSender {
            queue: self.queue.clone(),
        }
    }

    pub fn stop(self) {
        self.queue.jobs.lock().1 = true;
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
                if let Some(job) = guard.0.pop_front() {
                    break job;
                }
                if guard.1 {
                    return;
                }
                queue.ready.wait(&mut guard);
            }
        };
        let mut frame = BytesMut::with_capacity(256);
        let id = job.request.id;
        if job.ctx.expired() {
            // It waited in the queue past its deadline: nobody is waiting
            // for the answer, so do not run it.
            let status = Status::deadline_exceeded("deadline passed before the handler started");
            reply_error(id, &status, &mut frame);
        } else {
            run_call(
                &job.entry,
                job.request,
                &job.ctx,
                job.format,
                &mut frame,
                stats,
            );
        }
        job.reply_to.complete(Completion {
            token: job.token,
            conn_id: job.conn_id,
            id,
            frame,
        });
    }
}
