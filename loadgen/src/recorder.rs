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
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;

/// The send lag an open-loop run may show and still hold its target (p99).
pub const LAG_LIMIT: Duration = Duration::from_millis(1);

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

/// One answered call, as the engine hands it over.
#[derive(Debug, Clone)]
pub struct Done {
    pub conn: usize,
    pub intended: Instant,
    pub sent: Instant,
    pub at: Instant,
    /// `None` for success, else the error's name.
    pub error: Option<String>,
}

/// Histograms of one sending thread.
pub struct Histograms {
    /// From the intended send time to completion (what a user waits).
    pub latency: Histogram<u64>,
    /// From the actual send to completion (excludes the sender's own lag and
    /// in-flight-cap waits).
    pub service: Histogram<u64>,
    /// `latency` of the successful calls only (goodput under overload,
    /// when refusals are fast errors).
    pub ok_latency: Histogram<u64>,
}

pub struct Recorder {
    /// Calls whose intended send time is in `measure_from..measure_to`
    /// are measured.
    pub measure_from: Instant,
    pub measure_to: Instant,
    pub hist: Mutex<Histograms>,
    /// Send lag (actual minus intended send time) of measured calls, in µs;
    /// written by the sending thread only.
    pub lag: Mutex<Histogram<u64>>,
    /// Measured calls that completed (ok or not).
    pub completed: AtomicU64,
    pub errors: AtomicU64,
    pub errors_by_code: Mutex<BTreeMap<String, u64>>,
    /// Measured calls per connection index.
    pub per_conn: Vec<AtomicU64>,
    /// Every call sent, warm-up included (for the progress line).
    pub sent: AtomicU64,
    /// Measured calls that were sent before the window ended.
    pub sent_measured: AtomicU64,
    /// Calls (of any intended time) whose actual send fell in the window:
    /// the achieved rate.
    pub sent_in_window: AtomicU64,
    /// Measured calls sent but never answered before the run gave up.
    pub unanswered: AtomicU64,
    /// Measured calls that waited for a free in-flight slot (open loop).
    pub delayed: AtomicU64,
    /// Open loop: calls due in the window that never got a slot before it ended.
    pub unsent: AtomicU64,
    /// Of those, the ones due more than [`LAG_LIMIT`] before the window end.
    pub unsent_late: AtomicU64,
    pub in_flight: AtomicUsize,
    /// Set by the sender before it parks for a free slot.
    waiting: AtomicBool,
    sender: Thread,
}

