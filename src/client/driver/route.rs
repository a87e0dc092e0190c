//! New calls onto connections: the submission queue drained each turn, the
//! load balancer's pick, the per-address connection pools, hand-off of
//! calls on short connections (the seed's format), and closing a
//! connection (whose calls are re-routed when its connect failed, or failed
//! when it broke after connecting).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use mio::Token;

use slab::Slab;

use super::{far_or, Driver, FastMap, Notify, Pending, Pool, NO_CONN};
use crate::call::status::Status;
use crate::client::balance::Balancer;
use crate::client::call::CallResult;
use crate::client::conn::{ProviderConn, Queued, Routed, Security};
use crate::client::queue::{Command, Endpoints, NewCall, Target};
use crate::client::request::{staged, Parts};
use crate::client::short::{self, ShortCall};
use crate::discovery::Endpoint;
use crate::net::tls::TlsMode;
use crate::protocol::{Connections, Protocol, WireFormat};
use crate::sys::TcpLiveness;

/// Where a call goes next, and how often connecting has failed for it.
pub(super) struct Route {
    pub endpoints: Arc<[Endpoint]>,
    pub hash_key: Option<u64>,
    pub failures: u32,
    pub last_error: Option<String>,
    /// A provider not to pick (it refused this call `Overloaded`).
    pub avoid: Option<SocketAddr>,
}

impl Driver {
    pub(super) fn drain_queue(&mut self) {
        // Read without the lock: a command pushed after this is seen before
        // the driver sleeps (see `Shared::going_to_sleep`).
        if !self.shared.has_work() {
            return;
        }
        let mut batch = std::mem::take(&mut self.spare);
        self.shared.take(&mut batch);
        for command in batch.commands.drain(..) {
            match command {
                Command::Call(call) => self.start_call(call, &batch.frames),
                Command::Cancel(id) => self.forget(id),
                Command::OpenStream(stream) => self.open_stream(*stream),
                Command::Stream(id, cmd) => self.stream_command(id, cmd),
            }
        }
        batch.frames.clear();
        self.spare = batch;
    }

    /// Takes on a call another thread queued, its parts staged in `frames`.
    fn start_call(&mut self, call: NewCall, frames: &[u8]) {
        if self.shared.cells.is_done(call.cell) {
            // Cancelled before we saw it: send nothing.
            self.release_slot();
            self.shared.cells.driver_done(call.cell);
            return;
        }
        let (service, method, payload) = staged(frames, &call.names);
        let parts = Parts {
            id: call.id,
            deadline: call.deadline,
            timeout_ms: None,
            service,
            method,
            payload,
            metadata: &call.metadata,
            trace: call.trace,
            reply_metadata: call.reply_metadata.is_some(),
        };
        let target = Target {
            endpoints: Endpoints::Found(call.endpoints),
            hash_key: call.hash_key,
            reply_metadata: call.reply_metadata,
        };
        self.take_call(&parts, Notify::Cell(call.cell), target);
    }

    /// Takes on a detached call started on this thread, its callback
    /// `done` held here (`Notify::Held`), numbering `parts` with its id.
    pub(super) fn take_held<F>(&mut self, parts: &mut Parts<'_>, target: Target<'_>, done: F)
    where
        F: FnOnce(CallResult) + Send + 'static,
    {
        parts.id = self.pending.reserve_held();
        let held = self.held_spares.hold(done);
        self.take_call(parts, Notify::Held(held), target);
    }

    /// Makes a new call the driver's (its deadline watched, a copy kept
    /// if it may be retried elsewhere) and routes it.
    pub(super) fn take_call(&mut self, parts: &Parts<'_>, notify: Notify, target: Target<'_>) {
        let id = parts.id;
        if let Some(deadline) = parts.deadline {
            self.deadlines.push(deadline, id);
        }
        // A call on a remembered route (see `route`) is filed with its
        // connection and packed there at once: no route to build, no
        // second look-up of the call. Such a route has one endpoint, so
        // nothing is kept for a retry elsewhere.
        if let Some(key) = self.remembered(target.endpoints.get()) {
            debug_assert!(target.endpoints.get().len() == 1);
            self.pending.insert(Pending {
                id,
                conn: key,
                deadline: parts.deadline,
                notify,
                retry: None,
                reply_metadata: target.reply_metadata,
            });
            let (endpoints, hash_key) = (target.endpoints, target.hash_key);
            return self.push_onto(key, parts, endpoints, hash_key, 0);
        }
        let retry = self.keep_for_retry(parts, target.endpoints.get(), target.hash_key);
        self.pending.insert(Pending {
            id,
            conn: NO_CONN,
            deadline: parts.deadline,
            notify,
            retry,
            reply_metadata: target.reply_metadata,
        });
        let route = Route {
            endpoints: target.endpoints.into_owned(),
            hash_key: target.hash_key,
            failures: 0,
            last_error: None,
            avoid: None,
        };
        self.route(parts, route);
    }

