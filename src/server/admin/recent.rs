//! Latency of the last few seconds, for `/status` and the page's charts:
//! the server's histograms count since start, so a chart of their
//! percentiles goes flat. Every [`ROTATE`] the merged histograms are kept
//! as a baseline; "recent" is now minus the older of the last two
//! baselines, a window of one to two [`ROTATE`]s. Shared by every reader of
//! `/status` (one set of baselines per server, not per viewer).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;

use crate::server::metrics::Slot;

/// How often a new baseline is kept.
pub(crate) const ROTATE: Duration = Duration::from_secs(5);

/// One method's figures over the recent window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recent {
    pub(crate) window_ms: u64,
    /// Calls answered in the window.
    pub(crate) calls: u64,
    /// Percentiles of the calls sampled in the window (0 when none was).
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
}

struct Baseline {
    taken: Instant,
    calls: Vec<u64>,
    latency: Vec<Histogram<u64>>,
}

/// The two latest baselines.
#[derive(Default)]
pub(crate) struct Window {
    baselines: Mutex<(Option<Baseline>, Option<Baseline>)>,
}

impl Window {
    /// Per method (in `slots` order) its figures since the older baseline;
    /// `None` until two baselines were kept. Keeps a new one when due.
    pub(crate) fn recent(&self, slots: &[&Slot], now: Instant) -> Vec<Option<Recent>> {
        let mut baselines = self.baselines.lock();
        let (older, newer) = &mut *baselines;
        if newer
            .as_ref()
            .is_none_or(|b| now.duration_since(b.taken) >= ROTATE)
        {
            *older = newer.take();
            *newer = Some(Baseline {
                taken: now,
                calls: slots.iter().map(|s| s.calls).collect(),
                latency: slots.iter().map(|s| s.latency_us.clone()).collect(),
            });
        }
        let Some(base) = older.as_ref().filter(|b| b.latency.len() == slots.len()) else {
            return vec![None; slots.len()];
        };
        let window_ms = now.duration_since(base.taken).as_millis() as u64;
        slots
            .iter()
            .zip(base.calls.iter().zip(&base.latency))
            .map(|(slot, (calls, latency))| {
                let mut delta = slot.latency_us.clone();
                delta.subtract(latency).ok()?;
                Some(Recent {
                    window_ms,
                    calls: slot.calls.saturating_sub(*calls),
                    p50_us: delta.value_at_quantile(0.50),
                    p99_us: delta.value_at_quantile(0.99),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::status::Code;
    use crate::server::metrics::MetricsRegistry;

    #[test]
    fn recent_covers_only_calls_since_the_older_baseline() {
        let registry = MetricsRegistry::new(vec![("S", "m")]);
        let thread = registry.register_thread();
        let call = |ms: u64| {
            let started = Instant::now() - Duration::from_millis(ms);
            thread.record(0, Code::Ok, Some(started));
        };
        let window = Window::default();
        let recent_at = |at: Instant| {
            let merged = registry.merged();
            let slots: Vec<&Slot> = merged.iter().map(|m| &m.2).collect();
            window.recent(&slots, at)
        };
        let t0 = Instant::now();
        (0..100).for_each(|_| call(1));
        assert_eq!(recent_at(t0), vec![None], "one baseline: no window yet");
        assert_eq!(recent_at(t0 + Duration::from_secs(1)), vec![None]);
        (0..10).for_each(|_| call(20));
        let recent = recent_at(t0 + ROTATE).remove(0).expect("two baselines");
        assert_eq!(recent.calls, 10, "only the calls after the first baseline");
        assert_eq!(recent.window_ms, ROTATE.as_millis() as u64);
        assert!((19_000..=21_000).contains(&recent.p50_us), "{recent:?}");
        // Since start, the 1 ms calls dominate.
        let since_start = registry.snapshot().methods[0].p50_us;
        assert!(since_start < 2_000, "{since_start}");
    }
}
