//! Shared pieces of the benches: the echo service, request builders, a tiny
//! deterministic RNG and a counting global allocator.
//!
//! The messages are the ones `mprpc-build` generates for `proto/bench.proto`
//! (`mprpc.bench`, in the examples crate, a dev-dependency). The echo
//! service below is what it generates for `EchoService`, written out so that
//! the dispatcher the benches measure is in plain sight: `Service::call` has
//! the same body as the generated one (match on the method, prost decode,
//! handler, reserve + prost encode), so dispatch costs measured here are the
//! generated code's.

#![allow(dead_code)] // each bench binary uses a different subset
#![allow(unreachable_pub)] // `pub` for every bench binary that declares `mod common`

pub mod alloc_paths;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use mprpc::{CallContext, Service, Status};
pub use mprpc_examples::bench::{EchoRequest, EchoResponse};

/// `EchoServiceServer<Echo>` as generated: answers `Echo` with the payload.
pub struct EchoServer;

impl EchoServer {
    pub const SERVICE_NAME: &'static str = "EchoService";
    pub const METHODS: &'static [&'static str] = &["Echo"];

    fn echo(&self, _ctx: &CallContext, request: EchoRequest) -> Result<EchoResponse, Status> {
        Ok(EchoResponse {
            payload: request.payload,
        })
    }
}

impl Service for EchoServer {
    fn name(&self) -> &'static str {
        Self::SERVICE_NAME
    }

    fn methods(&self) -> &'static [&'static str] {
        Self::METHODS
    }

    fn call(
        &self,
        method: &str,
        ctx: &CallContext,
        request: Bytes,
        response: &mut BytesMut,
    ) -> Result<(), Status> {
        match method {
            "Echo" => {
                let request = <EchoRequest as prost::Message>::decode(request).map_err(|e| {
                    Status::bad_request(format!(
                        "EchoService.Echo: cannot decode .mprpc.bench.EchoRequest: {e}"
                    ))
                })?;
                let reply = self.echo(ctx, request)?;
                response.reserve(prost::Message::encoded_len(&reply));
                prost::Message::encode(&reply, response).map_err(|e| {
                    Status::internal(format!("EchoService.Echo: cannot encode reply: {e}"))
                })
            }
            _ => Err(Status::unknown_method(Self::SERVICE_NAME, method)),
        }
    }
}

/// An encoded `EchoRequest` whose payload is `size` bytes.
pub fn echo_request_bytes(size: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
    prost::Message::encode_to_vec(&EchoRequest {
        payload: payload.into(),
    })
}

/// xorshift64: deterministic split points without a rand dependency.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The system allocator, counting every allocation (and reallocation, which
/// may move) process-wide. Install with `#[global_allocator]`.
pub struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

impl CountingAlloc {
    /// (allocations, bytes) since the process started.
    pub fn snapshot() -> (u64, u64) {
        (
            ALLOCATIONS.load(Ordering::Relaxed),
            ALLOCATED_BYTES.load(Ordering::Relaxed),
        )
    }
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}
