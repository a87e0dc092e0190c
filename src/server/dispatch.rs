//! From a decoded request to a running handler: inline on the reactor,
//! handed to the worker pool, or started as a future this reactor polls
//! (`pending`, for services that answer later), once the method's concurrency limit
//! (`limit`) admits it. The wire formats (`protocol`) decode requests and
//! write replies; this module decides whether and where the handler runs.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::admin::Admin;
use super::connection::{Backpressure, Connection};
use super::handler;
use super::limit::{Admission, Limits, Permit};
use super::mailbox::ReactorShared;
use super::metrics::ThreadStats;
use super::pending::{CallAddr, Done, Extra, Observed, Pending};
use super::stats::{self, ReactorStats};
use super::table::{Entry, ServiceTable};
use super::workers::{Job, JobSender};

mod stream;
use crate::call::interceptor::{CallInfo, Interceptors};
use crate::call::status::{Code, Status};
use crate::net::auth::AuthToken;
use crate::protocol::mprpc::Request;
use crate::protocol::WireFormat;
use crate::service::CallContext;

/// Why a call is answered `Overloaded` without running.
const OVER_LIMIT: &str = "the method is over its concurrency limit; the call did not run";
const QUEUE_FULL: &str = "the worker pool's queue is full (max_queued_calls); the call did not run";

/// The facts of this loop turn a dispatch needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Turn {
    /// The connection's slab key.
    pub(crate) key: usize,
    pub(crate) now: Instant,
    pub(crate) shutting_down: bool,
}

/// One reactor's view of the services: the table, the pool, its own reply
/// queue, its metrics, the frame size limit, the backpressure limits and
/// the admin pages (when they are on).
pub(crate) struct Dispatcher {
    table: Arc<ServiceTable>,
    pool: Option<JobSender>,
    reply_to: Arc<ReactorShared>,
    stats: Arc<ThreadStats>,
    /// The largest request body accepted, in bytes.
    max_frame: usize,
    limits: Backpressure,
    concurrency: Arc<Limits>,
    /// Tokens a connection must present one of (empty: none needed).
    auth_tokens: Arc<[AuthToken]>,
    admin: Option<Arc<Admin>>,
    /// Calls of services that answer later, waiting for their futures.
    later: RefCell<Pending>,
    /// The server's interceptors (usually none).
    interceptors: Interceptors,
    /// Messages a stream's client may send before this side grants more.
    stream_window: u32,
    /// Bytes a stream's handler sends ahead of its client's reading.
    stream_window_bytes: usize,
}

impl Dispatcher {
    pub(crate) fn new(
        table: Arc<ServiceTable>,
        pool: Option<JobSender>,
        reply_to: Arc<ReactorShared>,
        stats: Arc<ThreadStats>,
        max_frame: usize,
        limits: Backpressure,
        concurrency: Arc<Limits>,
    ) -> Dispatcher {
        Dispatcher {
            later: RefCell::new(Pending::new(&reply_to)),
            table,
            pool,
            reply_to,
            stats,
            max_frame,
            limits,
            concurrency,
            auth_tokens: Arc::new([]),
            admin: None,
            interceptors: Interceptors::default(),
            stream_window: 1024,
            stream_window_bytes: 1 << 20,
        }
    }

    /// Streams' clients may send `window` messages before more are
    /// granted; handlers send at most about `bytes` ahead of their
    /// clients' reading.
    pub(crate) fn with_stream_window(mut self, window: usize, bytes: usize) -> Dispatcher {
        self.stream_window = window.clamp(1, u32::MAX as usize) as u32;
        self.stream_window_bytes = bytes.max(1);
        self
    }

    /// Every call passes `interceptors` first.
    pub(crate) fn with_interceptors(mut self, interceptors: Interceptors) -> Dispatcher {
        self.later.get_mut().set_interceptors(interceptors.clone());
        self.interceptors = interceptors;
        self
    }

    /// The interceptors, when any is installed.
    fn chain(&self) -> Option<&Interceptors> {
        (!self.interceptors.is_empty()).then_some(&self.interceptors)
    }

    /// Serves the admin pages on HTTP connections (`None`: they are off).
    pub(crate) fn with_admin(mut self, admin: Option<Arc<Admin>>) -> Dispatcher {
        self.admin = admin;
        self
    }

