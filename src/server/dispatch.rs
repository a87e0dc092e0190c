//! From a decoded request to a running handler: inline on the reactor, or
//! handed to the worker pool, once the method's concurrency limit
//! (`limit`) admits it. The wire formats (`protocol`) decode requests and
//! write replies; this module decides whether and where the handler runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::admin::Admin;
use super::connection::{Backpressure, Connection};
use super::limit::{Admission, Limits};
use super::metrics::ThreadStats;
use super::protocol;
use super::reactor::ReactorShared;
use super::stats::{self, ReactorStats};
use super::table::{Entry, ServiceTable};
use super::workers::{Job, JobSender};
use crate::auth::AuthToken;
use crate::codec::{Decoder, Request, WireFormat};
use crate::service::CallContext;
use crate::status::Code;

/// The facts of this loop turn a dispatch needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Turn {
    /// The connection's slab key.
    pub(crate) key: usize,
    pub(crate) now: Instant,
    pub(crate) shutting_down: bool,
}

/// One reactor's view of the services: the table, the pool, its own reply
/// queue, its metrics, the decoder, the backpressure limits and the admin
/// pages (when they are on).
pub(crate) struct Dispatcher {
    table: Arc<ServiceTable>,
    pool: Option<JobSender>,
    reply_to: Arc<ReactorShared>,
    stats: Arc<ThreadStats>,
    decoder: Decoder,
    limits: Backpressure,
    concurrency: Arc<Limits>,
    /// Tokens a connection must present one of (empty: none needed).
    auth_tokens: Arc<[AuthToken]>,
    admin: Option<Arc<Admin>>,
}

impl Dispatcher {
    pub(crate) fn new(
        table: Arc<ServiceTable>,
        pool: Option<JobSender>,
        reply_to: Arc<ReactorShared>,
        stats: Arc<ThreadStats>,
        decoder: Decoder,
        limits: Backpressure,
        concurrency: Arc<Limits>,
    ) -> Dispatcher {
        Dispatcher {
            table,
            pool,
            reply_to,
            stats,
            decoder,
            limits,
            concurrency,
            auth_tokens: Arc::new([]),
            admin: None,
        }
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
        crate::auth::accepts(&self.auth_tokens, token)
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

    pub(crate) fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    pub(crate) fn limits(&self) -> Backpressure {
        self.limits
    }

    /// Runs `request` for `entry`: blocking services on the pool (the reply
    /// comes back through the reactor's queue), the rest right here, the
    /// reply appended to the connection's output. Over the method's
    /// concurrency limit it is answered `Overloaded` instead.
    pub(crate) fn dispatch(
        &self,
        conn: &mut Connection,
        entry: &Entry,
        request: Request,
        format: WireFormat,
        turn: Turn,
    ) {
        let permit = match self
            .concurrency
            .admit(entry, request.method_bytes(), turn.now)
        {
            Admission::Unlimited => None,
            Admission::Admitted(permit) => Some(permit),
            Admission::Refused => {
                // Counted as an answered call with code `overloaded`, so
                // /metrics and the metrics log show what was shed.
                if let Some(id) = entry.method_id(request.method_bytes()) {
                    self.stats.record(id, Code::Overloaded, None);
                }
                return protocol::write_overloaded(format, request.id, conn.io().output());
            }
        };
        let ctx = CallContext {
            request_id: request.id,
            deadline: (request.timeout_ms > 0)
                .then(|| turn.now + Duration::from_millis(request.timeout_ms as u64)),
            peer: conn.peer(),
        };
        stats::bump(&conn.stats().calls, 1);
        match (&self.pool, entry.blocking) {
            (Some(pool), true) => pool.send(Job {
                entry: entry.clone(),
                cancelled: conn.start_pool_call(request.id),
                request,
                ctx,
                format,
                reply_to: self.reply_to.clone(),
                token: turn.key,
                conn_id: conn.id(),
                permit,
            }),
            _ => {
                let ok = protocol::run_call(
                    entry,
                    request,
                    &ctx,
                    format,
                    conn.io().output(),
                    &self.stats,
                );
                if let Some(permit) = permit {
                    let admitted = permit.admitted();
                    permit.finish(ok, admitted);
                }
            }
        }
    }
}
