//! The adaptive limit of one method, after brpc's auto concurrency limiter:
//! the concurrency a method can take without queueing is its no-load
//! latency times its peak throughput (Little's law); the limit is that
//! times `1 + explore`, where the explore ratio grows while calls wait
//! little beyond their handler's own time (room to find more throughput)
//! and shrinks once they wait longer (a queue is forming).
//!
//! brpc has to guess the no-load latency from the lowest latency it has
//! seen, and lowers the limit every so often to see it again. Here the
//! server owns the queue, so the no-load latency is measured directly: the
//! time from a handler's start to its end, without the wait before it
//! (a moving average). A provider that starts under a flood therefore
//! finds its limit within one window, without ever seeing a quiet moment.
//!
//! Completions add to a sample window with a few relaxed atomic adds; the
//! one completion that closes a window (after `WINDOW_US`, or
//! `MAX_SAMPLES` calls) takes a `try_lock` and computes the next limit.
//! Nothing else locks.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// A window closes after this long (if it holds `MIN_SAMPLES`) ...
const WINDOW_US: u64 = 1_000_000;
/// ... or once it holds this many calls.
const MAX_SAMPLES: u64 = 200;
/// A window that ends with fewer calls is dropped (too few to judge).
const MIN_SAMPLES: u64 = 100;
/// The limit a method starts with.
pub(super) const INITIAL_LIMIT: u32 = 40;
const MIN_EXPLORE: f64 = 0.06;
const MAX_EXPLORE: f64 = 0.3;
const EXPLORE_STEP: f64 = 0.02;
/// Latency within `1 + MIN_EXPLORE * this` of the handler time counts as
/// "no queue".
const FLUCTUATION: f64 = 0.5;
/// Weight of a new window in the moving averages.
const EMA: f64 = 0.1;

/// How long one call took: from admission, and from its handler's start.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub(super) ok: bool,
    /// Admission to reply, in microseconds (queue wait included).
    pub(super) latency_us: u64,
    /// The handler alone, in microseconds.
    pub(super) service_us: u64,
}

/// A method's sample window (atomics) and estimator (behind `try_lock`).
#[derive(Debug)]
pub(super) struct AutoLimit {
    /// Microseconds (since the limiter's epoch) the current window started.
    window_start: AtomicU64,
    ok: AtomicU64,
    ok_us: AtomicU64,
    ok_service_us: AtomicU64,
    failed: AtomicU64,
    failed_us: AtomicU64,
    estimator: Mutex<Estimator>,
}

impl AutoLimit {
    /// A limit that never goes below `floor`.
    pub(super) fn new(floor: u32) -> AutoLimit {
        AutoLimit {
            window_start: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            ok_us: AtomicU64::new(0),
            ok_service_us: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failed_us: AtomicU64::new(0),
            estimator: Mutex::new(Estimator::new(floor)),
        }
    }

    /// Records a finished call; returns the new limit when this call
    /// closed a window.
    pub(super) fn sample(&self, now_us: u64, s: Sample) -> Option<u32> {
        if s.ok {
            self.ok.fetch_add(1, Ordering::Relaxed);
            self.ok_us.fetch_add(s.latency_us, Ordering::Relaxed);
            self.ok_service_us
                .fetch_add(s.service_us, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
            self.failed_us.fetch_add(s.latency_us, Ordering::Relaxed);
        }
        let start = self.window_start.load(Ordering::Relaxed);
        let count = self.ok.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed);
        let elapsed = now_us.saturating_sub(start);
        if elapsed < WINDOW_US && count < MAX_SAMPLES {
            return None;
        }
        let mut estimator = self.estimator.try_lock()?;
        if self.window_start.load(Ordering::Relaxed) != start {
            return None; // another thread closed this window meanwhile
        }
        let window = Window {
            ok: self.ok.swap(0, Ordering::Relaxed),
            ok_us: self.ok_us.swap(0, Ordering::Relaxed),
            ok_service_us: self.ok_service_us.swap(0, Ordering::Relaxed),
            failed: self.failed.swap(0, Ordering::Relaxed),
            failed_us: self.failed_us.swap(0, Ordering::Relaxed),
            elapsed_us: elapsed.max(1),
        };
        self.window_start.store(now_us, Ordering::Relaxed);
        estimator.close_window(window)
    }
}

/// One closed sample window.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    pub(super) ok: u64,
    pub(super) ok_us: u64,
    pub(super) ok_service_us: u64,
    pub(super) failed: u64,
    pub(super) failed_us: u64,
    pub(super) elapsed_us: u64,
}

