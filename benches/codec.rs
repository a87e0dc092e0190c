//! Wire codec microbenchmarks: encoding and decoding one request or response
//! frame (64 B and 4 KiB payloads), and decoding a stream of many frames that
//! arrives split at random points (partial and sticky packets), the way a
//! reactor sees it.
//!
//! Run: `cargo bench --bench codec`.

#![allow(missing_docs)] // criterion_main! defines an undocumented `pub fn main`

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mprpc::protocol::mprpc::{
    encode_request, encode_response, Decoder, Frame, RequestHead, DEFAULT_MAX_FRAME,
};
use mprpc::Code;

mod common;
use common::{echo_request_bytes, XorShift};

const SIZES: [usize; 2] = [64, 4096];
/// Frames per decode batch: decoding one frame takes nanoseconds, so a batch
/// keeps the per-iteration set-up (a fresh buffer) out of the figure.
const BATCH: usize = 256;

fn head(id: u64) -> RequestHead<'static> {
    RequestHead {
        id,
        timeout_ms: 1000,
        service: "EchoService",
        method: "Echo",
    }
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for size in SIZES {
        let payload = echo_request_bytes(size);
        let mut buf = BytesMut::with_capacity(2 * (size + 64));
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("request/{size}B"), |b| {
            let mut id = 0u64;
            b.iter(|| {
                buf.clear();
                id += 1;
                encode_request(head(id), black_box(&payload), &mut buf);
                black_box(&buf);
            })
        });
        group.bench_function(format!("response/{size}B"), |b| {
            let mut id = 0u64;
            b.iter(|| {
                buf.clear();
                id += 1;
                encode_response(id, Code::Ok, "", black_box(&payload), &mut buf);
                black_box(&buf);
            })
        });
    }
    group.finish();
}

/// A buffer holding `BATCH` frames made by `one`.
fn batch(one: impl Fn(u64, &mut BytesMut)) -> BytesMut {
    let mut buf = BytesMut::new();
    for id in 0..BATCH as u64 {
        one(id, &mut buf);
    }
    buf
}

fn decode_all(decoder: &Decoder, buf: &mut BytesMut) -> usize {
    let mut n = 0;
    while let Some(frame) = decoder.decode(buf).expect("valid frames") {
        black_box(&frame);
        n += 1;
    }
    n
}

fn decode(c: &mut Criterion) {
    let decoder = Decoder::new(DEFAULT_MAX_FRAME);
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(BATCH as u64));
    for size in SIZES {
        let payload = echo_request_bytes(size);
        let requests = batch(|id, buf| encode_request(head(id), &payload, buf));
        let responses = batch(|id, buf| encode_response(id, Code::Ok, "", &payload, buf));
        for (name, frames) in [("request", &requests), ("response", &responses)] {
            group.bench_function(format!("{name}/{size}B"), |b| {
                b.iter_batched_ref(
                    || frames.clone(),
                    |buf| assert_eq!(decode_all(&decoder, buf), BATCH),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

/// The stream of `BATCH` 64-byte requests cut into chunks of 1..=`max_chunk`
/// bytes at pseudo-random points: each chunk is appended to the read buffer
/// and every complete frame decoded, as a reactor does after each `read`.
fn decode_split(c: &mut Criterion) {
    let decoder = Decoder::new(DEFAULT_MAX_FRAME);
    let payload = echo_request_bytes(64);
    let stream = batch(|id, buf| encode_request(head(id), &payload, buf)).freeze();
    let mut group = c.benchmark_group("decode_split");
    group.throughput(Throughput::Elements(BATCH as u64));
    for max_chunk in [7usize, 100, 1500] {
        let mut rng = XorShift::new(max_chunk as u64);
        let mut cuts = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let len = 1 + rng.below(max_chunk);
            let end = (at + len).min(stream.len());
            cuts.push(at..end);
            at = end;
        }
        group.bench_function(format!("request_64B/chunks_upto_{max_chunk}B"), |b| {
            let mut buf = BytesMut::with_capacity(64 * 1024);
            b.iter(|| {
                let mut n = 0;
                for cut in &cuts {
                    buf.extend_from_slice(&stream[cut.clone()]);
                    while let Some(frame) = decoder.decode(&mut buf).expect("valid frames") {
                        if let Frame::Request(r) = &frame {
                            black_box(r.id);
                        }
                        n += 1;
                    }
                }
                assert_eq!(n, BATCH);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encode, decode, decode_split);
criterion_main!(benches);
