//! Hand-written services for server tests (no code generation needed):
//! `Test` runs on the reactors, `BlockingTest` on the worker pool; both have
//! Echo, Slow (sleeps the number of ms the request starts with, echoes the
//! request), Fail (an application error), Panic and Grow (replies with as
//! many bytes as the request's decimal number).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mprpc::{CallContext, Service, Status};

pub struct TestService;

/// How many `Slow` calls started, per request payload. Tests in one binary
/// run in parallel: each waits on payloads of its own, made unique by
/// [`slow_request`], so no test sees another's calls.
static SLOW_STARTED: Mutex<Vec<(Vec<u8>, usize)>> = Mutex::new(Vec::new());

/// A `Slow` request for `ms` milliseconds that no other call in this
/// process sends (`<ms>:<n>`); wait for its calls with
/// [`wait_slow_started`].
#[allow(dead_code)] // not every test binary uses it
pub fn slow_request(ms: u64) -> Bytes {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Bytes::from(format!("{ms}:{n}"))
}

fn note_slow_start(payload: &[u8]) {
    let mut started = SLOW_STARTED.lock().unwrap_or_else(|e| e.into_inner());
    match started.iter_mut().find(|(p, _)| p == payload) {
        Some((_, n)) => *n += 1,
        None => started.push((payload.to_vec(), 1)),
    }
}

/// How many `Slow` calls with this payload have started their handler.
#[allow(dead_code)] // not every test binary uses it
pub fn slow_started(payload: &[u8]) -> usize {
    let started = SLOW_STARTED.lock().unwrap_or_else(|e| e.into_inner());
    started
        .iter()
        .find(|(p, _)| p == payload)
        .map_or(0, |(_, n)| *n)
}

/// Waits (up to 10 s) until `n` `Slow` calls with this payload have started
/// their handler: an explicit wait instead of a sleep.
#[allow(dead_code)] // not every test binary uses it
pub fn wait_slow_started(payload: &[u8], n: usize) {
    let began = Instant::now();
    loop {
        let started = SLOW_STARTED.lock().unwrap_or_else(|e| e.into_inner());
        if started.iter().any(|(p, k)| p == payload && *k >= n) {
            return;
        }
        drop(started);
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "{n} Slow({}) calls never started",
            String::from_utf8_lossy(payload)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl Service for TestService {
    fn name(&self) -> &'static str {
        "Test"
    }

    fn methods(&self) -> &'static [&'static str] {
        &["Echo", "Slow", "Fail", "Panic", "Grow"]
    }

    fn call(
        &self,
        method: &str,
        _: &CallContext,
        req: Bytes,
        out: &mut BytesMut,
    ) -> Result<(), Status> {
        match method {
            "Echo" => {
                out.extend_from_slice(&req);
                Ok(())
            }
            "Slow" => {
                note_slow_start(&req);
                let ms = std::str::from_utf8(&req)
                    .ok()
                    .and_then(|s| s.split(':').next()?.parse().ok())
                    .unwrap_or(100);
                std::thread::sleep(Duration::from_millis(ms));
                out.extend_from_slice(&req);
                Ok(())
            }
            "Fail" => Err(Status::application("user not found")),
            "Grow" => {
                let n: usize = std::str::from_utf8(&req)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                out.resize(out.len() + n, b'g');
                Ok(())
            }
            "Panic" => panic!("boom"),
            other => Err(Status::unknown_method("Test", other)),
        }
    }
}

/// The same methods, published as a blocking service.
pub struct BlockingTest;

impl Service for BlockingTest {
    fn name(&self) -> &'static str {
        "BlockingTest"
    }

    fn methods(&self) -> &'static [&'static str] {
        TestService.methods()
    }

    fn call(&self, m: &str, c: &CallContext, r: Bytes, o: &mut BytesMut) -> Result<(), Status> {
        TestService.call(m, c, r, o)
    }
}

/// A blocking service that notes every call its handler starts, so a test
/// can tell which calls ran: `Run` echoes its payload and records it under
/// the `tag` the service was made with.
pub struct Tracked {
    pub runs: std::sync::Arc<parking_lot::Mutex<Vec<Bytes>>>,
}

impl Tracked {
    pub fn new() -> (Tracked, std::sync::Arc<parking_lot::Mutex<Vec<Bytes>>>) {
        let runs = std::sync::Arc::default();
        (
            Tracked {
                runs: std::sync::Arc::clone(&runs),
            },
            runs,
        )
    }
}

impl Service for Tracked {
    fn name(&self) -> &'static str {
        "Tracked"
    }

    fn methods(&self) -> &'static [&'static str] {
        &["Run"]
    }

    fn call(&self, _: &str, _: &CallContext, req: Bytes, out: &mut BytesMut) -> Result<(), Status> {
        self.runs.lock().push(req.clone());
        out.extend_from_slice(&req);
        Ok(())
    }
}

/// A service that answers later and never does: every call's future stays
/// pending until the server drops it (its caller cancelled, its connection
/// closed, its deadline passed). `live` counts the futures not yet dropped,
/// so a test sees calls a server keeps for nobody.
pub struct Parked {
    pub live: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts one live future; its drop uncounts it.
struct LiveGuard(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Parked {
    pub fn new() -> (Parked, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let live = std::sync::Arc::default();
        (
            Parked {
                live: std::sync::Arc::clone(&live),
            },
            live,
        )
    }
}

impl Service for Parked {
    fn name(&self) -> &'static str {
        "Parked"
    }

    fn methods(&self) -> &'static [&'static str] {
        &["Wait"]
    }

    fn call(&self, _: &str, _: &CallContext, _: Bytes, _: &mut BytesMut) -> Result<(), Status> {
        Err(Status::internal("Parked only answers later"))
    }

    fn answers_later(&self) -> bool {
        true
    }

    fn call_later(
        &self,
        _: &str,
        _: CallContext,
        _: Bytes,
    ) -> Result<mprpc::service::ReplyFuture, Status> {
        self.live.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let guard = LiveGuard(self.live.clone());
        Ok(Box::pin(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            unreachable!("a pending future never finishes")
        }))
    }
}

/// Waits (up to `limit`) until `count()` equals `want`; the last value seen.
pub fn wait_until_count(count: impl Fn() -> usize, want: usize, limit: Duration) -> usize {
    let began = Instant::now();
    loop {
        let now = count();
        if now == want || began.elapsed() >= limit {
            return now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
