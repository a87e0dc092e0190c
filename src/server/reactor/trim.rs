//! Memory given back after a connection storm. Each connection's buffers
//! are freed when it closes, but glibc keeps freed memory in its per-thread
//! arenas: after five 10,000-connection churns a provider with no
//! connection left held 130 MiB, of which 9 MiB were in use
//! (results/SCALE.md). Once a reactor has closed many connections and then
//! seen no close for a second, it shrinks its own tables (when it holds no
//! connection) and calls `malloc_trim(0)`, which returns the free pages of
//! every arena to the kernel. It costs a few milliseconds once per storm,
//! never per call (the `trim_memory` key turns it off). The same happens a
//! second after a connection gave back buffers a large frame left behind.

use std::time::{Duration, Instant};

use super::Reactor;

/// Closes on one reactor that make a storm worth trimming after; routine
/// churn trims at most once per this many closes.
const AFTER_CLOSES: usize = 1024;
/// How long closes must have stopped before trimming.
const QUIET: Duration = Duration::from_secs(1);
/// The connection table's capacity when it is rebuilt empty.
pub(super) const TABLE_CAPACITY: usize = 1024;

/// When this reactor trims next.
#[derive(Debug)]
pub(super) struct Trim {
    enabled: bool,
    closed: usize,
    due: Option<Instant>,
}

impl Trim {
    pub(super) fn new(enabled: bool) -> Trim {
        Trim {
            enabled,
            closed: 0,
            due: None,
        }
    }

    /// A connection closed at `now`: once enough have, trim a second after
    /// the last one.
    pub(super) fn closed(&mut self, now: Instant) {
        if !self.enabled {
            return;
        }
        self.closed += 1;
        if self.closed >= AFTER_CLOSES {
            self.due = Some(now + QUIET);
        }
    }

    /// A connection gave back (or closed with) large buffers at `now`:
    /// glibc keeps such freed memory resident, so trim a second later.
    pub(super) fn large_freed(&mut self, now: Instant) {
        if self.enabled {
            self.due = Some(now + QUIET);
        }
    }

    /// How long the reactor may sleep before the trim is due.
    pub(super) fn timeout(&self, now: Instant) -> Option<Duration> {
        self.due.map(|due| due.saturating_duration_since(now))
    }

    fn take_if_due(&mut self, now: Instant) -> bool {
        match self.due {
            Some(due) if due <= now => {
                self.due = None;
                self.closed = 0;
                true
            }
            _ => false,
        }
    }
}

impl Reactor {
    /// Gives freed memory back if a storm has passed.
    pub(super) fn trim_if_due(&mut self) {
        if !self.trim.take_if_due(self.now) {
            return;
        }
        if self.conns.is_empty() {
            self.conns = slab::Slab::with_capacity(TABLE_CAPACITY);
        }
        self.timers.shrink();
        self.shared.stats().shrink();
        let began = Instant::now();
        let released = crate::sys::release_free_memory();
        tracing::debug!(
            reactor = self.index,
            connections = self.conns.len(),
            released,
            took_us = began.elapsed().as_micros() as u64,
            "connection storm over: freed memory returned to the kernel"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_trims_once_a_second_after_its_last_close() {
        let t0 = Instant::now();
        let mut trim = Trim::new(true);
        for _ in 0..AFTER_CLOSES - 1 {
            trim.closed(t0);
        }
        assert_eq!(trim.timeout(t0), None, "not a storm yet");
        trim.closed(t0);
        let last = t0 + Duration::from_millis(500);
        trim.closed(last);
        assert_eq!(trim.timeout(last), Some(QUIET));
        assert!(!trim.take_if_due(last + QUIET / 2));
        assert!(trim.take_if_due(last + QUIET));
        assert!(!trim.take_if_due(last + QUIET * 2), "once per storm");
        assert_eq!(trim.timeout(last), None);
    }

    #[test]
    fn off_means_never() {
        let t0 = Instant::now();
        let mut trim = Trim::new(false);
        for _ in 0..AFTER_CLOSES * 2 {
            trim.closed(t0);
        }
        assert_eq!(trim.timeout(t0), None);
    }
}
