//! Closed-loop throughput of the framework's `Channel` against an
//! in-process server: `C` connections × `D` calls in flight each, started
//! with `call_with` (a new call whenever one completes), for `S` seconds.
//! A profiling harness for the client (run it under `perf record`); the
//! figures users compare live in `results/` and come from loadgen.
//!
//! `cargo bench --bench channel_load -- [connections] [depth] [seconds] [io_threads]`
//! (defaults 50 16 5 1; the server runs one reactor).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mprpc::client::{Channel, ChannelOptions};
use mprpc::server::{Server, ServerOptions};
use mprpc::{CallOptions, StaticDiscover};

mod common;
use common::{echo_request_bytes, EchoServer};

struct Load {
    channel: Channel,
    request: Bytes,
    options: CallOptions,
    done: AtomicU64,
    stop: AtomicBool,
}

/// Starts one call that starts the next when it completes.
fn chain(load: &Arc<Load>) {
    if load.stop.load(Ordering::Relaxed) {
        return;
    }
    let next = load.clone();
    let _handle = load.channel.call_with(
        EchoServer::SERVICE_NAME,
        "Echo",
        load.request.clone(),
        &load.options,
        move |r| {
            assert!(r.is_ok(), "echo failed: {r:?}");
            next.done.fetch_add(1, Ordering::Relaxed);
            chain(&next);
        },
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let arg = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let (conns, depth, secs, io_threads) = (arg(0, 50), arg(1, 16), arg(2, 5), arg(3, 1));
    let mut server = Server::with_options(ServerOptions::default().reactor_threads(1));
    server.add_service(EchoServer);
    let server = server.start().expect("server starts");
    let discover = Arc::new(StaticDiscover::single(server.local_addr()).expect("address"));
    let channel = Channel::new(
        discover,
        ChannelOptions::default()
            .connections_per_endpoint(conns)
            .io_threads(io_threads),
    )
    .expect("channel starts");
    let load = Arc::new(Load {
        channel,
        request: Bytes::from(echo_request_bytes(64)),
        options: CallOptions::default(),
        done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    for _ in 0..conns * depth {
        chain(&load);
    }
    std::thread::sleep(Duration::from_secs(1));
    let (t0, n0) = (Instant::now(), load.done.load(Ordering::Relaxed));
    std::thread::sleep(Duration::from_secs(secs as u64));
    let (t1, n1) = (Instant::now(), load.done.load(Ordering::Relaxed));
    load.stop.store(true, Ordering::Relaxed);
    let rate = (n1 - n0) as f64 / (t1 - t0).as_secs_f64();
    println!(
        "channel_load: {conns} connections x {depth} in flight, io_threads {io_threads}: {rate:.0} calls/s"
    );
    while load.channel.inflight() > 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.shutdown();
    server.wait();
}