    /// Picks an endpoint for the call and packs its request, in the
    /// endpoint's format, onto a connection there, retrying other
    /// endpoints while connecting fails.
    pub(super) fn route(&mut self, parts: &Parts<'_>, mut route: Route) {
        let id = parts.id;
        // A fresh call on a remembered route goes where the last one went.
        if route.failures == 0 && route.avoid.is_none() {
            if let Some(key) = self.remembered(&route.endpoints) {
                return self.attach(key, parts, route);
            }
        }
        loop {
            if route.failures > self.options.max_retries {
                let why = route.last_error.unwrap_or_default();
                let status = Status::unavailable(format!(
                    "{why} (gave up after {} connection attempts)",
                    route.failures
                ));
                return self.finish(id, Err(status));
            }
            let Some(index) = self.pick(&route) else {
                let status = self.all_down(parts.service, &route.endpoints, route.last_error);
                return self.finish(id, Err(status));
            };
            let endpoint = &route.endpoints[index];
            let protocol = endpoint.format.protocol();
            if protocol.connections() == Connections::OnePerCall {
                return self.hand_to_short_pool(parts, endpoint.addr, endpoint.format);
            }
            let addr = endpoint.addr;
            let refused_plain = endpoint.tls == TlsMode::Required && self.options.tls.is_none();
            let opened = if refused_plain {
                Err(io::Error::other(
                    "the provider requires TLS and this channel has none (set tls_ca)",
                ))
            } else {
                self.connection_to(addr, protocol)
            };
            match opened {
                Ok(key) => {
                    self.remember_route(&route, addr);
                    return self.attach(key, parts, route);
                }
                Err(e) => {
                    let reason = format!("connect to {addr} failed: {e}");
                    self.health.failed(addr, &reason, false, self.now);
                    tracing::warn!("client: {reason}");
                    route.failures += 1;
                    route.last_error = Some(reason);
                }
            }
        }
    }

    /// The connection a fresh call on `endpoints` goes to, if its route
    /// is remembered and no endpoint has a failure record.
    #[inline]
    fn remembered(&mut self, endpoints: &Arc<[Endpoint]>) -> Option<usize> {
        if !self.health.all_up() {
            return None;
        }
        self.routes
            .conn_for(endpoints, self.reply_affinity(endpoints))
    }

    /// The connection the reply being delivered came on, when a call its
    /// callback starts on `endpoints` (one provider) may go back there:
    /// a closed loop's calls then return to the connections their replies
    /// left, so each connection's replies and next calls share its reads
    /// and writes as a pipelining client's do, instead of spreading over
    /// the pool one write each.
    #[inline]
    fn reply_affinity(&self, endpoints: &[Endpoint]) -> Option<usize> {
        let conn = self.conns.get(self.affinity)?;
        let [only] = endpoints else { return None };
        (conn.addr() == only.addr && conn.is_open() && !conn.is_draining()).then_some(self.affinity)
    }

    /// Remembers `route`'s way to `addr` for the next calls, when the
    /// route leads nowhere else (see `route_cache`).
    fn remember_route(&mut self, route: &Route, addr: SocketAddr) {
        if route.endpoints.len() != 1 || route.failures > 0 || route.avoid.is_some() {
            return;
        }
        let per_endpoint = self.options.connections_per_endpoint.max(1);
        if let Some(pool) = self.pools.get(&addr) {
            if pool.conns.len() >= per_endpoint {
                self.routes.remember(&route.endpoints, &pool.conns);
            }
        }
    }

