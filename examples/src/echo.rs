//! The echo service the benchmarks and the load generator call.
//!
//! The request's payload is a `Bytes` slice of the received frame; handing
//! it back costs a reference count, not a copy. [`SlowEcho`] first waits,
//! as a handler waiting on a disk or a downstream service does: the
//! overload benchmark's server, whose capacity is its worker threads.

use std::time::Duration;

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
