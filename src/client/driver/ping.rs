//! Keepalive pings: finding a provider that stopped answering on a
//! connection with calls (or streams) in flight.
//!
//! TCP finds a peer cut off only once data it sent stays unacknowledged
//! past `tcp_user_timeout_ms`, and never a peer whose kernel still
//! acknowledges: a hung process, or a relay or proxy in between that
//! stopped forwarding. Calls on such a connection wait out their
//! deadlines (the channel's default is 5 s; a long call's may be minutes).
//! So a connection with work in flight that has read nothing for
//! `ping_interval` is sent a ping: the probe frame
//! (`ProviderConn::push_probe`), a request for a service no provider has,
//! which every provider of our format answers at once from its event loop,
//! in any version (no new frame kind, no negotiation). If nothing at all
//! is read within `ping_timeout`, the connection is declared dead and
//! closed like a reset one: its calls in flight fail `Unavailable` (they
//! may have run), its provider is backed off. A connection that keeps
//! reading replies is never pinged.
//!
//! Connections with nothing in flight are not pinged (a ping would keep
//! them open on the server past its `idle_timeout`): their liveness is TCP
//! keepalive's (`tcp_keepalive_ms`, `tcp_user_timeout_ms`), and one idle
//! past the interval is pinged as soon as a call is routed to it. The
//! check runs when one is due (a poll timeout, like the call deadlines),
//! not every loop turn.

use std::time::Instant;

use super::{far_or, Driver};

impl Driver {
    /// Sends the pings that are due and closes the connections whose ping
    /// went unanswered; works out when to look next.
    pub(super) fn tend_pings(&mut self) {
        let Some(interval) = self.options.ping_interval else {
            return;
        };
        if self.next_ping.is_none_or(|at| at > self.now) {
            return;
        }
        let (now, timeout) = (self.now, self.options.ping_timeout);
        let mut dead = Vec::new();
        let mut next: Option<Instant> = None;
        let streams = !self.streams.is_empty();
        for (key, conn) in self.conns.iter_mut() {
            // Connects have their own timeout, ejected providers' probes
            // theirs.
            // Idle connections are left to TCP keepalive (a ping would keep
            // them open on the server past its `idle_timeout`).
            if !conn.is_open() || conn.probe_until().is_some() || !(conn.inflight() > 0 || streams)
            {
                continue;
            }
            let due = match conn.ping_until() {
                Some(until) if until <= now => {
                    dead.push((key, now.saturating_duration_since(conn.last_heard())));
                    continue;
                }
                Some(until) => until,
                None if far_or(conn.last_heard(), interval) <= now => {
                    let until = far_or(now, timeout);
                    conn.push_ping(now, until);
                    conn.schedule_flush(key, &mut self.flush);
                    until
                }
                None => far_or(conn.last_heard(), interval),
            };
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        self.next_ping = next;
        for (key, silent) in dead {
            let addr = self.conns[key].addr();
            let reason = format!(
                "connection to {addr} declared dead: nothing read for {silent:?}, \
                 a keepalive ping unanswered within {timeout:?}"
            );
            self.close(key, reason);
        }
    }

    /// Connection `key` has work again (a call or stream after none, or
    /// it opened with calls waiting): its next ping is due one interval
    /// after it last heard from its provider, at once if that is past.
    pub(super) fn ping_busy(&mut self, key: usize) {
        let (Some(interval), Some(conn)) = (self.options.ping_interval, self.conns.get(key)) else {
            return;
        };
        let due = far_or(conn.last_heard(), interval).max(self.now);
        self.next_ping = Some(self.next_ping.map_or(due, |n| n.min(due)));
    }
}