    /// The balancer's choice among the usable endpoints.
    pub(super) fn pick(&mut self, route: &Route) -> Option<usize> {
        let now = self.now;
        if let [only] = &route.endpoints[..] {
            // Every policy picks the one endpoint if it is usable.
            let usable = route.avoid != Some(only.addr)
                && (self.health.is_up(only.addr, now)
                    || self.health.is_up_as_last_resort(only.addr, now));
            return usable.then_some(0);
        }
        let (health, pools, conns) = (&self.health, &self.pools, &self.conns);
        let balancer = &mut self.balancer;
        let picked = pick_where(balancer, pools, conns, route, |a| health.is_up(a, now));
        if picked.is_some() || !health.any_ejected() {
            return picked;
        }
        // Nothing else is usable: an ejected provider may only be slow.
        pick_where(balancer, pools, conns, route, |a| {
            health.is_up_as_last_resort(a, now)
        })
    }

    /// One short connection per call: the short-connection pool takes the
    /// call (its completion and in-flight slot) over from here, its
    /// request packed in the provider's format.
    fn hand_to_short_pool(&mut self, parts: &Parts<'_>, addr: SocketAddr, format: WireFormat) {
        if let Some(pending) = self.pending.remove(parts.id) {
            let mut request = BytesMut::new();
            parts.pack(format.protocol(), self.now, &mut request);
            short::start(ShortCall {
                addr,
                format,
                request,
                deadline: pending.deadline,
                connect_timeout: self.options.connect_timeout,
                max_reply: self.options.max_frame_size,
                cell: match pending.notify {
                    Notify::Cell(cell) => cell,
                    // Completed on the short connection's thread: it
                    // needs a cell.
                    Notify::Held(held) => self.shared.cells.callback(held.into_fn()),
                },
                shared: self.shared.clone(),
            });
        }
    }

    /// The status for "no endpoint of this service is usable".
    pub(super) fn all_down(
        &self,
        service: &str,
        endpoints: &[Endpoint],
        last: Option<String>,
    ) -> Status {
        let last = last.or_else(|| {
            endpoints
                .iter()
                .find_map(|e| self.health.last_error(e.addr))
                .map(str::to_owned)
        });
        Status::unavailable(format!(
            "no provider of service '{}' is available: all {} endpoint(s) are down (last error: {})",
            service,
            endpoints.len(),
            last.as_deref().unwrap_or("none")
        ))
    }

    /// A connection to `addr`, opening one if the pool is not full.
    pub(super) fn connection_to(
        &mut self,
        addr: SocketAddr,
        protocol: &'static dyn Protocol,
    ) -> io::Result<usize> {
        let per_endpoint = self.options.connections_per_endpoint.max(1);
        let pool = self.pools.entry(addr).or_default();
        if pool.conns.len() >= per_endpoint {
            let key = pool.conns[pool.next % pool.conns.len()];
            pool.next = pool.next.wrapping_add(1);
            return Ok(key);
        }
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let deadline = far_or(self.now, self.options.connect_timeout);
        let secure = Security {
            tls: self.options.tls.as_ref(),
            auth: self.options.auth_token.as_ref(),
        };
        match ProviderConn::connect(
            addr,
            protocol,
            self.poll.registry(),
            Token(key),
            deadline,
            secure,
            TcpLiveness {
                keepalive: self.options.tcp_keepalive,
                user_timeout: self.options.tcp_user_timeout,
            },
        ) {
            Ok(conn) => {
                entry.insert(conn);
                pool.conns.push(key);
                self.routes.clear();
                self.connecting += 1;
                Ok(key)
            }
            Err(e) => {
                if pool.conns.is_empty() {
                    self.pools.remove(&addr);
                }
                Err(e)
            }
        }
    }

    /// Packs the call's request onto connection `key`.
    fn attach(&mut self, key: usize, parts: &Parts<'_>, route: Route) {
        let id = parts.id;
        let Some(pending) = self.pending.get_mut(id) else {
            return;
        };
        pending.conn = key;
        let endpoints = Endpoints::Found(route.endpoints);
        self.push_onto(key, parts, endpoints, route.hash_key, route.failures);
    }

    /// Packs the request of a call filed on connection `key` onto it; its
    /// route (`endpoints`, `hash_key`, connection `attempts` so far) is
    /// kept only while the connection is not open: the call may then be
    /// routed again elsewhere. Inlined into its two callers: the call it
    /// would cost comes once per call.
    #[inline(always)]
    fn push_onto(
        &mut self,
        key: usize,
        parts: &Parts<'_>,
        endpoints: Endpoints<'_>,
        hash_key: Option<u64>,
        attempts: u32,
    ) {
        let routed = || Routed {
            request: parts.stage(BytesMut::new()),
            endpoints: endpoints.into_owned(),
            hash_key,
            attempts,
        };
        let conn = &mut self.conns[key];
        let was_idle = conn.inflight() == 0;
        conn.push_request(parts, self.now, routed);
        if conn.is_open() {
            conn.schedule_flush(key, &mut self.flush);
            if was_idle {
                self.ping_busy(key);
            }
        }
    }

