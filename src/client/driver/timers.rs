//! Time on the driver: call deadlines, connect timeouts, probes and pings. The earliest
//! live deadline is the poll timeout, so no timer thread is needed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use super::Driver;
use crate::call::status::Status;

/// Call deadlines, earliest first. Most calls use the channel's timeout,
/// so their deadlines arrive in order: those go to the back of a queue in
/// O(1); only an out-of-order deadline pays for the heap. Completed calls
/// leave their entry behind (removing from the middle would cost more
/// than it saves); entries are checked against the pending table when they
/// come due, and compacted once they dominate.
#[derive(Default)]
pub(super) struct Deadlines {
    in_order: VecDeque<(Instant, u64)>,
    out_of_order: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Deadlines {
    pub(super) fn push(&mut self, at: Instant, id: u64) {
        match self.in_order.back() {
            Some(&(last, _)) if at < last => self.out_of_order.push(Reverse((at, id))),
            _ => self.in_order.push_back((at, id)),
        }
    }

    /// The earliest entry, and whether it is the queue's (else the heap's).
    fn peek(&self) -> Option<((Instant, u64), bool)> {
        let queue = self.in_order.front().copied();
        let heap = self.out_of_order.peek().map(|Reverse(e)| *e);
        match (queue, heap) {
            (Some(q), Some(h)) if h < q => Some((h, false)),
            (Some(q), _) => Some((q, true)),
            (None, Some(h)) => Some((h, false)),
            (None, None) => None,
        }
    }

    /// Removes the entry `peek` returned.
    fn pop(&mut self, from_queue: bool) {
        if from_queue {
            self.in_order.pop_front();
        } else {
            self.out_of_order.pop();
        }
    }

    fn len(&self) -> usize {
        self.in_order.len() + self.out_of_order.len()
    }

    fn clear(&mut self) {
        self.in_order.clear();
        self.out_of_order.clear();
    }

    /// Keeps only the entries `live` accepts.
    fn retain(&mut self, live: impl Fn(Instant, u64) -> bool) {
        self.in_order.retain(|&(at, id)| live(at, id));
        self.out_of_order.retain(|&Reverse((at, id))| live(at, id));
    }
}

impl Driver {
    /// Fails calls whose deadline passed and closes connects that took too long.
    pub(super) fn expire(&mut self) {
        if self.pending.is_empty() {
            self.deadlines.clear();
        }
        while let Some(((deadline, id), from_queue)) = self.deadlines.peek() {
            if deadline > self.now {
                break;
            }
            self.deadlines.pop(from_queue);
            if !self.is_live(deadline, id) {
                continue;
            }
            let Some(pending) = self.pending.remove(id) else {
                continue;
            };
            self.retire(&pending);
            self.note_timeout(pending.conn);
            let addr = self.conns.get(pending.conn).map(|c| c.addr());
            self.send_cancel(pending.conn, id);
            let message = match addr {
                Some(addr) => format!("no reply from {addr} before the call's deadline"),
                None => "the call's deadline passed before it was sent".to_owned(),
            };
            let status = Status::deadline_exceeded(message);
            self.complete(pending.notify, Err(status));
        }
        if self.connecting > 0 {
            self.expire_connects();
        }
        self.tend_ejections();
        self.tend_pings();
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
            .get(id)
            .is_some_and(|p| p.deadline == Some(deadline))
    }

    /// Keeps the heap proportional to the live calls.
    fn compact_deadlines(&mut self) {
        if self.deadlines.len() <= 1024 || self.deadlines.len() <= 4 * self.pending.len() {
            return;
        }
        let pending = &self.pending;
        self.deadlines
            .retain(|at, id| pending.get(id).is_some_and(|p| p.deadline == Some(at)));
    }

    /// How long poll may sleep: until the earliest live deadline or
    /// connect timeout; forever when there is none.
    pub(super) fn next_timeout(&mut self) -> Option<Duration> {
        // Skip entries of calls already completed, so they cause no wake-ups.
        while let Some(((deadline, id), from_queue)) = self.deadlines.peek() {
            if self.is_live(deadline, id) {
                break;
            }
            self.deadlines.pop(from_queue);
        }
        let mut next = self.deadlines.peek().map(|((d, _), _)| d);
        if self.connecting > 0 {
            for d in self.conns.iter().filter_map(|(_, c)| c.connect_deadline()) {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        if let Some(d) = self.next_ejection_event() {
            next = Some(next.map_or(d, |n| n.min(d)));
        }
        if let Some(d) = self.next_ping {
            next = Some(next.map_or(d, |n| n.min(d)));
        }
        next.map(|d| d.saturating_duration_since(Instant::now()))
    }
}
