//! `loadgen`: drives an RPC server open loop at a fixed rate or closed loop
//! to saturation and reports HDR latency percentiles. Every target (our
//! provider, redis, tonic, Volo, the seed's format) is driven by the same
//! engine through a per-protocol encoder/decoder; `--target mprpc --client
//! channel` drives ours through the framework's own `Channel` instead. See
//! `loadgen --help`. `--stream server|client|bidi` drives a streaming
//! method instead (see `stream`). `loadgen worker` and `--workers K` spread one run
//! over several machines (see `distributed`).

mod certs;
mod cli;
mod cpu;
mod distributed;
mod driver;
mod engine;
mod ledger;
mod measure;
mod mprpc_target;
mod protocol;
mod recorder;
mod report;
mod request;
mod schedule;
mod stream;
mod tally;
mod tls_io;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;

use cli::{Args, ClientKind, Command, TargetKind};
use driver::{run_blocking, run_sender, Plan, Target};
use engine::EnginePlan;
use measure::{measure, Local, RunIo, Source};
// The distributed worker and coordinator report through these, as a local run does.
use measure::{build_report, phase, print_and_write, progress_line, target_held, Finished};
use protocol::Protocol;
use request::{direct_addr, payload, proto_request_bytes, request};

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.command {
        Some(Command::Worker(worker)) => distributed::worker::serve(worker),
        Some(Command::Certs(certs)) => certs::write(&certs.dir),
        None if args.worker_child => distributed::child::run(),
        None if args.workers.is_some() => args
            .check()
            .and_then(|()| distributed::coordinator::run(&args)),
        None if args.stream.stream.is_some() => args.check().and_then(|()| stream::run(&args)),
        None => args.check().and_then(|()| run(&args, &Local)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args, io: &dyn RunIo) -> Result<(), String> {
    let (request, expect_len) = request(args)?;
    match args.target {
        TargetKind::Mprpc => run_mprpc(args, request, expect_len, io),
        TargetKind::Redis => run_direct(args, &protocol::resp::Resp, io),
        TargetKind::Tonic => {
            let addr = direct_addr(args)?;
            let path = if args.service.contains('.') {
                format!("/{}/{}", args.service, args.method)
            } else {
                format!("/mprpc.bench.{}/{}", args.service, args.method)
            };
            run_direct(
                args,
                &protocol::grpc::Grpc::new(&addr.to_string(), &path, &request),
                io,
            )
        }
        TargetKind::Volo => run_direct(
            args,
            &protocol::thrift::Thrift::new(&args.method, &payload(args)),
            io,
        ),
        TargetKind::Seed => {
            let seed = protocol::seed::Seed::new(&args.service, &args.method, &request, expect_len);
            run_direct(args, &seed, io)
        }
    }
}

/// `--target mprpc`: providers from ZooKeeper or `--addr`, driven by the
/// framework's `Channel` or by the engine (`--client raw`).
fn run_mprpc(
    args: &Args,
    request: Bytes,
    expect_len: Option<usize>,
    io: &dyn RunIo,
) -> Result<(), String> {
    if args.client == ClientKind::Raw && args.zk.is_none() {
        // The engine alone: no `Channel` (its I/O thread and its own
        // connections would share the client's core with the engine).
        let addr = direct_addr(args)?;
        let proto = protocol::mprpc::Mprpc::new(&args.service, &args.method, request, expect_len);
        let tls = mprpc_target::client_tls(args)?;
        engine::probe(&proto, addr, tls.as_ref(), Duration::from_secs(2))?;
        return run_engine(
            args,
            &proto,
            vec![addr],
            tls,
            addr.to_string(),
            Vec::new(),
            io,
        );
    }
    // 'static: closed-loop completions start the next call themselves.
    let target: &'static mprpc_target::MprpcTarget = Box::leak(Box::new(
        mprpc_target::MprpcTarget::connect(args, request.clone(), expect_len)?,
    ));
    target.probe()?;
    let endpoint = args
        .zk
        .as_ref()
        .map(|zk| format!("zk://{zk}{}", args.zk_root))
        .or(args.addr.clone())
        .unwrap_or_default();
    let discovered = target.discovered.clone();
    if args.client == ClientKind::Raw {
        let addrs: Vec<SocketAddr> = if discovered.is_empty() {
            vec![direct_addr(args)?]
        } else {
            discovered
                .iter()
                .map(|a| a.parse().map_err(|e| format!("provider {a}: {e}")))
                .collect::<Result<_, String>>()?
        };
        let proto = protocol::mprpc::Mprpc::new(&args.service, &args.method, request, expect_len);
        let tls = mprpc_target::client_tls(args)?;
        return run_engine(args, &proto, addrs, tls, endpoint, discovered, io);
    }
    let counted_per = if args.pin_providers {
        "provider"
    } else {
        "channel"
    };
    let names = target.describe.clone();
    let drain = args.timeout + Duration::from_secs(1);
    let blocking = args.client == ClientKind::Blocking;
    if blocking && args.qps.fixed().is_some() {
        return Err("--client blocking is closed loop only: use --qps max".into());
    }
    let connections = target.connections();
    let sender = |plan: &Plan, rec| {
        if blocking {
            run_blocking(plan, rec, connections, |c| target.call_blocking(c))
        } else {
            run_sender(target, plan, rec, drain)
        }
    };
    let source = Source {
        endpoint,
        names,
        discovered,
        counted_per: counted_per.into(),
        request_bytes: request.len(),
        client: if blocking { "blocking" } else { "channel" }.into(),
        window: args.in_flight as usize,
    };
    measure(args, target.connections(), source, sender, io)?;
    if let Some(path) = &args.ledger {
        let calls = target.write_ledger(path)?;
        println!("ledger: {} ({calls} calls)", path.display());
    }
    Ok(())
}

