//! `bench.proto`'s `EchoStreamService`, the streaming target of `loadgen
//! --stream`: `Pump` sends as many replies as asked (a server stream),
//! `Collect` counts what it is sent (a client stream), `EchoStream` echoes
//! each request as it comes (bidirectional). Replies share one payload
//! buffer (a reference count each, no copy), as `Echo` does.

use std::sync::Arc;

use bytes::Bytes;
use mprpc::service::stream::{StreamSender, Streaming};
use mprpc::{CallContext, Status};

use crate::bench::{EchoRequest, EchoResponse, EchoStreamService, PumpRequest, StreamSummary};

/// The largest `PumpRequest.size` served (a larger one is a bad request).
pub const MAX_PUMP_SIZE: u32 = 16 << 20;

/// Serves `EchoStreamService`.
#[derive(Debug, Default, Clone, Copy)]
pub struct EchoStreams;

impl EchoStreamService for EchoStreams {
    async fn pump(
        self: Arc<Self>,
        _ctx: CallContext,
        request: PumpRequest,
        sink: StreamSender<EchoResponse>,
    ) -> Result<(), Status> {
        if request.size > MAX_PUMP_SIZE {
            return Err(Status::bad_request(format!(
                "size {} is over {MAX_PUMP_SIZE} bytes",
                request.size
            )));
        }
        let payload = Bytes::from(vec![0u8; request.size as usize]);
        for _ in 0..request.count {
            sink.send(EchoResponse {
                payload: payload.clone(),
            })
            .await?;
        }
        Ok(())
    }

    async fn collect(
        self: Arc<Self>,
        _ctx: CallContext,
        mut requests: Streaming<EchoRequest>,
    ) -> Result<StreamSummary, Status> {
        let mut summary = StreamSummary::default();
        while let Some(request) = requests.message().await? {
            summary.messages += 1;
            summary.bytes += request.payload.len() as u64;
        }
        Ok(summary)
    }

    async fn echo_stream(
        self: Arc<Self>,
        _ctx: CallContext,
        mut requests: Streaming<EchoRequest>,
        sink: StreamSender<EchoResponse>,
    ) -> Result<(), Status> {
        while let Some(request) = requests.message().await? {
            sink.send(EchoResponse {
                payload: request.payload,
            })
            .await?;
        }
        Ok(())
    }
}
