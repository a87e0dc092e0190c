//! Reply, timeout and cancel racing on the same calls, over real sockets.
//!
//! A provider answers each call after a random delay around the call's
//! deadline, while a canceller fires cancels at random moments around the
//! same instant, so the three ways a call can end collide. Every call must
//! end exactly once (counted per call outside the callbacks, by
//! [`CompletionLedger`]), with its own reply, `DeadlineExceeded` or
//! `Cancelled`. The run is seeded: the seed is printed, and
//! `MPRPC_RACE_SEED=<seed>` repeats it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mprpc::client::Channel;
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::{CallContext, CallOptions, CancelHandle, Code, Service, Status};

mod common;
use common::ledger::CompletionLedger;

/// The deadline every call gets.
const DEADLINE: Duration = Duration::from_millis(40);
/// Calls per style (callback, blocking).
const CALLS: u64 = 300;
/// Calls in flight at once: fewer than the provider's workers, so a
/// reply's delay is the drawn one, not a queue's.
const IN_FLIGHT: u64 = 6;

/// `Delayed.Answer`: sleeps the microseconds its request starts with
/// (`<us>:<call>`), then echoes the request.
struct Delayed;

impl Service for Delayed {
    fn name(&self) -> &'static str {
        "Delayed"
    }

    fn methods(&self) -> &'static [&'static str] {
        &["Answer"]
    }

    fn call(&self, _: &str, _: &CallContext, req: Bytes, out: &mut BytesMut) -> Result<(), Status> {
        let delay_us = std::str::from_utf8(&req)
            .ok()
            .and_then(|text| text.split(':').next()?.parse().ok())
            .ok_or_else(|| Status::bad_request("expected <us>:<call>"))?;
        std::thread::sleep(Duration::from_micros(delay_us));
        out.extend_from_slice(&req);
        Ok(())
    }
}

fn provider() -> ServerHandle {
    mprpc::app::logging::init_for_tests();
    let mut server = Server::with_options(
        ServerOptions::default()
            .addr("127.0.0.1:0".into())
            .worker_threads(IN_FLIGHT as usize + 2),
    );
    server.add_blocking_service(Delayed);
    server.start().expect("provider starts")
}

/// The run's seed: `MPRPC_RACE_SEED`, else the clock.
fn seed() -> u64 {
    let seed = std::env::var("MPRPC_RACE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    println!("race seed {seed} (MPRPC_RACE_SEED={seed} repeats this run)");
    seed
}

/// xorshift64: a reproducible stream from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A moment within ±`spread` of `around`.
    fn near(&mut self, around: Duration, spread: Duration) -> Duration {
        let span = 2 * spread.as_micros() as u64 + 1;
        (around + Duration::from_micros(self.next() % span)).saturating_sub(spread)
    }
}

/// What fires one call's cancel.
type Cancel = Box<dyn FnOnce() + Send>;

/// Cancels queued at random moments, fired by one thread.
#[derive(Default)]
struct Canceller {
    due: Mutex<Vec<(Instant, Cancel)>>,
}

impl Canceller {
    fn at(&self, when: Instant, cancel: Cancel) {
        self.due.lock().unwrap().push((when, cancel));
    }

