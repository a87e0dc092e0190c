//! `regscale`: the registry at fleet scale, the measuring half of
//! `scripts/registry_scale.sh`. N simulated providers (each a real
//! `Registrar`: its own ZooKeeper session and ephemeral node) and M
//! simulated consumers (each a real `ZkDiscover`: its own session and
//! watch, in as few consumer processes as the file-descriptor limit
//! allows) against a running ensemble. It times registration, how long
//! every consumer takes to see one provider leave or join, the idle cost of
//! the sessions and a rolling restart of every provider, and reads the
//! ensemble's load from `mntr` and /proc. Progress goes to stderr, the
//! results as one JSON line to stdout.

mod consumers;
mod coordinator;
mod ensemble;
mod fleet;
mod probe;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Measures the ZooKeeper registry with N providers and M consumers.
#[derive(Debug, Parser)]
#[command(name = "regscale", version)]
struct Args {
    /// The ensemble's connect string (its servers must answer `mntr`).
    #[arg(long, value_name = "HOST:PORT,...")]
    zk: Option<String>,
    /// Simulated providers (one session and one ephemeral node each).
    #[arg(long, short = 'n', default_value_t = 10)]
    providers: usize,
    /// Simulated consumers (one session and one watch each).
    #[arg(long, short = 'm', default_value_t = 100)]
    consumers: usize,
    /// Consumers per consumer process (each holds about 3 file descriptors).
    #[arg(long, default_value_t = 4_000)]
    consumers_per_process: usize,
    /// Leave-then-join events to time.
    #[arg(long, default_value_t = 3)]
    events: usize,
    /// Skip the rolling restart of every provider.
    #[arg(long)]
    no_rolling: bool,
    /// Pause between two providers' restarts in the rolling restart.
    #[arg(long, default_value_t = 0)]
    restart_pause_ms: u64,
    /// Seconds to measure the idle cost of the sessions.
    #[arg(long, default_value_t = 5)]
    idle_s: u64,
    /// ZooKeeper session timeout of every session.
    #[arg(long, default_value_t = 10_000)]
    session_timeout_ms: u64,
    /// Sessions opened at once (per process).
    #[arg(long, default_value_t = 16)]
    threads: usize,
    /// Give up on a consumer's convergence after this long.
    #[arg(long, default_value_t = 60)]
    converge_timeout_s: u64,
    /// Process ids of the ensemble's JVMs, for their CPU and memory.
    #[arg(long, value_delimiter = ',')]
    zk_pids: Vec<u32>,
    /// A label copied into the results.
    #[arg(long, default_value = "")]
    label: String,
    #[command(subcommand)]
    command: Option<Internal>,
}

#[derive(Debug, Subcommand)]
enum Internal {
    /// (internal) A consumer process, driven over stdin/stdout by the coordinator.
    #[command(hide = true)]
    Consumers {
        #[arg(long)]
        zk: String,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        session_timeout_ms: u64,
        #[arg(long)]
        threads: usize,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.command {
        Some(Internal::Consumers {
            zk,
            count,
            session_timeout_ms,
            threads,
        }) => consumers::run(
            zk,
            *count,
            Duration::from_millis(*session_timeout_ms),
            *threads,
        ),
        None => plan(&args)
            .and_then(|plan| coordinator::run(&plan))
            .map(|results| println!("{results}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("regscale: {e}");
            ExitCode::FAILURE
        }
    }
}

fn plan(args: &Args) -> Result<coordinator::Plan, String> {
    let connect = args.zk.clone().ok_or("--zk is required (see --help)")?;
    if args.providers == 0 {
        return Err("--providers must be at least 1".into());
    }
    let servers = servers(&connect)?;
    Ok(coordinator::Plan {
        connect,
        providers: args.providers,
        consumers: args.consumers,
        consumers_per_process: args.consumers_per_process,
        events: args.events,
        rolling: !args.no_rolling,
        restart_pause: Duration::from_millis(args.restart_pause_ms),
        idle: Duration::from_secs(args.idle_s),
        session_timeout: Duration::from_millis(args.session_timeout_ms),
        threads: args.threads,
        converge_timeout: Duration::from_secs(args.converge_timeout_s),
        ensemble: ensemble::Ensemble {
            servers,
            pids: args.zk_pids.clone(),
        },
        label: args.label.clone(),
    })
}

/// The servers of a connect string (`host:port,...`, an optional `/chroot` ignored).
fn servers(connect: &str) -> Result<Vec<SocketAddr>, String> {
    let hosts = connect.split('/').next().unwrap_or_default();
    hosts
        .split(',')
        .map(|host| {
            host.to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .ok_or_else(|| format!("--zk: `{host}` is not a host:port"))
        })
        .collect()
}
