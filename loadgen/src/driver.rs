//! The sending loops, shared by every target.
//!
//! Open loop: thread `t` of `T` owns the schedule `start + (k·T + t)/qps`;
//! every call whose time has come is sent (in a burst if the thread fell
//! behind) with that *intended* time, and its latency is measured from it.
//! The thread sleeps until the next slot with the kernel's timer slack set to
//! 1 ns, so it wakes within microseconds rather than the default 50 µs.
//!
//! Closed loop: each thread keeps its share of `--in-flight` calls
//! outstanding, sending the next as soon as one completes; latency is
//! measured from the actual send.

use std::time::{Duration, Instant};

use crate::recorder::{Outcome, Recorder};

/// Something that can start a call on connection `conn` without blocking
/// and report its outcome exactly once, from any thread.
pub trait Target: Send + Sync + 'static {
    fn connections(&self) -> usize;
    fn call(&self, conn: usize, done: impl FnOnce(Outcome) + Send + 'static);
}

/// One sending thread's share of the load.
pub struct Plan {
    pub thread: usize,
    pub threads: usize,
    pub start: Instant,
    /// End of the measured window (warm-up + duration after `start`).
    pub end: Instant,
    /// Per-thread rate; `None` = closed loop.
    pub qps: Option<f64>,
    /// This thread's share of the in-flight cap.
    pub cap: usize,
}

/// Runs one sender until `plan.end`, then waits for its calls to finish.
pub fn run_sender<T: Target>(target: &T, plan: &Plan, rec: &'static Recorder, drain: Duration) {
    set_timer_slack_ns(1);
    let connections = target.connections();
    // Spread the threads' first connections so they do not all start on 0.
    let mut conn = plan.thread % connections;
    let mut send = |intended: Instant| {
        let c = conn;
        conn += 1;
        if conn == connections {
            conn = 0;
        }
        rec.on_send();
        let sent = Instant::now();
        target.call(c, move |outcome| rec.on_done(c, intended, sent, outcome));
    };
    match plan.qps {
        Some(qps) => open_loop(plan, qps, rec, &mut send),
        None => closed_loop(plan, rec, &mut send),
    }
    rec.drain(Instant::now() + drain);
}

fn open_loop(plan: &Plan, qps: f64, rec: &Recorder, send: &mut impl FnMut(Instant)) {
    let interval_ns = 1e9 / qps;
    // Offset thread t by t/T of an interval so threads interleave.
    let offset_ns = interval_ns * plan.thread as f64 / plan.threads as f64;
    let mut k: u64 = 0;
    loop {
        let intended =
            plan.start + Duration::from_nanos((offset_ns + interval_ns * k as f64) as u64);
        if intended >= plan.end {
            break;
        }
        if intended > Instant::now() {
            sleep_until(intended);
            continue;
        }
        if !rec.wait_for_slot(plan.cap, plan.end) {
            if intended >= rec.measure_from {
                rec.delayed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            if Instant::now() >= plan.end {
                // Due calls that never got a slot: reported, not dropped.
                let window_ns = (plan.end - plan.start).as_nanos() as f64 - offset_ns;
                let scheduled = (window_ns / interval_ns).ceil().max(0.0) as u64;
                rec.unsent.fetch_add(
                    scheduled.saturating_sub(k),
                    std::sync::atomic::Ordering::Relaxed,
                );
                break;
            }
        }
        send(intended);
        k += 1;
    }
}

fn closed_loop(plan: &Plan, rec: &Recorder, send: &mut impl FnMut(Instant)) {
    loop {
        rec.wait_for_slot(plan.cap, plan.end);
        let now = Instant::now();
        if now >= plan.end {
            break;
        }
        send(now);
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        let gap = t - now;
        if gap > Duration::from_micros(20) {
            std::thread::sleep(gap);
        } else {
            std::thread::yield_now();
        }
    }
}

/// Makes `sleep` wake when asked instead of up to 50 µs late (Linux).
fn set_timer_slack_ns(ns: u64) {
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// Completes each call after a fixed delay on a helper thread.
    struct Fake {
        delay: Duration,
        calls: AtomicUsize,
        pending: Mutex<Vec<std::thread::JoinHandle<()>>>,
    }

    impl Target for Fake {
        fn connections(&self) -> usize {
            3
        }
        fn call(&self, _conn: usize, done: impl FnOnce(Outcome) + Send + 'static) {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let delay = self.delay;
            let h = std::thread::spawn(move || {
                std::thread::sleep(delay);
                done(Outcome::Ok)
            });
            self.pending.lock().unwrap().push(h);
        }
    }

    fn fake(delay_ms: u64) -> Fake {
        Fake {
            delay: Duration::from_millis(delay_ms),
            calls: AtomicUsize::new(0),
            pending: Mutex::new(Vec::new()),
        }
    }

    #[test]
    fn open_loop_sends_on_schedule_and_spreads_connections() {
        let target = fake(1);
        let start = Instant::now();
        let plan = Plan {
            thread: 0,
            threads: 1,
            start,
            end: start + Duration::from_millis(200),
            qps: Some(200.0),
            cap: 1000,
        };
        let rec = Recorder::new(start, 3, std::thread::current());
        run_sender(&target, &plan, rec, Duration::from_secs(5));
        let s = crate::recorder::snapshot(&[rec]);
        // 200 ms at 200/s = 40 intended sends, all due inside the window.
        assert_eq!(s.sent, 40);
        assert_eq!(s.completed, 40);
        assert_eq!(s.in_flight, 0);
        let spread: Vec<u64> = s.per_conn.clone();
        assert!(spread.iter().all(|&n| n >= 13), "{spread:?}");
    }

    #[test]
    fn open_loop_counts_delay_from_intended_time_when_capped() {
        // One slot, calls take 20 ms, schedule asks for one every 2 ms:
        // most requests wait, and their latency includes the wait.
        let target = fake(20);
        let start = Instant::now();
        let plan = Plan {
            thread: 0,
            threads: 1,
            start,
            end: start + Duration::from_millis(100),
            qps: Some(500.0),
            cap: 1,
        };
        let rec = Recorder::new(start, 3, std::thread::current());
        run_sender(&target, &plan, rec, Duration::from_secs(5));
        let s = crate::recorder::snapshot(&[rec]);
        assert!(s.delayed > 0);
        assert!(s.completed >= 2);
        // The last sent call was intended early but sent late: its latency
        // from the intended time is far above the 20 ms service time.
        assert!(s.latency.max() > 40_000, "max {}", s.latency.max());
        assert!(s.service.max() < 40_000, "service max {}", s.service.max());
    }

    #[test]
    fn closed_loop_keeps_cap_outstanding() {
        let target = fake(10);
        let start = Instant::now();
        let plan = Plan {
            thread: 0,
            threads: 1,
            start,
            end: start + Duration::from_millis(100),
            qps: None,
            cap: 4,
        };
        let rec = Recorder::new(start, 3, std::thread::current());
        run_sender(&target, &plan, rec, Duration::from_secs(5));
        let s = crate::recorder::snapshot(&[rec]);
        // ~10 rounds of 4 calls; allow slow CI machines a wide margin.
        assert!(s.sent >= 8 && s.sent <= 48, "sent {}", s.sent);
        assert_eq!(s.completed, s.sent);
        assert_eq!(s.in_flight, 0);
        for h in target.pending.lock().unwrap().drain(..) {
            h.join().unwrap();
        }
    }
}
