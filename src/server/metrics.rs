//! Per-method metrics a person can read: calls, errors, latency percentiles.
//!
//! Every server thread that runs handlers (reactors, workers) records into
//! its own [`ThreadStats`], so the hot path takes an uncontended lock and
//! never shares a cache line with another thread. Call and error counts are
//! exact; latency is timed on a sample of calls. A snapshot merges all
//! threads' histograms; it is what `ServerHandle::metrics()` returns and what
//! the provider logs periodically.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use parking_lot::Mutex;

/// Highest latency tracked (60 s, in microseconds); slower calls count as 60 s.
const MAX_US: u64 = 60_000_000;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 2).expect("static histogram bounds are valid")
}

#[derive(Clone)]
struct Slot {
    calls: u64,
    errors: u64,
    latency_us: Histogram<u64>,
}

/// Latency is timed on one call in this many (counts are exact): reading
/// the clock twice per call would cost more than the rest of the
/// bookkeeping on a pipelined connection.
const LATENCY_SAMPLE_EVERY: u32 = 8;
const TIME_EVERY_CALL_UNTIL: u32 = 1024;

/// One thread's counters, indexed by method id.
pub(crate) struct ThreadStats {
    slots: Mutex<Vec<Slot>>,
    /// Calls seen by this thread, for latency sampling. Only the owning
    /// thread writes it, so a plain load and store suffice.
    seen: AtomicU32,
}

impl ThreadStats {
    /// The start time of a call whose latency is sampled, or `None`.
    pub(crate) fn start_timer(&self) -> Option<Instant> {
        let n = self.seen.load(Ordering::Relaxed).wrapping_add(1);
        self.seen.store(n, Ordering::Relaxed);
        // Every call is timed until the thread has seen a few, so a quiet
        // server's table is not empty; then one in LATENCY_SAMPLE_EVERY.
        (n <= TIME_EVERY_CALL_UNTIL || n.is_multiple_of(LATENCY_SAMPLE_EVERY)).then(Instant::now)
    }

    /// Counts one finished call of `method_id`, and its latency when it was
    /// sampled (`started` from [`start_timer`](Self::start_timer)).
    pub(crate) fn record(&self, method_id: usize, ok: bool, started: Option<Instant>) {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get_mut(method_id) {
            slot.calls += 1;
            slot.errors += u64::from(!ok);
            if let Some(started) = started {
                let us = (started.elapsed().as_micros() as u64).clamp(1, MAX_US);
                slot.latency_us.saturating_record(us);
            }
        }
    }
}

/// All threads' stats and the names behind method ids.
pub(crate) struct MetricsRegistry {
    names: Vec<(&'static str, &'static str)>,
    threads: Mutex<Vec<Arc<ThreadStats>>>,
}

impl MetricsRegistry {
    /// A registry for these `(service, method)` names, indexed by method id.
    pub(crate) fn new(names: Vec<(&'static str, &'static str)>) -> MetricsRegistry {
        MetricsRegistry {
            names,
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Stats for one more recording thread.
    pub(crate) fn register_thread(&self) -> Arc<ThreadStats> {
        let slot = Slot {
            calls: 0,
            errors: 0,
            latency_us: new_histogram(),
        };
        let stats = Arc::new(ThreadStats {
            slots: Mutex::new(vec![slot; self.names.len()]),
            seen: AtomicU32::new(0),
        });
        self.threads.lock().push(stats.clone());
        stats
    }

    /// Every thread's figures merged, one entry per method.
    pub(crate) fn snapshot(&self) -> Metrics {
        let mut merged: Vec<Slot> = self
            .names
            .iter()
            .map(|_| Slot {
                calls: 0,
                errors: 0,
                latency_us: new_histogram(),
            })
            .collect();
        for thread in self.threads.lock().iter() {
            for (into, from) in merged.iter_mut().zip(thread.slots.lock().iter()) {
                into.calls += from.calls;
                into.errors += from.errors;
                let _ = into.latency_us.add(&from.latency_us);
            }
        }
        let methods = self
            .names
            .iter()
            .zip(merged)
            .map(|(&(service, method), s)| MethodMetrics {
                service,
                method,
                calls: s.calls,
                errors: s.errors,
                p50_us: s.latency_us.value_at_quantile(0.50),
                p90_us: s.latency_us.value_at_quantile(0.90),
                p99_us: s.latency_us.value_at_quantile(0.99),
                p999_us: s.latency_us.value_at_quantile(0.999),
                max_us: s.latency_us.max(),
            })
            .collect();
        Metrics { methods }
    }
}

/// One method's figures since the server started. Latency is the handler's
/// service time on the server, sampled on one call in eight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodMetrics {
    /// The service's wire name.
    pub service: &'static str,
    /// The method's wire name.
    pub method: &'static str,
    /// Calls answered (exact count).
    pub calls: u64,
    /// Calls answered with a status other than `Ok`.
    pub errors: u64,
    /// Median handler time, in microseconds.
    pub p50_us: u64,
    /// 90th percentile handler time, in microseconds.
    pub p90_us: u64,
    /// 99th percentile handler time, in microseconds.
    pub p99_us: u64,
    /// 99.9th percentile handler time, in microseconds.
    pub p999_us: u64,
    /// Slowest sampled handler time, in microseconds.
    pub max_us: u64,
}

/// A snapshot of every method's metrics.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// One entry per published method, called or not.
    pub methods: Vec<MethodMetrics>,
}

impl Metrics {
    /// The figures of `service.method`, if the server publishes it.
    pub fn get(&self, service: &str, method: &str) -> Option<&MethodMetrics> {
        self.methods
            .iter()
            .find(|m| m.service == service && m.method == method)
    }
}

impl fmt::Display for Metrics {
    /// A table, one line per method that has been called.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<40} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "method", "calls", "errors", "p50us", "p90us", "p99us", "p999us", "maxus"
        )?;
        for m in self.methods.iter().filter(|m| m.calls > 0) {
            writeln!(
                f,
                "{:<40} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                format!("{}.{}", m.service, m.method),
                m.calls,
                m.errors,
                m.p50_us,
                m.p90_us,
                m.p99_us,
                m.p999_us,
                m.max_us
            )?;
        }
        Ok(())
    }
}
