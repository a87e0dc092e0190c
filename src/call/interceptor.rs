//! Interceptors (middleware): an ordered chain that sees every call's
//! service, method and metadata, may refuse it before it runs, and
//! observes its outcome after.
//!
//! * On the server ([`Interceptor`], installed with
//!   `Server::add_interceptor` or `ServerOptions::interceptors`),
//!   `before` runs on the reactor once the request is decoded and its
//!   service found, before the concurrency limit and the handler; an `Err`
//!   answers the call with that status and the handler never runs (auth,
//!   quotas). `after` runs once per call that reached `before`, with its
//!   code and latency (from its arrival to its reply), on the thread that
//!   finished it (reactor or worker) — keep both short.
//! * On the client ([`ClientInterceptor`], `ChannelOptions::interceptors`),
//!   `before` runs on the calling thread and may add metadata or refuse
//!   the call locally (it is never sent); `after` sees each call's outcome
//!   once, where it completes. A stream (`Channel::server_stream` and the
//!   others) is one call to them: `before` runs as it opens (its metadata
//!   goes in the open frame; a refusal ends the stream with that status),
//!   `after` once with its final outcome and its whole duration.
//!
//! Interceptors run in the order they were added; the first `before` to
//! refuse stops the chain, and every interceptor's `after` still runs.
//! With none installed a call pays one emptiness check: no allocation,
//! no lock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::call::metadata::Metadata;
use crate::call::status::{Code, Status};
use crate::call::trace::TraceId;
use crate::service::CallContext;

/// A call as a server interceptor sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CallInfo<'a> {
    /// The service's wire name.
    pub service: &'a str,
    /// The method's name.
    pub method: &'a str,
    /// The caller's address.
    pub peer: SocketAddr,
    /// The request chain's trace id.
    pub trace_id: TraceId,
    /// The request's metadata.
    pub metadata: &'a Metadata,
}

impl<'a> CallInfo<'a> {
    /// The call `ctx` describes, to `service`.`method`.
    pub(crate) fn of(service: &'a str, method: &'a str, ctx: &'a CallContext) -> CallInfo<'a> {
        CallInfo {
            service,
            method,
            peer: ctx.peer,
            trace_id: ctx.trace_id,
            metadata: &ctx.metadata,
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// Its status code (`Ok` on success).
    pub code: Code,
    /// From its arrival (server) or start (client) to its answer.
    pub latency: Duration,
}

/// A server-side interceptor. Both methods have defaults that do nothing.
pub trait Interceptor: Send + Sync + 'static {
    /// Runs before the handler; `Err` refuses the call with that status.
    fn before(&self, call: &CallInfo<'_>) -> Result<(), Status> {
        let _ = call;
        Ok(())
    }

    /// Runs once the call is answered (or refused).
    fn after(&self, call: &CallInfo<'_>, outcome: &Outcome) {
        let _ = (call, outcome);
    }
}

/// An interceptor shared with the code that reads what it counted.
impl<T: Interceptor + ?Sized> Interceptor for Arc<T> {
    fn before(&self, call: &CallInfo<'_>) -> Result<(), Status> {
        (**self).before(call)
    }

    fn after(&self, call: &CallInfo<'_>, outcome: &Outcome) {
        (**self).after(call, outcome)
    }
}

/// A call as a client interceptor sees it before it is sent: its metadata
/// can be changed.
#[derive(Debug)]
#[non_exhaustive]
pub struct ClientCall<'a> {
    /// The service's wire name.
    pub service: &'a str,
    /// The method's name.
    pub method: &'a str,
    /// The metadata the request will carry.
    pub metadata: &'a mut Metadata,
}

/// A client-side interceptor. Both methods have defaults that do nothing.
pub trait ClientInterceptor: Send + Sync + 'static {
    /// Runs on the calling thread before the call is sent; may add
    /// metadata. `Err` fails the call with that status, locally.
    fn before(&self, call: &mut ClientCall<'_>) -> Result<(), Status> {
        let _ = call;
        Ok(())
    }

    /// Runs once the call has its outcome (reply, failure, cancel).
    fn after(&self, service: &str, method: &str, outcome: &Outcome) {
        let _ = (service, method, outcome);
    }
}

/// A client interceptor shared with the code that reads what it counted.
impl<T: ClientInterceptor + ?Sized> ClientInterceptor for Arc<T> {
    fn before(&self, call: &mut ClientCall<'_>) -> Result<(), Status> {
        (**self).before(call)
    }

    fn after(&self, service: &str, method: &str, outcome: &Outcome) {
        (**self).after(service, method, outcome)
    }
}

/// An ordered chain of interceptors of one side (`I` is `dyn Interceptor`
/// or `dyn ClientInterceptor`); cheap to clone, empty by default.
pub struct Chain<I: ?Sized> {
    list: Arc<[Arc<I>]>,
}

impl<I: ?Sized> Chain<I> {
    /// True when no interceptor is installed.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The number of interceptors.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Adds `interceptor` at the end (it runs after the others).
    pub fn push(&mut self, interceptor: Arc<I>) {
        let mut list: Vec<Arc<I>> = self.list.iter().cloned().collect();
        list.push(interceptor);
        self.list = list.into();
    }
}

impl<I: ?Sized> Default for Chain<I> {
    fn default() -> Self {
        Chain { list: Arc::new([]) }
    }
}

impl<I: ?Sized> Clone for Chain<I> {
    fn clone(&self) -> Self {
        Chain {
            list: self.list.clone(),
        }
    }
}

impl<I: ?Sized> std::fmt::Debug for Chain<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} interceptor(s)", self.list.len())
    }
}

/// The server's chain.
pub type Interceptors = Chain<dyn Interceptor>;
/// A channel's chain.
pub type ClientInterceptors = Chain<dyn ClientInterceptor>;

impl Chain<dyn Interceptor> {
    /// Runs every `before` in order; the first refusal wins.
    pub(crate) fn before(&self, call: &CallInfo<'_>) -> Result<(), Status> {
        self.list.iter().try_for_each(|i| i.before(call))
    }

    /// Runs every `after` for a call received at `received` that ended
    /// with `code`.
    pub(crate) fn finished(&self, call: &CallInfo<'_>, code: Code, received: Instant) {
        let outcome = Outcome {
            code,
            latency: received.elapsed(),
        };
        for i in self.list.iter() {
            i.after(call, &outcome);
        }
    }
}

impl Chain<dyn ClientInterceptor> {
    /// Runs every `before` in order; the first refusal wins.
    pub(crate) fn before(&self, call: &mut ClientCall<'_>) -> Result<(), Status> {
        self.list.iter().try_for_each(|i| i.before(call))
    }

    /// Runs every `after`.
    pub(crate) fn after(&self, service: &str, method: &str, outcome: &Outcome) {
        for i in self.list.iter() {
            i.after(service, method, outcome);
        }
    }
}
