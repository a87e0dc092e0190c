//! `provider -i test.conf`: the seed's callee. Publishes UserServiceRpc and
//! FriendServiceRpc at the configured rpcserverip:rpcserverport and blocks.

use std::process::ExitCode;

use clap::Parser;
use mprpc::server::{Server, ServerHandle};
use mprpc_examples::fixbug::{FriendServiceRpcServer, UserServiceRpcServer};
use mprpc_examples::{init_app, FriendService, UserService};

/// Publishes the seed's example services (UserServiceRpc, FriendServiceRpc).
#[derive(Debug, Parser)]
#[command(name = "provider", version)]
struct Args {
    #[command(flatten)]
    app: mprpc::AppArgs,
}

fn main() -> ExitCode {
    let app = init_app(&Args::parse().app);

    let mut server = Server::new(&app.config);
    server.add_service(UserServiceRpcServer::new(UserService));
    // The friend lookup stands for slow work: it runs on the worker pool.
    server.add_blocking_service(FriendServiceRpcServer::new(FriendService));
    let handle = match server.start() {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!(
                "provider: cannot serve at {}: {e}",
                app.config.rpc_server_addr()
            );
            return ExitCode::FAILURE;
        }
    };
    announce(&handle);
    handle.wait();
    ExitCode::SUCCESS
}

/// Prints what the seed's `NotifyService` and `Run` print.
fn announce(handle: &ServerHandle) {
    for (service, methods) in handle.services() {
        println!("service_name:{service}");
        for method in methods {
            println!("method_name:{method}");
        }
    }
    let addr = handle.local_addr();
    println!(
        "RpcProvider start service at ip:{} port:{}",
        addr.ip(),
        addr.port()
    );
}
