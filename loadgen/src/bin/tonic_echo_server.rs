//! `tonic-echo-server`: the gRPC (tonic) unary echo baseline for the
//! comparison, serving `mprpc.bench.EchoService` from the same bench.proto.
//! Prints `listening on ADDR` once bound (ask for port 0 to get a free one).

use clap::Parser;
use tonic::{Request, Response, Status};

mod pb {
    tonic::include_proto!("mprpc.bench");
}

use pb::echo_service_server::{EchoService, EchoServiceServer};
use pb::{EchoRequest, EchoResponse};

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        builder.worker_threads(n);
    }
    builder.enable_all().build()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr).await?;
        println!("listening on {}", listener.local_addr()?);
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .add_service(EchoServiceServer::new(Echo))
            .serve_with_incoming(incoming)
            .await?;
        Ok(())
    })
}
