//! Time on the driver: call deadlines and connect timeouts. The earliest
//! live deadline is the poll timeout, so no timer thread is needed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::Driver;
use crate::status::Status;

/// Call deadlines, earliest first. Completed calls leave their entry
/// behind (removing from a heap is O(n)); entries are checked against the
/// pending table when they come due, and compacted once they dominate.
#[derive(Default)]
pub(super) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Deadlines {
    pub(super) fn push(&mut self, at: Instant, id: u64) {
        self.heap.push(Reverse((at, id)));
    }

    fn peek(&self) -> Option<(Instant, u64)> {
        self.heap.peek().map(|Reverse(entry)| *entry)
    }

    fn pop(&mut self) {
        self.heap.pop();
    }

    fn len(&self) -> usize {
        self.heap.len()
    }

    fn clear(&mut self) {
        self.heap.clear();
    }

    fn rebuild(&mut self, live: impl Iterator<Item = (Instant, u64)>) {
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        entries.clear();
        entries.extend(live.map(Reverse));
        self.heap = BinaryHeap::from(entries);
    }
}

impl Driver {
    /// Fails calls whose deadline passed and closes connects that took too long.
    pub(super) fn expire(&mut self) {
        if self.pending.is_empty() {
            self.deadlines.clear();
        }
        while let Some((deadline, id)) = self.deadlines.peek() {
            if deadline > self.now {
                break;
            }
            self.deadlines.pop();
            if !self.is_live(deadline, id) {
                continue;
            }
            let Some(pending) = self.pending.remove(&id) else {
                continue;
            };
            self.retire(&pending);
            let addr = self.conns.get(pending.conn).map(|c| c.addr());
            self.send_cancel(pending.conn, id);
            let message = match addr {
                Some(addr) => format!("no reply from {addr} before the call's deadline"),
                None => "the call's deadline passed before it was sent".to_owned(),
            };
            pending
                .completion
                .complete(Err(Status::deadline_exceeded(message)));
        }
        if self.connecting > 0 {
            self.expire_connects();
        }
        self.compact_deadlines();
    }

    fn expire_connects(&mut self) {
        let now = self.now;
        let late: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.connect_deadline().is_some_and(|d| d <= now))
            .map(|(key, _)| key)
            .collect();
        for key in late {
            let addr = self.conns[key].addr();
            let after = self.options.connect_timeout;
            self.close(key, format!("connect to {addr} timed out after {after:?}"));
        }
    }

    /// The entry `(deadline, id)` belongs to a call still pending.
    fn is_live(&self, deadline: Instant, id: u64) -> bool {
        self.pending
            .get(&id)
            .is_some_and(|p| p.deadline == Some(deadline))
    }

    /// Keeps the heap proportional to the live calls.
    fn compact_deadlines(&mut self) {
        if self.deadlines.len() <= 1024 || self.deadlines.len() <= 4 * self.pending.len() {
            return;
        }
        let live = self
            .pending
            .iter()
            .filter_map(|(id, p)| p.deadline.map(|d| (d, *id)));
        self.deadlines.rebuild(live);
    }

    /// How long poll may sleep: until the earliest live deadline or
    /// connect timeout; forever when there is none.
    pub(super) fn next_timeout(&mut self) -> Option<Duration> {
        // Skip entries of calls already completed, so they cause no wake-ups.
        while let Some((deadline, id)) = self.deadlines.peek() {
            if self.is_live(deadline, id) {
                break;
            }
            self.deadlines.pop();
        }
        let mut next = self.deadlines.peek().map(|(d, _)| d);
        if self.connecting > 0 {
            for d in self.conns.iter().filter_map(|(_, c)| c.connect_deadline()) {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        next.map(|d| d.saturating_duration_since(Instant::now()))
    }
}
