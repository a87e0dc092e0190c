//! Loopback round trips through the real server and client, in one process:
//! the latency of one blocking call (64 B and 4 KiB echo), and the
//! throughput of pipelined calls at depth 16 through the non-blocking client
//! (`call_with`: a new call is started whenever one completes, so 16 are
//! always in flight on the one connection).
//!
//! Run: `cargo bench --bench roundtrip`.

#![allow(missing_docs)] // criterion_main! defines an undocumented `pub fn main`

use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mprpc::client::Channel;
use mprpc::server::{Server, ServerHandle, ServerOptions};
use mprpc::CallOptions;

mod common;
use common::{echo_request_bytes, EchoServer};

const SERVICE: &str = EchoServer::SERVICE_NAME;
const METHOD: &str = "Echo";
const DEPTH: usize = 16;

fn start_server() -> ServerHandle {
    let mut server = Server::with_options(ServerOptions::default());
    server.add_service(EchoServer);
    server.start().expect("bench server starts on loopback")
}

/// Runs `n` calls keeping `depth` in flight; returns the elapsed time.
fn pipelined(channel: &Channel, request: &Bytes, n: u64, depth: usize) -> Duration {
    let options = CallOptions::default();
    let (tx, rx) = mpsc::channel::<bool>();
    let start_one = || {
        let tx = tx.clone();
        channel.call_with(SERVICE, METHOD, request.clone(), &options, move |r| {
            let _ = tx.send(r.is_ok());
        });
    };
    let start = Instant::now();
    let mut started = 0u64;
    while started < n && (started as usize) < depth {
        start_one();
        started += 1;
    }
    for _ in 0..n {
        let ok = rx.recv().expect("every call completes");
        assert!(ok, "echo call failed");
        if started < n {
            start_one();
            started += 1;
        }
    }
    start.elapsed()
}

fn roundtrip(c: &mut Criterion) {
    let server = start_server();
    let channel = Channel::direct(server.local_addr()).expect("channel");
    let options = CallOptions::default();
    let mut group = c.benchmark_group("roundtrip");
    group.throughput(Throughput::Elements(1));
    for size in [64usize, 4096] {
        let request = Bytes::from(echo_request_bytes(size));
        // Connect and warm up outside the measurement.
        channel
            .call(SERVICE, METHOD, request.clone(), &options, None)
            .expect("echo works");
        group.bench_function(format!("blocking_call/{size}B"), |b| {
            b.iter(|| {
                let reply = channel
                    .call(SERVICE, METHOD, request.clone(), &options, None)
                    .expect("echo call");
                assert_eq!(reply.len(), request.len());
            })
        });
        group.bench_function(format!("pipelined_depth{DEPTH}/{size}B"), |b| {
            b.iter_custom(|iters| pipelined(&channel, &request, iters, DEPTH))
        });
    }
    group.finish();
    drop(channel);
    server.shutdown();
    server.wait();
}

criterion_group!(benches, roundtrip);
criterion_main!(benches);
