//! Per-sending-thread measurements, written by call completions.
//!
//! A completion runs on the client's I/O thread (or a tokio worker), not on
//! the thread that sent the call, so each sending thread owns one
//! `Recorder` that its completions lock briefly; the progress printer and the
//! final report merge all of them. Recorders are leaked (`&'static`) so a
//! completion closure carries a plain reference, not a reference count.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::Instant;

use hdrhistogram::Histogram;
use parking_lot::Mutex;

/// Latencies are recorded in microseconds, 3 significant digits, up to 10 min.
pub const HIGHEST_US: u64 = 600_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("valid histogram bounds")
}

/// How a call ended: `Ok`, or the status code's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Err(String),
}

/// Histograms of one sending thread.
pub struct Histograms {
    /// From the intended send time to completion (what a user waits).
    pub latency: Histogram<u64>,
    /// From the actual send to completion (excludes the sender's own lag and
    /// in-flight-cap waits).
    pub service: Histogram<u64>,
}

pub struct Recorder {
    /// Calls whose intended send time is at or after this are measured.
    pub measure_from: Instant,
    pub hist: Mutex<Histograms>,
    /// Measured calls that completed (ok or not).
    pub completed: AtomicU64,
    pub errors: AtomicU64,
    pub errors_by_code: Mutex<BTreeMap<String, u64>>,
    /// Measured calls per connection index.
    pub per_conn: Vec<AtomicU64>,
    /// Every call sent, warm-up included.
    pub sent: AtomicU64,
    /// Measured calls that waited for a free in-flight slot (open loop).
    pub delayed: AtomicU64,
    /// Open loop: calls due in the window that never got a slot before it ended.
    pub unsent: AtomicU64,
    pub in_flight: AtomicUsize,
    /// Set by the sender before it parks for a free slot.
    waiting: AtomicBool,
    sender: Thread,
}

