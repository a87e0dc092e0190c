//! `--client channel`: the sending loops that drive the framework's own
//! `Channel`, whose I/O thread owns the sockets (so the mio engine in
//! `crate::engine` cannot); the accounting is the engine's.
//!
//! Open loop: the thread follows its [`Schedule`]; every call whose time has
//! come is sent (in a burst if the thread fell behind) with that *intended*
//! time, its send lag recorded, and its latency measured from it. Calls
//! still due when the window ends are counted unsent. The thread sleeps
//! until the next slot with its timer slack set to 1 ns.
//!
//! Closed loop: each thread starts its share of `--in-flight` calls, and
//! each completion starts the next call itself, on the thread that saw the
//! reply (the Channel's I/O thread), until the window ends — as the engine
//! refills a connection's window on the thread that reads its replies, so
//! no hand-off to another thread is measured. Latency is measured from the
//! actual send; completions are recorded in batches, as the engine's are
//! (`tally`).
//!
//! The window is the thread's share of `--in-flight` over all its
//! connections (the `Channel` picks the connection of each call).

use std::time::{Duration, Instant};

use crate::recorder::{Outcome, Recorder};
use crate::schedule::{set_timer_slack_ns, Schedule};
use crate::tally;

/// Something that can start a call on connection `conn` without blocking
/// and report its outcome exactly once, from any thread.
pub trait Target: Send + Sync + 'static {
    fn connections(&self) -> usize;
    fn call(&self, conn: usize, done: impl FnOnce(Outcome) + Send + 'static);
}

/// One sending thread's share of the load.
pub struct Plan {
    pub thread: usize,
    pub start: Instant,
    /// End of the measured window (warm-up + duration after `start`).
    pub end: Instant,
    /// `None` = closed loop.
    pub schedule: Option<Schedule>,
    /// This thread's share of the in-flight cap.
    pub cap: usize,
}

/// Runs one sender until `plan.end`, then waits for its calls to finish;
/// calls still outstanding after `drain` are counted unanswered.
pub fn run_sender<T: Target>(
    target: &'static T,
    plan: &Plan,
    rec: &'static Recorder,
    drain: Duration,
) {
    set_timer_slack_ns(1);
    let connections = target.connections();
    // Spread the threads' first connections so they do not all start on 0.
    let mut conn = plan.thread % connections;
    let mut send = |intended: Option<Instant>| {
        let c = conn;
        conn = (conn + 1) % connections;
        let sent = Instant::now();
        let intended = intended.unwrap_or(sent);
        rec.on_sent(&[intended], sent);
        target.call(c, move |outcome| rec.on_done(c, intended, sent, outcome));
    };
    match plan.schedule {
        Some(schedule) => open_loop(plan, schedule, rec, &mut send),
        None => {
            for i in 0..plan.cap {
                chain(target, (plan.thread + i) % connections, plan.end, rec);
            }
            sleep_until(plan.end);
        }
    }
    let give_up = Instant::now() + drain;
    rec.drain(give_up);
    // The Channel enforces each call's deadline, so this is rare. The calls'
    // intended times are inside their closures; each was sent before the
    // window ended, so it has waited at least until now since then.
    let left = rec.in_flight.load(std::sync::atomic::Ordering::Acquire);
    rec.on_unanswered_n(left, Instant::now().saturating_duration_since(plan.end));
}

fn open_loop(
    plan: &Plan,
    schedule: Schedule,
    rec: &Recorder,
    send: &mut impl FnMut(Option<Instant>),
) {
    let mut k: u64 = 0;
    loop {
        let intended = schedule.at(k);
        if intended >= plan.end {
            return;
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
                // Due calls that never got a slot: counted, not dropped.
                rec.on_unsent(schedule.unsent(k, plan.end));
                return;
            }
        }
        send(Some(intended));
        k += 1;
    }
}

/// `--client blocking`: until `plan.end`, one blocking call at a time on
/// this thread's connections in turn (closed loop; latency from the send).
pub fn run_blocking(
    plan: &Plan,
    rec: &'static Recorder,
    connections: usize,
    call: impl Fn(usize) -> Outcome,
) {
    let mut conn = plan.thread % connections;
    while Instant::now() < plan.end {
        let sent = Instant::now();
        rec.on_sent(&[sent], sent);
        let outcome = call(conn);
        rec.on_done(conn, sent, sent, outcome);
        conn = (conn + 1) % connections;
    }
}

/// Starts a closed-loop chain on `conn`: each call's completion sends the
/// next, until `end`.
fn chain<T: Target>(target: &'static T, conn: usize, end: Instant, rec: &'static Recorder) {
    let sent = Instant::now();
    if sent >= end {
        return;
    }
    rec.on_sent(&[sent], sent);
    chain_from(target, conn, end, rec, sent);
}

/// Sends the call of a chain sent at `sent`. Its completion is filed in
/// its thread's tally (recorded in batches, as the engine records, see
/// `tally`) and sends the next call at once, with the completion's time
/// as its send time (one clock read for both).
fn chain_from<T: Target>(
    target: &'static T,
    conn: usize,
    end: Instant,
    rec: &'static Recorder,
    sent: Instant,
) {
    target.call(conn, move |outcome| {
        let at = Instant::now();
        let next = (at < end).then_some(at);
        tally::completed(rec, conn, sent, at, outcome, next);
        if let Some(next) = next {
            chain_from(target, conn, end, rec, next);
        }
    });
}

fn sleep_until(t: Instant) {
    while Instant::now() < t {
        let gap = t - Instant::now();
        if gap > Duration::from_micros(20) {
            std::thread::sleep(gap);
        } else {
            std::thread::yield_now();
        }
    }
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
        let target: &'static Fake = Box::leak(Box::new(fake(1)));
        let start = Instant::now();
        let plan = Plan {
            thread: 0,
            start,
            end: start + Duration::from_millis(200),
            schedule: Some(Schedule::new(start, 200.0, 0, 1)),
            cap: 1000,
        };
        let rec = Recorder::new(start, plan.end, 3, std::thread::current());
        run_sender(target, &plan, rec, Duration::from_secs(5));
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
        let target: &'static Fake = Box::leak(Box::new(fake(20)));
        let start = Instant::now();
        let plan = Plan {
            thread: 0,
            start,
            end: start + Duration::from_millis(100),
            schedule: Some(Schedule::new(start, 500.0, 0, 1)),
            cap: 1,
        };
        let rec = Recorder::new(start, plan.end, 3, std::thread::current());
        run_sender(target, &plan, rec, Duration::from_secs(5));
        let s = crate::recorder::snapshot(&[rec]);
        assert!(s.delayed > 0);
        assert!(s.completed >= 2);
        // The last sent call was intended early but sent late: its latency
        // from the intended time is far above the 20 ms service time.
        // (No upper bound on the service time: a starved machine stretches
        // a 20 ms sleep, and the wait with it.)
        assert!(s.latency.max() > 40_000, "max {}", s.latency.max());
        assert!(
            s.latency.max() >= s.service.max(),
            "latency from the intended time {} below the service time {}",
            s.latency.max(),
            s.service.max()
        );
    }

    #[test]
    fn closed_loop_keeps_cap_outstanding() {
        let target: &'static Fake = Box::leak(Box::new(fake(10)));
        let start = Instant::now();
        let plan = Plan {
            thread: 0,
            start,
            end: start + Duration::from_millis(100),
            schedule: None,
            cap: 4,
        };
        let rec = Recorder::new(start, plan.end, 3, std::thread::current());
        run_sender(target, &plan, rec, Duration::from_secs(5));
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
