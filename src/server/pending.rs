//! Calls that answer later: each reactor's small executor for the futures
//! of services that answer later ([`Service::answers_later`]).
//!
//! No async runtime runs in the server. A call's future is polled once
//! when its request is dispatched; if it is not ready it waits in this
//! reactor's slab, and its `Waker` queues the slab slot on the reactor
//! (`ReactorShared::task_woken`) and wakes the reactor's mio `Waker`, the
//! way the worker pool hands replies back. The reactor polls the woken
//! ones each turn and writes their replies into their connections' output.
//! A task is dropped unfinished when its caller cancels or its connection
//! closes (`BTreeMap` by connection and call id finds them), or answered
//! `DeadlineExceeded` and dropped once its deadline passes (a min-heap of
//! deadlines the reactor's poll timeout honours); a panic while
//! starting or polling becomes `Internal`, as for a sync handler.
//!
//! Sync services never come here: their inline path is unchanged.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use bytes::BytesMut;
use parking_lot::Mutex;
use slab::Slab;

use super::handler;
use super::limit::Permit;
use super::mailbox::ReactorShared;
use super::metrics::ThreadStats;
use super::stream::Core;
use crate::call::interceptor::{CallInfo, Interceptors};
use crate::call::metadata::Metadata;
use crate::call::status::{Code, Status};
use crate::call::trace::TraceId;
use crate::protocol::{ReplyTo, WireFormat};
use crate::service::ReplyFuture;

/// Where a call's reply goes and what it is, for metrics and logs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallAddr {
    /// The connection's slab key and unique id.
    pub(crate) key: usize,
    pub(crate) conn_id: u64,
    /// The request id on that connection.
    pub(crate) id: u64,
    pub(crate) format: WireFormat,
    pub(crate) service: &'static str,
    pub(crate) method: &'static str,
    /// When the caller gives up: calls the future starts inherit it.
    pub(crate) deadline: Option<Instant>,
    /// The request chain's trace id, inherited likewise.
    pub(crate) trace: TraceId,
    /// The caller reads reply metadata (protocol version 2).
    pub(crate) replies_with_metadata: bool,
    /// Metrics id of the method and when its metrics started timing.
    pub(crate) method_id: Option<usize>,
    pub(crate) started: Option<Instant>,
}

/// What a call carries besides its address: the reply metadata its
/// handler sets, the span it is polled in, and what its interceptors see.
pub(crate) struct Extra {
    /// Shared with the handler's context (`None`: its caller cannot read
    /// reply metadata).
    pub(crate) reply: Option<Arc<Mutex<Metadata>>>,
    pub(crate) span: tracing::Span,
    /// `Some` when interceptors are installed.
    pub(crate) observed: Option<Observed>,
    /// A stream's core: its handler's frames and end go out through it.
    pub(crate) stream: Option<Arc<Core>>,
}

/// A call as its interceptors' `after` sees it.
pub(crate) struct Observed {
    pub(crate) peer: SocketAddr,
    pub(crate) metadata: Metadata,
    pub(crate) received: Instant,
}

/// A call waiting for its future.
struct Task {
    future: ReplyFuture,
    waker: Arc<TaskWaker>,
    addr: CallAddr,
    extra: Extra,
    /// The method's concurrency slot, held until the call ends.
    permit: Option<Permit>,
}

/// A finished call: its address, outcome and permit.
pub(crate) struct Done {
    pub(crate) addr: CallAddr,
    pub(crate) result: Result<BytesMut, Status>,
    extra: Extra,
    permit: Option<Permit>,
}

/// Wakes one slab slot of one reactor; a wake while already queued is free.
struct TaskWaker {
    reactor: Weak<ReactorShared>,
    slot: usize,
    queued: AtomicBool,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            if let Some(reactor) = self.reactor.upgrade() {
                reactor.task_woken(self.slot);
            }
        }
    }
}

/// One reactor's pending calls.
pub(crate) struct Pending {
    reactor: Weak<ReactorShared>,
    tasks: Slab<Task>,
    /// (connection id, request id) → slot, to cancel one call or drop a
    /// closed connection's calls.
    by_call: BTreeMap<(u64, u64), usize>,
    /// (deadline, connection id, request id) of calls that have one; an
    /// entry whose call has finished is skipped when it comes due.
    deadlines: BinaryHeap<Reverse<(Instant, u64, u64)>>,
    /// The server's interceptors, told of cancelled calls.
    interceptors: Interceptors,
}

