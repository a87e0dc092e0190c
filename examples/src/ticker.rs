//! `TickerRpc` (proto/ticker.proto) with blocking stream handlers: the
//! example of the blocking form (`blocking_stream` in `build.rs`). Each
//! handler is a plain function run on the provider's worker pool for as
//! long as its stream is open: `Ticks` sends through a `BlockingSender`
//! (its `send` blocks while the caller has no credit), `Total` iterates a
//! `BlockingStreaming` of the caller's ticks, `Echo` does both.
//!
//! [`TickerStats`] counts what the handlers do, so the tests can see a
//! handler blocked in `send`, and how and where each one ended.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mprpc::service::blocking_stream::{BlockingSender, BlockingStreaming};
use mprpc::{CallContext, Code, Status};

use crate::blocking::{Tick, TickRequest, TickTotal, TickerRpc};

/// The ticker service; clones share their [`TickerStats`].
#[derive(Debug, Default, Clone)]
pub struct Ticker {
    stats: Arc<TickerStats>,
}

/// What the ticker's stream handlers did.
#[derive(Debug, Default)]
pub struct TickerStats {
    /// Ticks sent (every stream).
    pub sent: AtomicU64,
    /// Handlers inside `send` now (blocked there while out of credit).
    pub sending: AtomicU64,
    /// Handlers running now.
    pub running: AtomicU64,
    /// Handlers that ran on a thread that is not a worker of the pool.
    pub off_pool: AtomicU64,
    ended: Mutex<Vec<Code>>,
}

impl TickerStats {
    /// How each handler that returned ended, in order.
    pub fn ended(&self) -> Vec<Code> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Ticker {
    /// A ticker with fresh stats.
    pub fn new() -> Ticker {
        Ticker::default()
    }

    /// Its stats, shared with every clone.
    pub fn stats(&self) -> Arc<TickerStats> {
        self.stats.clone()
    }

    /// Runs a handler's body, counting it running and recording its end.
    fn handle<T>(&self, body: impl FnOnce() -> Result<T, Status>) -> Result<T, Status> {
        let stats = &self.stats;
        let on_pool = std::thread::current()
            .name()
            .is_some_and(|name| name.starts_with("mprpc-worker"));
        if !on_pool {
            stats.off_pool.fetch_add(1, Ordering::SeqCst);
        }
        stats.running.fetch_add(1, Ordering::SeqCst);
        let result = body();
        stats.running.fetch_sub(1, Ordering::SeqCst);
        let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
        stats
            .ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(code);
        result
    }

    /// Sends `tick`, counted (blocks while the caller has no credit).
    fn send(&self, sink: &BlockingSender<Tick>, tick: Tick) -> Result<(), Status> {
        self.stats.sending.fetch_add(1, Ordering::SeqCst);
        let sent = sink.send(tick);
        self.stats.sending.fetch_sub(1, Ordering::SeqCst);
        if sent.is_ok() {
            self.stats.sent.fetch_add(1, Ordering::SeqCst);
        }
        sent
    }
}

impl TickerRpc for Ticker {
    fn ticks(
        &self,
        _ctx: &CallContext,
        request: TickRequest,
        sink: BlockingSender<Tick>,
    ) -> Result<(), Status> {
        let end = match request.count {
            0 => u64::MAX,
            n => n,
        };
        self.handle(|| {
            (0..end).try_for_each(|seq| {
                let tick = Tick {
                    seq,
                    ..Tick::default()
                };
                self.send(&sink, tick)
            })
        })
    }

    fn total(
        &self,
        _ctx: &CallContext,
        requests: BlockingStreaming<Tick>,
    ) -> Result<TickTotal, Status> {
        self.handle(|| {
            let mut total = TickTotal::default();
            for tick in requests {
                total.count += 1;
                total.sum += tick?.seq;
            }
            Ok(total)
        })
    }

    fn echo(
        &self,
        _ctx: &CallContext,
        requests: BlockingStreaming<Tick>,
        sink: BlockingSender<Tick>,
    ) -> Result<(), Status> {
        self.handle(|| {
            for tick in requests {
                let tick = tick?;
                let back = Tick {
                    seq: tick.seq * 2,
                    payload: tick.payload,
                };
                self.send(&sink, back)?;
            }
            Ok(())
        })
    }

    fn ping(&self, _ctx: &CallContext, request: Tick) -> Result<Tick, Status> {
        Ok(request)
    }
}
