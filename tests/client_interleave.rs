//! Calls from the driver's own thread and from foreign threads, mixed on
//! one connection, over real sockets.
//!
//! A channel with one I/O thread and one connection carries two kinds of
//! calls at once: chains of `call_with` and of `call_detached` calls, each
//! started by the previous one's callback on the I/O thread (the path that
//! skips the hand-off to the driver; a detached call's callback is then
//! held by the driver, with no completion cell), and calls from a foreign
//! thread (callback, future and
//! blocking, each through the hand-off). The provider answers each call
//! after a drawn delay, so replies come back out of order; the foreign
//! thread's pace is drawn too. Every reply must be its own call's echo and
//! every call must end exactly once. The schedule is seeded: the seed is
//! printed, and `MPRPC_INTERLEAVE_SEED=<seed>` repeats it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mprpc::client::{Channel, ChannelOptions};
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::{CallContext, CallOptions, Service, StaticDiscover, Status};

mod common;
use common::ledger::CompletionLedger;

/// Calls each chain makes from the I/O thread.
const CHAIN_CALLS: u64 = 150;
/// Chains running at once.
const CHAINS: u64 = 4;
/// Calls the foreign thread makes.
const FOREIGN_CALLS: u64 = 600;
/// The largest reply delay drawn, in microseconds.
const MAX_DELAY_US: u64 = 400;
/// Ids of foreign calls start here (chain calls are numbered below it).
const FOREIGN_BASE: u64 = 1 << 32;

/// `Shuffle.Echo`: sleeps the microseconds its request starts with
/// (`<us>:<call id>`), then echoes the request.
struct Shuffle;

impl Service for Shuffle {
    fn name(&self) -> &'static str {
        "Shuffle"
    }

    fn methods(&self) -> &'static [&'static str] {
        &["Echo"]
    }

    fn call(&self, _: &str, _: &CallContext, req: Bytes, out: &mut BytesMut) -> Result<(), Status> {
        let delay_us: u64 = std::str::from_utf8(&req)
            .ok()
            .and_then(|text| text.split(':').next()?.parse().ok())
            .ok_or_else(|| Status::bad_request("expected <us>:<call id>"))?;
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
            // Enough workers that delays overlap and replies overtake each other.
            .worker_threads(8),
    );
    server.add_blocking_service(Shuffle);
    server.start().expect("provider starts")
}

