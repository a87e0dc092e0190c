//! Connection deadlines on the reactor: idle connections, frames that stay
//! incomplete too long (slow loris), connections that never authenticate
//! and replies a peer never reads are closed.
//!
//! Timers are lazy (see [`TimerWheel`]): a connection is scheduled once for
//! its earliest possible deadline; when the slot comes round, the real
//! deadline is re-checked and the connection closed or scheduled again.

use std::time::{Duration, Instant};

use super::Reactor;
use crate::server::timer::{TimerEntry, TimerWheel};

/// Timer resolution for idle and slow-frame deadlines, and the wheel's size
/// (one lap = 51.2 s; longer deadlines are simply re-checked each lap).
const TIMER_TICK: Duration = Duration::from_millis(100);
const TIMER_SLOTS: usize = 512;

/// An empty wheel starting at `now`.
pub(super) fn wheel(now: Instant) -> TimerWheel {
    TimerWheel::new(TIMER_TICK, TIMER_SLOTS, now)
}

impl Reactor {
    pub(super) fn timers_enabled(&self) -> bool {
        let d = self.deadlines;
        d.idle.is_some() || d.frame.is_some() || d.auth.is_some() || d.write_stall.is_some()
    }

    /// Schedules the first check of a new connection's deadlines.
    pub(super) fn schedule_deadline_check(&mut self, key: usize) {
        let conn = &self.conns[key];
        if let Some(at) = conn.next_check(self.deadlines, self.now) {
            let entry = TimerEntry {
                key,
                conn_id: conn.id(),
            };
            self.timers.schedule(entry, at);
        }
    }

    /// Runs the checks that came due this turn.
    pub(super) fn check_deadlines(&mut self) {
        if !self.timers_enabled() {
            return;
        }
        let mut due = Vec::new();
        self.timers.advance(self.now, &mut due);
        for entry in due {
            self.check_deadline(entry);
        }
    }

    /// Closes the connection if a deadline really passed, otherwise
    /// schedules the next check.
    fn check_deadline(&mut self, entry: TimerEntry) {
        let Some(conn) = self.conns.get(entry.key) else {
            return;
        };
        if conn.id() != entry.conn_id {
            return; // closed; the slot now holds another connection
        }
        if let Some(reason) = conn.overdue(self.deadlines, self.now) {
            return self.close(entry.key, reason);
        }
        let next = conn
            .next_check(self.deadlines, self.now)
            .map(|at| at.max(self.now + self.timers.tick()));
        if let Some(at) = next {
            self.timers.schedule(entry, at);
        }
    }
}