impl Recorder {
    pub fn new(measure_from: Instant, connections: usize, sender: Thread) -> &'static Recorder {
        Box::leak(Box::new(Recorder {
            measure_from,
            hist: Mutex::new(Histograms {
                latency: new_histogram(),
                service: new_histogram(),
            }),
            completed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            errors_by_code: Mutex::new(BTreeMap::new()),
            per_conn: (0..connections).map(|_| AtomicU64::new(0)).collect(),
            sent: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
            unsent: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            waiting: AtomicBool::new(false),
            sender,
        }))
    }

    /// Called by the sender just before it hands a call to the client.
    pub fn on_send(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` calls were sent (the raw client sends in batches).
    pub fn on_send_n(&self, n: usize) {
        self.in_flight.fetch_add(n, Ordering::Relaxed);
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Successful replies on connection `conn` that all arrived at `now`,
    /// one per send time in `sent` (the raw client: one clock read and one
    /// lock per read batch instead of per call).
    pub fn on_ok_batch(&self, conn: usize, sent: &[Instant], now: Instant) {
        let measured = sent.iter().filter(|&&t| t >= self.measure_from);
        let mut count = 0u64;
        {
            let mut h = self.hist.lock();
            for &t in measured {
                let us = micros(now.saturating_duration_since(t));
                h.latency.saturating_record(us);
                h.service.saturating_record(us);
                count += 1;
            }
        }
        self.completed.fetch_add(count, Ordering::Relaxed);
        if let Some(c) = self.per_conn.get(conn) {
            c.fetch_add(count, Ordering::Relaxed);
        }
        self.in_flight.fetch_sub(sent.len(), Ordering::AcqRel);
    }

    /// Called exactly once per call when it completes.
    pub fn on_done(&self, conn: usize, intended: Instant, sent: Instant, outcome: Outcome) {
        let now = Instant::now();
        if intended >= self.measure_from {
            let latency = micros(now.saturating_duration_since(intended));
            let service = micros(now.saturating_duration_since(sent));
            {
                let mut h = self.hist.lock();
                h.latency.saturating_record(latency);
                h.service.saturating_record(service);
            }
            self.completed.fetch_add(1, Ordering::Relaxed);
            if let Some(c) = self.per_conn.get(conn) {
                c.fetch_add(1, Ordering::Relaxed);
            }
            if let Outcome::Err(code) = outcome {
                self.errors.fetch_add(1, Ordering::Relaxed);
                *self.errors_by_code.lock().entry(code).or_insert(0) += 1;
            }
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        if self.waiting.swap(false, Ordering::AcqRel) {
            self.sender.unpark();
        }
    }

    /// Blocks the sender until fewer than `cap` calls are outstanding (or
    /// `deadline` passes). Returns false if it had to wait.
    pub fn wait_for_slot(&self, cap: usize, deadline: Instant) -> bool {
        if self.in_flight.load(Ordering::Acquire) < cap {
            return true;
        }
        while self.in_flight.load(Ordering::Acquire) >= cap {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            self.waiting.store(true, Ordering::Release);
            // Re-check after announcing, so a completion in between is seen.
            if self.in_flight.load(Ordering::Acquire) < cap {
                self.waiting.store(false, Ordering::Release);
                break;
            }
            std::thread::park_timeout((deadline - now).min(std::time::Duration::from_millis(5)));
        }
        false
    }

    /// Waits until every call has completed, or `deadline`.
    pub fn drain(&self, deadline: Instant) {
        while self.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            self.waiting.store(true, Ordering::Release);
            if self.in_flight.load(Ordering::Acquire) == 0 {
                break;
            }
            std::thread::park_timeout(std::time::Duration::from_millis(5));
        }
    }
}

/// Microseconds, at least 1 (the histogram's lowest value).
pub fn micros(d: std::time::Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

/// Sums of all recorders at one moment.
#[derive(Debug)]
pub struct Snapshot {
    pub latency: Histogram<u64>,
    pub service: Histogram<u64>,
    pub completed: u64,
    pub errors: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    pub per_conn: Vec<u64>,
    pub sent: u64,
    pub delayed: u64,
    pub unsent: u64,
    pub in_flight: u64,
}

pub fn snapshot(recorders: &[&'static Recorder]) -> Snapshot {
    let connections = recorders.first().map_or(0, |r| r.per_conn.len());
    let mut s = Snapshot {
        latency: new_histogram(),
        service: new_histogram(),
        completed: 0,
        errors: 0,
        errors_by_code: BTreeMap::new(),
        per_conn: vec![0; connections],
        sent: 0,
        delayed: 0,
        unsent: 0,
        in_flight: 0,
    };
    for r in recorders {
        {
            let h = r.hist.lock();
            s.latency.add(&h.latency).expect("same bounds");
            s.service.add(&h.service).expect("same bounds");
        }
        s.completed += r.completed.load(Ordering::Relaxed);
        s.errors += r.errors.load(Ordering::Relaxed);
        for (code, n) in r.errors_by_code.lock().iter() {
            *s.errors_by_code.entry(code.clone()).or_insert(0) += n;
        }
        for (i, c) in r.per_conn.iter().enumerate() {
            s.per_conn[i] += c.load(Ordering::Relaxed);
        }
        s.sent += r.sent.load(Ordering::Relaxed);
        s.delayed += r.delayed.load(Ordering::Relaxed);
        s.unsent += r.unsent.load(Ordering::Relaxed);
        s.in_flight += r.in_flight.load(Ordering::Relaxed) as u64;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn records_only_measured_calls_and_counts_errors() {
        let t0 = Instant::now();
        let r = Recorder::new(t0, 2, std::thread::current());
        // Warm-up call: intended before measure_from.
        r.on_send();
        r.on_done(0, t0 - Duration::from_millis(1), t0, Outcome::Ok);
        r.on_send();
        r.on_done(1, t0, t0, Outcome::Ok);
        r.on_send();
        r.on_done(1, t0, t0, Outcome::Err("Unavailable".into()));
        let s = snapshot(&[r]);
        assert_eq!(s.sent, 3);
        assert_eq!(s.completed, 2);
        assert_eq!(s.errors, 1);
        assert_eq!(s.errors_by_code.get("Unavailable"), Some(&1));
        assert_eq!(s.per_conn, vec![0, 2]);
        assert_eq!(s.in_flight, 0);
        assert_eq!(s.latency.len(), 2);
    }

    #[test]
    fn latency_counts_from_intended_time() {
        let now = Instant::now();
        let intended = now - Duration::from_millis(50);
        let r = Recorder::new(intended, 1, std::thread::current());
        r.on_send();
        r.on_done(0, intended, now, Outcome::Ok);
        let s = snapshot(&[r]);
        assert!(s.latency.max() >= 50_000, "latency {}", s.latency.max());
        assert!(s.service.max() < 50_000, "service {}", s.service.max());
    }

    #[test]
    fn wait_for_slot_wakes_on_completion() {
        let r = Recorder::new(Instant::now(), 1, std::thread::current());
        r.on_send();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let now = Instant::now();
            r.on_done(0, now, now, Outcome::Ok);
        });
        let free = r.wait_for_slot(1, Instant::now() + Duration::from_secs(10));
        assert!(!free, "had to wait");
        assert_eq!(r.in_flight.load(Ordering::Relaxed), 0);
        t.join().unwrap();
    }
}