/// The run's seed: `MPRPC_INTERLEAVE_SEED`, else the clock.
fn seed() -> u64 {
    let seed = std::env::var("MPRPC_INTERLEAVE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    println!("interleave seed {seed} (MPRPC_INTERLEAVE_SEED={seed} repeats this run)");
    seed
}

/// xorshift64: a reproducible stream from a seed.
#[derive(Clone, Copy)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the chains and the foreign thread share.
struct Run {
    channel: Channel,
    ledger: CompletionLedger,
    options: CallOptions,
    /// Foreign calls in flight now.
    foreign_in_flight: AtomicUsize,
    /// Chain replies that arrived while a foreign call was in flight.
    interleaved: AtomicU64,
}

impl Run {
    /// Counts call `id`'s end, then checks it is its own echo.
    fn ended(&self, id: u64, sent: &Bytes, result: Result<Bytes, Status>) {
        self.ledger.complete(id);
        self.ledger.check(id, || match result {
            Ok(reply) => assert_eq!(&reply, sent, "call {id} got another call's reply"),
            Err(status) => panic!("call {id} failed: {status}"),
        });
    }
}

fn request(rng: &mut Rng, id: u64) -> Bytes {
    Bytes::from(format!("{}:{id}", rng.below(MAX_DELAY_US)))
}

/// Starts call `n` of chain `chain`; its callback, on the I/O thread,
/// starts the next one with the chain's own random stream.
fn chain_call(run: &Arc<Run>, chain: u64, n: u64, mut rng: Rng) {
    if n == CHAIN_CALLS {
        return;
    }
    let id = chain * CHAIN_CALLS + n;
    let sent = request(&mut rng, id);
    let next = run.clone();
    let expected = sent.clone();
    let done = move |result| {
        let on_io_thread = std::thread::current()
            .name()
            .is_some_and(|name| name.starts_with("mprpc-client-io"));
        next.ledger.check(id, || {
            assert!(on_io_thread, "a chain callback off the I/O thread")
        });
        if next.foreign_in_flight.load(Ordering::Acquire) > 0 {
            next.interleaved.fetch_add(1, Ordering::Relaxed);
        }
        next.ended(id, &expected, result);
        chain_call(&next, chain, n + 1, rng);
    };
    // Odd chains go detached: past their first call (from the test's
    // thread) the driver holds their callbacks itself, with no cell.
    if chain.is_multiple_of(2) {
        let _ = run
            .channel
            .call_with("Shuffle", "Echo", sent, &run.options, done);
    } else {
        run.channel
            .call_detached("Shuffle", "Echo", sent, &run.options, done);
    }
}

/// The foreign thread: callback, future and blocking calls at a drawn pace.
fn foreign_calls(run: &Arc<Run>, mut rng: Rng) {
    let mut futures = Vec::new();
    for k in 0..FOREIGN_CALLS {
        let id = FOREIGN_BASE + k;
        let sent = request(&mut rng, id);
        run.foreign_in_flight.fetch_add(1, Ordering::AcqRel);
        match rng.below(3) {
            0 => {
                let (done, expected) = (run.clone(), sent.clone());
                let _ =
                    run.channel
                        .call_with("Shuffle", "Echo", sent, &run.options, move |result| {
                            done.ended(id, &expected, result);
                            done.foreign_in_flight.fetch_sub(1, Ordering::AcqRel);
                        });
            }
            1 => {
                let pending = run
                    .channel
                    .call_async("Shuffle", "Echo", sent.clone(), &run.options);
                futures.push((id, sent, pending));
            }
            _ => {
                let result = run
                    .channel
                    .call("Shuffle", "Echo", sent.clone(), &run.options, None);
                run.ended(id, &sent, result);
                run.foreign_in_flight.fetch_sub(1, Ordering::AcqRel);
            }
        }
        if rng.below(4) == 0 {
            std::thread::sleep(Duration::from_micros(rng.below(200)));
        }
        // Waits on a few futures now and then, oldest first.
        while futures.len() > 8 || (k + 1 == FOREIGN_CALLS && !futures.is_empty()) {
            let (id, sent, pending) = futures.remove(0);
            run.ended(id, &sent, pending.wait());
            run.foreign_in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[test]
fn driver_thread_and_foreign_calls_interleave_on_one_connection_with_replies_matched() {
    let server = provider();
    let discover = StaticDiscover::single(server.local_addr()).unwrap();
    let options = ChannelOptions::default()
        .io_threads(1)
        .connections_per_endpoint(1);
    let channel = Channel::new(Arc::new(discover), options).unwrap();
    let run = Arc::new(Run {
        channel,
        ledger: CompletionLedger::new(),
        options: CallOptions::with_timeout(Duration::from_secs(10)),
        foreign_in_flight: AtomicUsize::new(0),
        interleaved: AtomicU64::new(0),
    });
    let mut rng = Rng(seed());
    for chain in 0..CHAINS {
        chain_call(&run, chain, 0, Rng(rng.next() | 1));
    }
    let foreign = {
        let (run, rng) = (run.clone(), Rng(rng.next() | 1));
        std::thread::spawn(move || foreign_calls(&run, rng))
    };
    foreign.join().expect("the foreign thread");
    let expected = || (0..CHAINS * CHAIN_CALLS).chain(FOREIGN_BASE..FOREIGN_BASE + FOREIGN_CALLS);
    let total = expected().count() as u64;
    let give_up = Instant::now() + Duration::from_secs(30);
    while run.ledger.completions() < total && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(5));
    }
    run.ledger.assert_each_exactly_once(expected());
    assert_eq!(run.channel.inflight(), 0, "calls left in flight");
    let interleaved = run.interleaved.load(Ordering::Relaxed);
    println!("{interleaved} chain replies arrived while foreign calls were in flight");
    assert!(
        interleaved > CHAIN_CALLS,
        "the two kinds of calls hardly overlapped ({interleaved} chain replies during foreign calls)"
    );
}