impl Pending {
    pub(crate) fn new(reactor: &Arc<ReactorShared>) -> Pending {
        Pending {
            reactor: Arc::downgrade(reactor),
            tasks: Slab::new(),
            by_call: BTreeMap::new(),
            deadlines: BinaryHeap::new(),
            interceptors: Interceptors::default(),
        }
    }

    /// Cancelled calls are shown to `interceptors`.
    pub(crate) fn set_interceptors(&mut self, interceptors: Interceptors) {
        self.interceptors = interceptors;
    }

    /// Polls `future` once; if it is not ready, keeps it (and `permit`)
    /// until it is woken, cancelled or its connection closes.
    pub(crate) fn start(
        &mut self,
        future: ReplyFuture,
        addr: CallAddr,
        extra: Extra,
        permit: Option<Permit>,
    ) -> Option<Done> {
        let entry = self.tasks.vacant_entry();
        let mut task = Task {
            future,
            waker: Arc::new(TaskWaker {
                reactor: self.reactor.clone(),
                slot: entry.key(),
                queued: AtomicBool::new(false),
            }),
            addr,
            extra,
            permit,
        };
        match poll(&mut task) {
            Some(result) => Some(task.done(result)),
            None => {
                self.by_call.insert((addr.conn_id, addr.id), entry.key());
                if let Some(deadline) = addr.deadline {
                    self.deadlines
                        .push(Reverse((deadline, addr.conn_id, addr.id)));
                }
                entry.insert(task);
                None
            }
        }
    }

    /// Polls the task in `slot` (woken); its outcome if it finished.
    pub(crate) fn poll_woken(&mut self, slot: usize) -> Option<Done> {
        let task = self.tasks.get_mut(slot)?;
        task.waker.queued.store(false, Ordering::Release);
        let result = poll(task)?;
        let task = self.tasks.remove(slot);
        self.by_call.remove(&(task.addr.conn_id, task.addr.id));
        Some(task.done(result))
    }

    /// The core of stream `id` of connection `conn_id`, if it is open.
    pub(crate) fn stream(&self, conn_id: u64, id: u64) -> Option<Arc<Core>> {
        let slot = *self.by_call.get(&(conn_id, id))?;
        self.tasks[slot].extra.stream.clone()
    }

    /// The cores of connection `conn_id`'s open streams.
    pub(crate) fn streams_of(&self, conn_id: u64) -> Vec<Arc<Core>> {
        self.by_call
            .range((conn_id, 0)..=(conn_id, u64::MAX))
            .filter_map(|(_, &slot)| self.tasks[slot].extra.stream.clone())
            .collect()
    }

    /// When the next waiting call's deadline passes, if any does.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _, _))| *at)
    }

    /// A waiting call whose deadline passed by `now`, dropped and ready to
    /// be answered `DeadlineExceeded`; `None` when there is no (more).
    pub(crate) fn expire(&mut self, now: Instant) -> Option<Done> {
        if self.tasks.is_empty() {
            self.deadlines.clear(); // every entry left is of a finished call
            return None;
        }
        while let Some(Reverse((at, conn_id, id))) = self.deadlines.peek().copied() {
            if at > now {
                return None;
            }
            self.deadlines.pop();
            let Some(&slot) = self.by_call.get(&(conn_id, id)) else {
                continue; // finished before its deadline
            };
            if self.tasks[slot].addr.deadline != Some(at) {
                continue; // a later call that reused the id
            }
            self.by_call.remove(&(conn_id, id));
            let task = self.tasks.remove(slot);
            let status = Status::deadline_exceeded(
                "the caller's deadline passed while the handler was pending; it was dropped",
            );
            return Some(Done::failed(task.addr, task.extra, status, task.permit));
        }
        None
    }

    /// The caller cancelled call `id`: its future is dropped, the
    /// cancellation counted; nothing is answered.
    pub(crate) fn cancel(&mut self, conn_id: u64, id: u64, stats: &ThreadStats) -> bool {
        let Some(slot) = self.by_call.remove(&(conn_id, id)) else {
            return false;
        };
        let task = self.tasks.remove(slot);
        if let Some(core) = &task.extra.stream {
            core.finish(&Status::cancelled("the stream was cancelled"), None);
        }
        task.addr.record(Code::Cancelled, stats);
        task.extra
            .observe(&task.addr, Code::Cancelled, &self.interceptors);
        true
    }

    /// Connection `conn_id` closed: every call of it is dropped unanswered.
    pub(crate) fn connection_closed(&mut self, conn_id: u64, stats: &ThreadStats) {
        if self.tasks.is_empty() {
            return;
        }
        let calls: Vec<(u64, u64)> = self
            .by_call
            .range((conn_id, 0)..=(conn_id, u64::MAX))
            .map(|(call, _)| *call)
            .collect();
        for call in calls {
            self.cancel(call.0, call.1, stats);
        }
        if self.tasks.is_empty() && self.tasks.capacity() > 1024 {
            // A burst of pending calls is over: give the slab's memory back.
            self.tasks.shrink_to_fit();
        }
    }
}

