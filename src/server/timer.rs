//! A hashed timer wheel for connection deadlines (idle, slow partial frames).
//!
//! Timers are lazy, as in Netty's `IdleStateHandler`: a connection is
//! scheduled once for its earliest possible deadline; activity does not touch
//! the wheel. When the slot comes round, the reactor re-checks the real
//! deadline and either closes the connection or schedules it again. So the
//! hot path (reads, replies) never pays for timers, and a reactor with 10,000
//! connections does work proportional to the timers due, not to all of them.

use std::time::{Duration, Instant};

/// One scheduled check: a slab key and the connection id that owned it
/// (slab keys are reused; a stale entry is recognised and ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerEntry {
    pub key: usize,
    pub conn_id: u64,
}

pub(crate) struct TimerWheel {
    slots: Vec<Vec<TimerEntry>>,
    tick: Duration,
    /// The slot whose time is `now_tick`.
    cursor: usize,
    /// The instant of the cursor slot's start.
    cursor_time: Instant,
}

impl TimerWheel {
    /// `slots` buckets of `tick` each; longer delays wrap and are re-checked.
    pub(crate) fn new(tick: Duration, slots: usize, now: Instant) -> TimerWheel {
        TimerWheel {
            slots: vec![Vec::new(); slots.max(2)],
            tick,
            cursor: 0,
            cursor_time: now,
        }
    }

    pub(crate) fn tick(&self) -> Duration {
        self.tick
    }

    /// Schedules a check at (or just after) `at`.
    pub(crate) fn schedule(&mut self, entry: TimerEntry, at: Instant) {
        let ahead = at.saturating_duration_since(self.cursor_time);
        let ticks = (ahead.as_nanos() / self.tick.as_nanos()).max(1) as usize;
        let ticks = ticks.min(self.slots.len() - 1);
        let slot = (self.cursor + ticks) % self.slots.len();
        self.slots[slot].push(entry);
    }

    /// Moves the cursor up to `now`, appending every entry whose slot has
    /// passed to `due`.
    pub(crate) fn advance(&mut self, now: Instant, due: &mut Vec<TimerEntry>) {
        while now >= self.cursor_time + self.tick {
            self.cursor = (self.cursor + 1) % self.slots.len();
            self.cursor_time += self.tick;
            due.append(&mut self.slots[self.cursor]);
        }
    }

    /// How long until the next slot boundary (the poll timeout).
    /// Gives back the slots' spare capacity (after a connection storm).
    pub(crate) fn shrink(&mut self) {
        for slot in &mut self.slots {
            slot.shrink_to_fit();
        }
    }

    pub(crate) fn until_next_tick(&self, now: Instant) -> Duration {
        (self.cursor_time + self.tick).saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: usize) -> TimerEntry {
        TimerEntry {
            key,
            conn_id: key as u64,
        }
    }

    #[test]
    fn entries_fire_at_their_slot_not_before() {
        let t0 = Instant::now();
        let tick = Duration::from_millis(10);
        let mut w = TimerWheel::new(tick, 64, t0);
        w.schedule(e(1), t0 + Duration::from_millis(30));
        w.schedule(e(2), t0 + Duration::from_millis(100));
        let mut due = Vec::new();
        w.advance(t0 + Duration::from_millis(25), &mut due);
        assert!(due.is_empty());
        w.advance(t0 + Duration::from_millis(35), &mut due);
        assert_eq!(due, vec![e(1)]);
        due.clear();
        w.advance(t0 + Duration::from_millis(105), &mut due);
        assert_eq!(due, vec![e(2)]);
    }

    #[test]
    fn long_delays_wrap_and_fire_early_for_a_recheck() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(Duration::from_millis(10), 8, t0);
        w.schedule(e(7), t0 + Duration::from_secs(60));
        let mut due = Vec::new();
        w.advance(t0 + Duration::from_millis(80), &mut due);
        assert_eq!(
            due,
            vec![e(7)],
            "fires within one lap so the owner re-checks"
        );
    }

    #[test]
    fn a_past_deadline_fires_on_the_next_tick() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(Duration::from_millis(10), 8, t0);
        w.schedule(e(3), t0);
        let mut due = Vec::new();
        w.advance(t0 + Duration::from_millis(10), &mut due);
        assert_eq!(due, vec![e(3)]);
    }
}
