//! The server-side contract between the framework and a service.
//!
//! Code generation (`mprpc-build`) turns each `.proto` `service` into a trait
//! the user implements plus a `...Server<T>` wrapper that implements
//! [`Service`]: it knows the service's wire name, its methods, and how to
//! decode a request, call the user's method and encode the reply. The server
//! only ever sees `dyn Service`, so any number of services can be published
//! side by side.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::status::Status;

/// What a handler knows about the call it is serving.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The request id on its connection (unique per connection only).
    pub request_id: u64,
    /// When the caller stops waiting; `None` if the caller set no deadline.
    pub deadline: Option<Instant>,
    /// The caller's address.
    pub peer: SocketAddr,
}

impl CallContext {
    /// Time left before the caller gives up; `None` means no deadline.
    pub fn remaining(&self) -> Option<std::time::Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// True once the caller's deadline has passed: a long handler can stop
    /// early, nobody is waiting for its answer.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// A published service: the server dispatches every call through this.
pub trait Service: Send + Sync + 'static {
    /// The service's wire name: the `.proto` service name (e.g. `UserServiceRpc`).
    fn name(&self) -> &'static str;

    /// The names of its methods, as in the `.proto` file.
    fn methods(&self) -> &'static [&'static str];

    /// Decodes `request` for `method`, runs the handler and appends the
    /// encoded response message to `response` (no framing; the server adds it).
    ///
    /// Errors: `UnknownMethod` when the method does not exist, `BadRequest`
    /// when the request does not decode, or whatever the handler returned.
    fn call(
        &self,
        method: &str,
        ctx: &CallContext,
        request: Bytes,
        response: &mut BytesMut,
    ) -> Result<(), Status>;
}

/// A published service as the server lists it and the registry announces
/// it: its wire name and its methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceInfo {
    /// The service's wire name ([`Service::name`]).
    pub name: &'static str,
    /// Its methods ([`Service::methods`]).
    pub methods: &'static [&'static str],
}

impl ServiceInfo {
    /// A service named `name` with `methods`.
    pub const fn new(name: &'static str, methods: &'static [&'static str]) -> ServiceInfo {
        ServiceInfo { name, methods }
    }
}
