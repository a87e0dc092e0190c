//! The open-loop send schedule, shared by both clients.
//!
//! Thread `t` of `T` owns the calls `start + (k·T + t)/qps` for k = 0, 1, …:
//! each call has an *intended* send time fixed in advance, so a late sender
//! or a full window shows up as send lag and as latency instead of silently
//! lowering the rate (coordinated omission, as wrk2 corrects it). Calls
//! whose time fell inside the measured window but that were never sent are
//! listed by [`Schedule::unsent`] so they can be counted, not dropped.

use std::time::{Duration, Instant};

/// One sending thread's share of an open-loop schedule.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    interval_ns: f64,
    offset_ns: f64,
}

impl Schedule {
    /// `qps` is the whole run's rate, shared by `threads` threads.
    pub fn new(start: Instant, qps: f64, thread: usize, threads: usize) -> Schedule {
        let interval_ns = 1e9 * threads as f64 / qps;
        Schedule {
            start,
            interval_ns,
            // Offset thread t by t/T of its interval so threads interleave.
            offset_ns: interval_ns * thread as f64 / threads as f64,
        }
    }

    /// The intended send time of call `k`.
    pub fn at(&self, k: u64) -> Instant {
        self.start + Duration::from_nanos((self.offset_ns + self.interval_ns * k as f64) as u64)
    }

    /// Intended times of calls `from..` that fall before `end`.
    pub fn unsent(&self, from: u64, end: Instant) -> impl Iterator<Item = Instant> + '_ {
        (from..).map(|k| self.at(k)).take_while(move |&t| t < end)
    }
}

/// Makes `sleep` and timers wake when asked instead of up to 50 µs late
/// (Linux; this thread only).
pub fn set_timer_slack_ns(ns: u64) {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = ns;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_interleave_and_unsent_stops_at_the_end() {
        let t0 = Instant::now();
        let a = Schedule::new(t0, 1000.0, 0, 2);
        let b = Schedule::new(t0, 1000.0, 1, 2);
        assert_eq!(a.at(0), t0);
        assert_eq!(b.at(0) - t0, Duration::from_millis(1));
        assert_eq!(a.at(1) - t0, Duration::from_millis(2));
        let end = t0 + Duration::from_millis(10);
        assert_eq!(a.unsent(0, end).count(), 5);
        assert_eq!(a.unsent(3, end).count(), 2);
        assert_eq!(b.unsent(5, end).count(), 0);
    }
}