impl Recorder {
    pub fn new(
        measure_from: Instant,
        measure_to: Instant,
        connections: usize,
        sender: Thread,
    ) -> &'static Recorder {
        Box::leak(Box::new(Recorder {
            measure_from,
            measure_to,
            lag: Mutex::new(new_histogram()),
            sent_measured: AtomicU64::new(0),
            sent_in_window: AtomicU64::new(0),
            unanswered: AtomicU64::new(0),
            hist: Mutex::new(Histograms {
                latency: new_histogram(),
                service: new_histogram(),
                ok_latency: new_histogram(),
            }),
            completed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            errors_by_code: Mutex::new(BTreeMap::new()),
            per_conn: (0..connections).map(|_| AtomicU64::new(0)).collect(),
            sent: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
            unsent: AtomicU64::new(0),
            unsent_late: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            waiting: AtomicBool::new(false),
            sender,
        }))
    }

    fn measured(&self, intended: Instant) -> bool {
        intended >= self.measure_from && intended < self.measure_to
    }

    /// Calls with these intended times left together at `at`.
    pub fn on_sent(&self, intended: &[Instant], at: Instant) {
        let n = intended.len();
        self.in_flight.fetch_add(n, Ordering::Relaxed);
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        if at >= self.measure_from && at < self.measure_to {
            self.sent_in_window.fetch_add(n as u64, Ordering::Relaxed);
        }
        let mut measured = 0;
        {
            let mut lag = self.lag.lock();
            for &t in intended.iter().filter(|&&t| self.measured(t)) {
                lag.saturating_record(micros(at.saturating_duration_since(t)));
                measured += 1;
            }
        }
        self.sent_measured.fetch_add(measured, Ordering::Relaxed);
    }

    /// Closed-loop calls, each sent at its intended time (no send lag),
    /// chained by completions recorded with or after them (see
    /// `tally`): `on_sent` for a batch of them, with one lock.
    pub fn on_sent_closed(&self, sent: &[Instant]) {
        self.in_flight.fetch_add(sent.len(), Ordering::Relaxed);
        let n = sent.len() as u64;
        self.sent.fetch_add(n, Ordering::Relaxed);
        let in_window = sent.iter().filter(|&&t| self.measured(t)).count() as u64;
        self.sent_in_window.fetch_add(in_window, Ordering::Relaxed);
        if in_window > 0 {
            let _ = self.lag.lock().record_n(micros(Duration::ZERO), in_window);
            self.sent_measured.fetch_add(in_window, Ordering::Relaxed);
        }
    }

    /// Calls due in the window that were never sent: each enters the
    /// latency histogram as `measure_to - intended`, a lower bound.
    /// Those due more than [`LAG_LIMIT`] before the window ended also count
    /// as `unsent_late`: a call due in the last instant of the window and
    /// not sent yet is no later than the send lag a held target allows.
    pub fn on_unsent(&self, intended: impl Iterator<Item = Instant>) {
        let end = self.measure_to;
        let (mut n, mut late) = (0, 0);
        let mut h = self.hist.lock();
        for t in intended.filter(|&t| self.measured(t)) {
            let waited = end.saturating_duration_since(t);
            h.latency.saturating_record(micros(waited));
            n += 1;
            late += u64::from(waited > LAG_LIMIT);
        }
        self.unsent.fetch_add(n, Ordering::Relaxed);
        self.unsent_late.fetch_add(late, Ordering::Relaxed);
    }

    /// A sent call still unanswered when the run gave up at `at`: it enters
    /// the histogram as `at - intended`, a lower bound of its latency.
    pub fn on_unanswered(&self, intended: Instant, at: Instant) {
        if self.measured(intended) {
            let us = micros(at.saturating_duration_since(intended));
            self.hist.lock().latency.saturating_record(us);
            self.unanswered.fetch_add(1, Ordering::Relaxed);
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// `n` calls whose intended times are not known here (the `Channel`
    /// holds them) were never answered; each enters with `lower_bound`.
    pub fn on_unanswered_n(&self, n: usize, lower_bound: std::time::Duration) {
        if n == 0 {
            return;
        }
        let us = micros(lower_bound);
        let _ = self
            .hist
            .lock()
            .latency
            .record_n(us.min(HIGHEST_US), n as u64);
        self.unanswered.fetch_add(n as u64, Ordering::Relaxed);
        self.in_flight.fetch_sub(n, Ordering::AcqRel);
    }

    /// Replies the engine decoded in one turn of its loop (one lock).
    pub fn on_done_batch(&self, done: &[Done]) {
        let mut completed = 0;
        {
            let mut h = self.hist.lock();
            for d in done.iter().filter(|d| self.measured(d.intended)) {
                let latency = micros(d.at.saturating_duration_since(d.intended));
                h.latency.saturating_record(latency);
                if d.error.is_none() {
                    h.ok_latency.saturating_record(latency);
                }
                h.service
                    .saturating_record(micros(d.at.saturating_duration_since(d.sent)));
                completed += 1;
                if let Some(c) = self.per_conn.get(d.conn) {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(code) = &d.error {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    *self.errors_by_code.lock().entry(code.clone()).or_insert(0) += 1;
                }
            }
        }
        self.completed.fetch_add(completed, Ordering::Relaxed);
        self.in_flight.fetch_sub(done.len(), Ordering::AcqRel);
        self.wake_sender();
    }

    /// Unparks the sender if it waits for a slot or for the drain.
    fn wake_sender(&self) {
        if self.waiting.swap(false, Ordering::AcqRel) {
            self.sender.unpark();
        }
    }

    /// Called exactly once per call when it completes.
    pub fn on_done(&self, conn: usize, intended: Instant, sent: Instant, outcome: Outcome) {
        let now = Instant::now();
        if self.measured(intended) {
            let latency = micros(now.saturating_duration_since(intended));
            let service = micros(now.saturating_duration_since(sent));
            {
                let mut h = self.hist.lock();
                h.latency.saturating_record(latency);
                h.service.saturating_record(service);
                if outcome == Outcome::Ok {
                    h.ok_latency.saturating_record(latency);
                }
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
        self.wake_sender();
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
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub latency: Histogram<u64>,
    pub service: Histogram<u64>,
    pub ok_latency: Histogram<u64>,
    pub lag: Histogram<u64>,
    pub sent_measured: u64,
    pub sent_in_window: u64,
    pub unanswered: u64,
    pub completed: u64,
    pub errors: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    pub per_conn: Vec<u64>,
    pub sent: u64,
    pub delayed: u64,
    pub unsent: u64,
    pub unsent_late: u64,
    pub in_flight: u64,
}

impl Snapshot {
    /// Nothing recorded yet, on `connections` connections.
    pub fn empty(connections: usize) -> Snapshot {
        Snapshot {
            latency: new_histogram(),
            service: new_histogram(),
            ok_latency: new_histogram(),
            lag: new_histogram(),
            sent_measured: 0,
            sent_in_window: 0,
            unanswered: 0,
            completed: 0,
            errors: 0,
            errors_by_code: BTreeMap::new(),
            per_conn: vec![0; connections],
            sent: 0,
            delayed: 0,
            unsent: 0,
            unsent_late: 0,
            in_flight: 0,
        }
    }
}

pub fn snapshot(recorders: &[&'static Recorder]) -> Snapshot {
    let connections = recorders.first().map_or(0, |r| r.per_conn.len());
    let mut s = Snapshot::empty(connections);
    for r in recorders {
        {
            let h = r.hist.lock();
            s.latency.add(&h.latency).expect("same bounds");
            s.service.add(&h.service).expect("same bounds");
            s.ok_latency.add(&h.ok_latency).expect("same bounds");
        }
        s.lag.add(&*r.lag.lock()).expect("same bounds");
        s.sent_measured += r.sent_measured.load(Ordering::Relaxed);
        s.sent_in_window += r.sent_in_window.load(Ordering::Relaxed);
        s.unanswered += r.unanswered.load(Ordering::Relaxed);
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
        s.unsent_late += r.unsent_late.load(Ordering::Relaxed);
        s.in_flight += r.in_flight.load(Ordering::Relaxed) as u64;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[test]
    fn unsent_and_unanswered_enter_the_histogram_as_lower_bounds() {
        let t0 = Instant::now();
        let end = t0 + Duration::from_millis(100);
        let r = Recorder::new(t0, end, 1, std::thread::current());
        // Due at t0 and t0+50ms, never sent: 100 and 50 ms until the end.
        r.on_unsent([t0, t0 + Duration::from_millis(50), end].into_iter());
        r.on_sent(&[t0], t0 + Duration::from_millis(2));
        r.on_unanswered(t0, t0 + Duration::from_secs(1));
        let s = snapshot(&[r]);
        assert_eq!((s.unsent, s.unanswered, s.sent_measured), (2, 1, 1));
        assert_eq!(s.completed, 0);
        assert_eq!(s.in_flight, 0);
        assert_eq!(s.latency.len(), 3);
        assert!(s.latency.max() >= 999_000, "{}", s.latency.max());
        assert!(s.latency.min() >= 49_900, "{}", s.latency.min());
        assert!((1990..=2010).contains(&s.lag.max()), "lag {}", s.lag.max());
    }

    #[test]
    fn only_calls_due_over_the_lag_limit_before_the_end_are_late() {
        let t0 = Instant::now();
        let end = t0 + Duration::from_millis(100);
        let r = Recorder::new(t0, end, 1, std::thread::current());
        let just_before = end - Duration::from_micros(200);
        r.on_unsent([t0, just_before].into_iter());
        let s = snapshot(&[r]);
        assert_eq!((s.unsent, s.unsent_late), (2, 1));
    }

    #[test]
    fn records_only_measured_calls_and_counts_errors() {
        let t0 = Instant::now();
        let r = Recorder::new(t0, far(), 2, std::thread::current());
        // Warm-up call: intended before measure_from.
        r.on_sent(&[Instant::now()], Instant::now());
        r.on_done(0, t0 - Duration::from_millis(1), t0, Outcome::Ok);
        r.on_sent(&[Instant::now()], Instant::now());
        r.on_done(1, t0, t0, Outcome::Ok);
        r.on_sent(&[Instant::now()], Instant::now());
        r.on_done(1, t0, t0, Outcome::Err("Unavailable".into()));
        let s = snapshot(&[r]);
        assert_eq!(s.sent, 3);
        assert_eq!(s.completed, 2);
        assert_eq!(s.errors, 1);
        assert_eq!(s.errors_by_code.get("Unavailable"), Some(&1));
        assert_eq!(s.per_conn, vec![0, 2]);
        assert_eq!(s.in_flight, 0);
        assert_eq!(s.latency.len(), 2);
        assert_eq!(s.ok_latency.len(), 1, "only the successful call");
    }

    #[test]
    fn latency_counts_from_intended_time() {
        let now = Instant::now();
        let intended = now - Duration::from_millis(50);
        let r = Recorder::new(intended, far(), 1, std::thread::current());
        r.on_sent(&[Instant::now()], Instant::now());
        r.on_done(0, intended, now, Outcome::Ok);
        let s = snapshot(&[r]);
        assert!(s.latency.max() >= 50_000, "latency {}", s.latency.max());
        assert!(s.service.max() < 50_000, "service {}", s.service.max());
    }

    #[test]
    fn wait_for_slot_wakes_on_completion() {
        let r = Recorder::new(Instant::now(), far(), 1, std::thread::current());
        r.on_sent(&[Instant::now()], Instant::now());
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
