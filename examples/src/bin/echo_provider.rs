//! `echo-provider -i FILE`: serves `mprpc.bench` EchoService, the target of
//! the benchmarks and the load generator, and EchoStreamService (`loadgen
//! --stream`; its handlers always run on the reactors). Handlers run on the reactors;
//! with `--handler-sleep-us N` each call instead waits N µs on the worker
//! pool (a handler waiting on a disk or a downstream service: the overload
//! benchmark's server). With `--handler-ledger FILE` it records the number
//! of every call its handler ran (for the fault harness, `scripts/faults.sh`)
//! and appends them to FILE when it stops. It registers in ZooKeeper like
//! any provider (unless `registry=none`) and stops gracefully on SIGINT or
//! SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mprpc::prelude::*;
use mprpc_examples::bench::{EchoServiceServer, EchoStreamServiceServer};
use mprpc_examples::{Echo, EchoStreams, LedgeredEcho, SlowEcho};

/// Serves EchoService (each reply carries the request's payload back).
#[derive(Debug, Parser)]
#[command(name = "echo-provider", version)]
struct Args {
    #[command(flatten)]
    app: mprpc::AppArgs,
    /// Each call sleeps this many microseconds on the worker pool
    /// (`worker_threads`) before answering; 0: answer at once on the reactor.
    #[arg(long, value_name = "US", default_value_t = 0)]
    handler_sleep_us: u64,
    /// Record the call number (`loadgen --ledger`) of every handler run and
    /// append `number,ran_ms` lines to this file on a graceful stop.
    #[arg(long, value_name = "PATH", conflicts_with = "handler_sleep_us")]
    handler_ledger: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let app = Application::init_with(&args.app);

    let mut provider = RpcProvider::new(&app.config);
    let ledgered = LedgeredEcho::default();
    if args.handler_ledger.is_some() {
        provider.notify_service(EchoServiceServer::new(ledgered.clone()));
    } else if args.handler_sleep_us > 0 {
        let pause = Duration::from_micros(args.handler_sleep_us);
        provider.notify_blocking_service(EchoServiceServer::new(SlowEcho { pause }));
    } else {
        provider.notify_service(EchoServiceServer::new(Echo));
    }
    provider.notify_service(EchoStreamServiceServer::new(EchoStreams));
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
    if let Some(path) = &args.handler_ledger {
        if let Err(e) = ledgered.append_to(path) {
            eprintln!("echo-provider: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