/// A target at `--addr`, driven by the engine after one probe call.
fn run_direct<P: Protocol>(args: &Args, proto: &P, io: &dyn RunIo) -> Result<(), String> {
    let addr = direct_addr(args)?;
    // Only gRPC takes --tls-ca here (`Args::check`); HTTP/2 over TLS is
    // agreed through ALPN.
    let tls = mprpc_target::client_tls(args)?.map(|t| t.with_alpn(vec![b"h2".to_vec()]));
    engine::probe(proto, addr, tls.as_ref(), Duration::from_secs(2))?;
    run_engine(
        args,
        proto,
        vec![addr],
        tls,
        addr.to_string(),
        Vec::new(),
        io,
    )
}

/// Each sending thread drives its share of the connections with the engine.
fn run_engine<P: Protocol>(
    args: &Args,
    proto: &P,
    addrs: Vec<SocketAddr>,
    tls: Option<mprpc::net::tls::ClientTls>,
    endpoint: String,
    discovered: Vec<String>,
    io: &dyn RunIo,
) -> Result<(), String> {
    let threads = args.threads as usize;
    let connections = (args.connections as usize).max(threads);
    let window = (args.in_flight as usize / connections).max(1);
    let per_thread = |t: usize| connections / threads + usize::from(t < connections % threads);
    let first_conn = |t: usize| (0..t).map(per_thread).sum::<usize>();
    let names = (0..connections)
        .map(|i| format!("{} #{i}", addrs[i % addrs.len()]))
        .collect();
    let sender = |plan: &Plan, rec| {
        let engine_plan = EnginePlan {
            addrs: addrs.clone(),
            connections: per_thread(plan.thread),
            window,
            first_conn: first_conn(plan.thread),
            start: plan.start,
            end: plan.end,
            drain: args.timeout + Duration::from_secs(1),
            schedule: plan.schedule,
            tls: tls.clone(),
        };
        if let Err(e) = engine::run(proto, &engine_plan, rec) {
            eprintln!("loadgen: engine thread {}: {e}", plan.thread);
        }
    };
    let source = Source {
        endpoint,
        names,
        discovered,
        counted_per: "connection".into(),
        request_bytes: proto_request_bytes(args),
        client: "engine".into(),
        window,
    };
    measure(args, connections, source, sender, io)
}
