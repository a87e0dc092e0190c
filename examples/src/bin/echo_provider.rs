//! `echo-provider -i FILE`: serves `mprpc.bench` EchoService, the target of
//! the benchmarks and the load generator. Handlers run on the reactors.

use std::process::ExitCode;

use clap::Parser;
use mprpc::server::Server;
use mprpc_examples::bench::EchoServiceServer;
use mprpc_examples::{init_app, Echo};

/// Serves EchoService (each reply carries the request's payload back).
#[derive(Debug, Parser)]
#[command(name = "echo-provider", version)]
struct Args {
    #[command(flatten)]
    app: mprpc::AppArgs,
}

fn main() -> ExitCode {
    let app = init_app(&Args::parse().app);

    let mut server = Server::new(&app.config);
    server.add_service(EchoServiceServer::new(Echo));
    let handle = match server.start() {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!(
                "echo-provider: cannot serve at {}: {e}",
                app.config.rpc_server_addr()
            );
            return ExitCode::FAILURE;
        }
    };
    let addr = handle.local_addr();
    println!(
        "RpcProvider start service at ip:{} port:{}",
        addr.ip(),
        addr.port()
    );
    handle.wait();
    ExitCode::SUCCESS
}
