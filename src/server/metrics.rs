//! Per-method metrics a person can read: calls, errors (by status code),
//! handlers running, latency percentiles.
//!
//! Every server thread that runs handlers (reactors, workers) records into
//! its own [`ThreadStats`], so the hot path takes an uncontended lock and
//! never shares a cache line with another thread. Call and error counts are
//! exact; latency is timed on a sample of calls. A snapshot merges all
//! threads' histograms; it is what `ServerHandle::metrics()` returns, what
//! the admin pages (`/metrics`, `/status`) show and what the server logs
//! every `metrics_log_interval_s` (see [`log_line`]).

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;

use crate::call::status::Code;

/// Highest latency tracked (60 s, in microseconds); slower calls count as 60 s.
const MAX_US: u64 = 60_000_000;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 2).expect("static histogram bounds are valid")
}

/// Status codes counted apart (wire bytes 0..CODES; a higher one counts
/// under the last slot's code, `Internal`, as `Code::from_u8` reads it).
const CODES: usize = 32;

/// One method's figures on one thread (or merged over all of them).
#[derive(Clone)]
pub(crate) struct Slot {
    pub(crate) calls: u64,
    pub(crate) errors: u64,
    /// Failed calls by status code wire byte.
    pub(crate) by_code: [u64; CODES],
    pub(crate) latency_us: Histogram<u64>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            calls: 0,
            errors: 0,
            by_code: [0; CODES],
            latency_us: new_histogram(),
        }
    }

    fn add(&mut self, from: &Slot) {
        self.calls += from.calls;
        self.errors += from.errors;
        for (into, n) in self.by_code.iter_mut().zip(from.by_code) {
            *into += n;
        }
        let _ = self.latency_us.add(&from.latency_us);
    }

    /// `(code, failed calls)` for every code that failed at least once.
    pub(crate) fn errors_by_code(&self) -> Vec<(Code, u64)> {
        let mut out: Vec<(Code, u64)> = Vec::new();
        for (byte, &n) in self.by_code.iter().enumerate().filter(|(_, n)| **n > 0) {
            let code = Code::from_u8(byte as u8);
            match out.iter_mut().find(|(c, _)| *c == code) {
                Some((_, total)) => *total += n,
                None => out.push((code, n)),
            }
        }
        out
    }
}

/// Latency is timed on one call in this many (counts are exact): reading
/// the clock twice per call would cost more than the rest of the
/// bookkeeping on a pipelined connection.
const LATENCY_SAMPLE_EVERY: u32 = 8;
const TIME_EVERY_CALL_UNTIL: u32 = 1024;

/// One thread's counters, indexed by method id.
pub(crate) struct ThreadStats {
    slots: Mutex<Vec<Slot>>,
    /// Handlers started, per method id (only this thread writes them):
    /// started minus answered, summed over threads, is the calls in flight.
    started: Vec<AtomicU64>,
    /// Calls seen by this thread, for latency sampling. Only the owning
    /// thread writes it, so a plain load and store suffice.
    seen: AtomicU32,
}

impl ThreadStats {
    /// A handler of `method_id` starts: counts it in flight and returns the
    /// start time if its latency is sampled.
    pub(crate) fn begin(&self, method_id: usize) -> Option<Instant> {
        if let Some(started) = self.started.get(method_id) {
            // Owner-only counter: a plain load and store, no locked RMW.
            started.store(started.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        self.start_timer()
    }

    /// The start time of a call whose latency is sampled, or `None`.
    fn start_timer(&self) -> Option<Instant> {
        let n = self.seen.load(Ordering::Relaxed).wrapping_add(1);
        self.seen.store(n, Ordering::Relaxed);
        // Every call is timed until the thread has seen a few, so a quiet
        // server's table is not empty; then one in LATENCY_SAMPLE_EVERY.
        (n <= TIME_EVERY_CALL_UNTIL || n.is_multiple_of(LATENCY_SAMPLE_EVERY)).then(Instant::now)
    }

    /// Counts one finished call of `method_id` (answered with `code`), and
    /// its latency when it was sampled (`started` from [`begin`](Self::begin)).
    pub(crate) fn record(&self, method_id: usize, code: Code, started: Option<Instant>) {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get_mut(method_id) {
            slot.calls += 1;
            if code != Code::Ok {
                slot.errors += 1;
                slot.by_code[(code as usize).min(CODES - 1)] += 1;
            }
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
        let stats = Arc::new(ThreadStats {
            slots: Mutex::new(vec![Slot::new(); self.names.len()]),
            started: self.names.iter().map(|_| AtomicU64::new(0)).collect(),
            seen: AtomicU32::new(0),
        });
        self.threads.lock().push(stats.clone());
        stats
    }

    /// Every thread's figures merged: per method its names, the merged slot
    /// (with the latency histogram) and the handlers running now.
    pub(crate) fn merged(&self) -> Vec<(&'static str, &'static str, Slot, u64)> {
        let mut merged: Vec<Slot> = self.names.iter().map(|_| Slot::new()).collect();
        let mut started = vec![0u64; self.names.len()];
        for thread in self.threads.lock().iter() {
            // Started before answered: a call cannot be counted answered
            // and not started, so in flight never goes below zero.
            for (into, from) in started.iter_mut().zip(&thread.started) {
                *into += from.load(Ordering::Relaxed);
            }
            for (into, from) in merged.iter_mut().zip(thread.slots.lock().iter()) {
                into.add(from);
            }
        }
        self.names
            .iter()
            .zip(merged)
            .zip(started)
            .map(|((&(service, method), slot), started)| {
                let in_flight = started.saturating_sub(slot.calls);
                (service, method, slot, in_flight)
            })
            .collect()
    }

    /// Every thread's figures merged, one entry per method.
    pub(crate) fn snapshot(&self) -> Metrics {
        let methods = self
            .merged()
            .into_iter()
            .map(|(service, method, s, in_flight)| MethodMetrics {
                service,
                method,
                calls: s.calls,
                errors: s.errors,
                errors_by_code: s.errors_by_code(),
                in_flight,
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
#[non_exhaustive]
pub struct MethodMetrics {
    /// The service's wire name.
    pub service: &'static str,
    /// The method's wire name.
    pub method: &'static str,
    /// Calls answered (exact count).
    pub calls: u64,
    /// Calls answered with a status other than `Ok`.
    pub errors: u64,
    /// The failed calls by status code (codes that occurred only).
    pub errors_by_code: Vec<(Code, u64)>,
    /// Handlers of this method running now (a blocking call still queued
    /// for a worker is not counted).
    pub in_flight: u64,
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
#[non_exhaustive]
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

/// One method's periodic log line: totals since start, what changed since
/// the previous line (`before`, `interval` ago) and latency since start.
pub(crate) fn log_line(
    now: &MethodMetrics,
    before: Option<&MethodMetrics>,
    interval: Duration,
) -> String {
    let (calls_before, errors_before) = before.map_or((0, 0), |b| (b.calls, b.errors));
    let new_calls = now.calls.saturating_sub(calls_before);
    let rate = new_calls as f64 / interval.as_secs_f64().max(1e-3);
    format!(
        "metrics {}.{} calls={} (+{new_calls}, {rate:.1}/s) errors={} (+{}) in_flight={} p50_us={} p99_us={} max_us={}",
        now.service,
        now.method,
        now.calls,
        now.errors,
        now.errors.saturating_sub(errors_before),
        now.in_flight,
        now.p50_us,
        now.p99_us,
        now.max_us
    )
}
