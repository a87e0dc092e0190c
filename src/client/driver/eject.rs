//! Outlier detection: a provider whose link went silent is ejected, probed,
//! and put back once it answers.
//!
//! A link can fail without any connection failing: packets dropped, no
//! reset (a cut cable, a firewall, a one-way partition). The connection
//! stays open and every call sent on it passes its deadline; by itself the
//! client would keep choosing that provider for as long as the cut lasts.
//! So each open connection counts the calls on it that passed their
//! deadline since it last delivered a reply; at `eject_after_timeouts` in a
//! row its provider is ejected (as Envoy's and gRPC's outlier detection
//! do): `Health` keeps it out of rotation and its connections take no new
//! calls (they are closed once the calls on them are done).
//!
//! No real call tests an ejected provider: after its back-off the driver
//! opens a fresh connection (a stalled one may sit in TCP's retransmission
//! back-off long after the link heals) and sends a probe, a request any
//! live provider answers at once without running a handler. An answer puts
//! the provider back with that connection in its pool; a connect or probe
//! that fails or is unanswered within `connect_timeout` doubles the
//! back-off.
//!
//! A provider is ejected only while another one has an open connection
//! that is neither backed off nor silent, so a slow service with a single
//! provider, or slow everywhere, keeps its calls; and when nothing else is
//! usable an ejected provider is still picked as a last resort (`route`).

use std::net::SocketAddr;
use std::time::Instant;

use super::{far_or, Driver};
use crate::protocol::Protocol;

/// What the driver tracks for ejected providers.
#[derive(Default)]
pub(super) struct Ejections {
    /// Connections of ejected providers, closed once idle (a key whose
    /// connection is gone or no longer draining is dropped).
    draining: Vec<usize>,
    /// Connections carrying an unanswered probe.
    probing: Vec<usize>,
    /// Scratch list of providers due a probe.
    due: Vec<SocketAddr>,
    /// The wire format each ejected provider's probe is sent in.
    formats: Vec<(SocketAddr, &'static dyn Protocol)>,
}

impl Driver {
    /// A call on connection `key` passed its deadline: ejects its provider
    /// if that makes `eject_after_timeouts` in a row with nothing read.
    pub(super) fn note_timeout(&mut self, key: usize) {
        let threshold = self.options.eject_after_timeouts;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if threshold == 0 || !conn.is_open() || conn.is_draining() {
            return;
        }
        let silent = conn.note_timeout();
        let (addr, protocol) = (conn.addr(), conn.protocol());
        if silent < threshold || self.health.is_ejected(addr) || !self.another_usable(addr) {
            return;
        }
        let reason = format!(
            "{silent} calls in a row to {addr} passed their deadline with no reply read (silent link?)"
        );
        let formats = &mut self.ejections.formats;
        formats.retain(|(a, _)| *a != addr);
        formats.push((addr, protocol));
        let backoff = self.health.eject(addr, &reason, self.now);
        tracing::warn!("client: {reason}: ejected, first probe in {backoff:?}");
        if let Some(pool) = self.pools.remove(&addr) {
            self.routes.clear();
            for key in pool.conns {
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.drain();
                    self.ejections.draining.push(key);
                }
            }
        }
    }

    /// Another provider than `addr` has an open connection that is
    /// neither backed off nor silent.
    fn another_usable(&self, addr: SocketAddr) -> bool {
        self.pools.iter().any(|(other, pool)| {
            *other != addr
                && self.health.is_up(*other, self.now)
                && pool.conns.iter().any(|k| {
                    self.conns
                        .get(*k)
                        .is_some_and(|c| c.is_open() && c.silent_timeouts() == 0)
                })
        })
    }

    /// The probe on connection `key` was answered: its provider is back.
    pub(super) fn probe_answered(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.probe_until().is_none() {
            return;
        }
        conn.probe_answered();
        let addr = conn.addr();
        self.health.readmit(addr, self.now);
        self.ejections.formats.retain(|(a, _)| *a != addr);
        tracing::info!("client: {addr} answered a probe: back in rotation");
    }

    /// Per turn, while some provider is ejected or draining: starts the
    /// probes that are due, fails those unanswered in time, closes drained
    /// connections.
    pub(super) fn tend_ejections(&mut self) {
        if self.ejections.draining.is_empty()
            && self.ejections.probing.is_empty()
            && !self.health.any_ejected()
        {
            return;
        }
        self.close_drained();
        self.expire_probes();
        self.start_probes();
    }

    /// When `tend_ejections` has work next (a probe due or timing out).
    pub(super) fn next_ejection_event(&self) -> Option<Instant> {
        let probes = self.ejections.probing.iter();
        let timeouts = probes.filter_map(|k| self.conns.get(*k)?.probe_until());
        timeouts.chain(self.health.next_probe()).min()
    }

    /// Closes the drained connections that have no call left; streams
    /// still open on one end `Unavailable`, as on any lost connection.
    fn close_drained(&mut self) {
        let mut idle = Vec::new();
        self.ejections
            .draining
            .retain(|&key| match self.conns.get(key) {
                // A connect still under way ends in `close` or opens.
                Some(c) if c.is_draining() && (c.inflight() > 0 || !c.is_open()) => true,
                Some(c) if c.is_draining() => {
                    idle.push(key);
                    false
                }
                _ => false,
            });
        for key in idle {
            let mut conn = self.conns.remove(key);
            conn.deregister(self.poll.registry());
            let addr = conn.addr();
            self.end_streams_on(
                key,
                &format!("connection to ejected provider {addr} closed"),
            );
        }
    }

    fn expire_probes(&mut self) {
        let now = self.now;
        let mut late = Vec::new();
        self.ejections.probing.retain(|&key| {
            match self.conns.get(key).and_then(|c| c.probe_until()) {
                Some(until) if until <= now => {
                    late.push(key);
                    false
                }
                Some(_) => true,
                None => false,
            }
        });
        for key in late {
            let addr = self.conns[key].addr();
            let after = self.options.connect_timeout;
            self.close(key, format!("probe of {addr}: no answer within {after:?}"));
        }
    }

    fn start_probes(&mut self) {
        let mut due = std::mem::take(&mut self.ejections.due);
        self.health.probes_due(self.now, &mut due);
        for addr in due.drain(..) {
            self.start_probe(addr);
        }
        self.ejections.due = due;
    }

    /// Opens a fresh connection to ejected provider `addr` with a probe on
    /// it; it joins `addr`'s pool, which takes calls again once the probe
    /// is answered.
    fn start_probe(&mut self, addr: SocketAddr) {
        let formats = &self.ejections.formats;
        let Some(&(_, protocol)) = formats.iter().find(|(a, _)| *a == addr) else {
            return;
        };
        let until = far_or(self.now, self.options.connect_timeout);
        match self.connection_to(addr, protocol) {
            Ok(key) => {
                let conn = &mut self.conns[key];
                conn.push_probe(self.now, until);
                if conn.is_open() {
                    conn.schedule_flush(key, &mut self.flush);
                }
                self.ejections.probing.push(key);
                tracing::debug!("client: probing ejected {addr}");
            }
            Err(e) => {
                let reason = format!("probe of {addr}: connect failed: {e}");
                let backoff = self.health.failed(addr, &reason, false, self.now);
                tracing::warn!("client: {reason}; next probe in {backoff:?}");
            }
        }
    }
}
