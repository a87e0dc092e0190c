//! The allocation gate: `cargo test` fails if a call allocates in steady
//! state, on the server path or in any client call style.
//!
//! A counting global allocator (the benches' `CountingAlloc`) counts every
//! allocation in the process. This binary has no test harness (`harness =
//! false` in Cargo.toml), so nothing but the measured paths runs while the
//! counters are read: each path is warmed up, then run `CALLS` times
//! between two snapshots. The paths are those `benches/allocations.rs`
//! reports (shared in `benches/common/alloc_paths.rs`).
//!
//! The in-process server path must allocate nothing at all. Over sockets,
//! a connection's read buffer is handed out as zero-copy reply slices and
//! is replaced now and then when replies still hold the old one: that
//! amortised cost must stay under one allocation per fifty calls, while a
//! per-call allocation (one or more per call) fails the gate by a wide
//! margin. That amortised count depends on timing (how long replies still
//! hold a buffer when the next read needs room: a caller descheduled on
//! this 2-core machine holds more), so a client path over its limit is
//! measured once more and fails only if both runs are over; a per-call
//! allocation fails both.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use mprpc::protocol::mprpc::{Decoder, DEFAULT_MAX_FRAME};
use mprpc::CallOptions;

#[path = "../benches/common/mod.rs"]
mod bench_common;
use bench_common::alloc_paths::{
    chained_detached, child_and_channel, per_call, pipelined, pipelined_futures, request_frame,
    serve_if_child, server_step, unpark_current, Chains, DEPTH, SERVICE,
};
use bench_common::{echo_request_bytes, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Calls measured per path (after a warm-up of as many, up to 1000).
const CALLS: u64 = 3000;
/// The most a socket path may allocate per call, amortised.
const SOCKET_PATH_LIMIT: f64 = 0.02;

/// Checks a client path over sockets: `measure` gives its allocations per
/// call, measured again once if the first run is over the limit (see the
/// module documentation).
fn check_socket_path(path: &str, size: usize, mut measure: impl FnMut() -> f64) -> Option<String> {
    let first = measure();
    if first <= SOCKET_PATH_LIMIT {
        return check(path, size, first, SOCKET_PATH_LIMIT);
    }
    println!("again  {path} ({size} B): {first:.4} allocations per call on the first run");
    check(path, size, measure(), SOCKET_PATH_LIMIT)
}

/// Checks one path's allocations per call against `limit`; returns a
/// failure line instead of panicking, so every path is reported.
fn check(path: &str, size: usize, allocs: f64, limit: f64) -> Option<String> {
    let verdict = if allocs <= limit { "ok" } else { "FAILED" };
    println!("{verdict:6} {path} ({size} B): {allocs:.4} allocations per call (limit {limit})");
    (allocs > limit).then(|| format!("{path} ({size} B): {allocs:.4} per call > {limit}"))
}

fn main() {
    if serve_if_child() {
        return;
    }
    let mut failures = Vec::new();

    let decoder = Decoder::new(DEFAULT_MAX_FRAME);
    for size in [64usize, 4096] {
        let frame = request_frame(size);
        let mut read_buf = BytesMut::with_capacity(64 * 1024);
        let mut out = BytesMut::with_capacity(64 * 1024);
        let (allocs, _) = per_call(CALLS, || {
            server_step(&decoder, &mut read_buf, &frame, &mut out)
        });
        failures.extend(check("server: decode + dispatch", size, allocs, 0.0));
    }

    let (mut child, channel) = child_and_channel();
    let options = CallOptions::default();
    let completions = Arc::default();
    let batch = 100;
    for size in [64usize, 4096] {
        let request = Bytes::from(echo_request_bytes(size));
        let (server_before, _) = child.count();
        let (allocs, _) = per_call(CALLS, || {
            let reply = channel
                .call(SERVICE, "Echo", request.clone(), &options, None)
                .expect("echo call");
            assert_eq!(reply.len(), request.len());
        });
        let (server_after, _) = child.count();
        failures.extend(check(
            "client: blocking call",
            size,
            allocs,
            SOCKET_PATH_LIMIT,
        ));
        // The child counted the warm-up calls and its `count` replies too.
        let served = (CALLS + CALLS.min(1000)) as f64;
        let server_allocs = (server_after - server_before) as f64 / served;
        failures.extend(check(
            "server process: read + dispatch + write",
            size,
            server_allocs,
            SOCKET_PATH_LIMIT,
        ));
        let per_call_of = |run: &mut dyn FnMut()| per_call(CALLS / batch, run).0 / batch as f64;
        failures.extend(check_socket_path(
            "client: call_with, depth 16",
            size,
            || per_call_of(&mut || pipelined(&channel, &request, batch, &completions)),
        ));
        let chains = Chains::new(&channel, &request);
        failures.extend(check_socket_path(
            "client: call_detached chains from callbacks, depth 16",
            size,
            || per_call_of(&mut || chained_detached(&chains, batch)),
        ));
        let waker = unpark_current();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut window = VecDeque::with_capacity(DEPTH as usize);
        failures.extend(check_socket_path(
            "client: call_async futures, depth 16",
            size,
            || {
                per_call_of(&mut || {
                    pipelined_futures(&channel, &request, batch, &mut window, &mut cx)
                })
            },
        ));
    }
    drop(channel);
    child.stop();

    if !failures.is_empty() {
        eprintln!("allocation gate failed:\n{}", failures.join("\n"));
        std::process::exit(1);
    }
    println!("allocation gate: every path within its limit");
}