    /// Calls run only on connections that presented one of `tokens`.
    pub(crate) fn with_auth(mut self, tokens: Arc<[AuthToken]>) -> Dispatcher {
        self.auth_tokens = tokens;
        self
    }

    /// New connections must authenticate.
    pub(crate) fn needs_auth(&self) -> bool {
        !self.auth_tokens.is_empty()
    }

    /// Whether `token` is one this server accepts (constant time).
    pub(crate) fn accepts_token(&self, token: &[u8]) -> bool {
        crate::net::auth::accepts(&self.auth_tokens, token)
    }

    /// The admin pages, if they are on.
    pub(crate) fn admin(&self) -> Option<&Admin> {
        self.admin.as_deref()
    }

    /// This reactor's counters.
    pub(crate) fn reactor_stats(&self) -> &ReactorStats {
        self.reply_to.stats()
    }

    pub(crate) fn table(&self) -> &ServiceTable {
        &self.table
    }

    pub(crate) fn max_frame(&self) -> usize {
        self.max_frame
    }

    pub(crate) fn limits(&self) -> Backpressure {
        self.limits
    }

    /// Runs `request` for `entry`: blocking services on the pool (the reply
    /// comes back through the reactor's queue), services that answer later
    /// as a future on this reactor (`pending`), the rest right here, the
    /// reply appended to the connection's output. An interceptor may refuse
    /// it first; over the method's concurrency limit it is answered
    /// `Overloaded` instead.
    pub(crate) fn dispatch(
        &self,
        conn: &mut Connection,
        entry: &Entry,
        mut request: Request,
        format: WireFormat,
        turn: Turn,
    ) {
        let ctx = CallContext::with_metadata(
            request.id,
            (request.timeout_ms > 0)
                .then(|| turn.now + Duration::from_millis(request.timeout_ms as u64)),
            conn.peer(),
            std::mem::take(&mut request.metadata),
            turn.now,
        );
        if let Some(chain) = self.chain() {
            if let Err(status) = self.intercept(chain, entry, &request, &ctx) {
                let failure = (status.code(), status.message());
                return handler::write_failure(format, request.id, failure, conn.io().output());
            }
        }
        if self.pool_queue_full(entry) {
            return self.refuse(conn, entry, &request, &ctx, format, QUEUE_FULL);
        }
        let permit = match self
            .concurrency
            .admit(entry, request.method_bytes(), turn.now)
        {
            Admission::Unlimited => None,
            Admission::Admitted(permit) => Some(permit),
            Admission::Refused => {
                return self.refuse(conn, entry, &request, &ctx, format, OVER_LIMIT);
            }
        };
        stats::bump(&conn.stats().calls, 1);
        if entry.answers_later {
            return self.start_later(conn, entry, request, ctx, format, turn.key, permit);
        }
        match (&self.pool, entry.blocking) {
            (Some(pool), true) => pool.send(Job {
                entry: entry.clone(),
                ticket: conn.start_pool_call(request.id, pool.ticket()),
                request,
                ctx,
                format,
                reply_to: self.reply_to.clone(),
                token: turn.key,
                conn_id: conn.id(),
                permit,
                interceptors: self.chain().cloned(),
            }),
            _ => {
                let ok = handler::run_call(
                    entry,
                    request,
                    &ctx,
                    format,
                    conn.io().output(),
                    &self.stats,
                    self.chain(),
                );
                if let Some(permit) = permit {
                    let admitted = permit.admitted();
                    permit.finish(ok, admitted);
                }
            }
        }
    }

    /// `entry`'s calls go to the worker pool, and its queue is full.
    fn pool_queue_full(&self, entry: &Entry) -> bool {
        let on_pool = entry.blocking && !entry.answers_later;
        on_pool && self.pool.as_ref().is_some_and(JobSender::is_full)
    }

    /// Answers `request` `Overloaded` without running it (`why`), counted
    /// as an answered call with that code so /metrics and the metrics log
    /// show what was shed.
    fn refuse(
        &self,
        conn: &mut Connection,
        entry: &Entry,
        request: &Request,
        ctx: &CallContext,
        format: WireFormat,
        why: &'static str,
    ) {
        if let Some(id) = entry.method_id(request.method_bytes()) {
            self.stats.record(id, Code::Overloaded, None);
        }
        if let Some(chain) = self.chain() {
            let (service, method) = (entry.service.name(), request.method());
            handler::observe(chain, service, method, ctx, Code::Overloaded);
        }
        let failure = (Code::Overloaded, why);
        handler::write_failure(format, request.id, failure, conn.io().output());
    }

