//! `volo-echo-server`: the Volo (volo-thrift) unary echo baseline for the
//! comparison: `EchoService.Echo` from `loadgen/thrift/echo.thrift`, framed
//! binary Thrift (the configuration of Volo's published benchmark), on a
//! multi-threaded tokio runtime with `--workers` threads. Prints
//! `listening on ADDR` once the port accepts connections.
//!
//! By default, as Volo's users run it, a connection's calls are answered
//! one at a time; `--multiplex` turns on Volo's non-default multiplexed
//! server (calls on one connection handled concurrently, replies matched
//! by seqid), for the comparison's pipelined row.

use std::net::SocketAddr;

use clap::Parser;

mod gen {
    include!(concat!(env!("OUT_DIR"), "/volo_gen.rs"));
}

use gen::volo_gen::echo::{EchoRequest, EchoResponse, EchoService, EchoServiceServer};

/// Serves EchoService.Echo over framed binary Thrift (Volo).
#[derive(Debug, Parser)]
#[command(name = "volo-echo-server", version)]
struct Args {
    /// Address to listen on (Volo binds it itself: give a free port).
    #[arg(long)]
    addr: SocketAddr,
    /// tokio worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Handle the calls of one connection concurrently (Volo's
    /// `multiplex`, off by default).
    #[arg(long)]
    multiplex: bool,
}

struct Echo;

impl EchoService for Echo {
    async fn echo(&self, req: EchoRequest) -> Result<EchoResponse, volo_thrift::ServerError> {
        Ok(EchoResponse {
            payload: req.payload,
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        builder.worker_threads(n);
    }
    let runtime = builder.enable_all().build()?;
    let addr = args.addr;
    let multiplex = args.multiplex;
    runtime.spawn(async move {
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                println!("listening on {addr}");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        eprintln!("volo-echo-server: {addr} never accepted a connection");
    });
    runtime
        .block_on(async move {
            EchoServiceServer::new(Echo)
                .multiplex(multiplex)
                .run(volo::net::Address::from(addr))
                .await
        })
        .map_err(|e| format!("serving {addr}: {e}"))?;
    Ok(())
}
