//! The echo service the benchmarks and the load generator call.
//!
//! The request's payload is a `Bytes` slice of the received frame; handing
//! it back costs a reference count, not a copy. [`SlowEcho`] first waits,
//! as a handler waiting on a disk or a downstream service does: the
//! overload benchmark's server, whose capacity is its worker threads.
//! [`LedgeredEcho`] records which calls its handler ran, for fault runs.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mprpc::{CallContext, Status};

use crate::bench::{EchoRequest, EchoResponse};

/// Answers every `Echo` with the request's payload.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl crate::bench::EchoService for Echo {
    fn echo(&self, _ctx: &CallContext, request: EchoRequest) -> Result<EchoResponse, Status> {
        Ok(EchoResponse {
            payload: request.payload,
        })
    }
}

/// Answers every `Echo` with the request's payload after sleeping `pause`
/// (publish it as a blocking service: it holds a worker meanwhile).
#[derive(Debug, Default, Clone, Copy)]
pub struct SlowEcho {
    /// How long each call waits before answering.
    pub pause: Duration,
}

impl crate::bench::EchoService for SlowEcho {
    fn echo(&self, ctx: &CallContext, request: EchoRequest) -> Result<EchoResponse, Status> {
        std::thread::sleep(self.pause);
        Echo.echo(ctx, request)
    }
}

/// Answers as [`Echo`] does, and records each handler run: the call's
/// number (the first 8 bytes of the payload, little endian, as `loadgen
/// --ledger` stamps them) and when it ran. The fault harness joins these
/// with the consumer's ledger to find calls run twice, or answered `ok`
/// without a run.
#[derive(Debug, Default, Clone)]
pub struct LedgeredEcho {
    runs: Arc<Mutex<Vec<(u64, u64)>>>,
}

impl LedgeredEcho {
    /// Appends one line per handler run, `number,ran_ms` (milliseconds
    /// since the Unix epoch), to `path`; a restarted provider appends to
    /// the same file. Returns how many runs it wrote.
    pub fn append_to(&self, path: &Path) -> std::io::Result<usize> {
        let runs = std::mem::take(&mut *self.runs.lock().unwrap_or_else(|p| p.into_inner()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let mut out = std::io::BufWriter::new(file);
        for (number, ran_ms) in &runs {
            writeln!(out, "{number},{ran_ms}")?;
        }
        out.flush()?;
        Ok(runs.len())
    }
}

impl crate::bench::EchoService for LedgeredEcho {
    fn echo(&self, ctx: &CallContext, request: EchoRequest) -> Result<EchoResponse, Status> {
        let mut number = [0u8; 8];
        let stamped = request.payload.len().min(8);
        number[..stamped].copy_from_slice(&request.payload[..stamped]);
        let ran_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((u64::from_le_bytes(number), ran_ms));
        Echo.echo(ctx, request)
    }
}
