//! Overload protection: a concurrency limit per method. A call over its
//! method's limit is answered at once with `Overloaded` and its handler
//! never runs, so under overload the surplus is refused fast instead of
//! queueing (and every call's latency growing with the queue).
//!
//! A method's limit is fixed (`max_concurrency`) or, for a method of a
//! blocking service with `concurrency_limiter = auto`, adaptive (see
//! `adaptive`): calls of blocking services queue for the worker pool, and
//! that queue is what the limit keeps short. An inline handler runs on its
//! reactor thread, so at most one call per reactor runs at a time anyway;
//! only a fixed limit applies to it.
//!
//! The hot path is an atomic add and compare on admission and an atomic
//! subtract on completion (plus, for adaptive limits, a few relaxed adds
//! into the sample window); nothing allocates, and a method without any
//! limit costs one branch.

mod adaptive;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub(crate) use crate::options::{ConcurrencyLimiter, MaxConcurrency};

use super::table::{Entry, ServiceTable};
use adaptive::{AutoLimit, Sample, INITIAL_LIMIT};

/// Refusals of one method are logged at most this often (milliseconds).
const LOG_EVERY_MS: u64 = 10_000;

/// A method's limit and the calls it holds.
#[derive(Debug)]
struct MethodLimit {
    service: &'static str,
    method: &'static str,
    in_flight: AtomicU32,
    limit: AtomicU32,
    refused: AtomicU64,
    /// Milliseconds since the epoch of the last refusal logged, plus one.
    logged_at_ms: AtomicU64,
    auto: Option<AutoLimit>,
    epoch: Instant,
}

impl MethodLimit {
    fn since_epoch_us(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_micros() as u64
    }

    /// Counts a refusal and logs it, at most once per [`LOG_EVERY_MS`].
    fn refuse(&self, now: Instant) {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let now_ms = self.since_epoch_us(now) / 1000 + 1;
        let last = self.logged_at_ms.load(Ordering::Relaxed);
        if (last == 0 || now_ms >= last + LOG_EVERY_MS)
            && self
                .logged_at_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                service = self.service,
                method = self.method,
                limit = self.limit.load(Ordering::Relaxed),
                refused_so_far = refused,
                "over the concurrency limit: calls answered Overloaded"
            );
        }
    }
}

/// What admission decided for a call.
#[derive(Debug)]
pub(crate) enum Admission {
    /// The method has no limit.
    Unlimited,
    /// Admitted: hold the permit until the reply is written.
    Admitted(Permit),
    /// Over the limit: answer `Overloaded`, do not run the handler.
    Refused,
}

/// A call admitted under its method's limit; dropping it releases the slot.
#[derive(Debug)]
pub(crate) struct Permit {
    method: Arc<MethodLimit>,
    admitted: Instant,
}

impl Permit {
    /// When the call was admitted.
    pub(crate) fn admitted(&self) -> Instant {
        self.admitted
    }

    /// The handler, started at `started`, has run (`ok`: it succeeded):
    /// feeds the adaptive limit, then releases the slot.
    pub(crate) fn finish(self, ok: bool, started: Instant) {
        if let Some(auto) = &self.method.auto {
            let now = Instant::now();
            let micros = |since: Instant| now.saturating_duration_since(since).as_micros() as u64;
            let sample = Sample {
                ok,
                latency_us: micros(self.admitted).max(1),
                service_us: micros(started).max(1),
            };
            let now_us = self.method.since_epoch_us(now);
            if let Some(limit) = auto.sample(now_us, sample) {
                let old = self.method.limit.swap(limit, Ordering::Relaxed);
                if old != limit {
                    tracing::debug!(
                        service = self.method.service,
                        method = self.method.method,
                        old,
                        limit,
                        "adaptive concurrency limit"
                    );
                }
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.method.in_flight.fetch_sub(1, Ordering::Release);
    }
}

/// A method's limit as [`ServerHandle::concurrency`](super::ServerHandle::concurrency)
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MethodConcurrency {
    /// The service's wire name.
    pub service: &'static str,
    /// The method.
    pub method: &'static str,
    /// Its current limit (`max_concurrency`, or the adaptive one).
    pub limit: u32,
    /// Whether the limit adapts (`concurrency_limiter = auto`).
    pub adaptive: bool,
    /// Calls admitted and not finished yet.
    pub in_flight: u32,
    /// Calls refused with `Overloaded` since the server started.
    pub refused: u64,
}

/// Every method's limit, indexed by metrics method id (`None`: no limit).
#[derive(Debug, Default)]
pub(crate) struct Limits {
    by_method: Box<[Option<Arc<MethodLimit>>]>,
    /// False when no method has a limit: admission is one branch.
    any: bool,
}

impl Limits {
    /// The limits `mode` and `fixed` give `table`'s methods; an adaptive
    /// limit never falls below `floor` (twice the worker threads: calls that
    /// find a free worker, or one a handler time away, are never refused).
    pub(crate) fn new(
        table: &ServiceTable,
        mode: ConcurrencyLimiter,
        fixed: &MaxConcurrency,
        floor: u32,
    ) -> Limits {
        let epoch = Instant::now();
        let names = table.method_names();
        for (service, method, _) in &fixed.methods {
            if !names.iter().any(|(s, m)| s == service && m == method) {
                tracing::warn!(
                    "max_concurrency names {service}.{method}, which this server does not publish"
                );
            }
        }
        let by_method: Box<[_]> = names
            .iter()
            .map(|&(service, method)| {
                let blocking = table.get(service.as_bytes()).is_some_and(|e| e.blocking);
                let (limit, auto) = match fixed.for_method(service, method) {
                    Some(limit) => (limit, None),
                    None if blocking && mode == ConcurrencyLimiter::Auto => {
                        (INITIAL_LIMIT.max(floor), Some(AutoLimit::new(floor.max(1))))
                    }
                    None => return None,
                };
                Some(Arc::new(MethodLimit {
                    service,
                    method,
                    in_flight: AtomicU32::new(0),
                    limit: AtomicU32::new(limit),
                    refused: AtomicU64::new(0),
                    logged_at_ms: AtomicU64::new(0),
                    auto,
                    epoch,
                }))
            })
            .collect();
        let any = by_method.iter().any(Option::is_some);
        Limits { by_method, any }
    }

    /// Admits a call of `entry`'s `method` arriving at `now`, or refuses it.
    pub(crate) fn admit(&self, entry: &Entry, method: &[u8], now: Instant) -> Admission {
        if !self.any {
            return Admission::Unlimited;
        }
        let Some(limited) = entry
            .method_id(method)
            .and_then(|id| self.by_method.get(id))
            .and_then(Option::as_ref)
        else {
            return Admission::Unlimited;
        };
        let running = limited.in_flight.fetch_add(1, Ordering::Acquire) + 1;
        if running > limited.limit.load(Ordering::Relaxed) {
            limited.in_flight.fetch_sub(1, Ordering::Release);
            limited.refuse(now);
            return Admission::Refused;
        }
        Admission::Admitted(Permit {
            method: limited.clone(),
            admitted: now,
        })
    }

    /// Every limited method's limit and counts.
    pub(crate) fn snapshot(&self) -> Vec<MethodConcurrency> {
        self.by_method
            .iter()
            .flatten()
            .map(|m| MethodConcurrency {
                service: m.service,
                method: m.method,
                limit: m.limit.load(Ordering::Relaxed),
                adaptive: m.auto.is_some(),
                in_flight: m.in_flight.load(Ordering::Relaxed),
                refused: m.refused.load(Ordering::Relaxed),
            })
            .collect()
    }
}
