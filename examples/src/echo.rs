//! The echo service the benchmarks and the load generator call.
//!
//! The request's payload is a `Bytes` slice of the received frame; handing
//! it back costs a reference count, not a copy.

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
