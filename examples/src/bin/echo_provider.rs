//! `echo-provider -i FILE`: serves `mprpc.bench` EchoService, the target of
//! the benchmarks and the load generator. Handlers run on the reactors. It
//! registers in ZooKeeper like any provider (unless `registry=none`) and
//! stops gracefully on SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use mprpc::prelude::*;
use mprpc_examples::bench::EchoServiceServer;
use mprpc_examples::Echo;

/// Serves EchoService (each reply carries the request's payload back).
#[derive(Debug, Parser)]
#[command(name = "echo-provider", version)]
struct Args {
    #[command(flatten)]
    app: mprpc::AppArgs,
}

fn main() -> ExitCode {
    let app = Application::init_with(&Args::parse().app);

    let mut provider = RpcProvider::new(&app.config);
    provider.notify_service(EchoServiceServer::new(Echo));
    let handle = match provider.start() {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("echo-provider: {e}");
            return ExitCode::FAILURE;
        }
    };
    handle.announce();
    if let Err(e) = handle.stop_on_signals() {
        eprintln!("echo-provider: cannot install signal handlers: {e}");
    }
    handle.wait();
    ExitCode::SUCCESS
}