    /// Fires every cancel when due, until `done` and none is left.
    fn run(&self, done: &dyn Fn() -> bool) {
        loop {
            let now = Instant::now();
            let fire: Vec<_> = {
                let mut due = self.due.lock().unwrap();
                let (ready, later) = due.drain(..).partition(|(when, _)| *when <= now);
                *due = later;
                ready
            };
            let idle = fire.is_empty();
            for (_, cancel) in fire {
                cancel();
            }
            if idle && done() && self.due.lock().unwrap().is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// How the calls of a run ended, by code.
type Outcomes = Mutex<[u64; 16]>;

/// Records one call's end: counted in the ledger first (so a later check
/// failing cannot hide it), then checked.
fn record(
    ledger: &CompletionLedger,
    outcomes: &Outcomes,
    id: u64,
    sent: &Bytes,
    result: Result<Bytes, Status>,
) {
    ledger.complete(id);
    let code = result.as_ref().map_or_else(|e| e.code(), |_| Code::Ok);
    outcomes.lock().unwrap()[code as usize] += 1;
    ledger.check(id, || match result {
        Ok(reply) => assert_eq!(&reply, sent, "another call's reply"),
        Err(status) => assert!(
            matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
            "ended {:?}: {}",
            status.code(),
            status.message()
        ),
    });
}

/// How a call is made: with a callback (cancelled through its
/// `CallHandle`), or blocking a thread (cancelled through a `CancelHandle`;
/// the future machinery underneath).
enum Style {
    Callback,
    Blocking,
}

/// Runs `CALLS` calls of one style, each answered after a delay near the
/// deadline and half of them cancelled near it; returns the outcomes.
fn race(channel: &Channel, style: Style, rng: &mut Rng) -> [u64; 16] {
    let ledger = Arc::new(CompletionLedger::new());
    let outcomes: Arc<Outcomes> = Arc::default();
    let canceller = Arc::new(Canceller::default());
    let issued = Arc::new(AtomicU64::new(0));
    let cancelling = {
        let (canceller, issued) = (canceller.clone(), issued.clone());
        std::thread::spawn(move || canceller.run(&|| issued.load(Ordering::Acquire) == CALLS))
    };
    let options = CallOptions::with_timeout(DEADLINE);
    let mut waiters = Vec::new();
    for id in 0..CALLS {
        while id - ledger.completions() >= IN_FLIGHT {
            std::thread::sleep(Duration::from_micros(100));
        }
        let delay = rng.near(DEADLINE, DEADLINE / 2);
        let request = Bytes::from(format!("{}:{id}", delay.as_micros()));
        let cancel_after = rng
            .next()
            .is_multiple_of(2)
            .then(|| rng.near(DEADLINE, DEADLINE / 2));
        let started = Instant::now();
        let (ledger2, outcomes2) = (ledger.clone(), outcomes.clone());
        let cancel: Cancel = match style {
            Style::Callback => {
                let sent = request.clone();
                let handle = channel.call_with("Delayed", "Answer", request, &options, move |r| {
                    record(&ledger2, &outcomes2, id, &sent, r)
                });
                Box::new(move || handle.cancel())
            }
            Style::Blocking => {
                let cancel = CancelHandle::default();
                let (channel, options, armed) = (channel.clone(), options.clone(), cancel.clone());
                waiters.push(std::thread::spawn(move || {
                    let result =
                        channel.call("Delayed", "Answer", request.clone(), &options, Some(&armed));
                    record(&ledger2, &outcomes2, id, &request, result)
                }));
                Box::new(move || cancel.cancel())
            }
        };
        if let Some(after) = cancel_after {
            canceller.at(started + after, cancel);
        }
        issued.fetch_add(1, Ordering::Release);
        waiters.retain(|w| !w.is_finished());
    }
    cancelling.join().expect("the canceller");
    for waiter in waiters {
        waiter.join().expect("a blocking caller");
    }
    let give_up = Instant::now() + Duration::from_secs(10);
    while ledger.completions() < CALLS && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(5));
    }
    ledger.assert_each_exactly_once(0..CALLS);
    // A call cancelled by its caller completes at once; the I/O driver
    // releases its in-flight slot when it next sees the call, so the count
    // may trail the last completion by a loop turn (a starved one: seen at
    // load average 10 on 2 cores).
    let give_up = Instant::now() + Duration::from_secs(5);
    while channel.inflight() > 0 && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(channel.inflight(), 0, "calls left in flight");
    let outcomes = *outcomes.lock().unwrap();
    outcomes
}

/// The three endings all happened, so the run raced them.
fn assert_all_three_happened(style: &str, outcomes: &[u64; 16]) {
    println!(
        "{style}: {} ok, {} deadline exceeded, {} cancelled",
        outcomes[Code::Ok as usize],
        outcomes[Code::DeadlineExceeded as usize],
        outcomes[Code::Cancelled as usize]
    );
    for code in [Code::Ok, Code::DeadlineExceeded, Code::Cancelled] {
        assert!(
            outcomes[code as usize] > 0,
            "{style}: no call ended {code:?}"
        );
    }
}

#[test]
fn reply_timeout_and_cancel_race_and_each_call_ends_exactly_once() {
    let server = provider();
    let channel = Channel::direct(server.local_addr()).unwrap();
    let mut rng = Rng(seed());
    let callbacks = race(&channel, Style::Callback, &mut rng);
    assert_all_three_happened("callbacks", &callbacks);
    let blocking = race(&channel, Style::Blocking, &mut rng);
    assert_all_three_happened("blocking calls", &blocking);
    // The connection survived the races: a plain call still works.
    let after = channel.call(
        "Delayed",
        "Answer",
        Bytes::from_static(b"0:after"),
        &CallOptions::with_timeout(Duration::from_secs(5)),
        None,
    );
    assert_eq!(after.unwrap(), Bytes::from_static(b"0:after"));
    drop(channel);
    server.shutdown();
    server.wait();
}

#[test]
fn the_ledger_fails_on_a_second_completion_and_on_a_failed_check() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let twice = CompletionLedger::new();
    twice.complete(1);
    twice.complete(1);
    let verdict = catch_unwind(AssertUnwindSafe(|| twice.assert_each_exactly_once([1])));
    assert!(verdict.is_err(), "a call completed twice passed");

    let wrong = CompletionLedger::new();
    wrong.complete(1);
    wrong.check(1, || panic!("another call's reply"));
    let verdict = catch_unwind(AssertUnwindSafe(|| wrong.assert_each_exactly_once([1])));
    assert!(verdict.is_err(), "a failed check passed");
}
