//! Dispatch microbenchmark: a decoded request through the generated echo
//! dispatcher (`dyn Service`: method match, prost decode, handler, prost
//! encode) into a reply frame in an output buffer: the server's per-call work
//! minus socket I/O. Also the same preceded by decoding the request frame.
//!
//! Run: `cargo bench --bench dispatch`.

#![allow(missing_docs)] // criterion_main! defines an undocumented `pub fn main`

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mprpc::protocol::mprpc::{
    encode_request, Decoder, Frame, Request, RequestHead, DEFAULT_MAX_FRAME,
};
use mprpc::{CallContext, Service};

mod common;
use common::{echo_request_bytes, EchoServer};

/// What the server's reactor does for a request in our wire format.
fn dispatch(service: &dyn Service, request: Request, ctx: &CallContext, out: &mut BytesMut) {
    mprpc::server::serve_request(service, request, ctx, out);
}

fn request_frame(size: usize) -> BytesMut {
    let mut buf = BytesMut::new();
    let head = RequestHead {
        id: 1,
        timeout_ms: 0,
        service: EchoServer::SERVICE_NAME,
        method: "Echo",
    };
    encode_request(head, &echo_request_bytes(size), &mut buf);
    buf
}

fn decode_one(decoder: &Decoder, buf: &mut BytesMut) -> Request {
    match decoder.decode(buf) {
        Ok(Some(Frame::Request(r))) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn bench_dispatch(c: &mut Criterion) {
    let service: &dyn Service = &EchoServer;
    let decoder = Decoder::new(DEFAULT_MAX_FRAME);
    let ctx = CallContext::new(1, None, SocketAddr::from((Ipv4Addr::LOCALHOST, 1)));
    let mut group = c.benchmark_group("dispatch");
    group.throughput(Throughput::Elements(1));
    for size in [64usize, 4096] {
        let frame = request_frame(size);
        let request = decode_one(&decoder, &mut frame.clone());
        let mut out = BytesMut::with_capacity(64 * 1024);
        group.bench_function(format!("echo/{size}B"), |b| {
            b.iter(|| {
                out.clear();
                dispatch(service, black_box(request.clone()), &ctx, &mut out);
                black_box(&out);
            })
        });
        // A frame read from a socket: copy into the read buffer, decode, run.
        let mut read_buf = BytesMut::with_capacity(64 * 1024);
        group.bench_function(format!("decode+echo/{size}B"), |b| {
            b.iter(|| {
                out.clear();
                read_buf.extend_from_slice(&frame);
                let request = decode_one(&decoder, &mut read_buf);
                dispatch(service, request, &ctx, &mut out);
                black_box(&out);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_dispatch);
criterion_main!(benches);