    /// Runs the interceptors' `before`; a refusal is counted in the
    /// method's metrics and shown to every `after`.
    fn intercept(
        &self,
        chain: &Interceptors,
        entry: &Entry,
        request: &Request,
        ctx: &CallContext,
    ) -> Result<(), Status> {
        let (service, method) = (entry.service.name(), request.method());
        let info = CallInfo::of(service, method, ctx);
        let refused = chain.before(&info);
        if let Err(status) = &refused {
            if let Some(id) = entry.method_id(request.method_bytes()) {
                self.stats.record(id, status.code(), None);
            }
            handler::observe(chain, service, method, ctx, status.code());
        }
        refused
    }

    /// Starts a call of a service that answers later and polls it once:
    /// answered now if it is ready, else it waits on this reactor (counted
    /// in flight on its connection) until its future is woken.
    #[allow(clippy::too_many_arguments)]
    fn start_later(
        &self,
        conn: &mut Connection,
        entry: &Entry,
        mut request: Request,
        mut ctx: CallContext,
        format: WireFormat,
        key: usize,
        permit: Option<Permit>,
    ) {
        let method_id = entry.method_id(request.method_bytes());
        let addr = CallAddr {
            key,
            conn_id: conn.id(),
            id: request.id,
            format,
            deadline: ctx.deadline,
            trace: ctx.trace_id,
            replies_with_metadata: request.replies_with_metadata,
            service: entry.service.name(),
            method: method_id.map_or("?", |id| {
                entry.service.methods()[id - entry.first_method_id]
            }),
            method_id,
            started: method_id.and_then(|id| self.stats.begin(id)),
        };
        let payload = std::mem::take(&mut request.payload);
        let method = request.method();
        let extra = Extra {
            reply: request
                .replies_with_metadata
                .then(|| ctx.share_reply_metadata()),
            span: crate::call::trace::call_span(
                entry.service.name(),
                method,
                ctx.peer,
                ctx.trace_id,
            ),
            observed: self.chain().map(|_| Observed {
                peer: ctx.peer,
                metadata: ctx.metadata.clone(),
                received: ctx.received,
            }),
            stream: None,
        };
        let serving = ctx.serving();
        let started = handler::guarded(&extra.span, serving, || {
            entry.service.call_later(method, ctx, payload)
        })
        .and_then(|started| started);
        let done = match started {
            Ok(future) => self.later.borrow_mut().start(future, addr, extra, permit),
            Err(status) => Some(Done::failed(addr, extra, status, permit)),
        };
        match done {
            Some(done) => self.answer_later(done, Some(conn.io().output())),
            None => conn.start_later_call(addr.id),
        }
    }

    /// A waiting call whose deadline passed by `now`, to answer.
    pub(crate) fn expire_later(&self, now: Instant) -> Option<Done> {
        self.later.borrow_mut().expire(now)
    }

    /// When the next waiting call's deadline passes.
    pub(crate) fn next_later_deadline(&self) -> Option<Instant> {
        self.later.borrow().next_deadline()
    }

    /// Polls the woken call in `slot`; its outcome if it finished.
    pub(crate) fn poll_later(&self, slot: usize) -> Option<Done> {
        self.later.borrow_mut().poll_woken(slot)
    }

    /// Answers a finished call into `out` (`None`: not sent), records it.
    pub(crate) fn answer_later(&self, done: Done, out: Option<&mut bytes::BytesMut>) {
        done.answer(out, &self.stats, &self.interceptors);
    }

    /// The caller cancelled call `id`: if it is waiting here, its future is
    /// dropped and it leaves the connection's calls in flight.
    pub(crate) fn cancel_later(&self, conn: &mut Connection, id: u64) {
        if self.later.borrow_mut().cancel(conn.id(), id, &self.stats) {
            conn.finish_pool_call(id);
        }
    }

    /// Connection `conn_id` closed: its waiting calls' futures are dropped.
    pub(crate) fn connection_closed(&self, conn_id: u64) {
        self.later
            .borrow_mut()
            .connection_closed(conn_id, &self.stats);
    }
}
