//! `gateway -i gateway.conf`: a middle tier. Publishes GatewayServiceRpc,
//! whose GetUserPage calls UserServiceRpc.Login and
//! FriendServiceRpc.GetFriendsList concurrently on the providers it finds in
//! ZooKeeper (the `provider` example serves both) and merges the answers.
//! It registers itself in the same ZooKeeper and serves at the configured
//! rpcserverip:rpcserverport until SIGINT or SIGTERM.
//!
//! By default the handler answers later (its future is polled on the
//! reactors, no thread waits for the backends); `--blocking` runs the same
//! handler on the worker pool, each call holding a `worker_threads` thread
//! while it waits, for comparison (`scripts/chain.sh`).

use std::process::ExitCode;

use clap::Parser;
use mprpc::app::config::RegistryKind;
use mprpc::prelude::*;
use mprpc_examples::fixbug::GatewayServiceRpcServer;
use mprpc_examples::{Gateway, OnWorkerPool};

/// Publishes GatewayServiceRpc (GetUserPage: Login and GetFriendsList at
/// once, on providers found in ZooKeeper, merged).
#[derive(Debug, Parser)]
#[command(name = "gateway", version)]
struct Args {
    #[command(flatten)]
    app: mprpc::AppArgs,
    /// Run the handler on the worker pool (`worker_threads`), each call
    /// blocking a thread while it waits for the backends, instead of
    /// awaiting them on the reactors.
    #[arg(long)]
    blocking: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let app = Application::init_with(&args.app);
    if app.config.registry.kind == RegistryKind::None {
        eprintln!(
            "gateway: it finds UserServiceRpc and FriendServiceRpc in ZooKeeper; \
             remove registry=none from {}",
            args.app.config.display()
        );
        return ExitCode::FAILURE;
    }
    let channel = match mprpc::discovery::from_config(&app.config) {
        Ok(discover) => Channel::new(discover, ChannelOptions::from_config(&app.config)),
        Err(e) => {
            eprintln!("gateway: cannot find the backends: {e}");
            return ExitCode::FAILURE;
        }
    };
    let channel = match channel {
        Ok(channel) => channel,
        Err(e) => {
            eprintln!("gateway: cannot start the client: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut provider = RpcProvider::new(&app.config);
    let service = GatewayServiceRpcServer::new(Gateway::new(channel));
    if args.blocking {
        provider.notify_blocking_service(OnWorkerPool(service));
    } else {
        provider.notify_service(service);
    }
    let handle = match provider.start() {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.blocking {
        println!(
            "gateway: GetUserPage blocks one of {} worker threads per call",
            app.config.server.worker_threads
        );
    } else {
        println!("gateway: GetUserPage answers later, awaiting both backends on the reactors");
    }
    handle.announce();
    if let Err(e) = handle.stop_on_signals() {
        eprintln!("gateway: cannot install signal handlers: {e}");
    }
    handle.wait();
    println!("RpcProvider stopped");
    println!("{}", handle.server().metrics());
    ExitCode::SUCCESS
}