    /// The caller cancelled call `id` (already completed on its side).
    fn forget(&mut self, id: u64) {
        if let Some(pending) = self.pending.remove(id) {
            self.retire(&pending);
            self.send_cancel(pending.conn, id);
            // Only a call with a cell can be cancelled (a held one has no
            // handle).
            if let Notify::Cell(cell) = pending.notify {
                self.shared.cells.driver_done(cell);
            }
        }
    }

    /// Tells the server to drop call `id` (advisory).
    pub(super) fn send_cancel(&mut self, key: usize, id: u64) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.push_cancel(id);
            if conn.is_open() {
                conn.schedule_flush(key, &mut self.flush);
            }
        }
    }

    /// Closes connection `key`: a failed connect retries its calls
    /// elsewhere; a broken connection fails its calls.
    pub(super) fn close(&mut self, key: usize, reason: String) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        conn.deregister(self.poll.registry());
        let addr = conn.addr();
        if let Some(pool) = self.pools.get_mut(&addr) {
            self.routes.clear();
            pool.conns.retain(|k| *k != key);
            if pool.conns.is_empty() {
                self.pools.remove(&addr);
            }
        }
        self.end_streams_on(key, &reason);
        if conn.is_draining() && conn.is_open() {
            // Its provider was ejected already: this is no news.
            tracing::debug!("client: {reason}");
            return self.fail_calls_on(key, &reason);
        }
        let backoff = self.health.failed(addr, &reason, conn.answered(), self.now);
        if !conn.is_open() {
            self.connecting -= 1;
            tracing::warn!("client: {reason}; endpoint backed off for {backoff:?}");
            self.reroute(conn, &reason);
        } else if conn.inflight() == 0 {
            tracing::debug!("client: {reason}");
        } else {
            tracing::warn!(
                "client: {reason}; failing {} call(s) in flight",
                conn.inflight()
            );
            self.fail_calls_on(key, &reason);
        }
    }

    /// Routes the calls that waited for a failed connect somewhere else.
    fn reroute(&mut self, mut conn: ProviderConn, reason: &str) {
        let queued = conn.take_queued();
        // Detach first: the closed connection's key may be reused by a
        // connection the retries below open, and must not be charged.
        for q in &queued {
            if let Some(pending) = self.pending.get_mut(q.call.id()) {
                pending.conn = NO_CONN;
            }
        }
        for Queued { call, .. } in queued {
            if !self.pending.contains(call.id()) {
                continue;
            }
            let route = Route {
                endpoints: call.endpoints,
                hash_key: call.hash_key,
                failures: call.attempts + 1,
                last_error: Some(reason.to_owned()),
                avoid: None,
            };
            self.route(&call.request.parts(), route);
        }
    }

    /// Fails every call routed to connection `key` (it broke after
    /// connecting: they may have reached the server, so no retry).
    fn fail_calls_on(&mut self, key: usize, reason: &str) {
        for id in self.pending.ids_on(key) {
            if let Some(pending) = self.pending.remove(id) {
                let status = Status::unavailable(reason.to_owned());
                self.let_go(pending, Err(status));
            }
        }
    }
}

/// The balancer's choice among the endpoints `usable` accepts (and the
/// route does not avoid); least-outstanding weighs them by their calls in
/// flight.
fn pick_where(
    balancer: &mut Balancer,
    pools: &FastMap<SocketAddr, Pool>,
    conns: &Slab<ProviderConn>,
    route: &Route,
    usable: impl Fn(SocketAddr) -> bool,
) -> Option<usize> {
    balancer.pick(
        &route.endpoints,
        route.hash_key,
        |e| route.avoid.is_none_or(|a| a != e.addr) && usable(e.addr),
        |e| {
            pools.get(&e.addr).map_or(0, |p| {
                p.conns
                    .iter()
                    .filter_map(|k| conns.get(*k))
                    .map(ProviderConn::inflight)
                    .sum()
            })
        },
    )
}
