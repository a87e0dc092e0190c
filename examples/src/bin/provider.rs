//! `provider -i test.conf`: the seed's callee. Publishes UserServiceRpc and
//! FriendServiceRpc at the configured rpcserverip:rpcserverport, registers
//! them in ZooKeeper (unless `registry=none`) and serves until SIGINT or
//! SIGTERM, then shuts down gracefully (deregister, drain, close).

use std::process::ExitCode;

use clap::Parser;
use mprpc::prelude::*;
use mprpc_examples::fixbug::{FriendServiceRpcServer, UserServiceRpcServer};
use mprpc_examples::{FriendService, UserService};

/// Publishes the seed's example services (UserServiceRpc, FriendServiceRpc).
#[derive(Debug, Parser)]
#[command(name = "provider", version)]
struct Args {
    #[command(flatten)]
    app: mprpc::AppArgs,
}

fn main() -> ExitCode {
    let app = Application::init_with(&Args::parse().app);

    let mut provider = RpcProvider::new(&app.config);
    provider.notify_service(UserServiceRpcServer::new(UserService));
    // The friend lookup stands for slow work: it runs on the worker pool.
    provider.notify_blocking_service(FriendServiceRpcServer::new(FriendService));
    let handle = match provider.start() {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("provider: {e}");
            return ExitCode::FAILURE;
        }
    };
    handle.announce(); // the seed's service_name/method_name/start lines
    if let Err(e) = handle.stop_on_signals() {
        eprintln!("provider: cannot install signal handlers: {e}");
    }
    handle.wait();
    println!("RpcProvider stopped");
    println!("{}", handle.server().metrics());
    ExitCode::SUCCESS
}
