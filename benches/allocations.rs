//! Heap allocations per call, counted by a global allocator wrapper:
//!
//! * server path, in process: decode a request frame from the read buffer
//!   and dispatch it through the generated echo dispatcher into the output
//!   buffer (no sockets);
//! * server process, end to end: the same plus the reactor's reads and
//!   writes, counted inside a child process serving the echo service;
//! * client path: one blocking `call`, `call_with` at depth 16 and
//!   `call_async` futures at depth 16 (polled as a `Future`, the thread
//!   parked between polls), counted in the calling process (caller thread +
//!   the client's I/O thread).
//!
//! `cargo bench --bench allocations` prints the table and writes it to
//! `results/allocations.md`; `cargo test --bench allocations` runs a short
//! smoke version and writes nothing.

use std::collections::VecDeque;
use std::process::Command;
use std::sync::Arc;
use std::task::Context;

use bytes::{Bytes, BytesMut};
use mprpc::protocol::mprpc::{Decoder, DEFAULT_MAX_FRAME};
use mprpc::CallOptions;

mod common;
use common::alloc_paths::{
    chained_detached, child_and_channel, per_call, pipelined, pipelined_futures, request_frame,
    serve_if_child, server_step, unpark_current, Chains, DEPTH, SERVICE,
};
use common::{echo_request_bytes, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

struct Row {
    path: &'static str,
    size: usize,
    allocs: f64,
    bytes: f64,
}

fn main() {
    if serve_if_child() {
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let n: u64 = if full { 100_000 } else { 2_000 };
    let mut rows = Vec::new();

    let decoder = Decoder::new(DEFAULT_MAX_FRAME);
    for size in [64usize, 4096] {
        let frame = request_frame(size);
        let mut read_buf = BytesMut::with_capacity(64 * 1024);
        let mut out = BytesMut::with_capacity(64 * 1024);
        let (allocs, bytes) =
            per_call(n, || server_step(&decoder, &mut read_buf, &frame, &mut out));
        rows.push(Row {
            path: "server: decode + dispatch into the output buffer (in process)",
            size,
            allocs,
            bytes,
        });
    }

    let (mut child, channel) = child_and_channel();
    let options = CallOptions::default();
    for size in [64usize, 4096] {
        let request = Bytes::from(echo_request_bytes(size));
        let blocking = || {
            let reply = channel
                .call(SERVICE, "Echo", request.clone(), &options, None)
                .expect("echo call");
            assert_eq!(reply.len(), request.len());
        };
        let (s0, sb0) = child.count();
        let (allocs, bytes) = per_call(n, blocking);
        let (s1, sb1) = child.count();
        rows.push(Row {
            path: "client: blocking `call` (caller + client I/O thread)",
            size,
            allocs,
            bytes,
        });
        // The child also counted the warm-up calls and the `count` lines.
        let calls = n + n.min(1000);
        rows.push(Row {
            path: "server process, end to end (reactor read + dispatch + write)",
            size,
            allocs: (s1 - s0) as f64 / calls as f64,
            bytes: (sb1 - sb0) as f64 / calls as f64,
        });
        let completions = Arc::default();
        let batch = 1000;
        let (allocs, bytes) = per_call(n / batch, || {
            pipelined(&channel, &request, batch, &completions)
        });
        rows.push(Row {
            path: "client: `call_with` at depth 16 (caller + client I/O thread)",
            size,
            allocs: allocs / batch as f64,
            bytes: bytes / batch as f64,
        });
        let chains = Chains::new(&channel, &request);
        let (allocs, bytes) = per_call(n / batch, || chained_detached(&chains, batch));
        rows.push(Row {
            path: "client: `call_detached` chains from callbacks at depth 16 (client I/O thread)",
            size,
            allocs: allocs / batch as f64,
            bytes: bytes / batch as f64,
        });
        let waker = unpark_current();
        let mut cx = Context::from_waker(&waker);
        let mut window = VecDeque::with_capacity(DEPTH as usize);
        let (allocs, bytes) = per_call(n / batch, || {
            pipelined_futures(&channel, &request, batch, &mut window, &mut cx)
        });
        rows.push(Row {
            path: "client: `call_async` futures at depth 16 (caller + client I/O thread)",
            size,
            allocs: allocs / batch as f64,
            bytes: bytes / batch as f64,
        });
    }
    drop(channel);
    child.stop();

    let mut table = String::from(
        "| path | payload | allocations per call | bytes allocated per call |\n|---|---|---|---|\n",
    );
    for r in &rows {
        table.push_str(&format!(
            "| {} | {} B | {:.3} | {:.1} |\n",
            r.path, r.size, r.allocs, r.bytes
        ));
    }
    println!("\nAllocations per call ({n} calls each)\n\n{table}");
    if full {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/results/allocations.md");
        let text = format!(
            "# Allocations per call\n\nWritten by `cargo bench --bench allocations` (benches/allocations.rs) at commit {} on {} cores, {}; {n} calls per row after a warm-up.\nA global allocator wrapper counts every `alloc`/`realloc` in the process. The server-process row is counted inside a child process serving the echo service; the client rows in the calling process (caller thread + the client's I/O thread). Payload sizes are the echo payload (the request message is 2-3 bytes longer). Replies are zero-copy slices of a connection's read buffer: while replies not yet taken keep part of it alive, the next read needs a fresh buffer, which is what the future rows' fractional allocations at 4 KiB are.\n\n{table}",
            git_state(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model(),
        );
        match std::fs::write(path, text) {
            Ok(()) => println!("written to {path}"),
            Err(e) => eprintln!("cannot write {path}: {e}"),
        }
    }
}

/// The commit measured, as scripts/lib.sh's `git_state` reports it.
fn git_state() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let status = [
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        ":(exclude)results",
        ":(exclude)README.md",
        ":(exclude)docs/benchmarks.md",
    ];
    match git(&status) {
        Some(s) if !s.is_empty() => format!("`{commit}` (with uncommitted changes)"),
        _ => format!("`{commit}`"),
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
