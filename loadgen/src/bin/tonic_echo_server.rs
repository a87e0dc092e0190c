//! `tonic-echo-server`: the gRPC (tonic) unary echo baseline for the
//! comparison, serving `mprpc.bench.EchoService` from the same bench.proto.
//! Prints `listening on ADDR` once bound (ask for port 0 to get a free one).
//! With `--tls-cert` and `--tls-key` it serves gRPC over TLS only (tonic's
//! rustls with ring, ALPN h2), for the comparison's cost-of-TLS rows.
//! It also serves `mprpc.bench.EchoStreamService` (`Pump`, `Collect`,
//! `EchoStream`), the streaming baseline of `scripts/streaming.sh`, driven
//! by `loadgen --stream KIND --target tonic`.

use clap::Parser;
use tonic::transport::{Identity, ServerTlsConfig};
use tonic::{Request, Response, Status};

mod pb {
    tonic::include_proto!("mprpc.bench");
}

use pb::echo_service_server::{EchoService, EchoServiceServer};
use pb::echo_stream_service_server::{EchoStreamService, EchoStreamServiceServer};
use pb::{EchoRequest, EchoResponse, PumpRequest, StreamSummary};
use tonic::codegen::tokio_stream::{self, Stream, StreamExt};

/// Serves mprpc.bench.EchoService over gRPC (tonic).
#[derive(Debug, Parser)]
#[command(name = "tonic-echo-server", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: std::net::SocketAddr,
    /// tokio worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Serve TLS with this certificate chain (PEM; `loadgen certs DIR`
    /// writes one for 127.0.0.1).
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

/// `--tls-cert`/`--tls-key` as tonic's TLS settings (`None`: plain TCP).
fn tls_config(args: &Args) -> Result<Option<ServerTlsConfig>, String> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let identity = Identity::from_pem(read(cert)?, read(key)?);
    Ok(Some(ServerTlsConfig::new().identity(identity)))
}

#[derive(Debug, Default)]
struct Echo;

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        Ok(Response::new(EchoResponse {
            payload: request.into_inner().payload,
        }))
    }
}

/// A reply stream, boxed as tonic's generated trait asks.
type Replies = std::pin::Pin<Box<dyn Stream<Item = Result<EchoResponse, Status>> + Send>>;

/// The largest `PumpRequest.size` served, as the echo provider's.
const MAX_PUMP_SIZE: u32 = 16 << 20;

#[tonic::async_trait]
impl EchoStreamService for Echo {
    type PumpStream = Replies;
    type EchoStreamStream = Replies;

    /// `count` replies sharing one payload buffer, yielded as fast as
    /// HTTP/2 flow control takes them (no channel or task in between:
    /// tonic's quickest server stream).
    async fn pump(&self, request: Request<PumpRequest>) -> Result<Response<Replies>, Status> {
        let PumpRequest { count, size } = request.into_inner();
        if size > MAX_PUMP_SIZE {
            return Err(Status::invalid_argument(format!(
                "size {size} is over {MAX_PUMP_SIZE} bytes"
            )));
        }
        let payload = bytes::Bytes::from(vec![0u8; size as usize]);
        let replies = tokio_stream::iter(0..count).map(move |_| {
            Ok::<_, Status>(EchoResponse {
                payload: payload.clone(),
            })
        });
        Ok(Response::new(Box::pin(replies)))
    }

    async fn collect(
        &self,
        request: Request<tonic::Streaming<EchoRequest>>,
    ) -> Result<Response<StreamSummary>, Status> {
        let mut requests = request.into_inner();
        let mut summary = StreamSummary::default();
        while let Some(request) = requests.message().await? {
            summary.messages += 1;
            summary.bytes += request.payload.len() as u64;
        }
        Ok(Response::new(summary))
    }

    /// Each request's payload back as one reply, in order.
    async fn echo_stream(
        &self,
        request: Request<tonic::Streaming<EchoRequest>>,
    ) -> Result<Response<Replies>, Status> {
        let replies = request
            .into_inner()
            .map(|request| request.map(|r| EchoResponse { payload: r.payload }));
        Ok(Response::new(Box::pin(replies)))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let tls = tls_config(&args)?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        builder.worker_threads(n);
    }
    builder.enable_all().build()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr).await?;
        println!("listening on {}", listener.local_addr()?);
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            server = server.tls_config(tls)?;
        }
        server
            .add_service(EchoServiceServer::new(Echo))
            .add_service(EchoStreamServiceServer::new(Echo))
            .serve_with_incoming(incoming)
            .await?;
        Ok(())
    })
}