/// The estimate behind the limit: handler time, peak throughput and
/// explore ratio, updated once per window.
#[derive(Debug)]
pub(super) struct Estimator {
    floor: u32,
    /// Microseconds a handler runs (the no-load latency); `None` until
    /// the first window.
    service_us: Option<f64>,
    /// Calls per second, a moving average that follows increases at once.
    peak_qps: f64,
    explore: f64,
}

impl Estimator {
    pub(super) fn new(floor: u32) -> Estimator {
        Estimator {
            floor,
            service_us: None,
            peak_qps: 0.0,
            explore: MAX_EXPLORE,
        }
    }

    /// Folds a closed window in; returns the new limit, or `None` when the
    /// window holds too few calls to judge.
    pub(super) fn close_window(&mut self, w: Window) -> Option<u32> {
        if w.ok == 0 || w.ok + w.failed < MIN_SAMPLES {
            return None;
        }
        // Failed calls count against the latency (brpc's fail punishment).
        let latency = (w.ok_us + w.failed_us) as f64 / w.ok as f64;
        let service = w.ok_service_us as f64 / w.ok as f64;
        let qps = w.ok as f64 * 1e6 / w.elapsed_us as f64;
        let service = match self.service_us {
            Some(old) => old * (1.0 - EMA) + service * EMA,
            None => service,
        };
        self.service_us = Some(service);
        self.peak_qps = if qps >= self.peak_qps {
            qps
        } else {
            qps * EMA / 10.0 + self.peak_qps * (1.0 - EMA / 10.0)
        };
        let quiet = latency <= service * (1.0 + MIN_EXPLORE * FLUCTUATION)
            || qps <= self.peak_qps / (1.0 + MIN_EXPLORE);
        self.explore = if quiet {
            (self.explore + EXPLORE_STEP).min(MAX_EXPLORE)
        } else {
            (self.explore - EXPLORE_STEP).max(MIN_EXPLORE)
        };
        let capacity = service * self.peak_qps / 1e6;
        Some(((capacity * (1.0 + self.explore)).ceil() as u32).max(self.floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window of `n` calls over one second, each waiting `latency_us`
    /// from admission, of which `service_us` in its handler.
    fn window(n: u64, latency_us: u64, service_us: u64) -> Window {
        Window {
            ok: n,
            ok_us: n * latency_us,
            ok_service_us: n * service_us,
            failed: 0,
            failed_us: 0,
            elapsed_us: WINDOW_US,
        }
    }

    #[test]
    fn the_limit_is_handler_time_times_peak_throughput_plus_headroom() {
        // 8 workers busy with 1 ms handlers: 8,000 calls/s, calls queued
        // 4 ms before their handler (a flood from the start).
        let mut e = Estimator::new(1);
        let first = e.close_window(window(8_000, 5_000, 1_000)).unwrap();
        assert!((9..=11).contains(&first), "{first}");
        let mut limit = first;
        for _ in 0..20 {
            limit = e.close_window(window(8_000, 1_500, 1_000)).unwrap();
        }
        assert!((9..=10).contains(&limit), "{limit}");
    }

    #[test]
    fn waiting_shrinks_the_headroom_and_no_waiting_grows_it() {
        let mut e = Estimator::new(1);
        for _ in 0..20 {
            e.close_window(window(80_000, 1_000, 1_000));
        }
        let quiet = e.close_window(window(80_000, 1_000, 1_000)).unwrap();
        let mut queued = quiet;
        for _ in 0..20 {
            queued = e.close_window(window(80_000, 3_000, 1_000)).unwrap();
        }
        assert!(queued < quiet, "{queued} < {quiet}");
        assert_eq!(queued, (80.0f64 * (1.0 + MIN_EXPLORE)).ceil() as u32);
        assert_eq!(quiet, (80.0f64 * (1.0 + MAX_EXPLORE)).ceil() as u32);
    }

    #[test]
    fn the_floor_holds_and_small_windows_are_ignored() {
        let mut e = Estimator::new(4);
        assert_eq!(e.close_window(window(10, 1_000, 1_000)), None);
        assert_eq!(e.close_window(window(100, 10, 10)), Some(4));
    }

    #[test]
    fn samples_close_a_window_once() {
        let auto = AutoLimit::new(1);
        let sample = Sample {
            ok: true,
            latency_us: 1_000,
            service_us: 900,
        };
        let mut limits = 0;
        for i in 0..MAX_SAMPLES * 3 {
            limits += u32::from(auto.sample(i * 100, sample).is_some());
        }
        assert_eq!(limits, 3);
    }
}