impl Task {
    fn done(self, result: Result<BytesMut, Status>) -> Done {
        Done {
            addr: self.addr,
            result,
            extra: self.extra,
            permit: self.permit,
        }
    }
}

impl Extra {
    /// Shows the call's outcome to the interceptors, if any is installed.
    fn observe(&self, addr: &CallAddr, code: Code, chain: &Interceptors) {
        let Some(observed) = &self.observed else {
            return;
        };
        let info = CallInfo {
            service: addr.service,
            method: addr.method,
            peer: observed.peer,
            trace_id: addr.trace,
            metadata: &observed.metadata,
        };
        chain.finished(&info, code, observed.received);
    }
}

impl Done {
    /// A call that failed before it had a future.
    pub(crate) fn failed(
        addr: CallAddr,
        extra: Extra,
        status: Status,
        permit: Option<Permit>,
    ) -> Done {
        Done {
            addr,
            result: Err(status),
            extra,
            permit,
        }
    }

    /// Writes the reply into `out` (`None`: nobody to answer), records the
    /// call, shows it to the interceptors and releases its permit.
    pub(crate) fn answer(
        self,
        out: Option<&mut BytesMut>,
        stats: &ThreadStats,
        interceptors: &Interceptors,
    ) {
        let Done {
            addr,
            result,
            extra,
            permit,
        } = self;
        if let Err(status) = &result {
            if status.code() == Code::Internal {
                tracing::error!(
                    service = addr.service,
                    method = addr.method,
                    %status,
                    "handler failed"
                );
            }
        }
        let code = match &result {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
        if let Some(core) = &extra.stream {
            let status = match &result {
                Ok(_) => Status::new(Code::Ok, ""),
                Err(status) => status.clone(),
            };
            core.finish(&status, out);
        } else if let Some(out) = out {
            let metadata = match &extra.reply {
                Some(reply) => std::mem::take(&mut *reply.lock()),
                None => Metadata::new(),
            };
            let to = ReplyTo {
                id: addr.id,
                with_metadata: addr.replies_with_metadata,
            };
            let reply = match &result {
                Ok(message) => Ok(&message[..]),
                Err(status) => Err((status.code(), status.message())),
            };
            addr.format
                .protocol()
                .write_reply(to, reply, &metadata, out);
        }
        addr.record(code, stats);
        extra.observe(&addr, code, interceptors);
        if let Some(permit) = permit {
            let admitted = permit.admitted();
            permit.finish(code == Code::Ok, admitted);
        }
    }
}

impl CallAddr {
    fn record(&self, code: Code, stats: &ThreadStats) {
        if let Some(id) = self.method_id {
            stats.record(id, code, self.started);
        }
    }
}

/// Polls a task's future in its span, a panic becoming `Internal`;
/// `None`: pending.
fn poll(task: &mut Task) -> Option<Result<BytesMut, Status>> {
    let waker = Waker::from(task.waker.clone());
    let mut cx = Context::from_waker(&waker);
    let future = &mut task.future;
    let serving = crate::call::deadline::Serving {
        deadline: task.addr.deadline,
        trace: task.addr.trace,
    };
    let polled = handler::guarded(&task.extra.span, serving, || future.as_mut().poll(&mut cx));
    match polled {
        Ok(Poll::Ready(result)) => Some(result),
        Ok(Poll::Pending) => None,
        Err(panicked) => Some(Err(panicked)),
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("calls", &self.tasks.len())
            .finish()
    }
}
