//! `loadgen`: drives an RPC server open loop at a fixed rate or closed loop
//! to saturation and reports HDR latency percentiles. Every target (our
//! provider, redis, tonic, Volo, the seed's format) is driven by the same
//! engine through a per-protocol encoder/decoder; `--target mprpc --client
//! channel` drives ours through the framework's own `Channel` instead. See
//! `loadgen --help`. `loadgen worker` and `--workers K` spread one run
//! over several machines (see `distributed`).

mod certs;
mod cli;
mod cpu;
mod distributed;
mod driver;
mod engine;
mod ledger;
mod mprpc_target;
mod protocol;
mod recorder;
mod report;
mod schedule;
mod tls_io;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use mprpc::discovery::{Endpoint, WireFormat};
use mprpc::net::auth::AuthToken;
use mprpc_cli::{encode_json_request, BytesAs, JsonRequest, SchemaFrom};
use mprpc_examples::bench::EchoRequest;

use cli::{Args, ClientKind, Command, TargetKind};
use driver::{run_blocking, run_sender, Plan, Target};
use engine::EnginePlan;
use protocol::Protocol;
use recorder::{snapshot, Recorder, Snapshot};
use report::{curve, fmt_us, ChannelCount, LagPercentiles, Percentiles, Report};
use schedule::Schedule;

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.command {
        Some(Command::Worker(worker)) => distributed::worker::serve(worker),
        Some(Command::Certs(certs)) => certs::write(&certs.dir),
        None if args.worker_child => distributed::child::run(),
        None if args.workers.is_some() => args
            .check()
            .and_then(|()| distributed::coordinator::run(&args)),
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

/// The `--payload` bytes of an Echo call.
fn payload(args: &Args) -> Vec<u8> {
    (0..args.payload).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The request to send, and the reply length that proves an echo.
fn request(args: &Args) -> Result<(Bytes, Option<usize>), String> {
    if let Some(hex) = &args.request_hex {
        return Ok((
            cli::parse_hex(hex)
                .map_err(|e| format!("--request-hex: {e}"))?
                .into(),
            None,
        ));
    }
    if let Some(path) = &args.request_file {
        let bytes =
            std::fs::read(path).map_err(|e| format!("--request-file {}: {e}", path.display()))?;
        return Ok((bytes.into(), None));
    }
    if let Some(json) = &args.request_json {
        let encoded = json_request(args, json).map_err(|e| format!("--request-json: {e}"))?;
        return Ok((encoded.into(), None));
    }
    if args.method == "Echo" {
        // The same message in the tonic mode.
        let encoded = prost::Message::encode_to_vec(&EchoRequest {
            payload: payload(args).into(),
        });
        let len = encoded.len();
        return Ok((encoded.into(), Some(len)));
    }
    Ok((Bytes::new(), None))
}

/// `--request-json` encoded through the service's schema (mprpc-cli's, as
/// `mprpc call` does): asked of the --addr provider or of one found in --zk,
/// with the run's TLS settings and token, unless --proto files give it.
fn json_request(args: &Args, json: &str) -> Result<Vec<u8>, String> {
    let provider = match &args.addr {
        Some(_) => Some(Endpoint::new(direct_addr(args)?).format(match args.target {
            TargetKind::Seed => WireFormat::Seed,
            _ => WireFormat::Mprpc,
        })),
        None => None,
    };
    let mut client = mprpc::Config::default();
    client.registry.zookeeper = args.zk.clone();
    client.registry.root = args.zk_root.clone();
    client.registry.session_timeout = args.timeout;
    client.channel.tls = mprpc_target::client_tls(args)?;
    client.channel.call_timeout = args.timeout;
    if let Some(token) = &args.token {
        let token = AuthToken::new(token).map_err(|e| format!("--token: {e}"))?;
        client.channel.auth_token = Some(token);
    }
    let from = SchemaFrom {
        protos: args.proto.clone(),
        import_paths: args.import_paths.clone(),
        provider,
        client,
    };
    let request = JsonRequest {
        service: &args.service,
        method: &args.method,
        json,
        bytes: if args.bytes_text {
            BytesAs::Text
        } else {
            BytesAs::Base64
        },
    };
    encode_json_request(&from, request)
}

/// Where a run gets its start instant and where its progress and result
/// go: the terminal and report files ([`Local`]), or a distributed
/// worker's frames (`distributed::child`).
trait RunIo: Sync {
    /// The target answered its probe; returns the instant the load starts.
    fn ready(&self) -> Result<Instant, String>;
    /// Once a second: the progress line and the cumulative figures.
    fn tick(&self, line: &str, s: &Snapshot);
    /// The run is over.
    fn finish(&self, args: &Args, end: Finished) -> Result<(), String>;
}

/// A finished run, for [`RunIo::finish`].
struct Finished {
    started_at_utc: String,
    connections: usize,
    source: Source,
    snapshot: Snapshot,
    /// CPU time of the server (`--cpu-pid`) and of loadgen in the window.
    cpu: Option<cpu::CpuUsage>,
}

/// A single run: starts at once, prints, writes the report files.
struct Local;

impl RunIo for Local {
    fn ready(&self) -> Result<Instant, String> {
        Ok(Instant::now() + Duration::from_millis(20))
    }

    fn tick(&self, line: &str, _: &Snapshot) {
        println!("{line}");
    }

    fn finish(&self, args: &Args, end: Finished) -> Result<(), String> {
        let mut report = build_report(
            args,
            end.started_at_utc,
            end.connections,
            end.source,
            &end.snapshot,
        );
        report.cpu = end.cpu;
        print_and_write(args, &report, &end.snapshot.latency)
    }
}

/// Prints the summary and writes the report files (unless --no-write).
fn print_and_write(
    args: &Args,
    report: &Report,
    latency: &hdrhistogram::Histogram<u64>,
) -> Result<(), String> {
    println!("\n{}", report.summary());
    if !args.no_write {
        let path = report.write(&args.out_dir, latency).map_err(|e| {
            format!(
                "cannot write the report into {}: {e}",
                args.out_dir.display()
            )
        })?;
        println!("report: {}", path.display());
    }
    Ok(())
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

fn direct_addr(args: &Args) -> Result<SocketAddr, String> {
    let addr = args
        .addr
        .as_ref()
        .ok_or_else(|| format!("--target {} needs --addr HOST:PORT", target_name(args)))?;
    std::net::ToSocketAddrs::to_socket_addrs(addr.as_str())
        .map_err(|e| format!("--addr {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("--addr {addr}: no address"))
}

/// The size of the message carried (not the protocol's framing).
fn proto_request_bytes(args: &Args) -> usize {
    request(args).map_or(0, |(r, _)| r.len())
}

fn target_name(args: &Args) -> String {
    format!("{:?}", args.target).to_lowercase()
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

/// Where the load went, for the report (a distributed worker sends it
/// with its result).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Source {
    endpoint: String,
    names: Vec<String>,
    discovered: Vec<String>,
    counted_per: String,
    request_bytes: usize,
    /// Which client sent: "engine", "channel" or "blocking".
    client: String,
    /// Calls outstanding per connection (engine) or in all (channel).
    window: usize,
}

/// Runs `sender` on `--threads` threads (each with its `Plan` and
/// `Recorder`), reports progress every second, then the result, all
/// through `io`.
fn measure(
    args: &Args,
    connections: usize,
    source: Source,
    sender: impl Fn(&Plan, &'static Recorder) + Sync,
    io: &dyn RunIo,
) -> Result<(), String> {
    let threads = args.threads as usize;
    let start = io.ready()?;
    let started_at_utc = report::utc_now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let qps = args.qps.fixed();
    let cap_total = args.in_flight as usize;
    let sender = &sender;

    let (recorders, cpu) = std::thread::scope(|scope| -> Result<_, String> {
        let (tx, rx) = mpsc::channel();
        for t in 0..threads {
            let tx = tx.clone();
            let plan = Plan {
                thread: t,
                start,
                end,
                // This process's threads within the whole run's schedule
                // (a distributed worker's share is q of q·K).
                schedule: qps.map(|q| {
                    let (thread, of) = args.slice.thread(t, threads);
                    Schedule::new(start, q * args.slice.of as f64, thread, of)
                }),
                // Split the cap; the first threads take the remainder.
                cap: (cap_total / threads + usize::from(t < cap_total % threads)).max(1),
            };
            std::thread::Builder::new()
                .name(format!("loadgen-{t}"))
                .spawn_scoped(scope, move || {
                    let rec = Recorder::new(measure_from, end, connections, std::thread::current());
                    let _ = tx.send(rec);
                    sender(&plan, rec);
                })
                .map_err(|e| format!("cannot start a sender thread: {e}"))?;
        }
        drop(tx);
        let cpu = scope.spawn(move || cpu::measure_window(&args.cpu_pid, measure_from, end));
        let recorders: Vec<&'static Recorder> = rx.iter().take(threads).collect();
        progress(&recorders, start, measure_from, end, io);
        let cpu = cpu
            .join()
            .map_err(|_| "the CPU sampler panicked".to_string())?;
        Ok((recorders, cpu))
    })?;

    let snapshot = snapshot(&recorders);
    let cpu = match cpu {
        Ok(window) => Some(window.usage(snapshot.sent_in_window)),
        Err(e) => {
            eprintln!("loadgen: no CPU figures: {e}");
            None
        }
    };
    let end = Finished {
        started_at_utc,
        connections,
        source,
        snapshot,
        cpu,
    };
    io.finish(args, end)
}

/// Open loop: the rate is held when the measured send rate is within 1% of
/// the target, nothing due more than 1 ms before the window's end was left
/// unsent and the send lag's p99 is at most 1 ms. Closed loop has no rate
/// target: held when nothing was left unanswered.
fn target_held(target: Option<f64>, achieved: f64, s: &recorder::Snapshot) -> bool {
    not_held_because(target, achieved, s).is_empty()
}

/// Which of [`target_held`]'s rules the run broke, in words (none: held).
fn not_held_because(target: Option<f64>, achieved: f64, s: &recorder::Snapshot) -> Vec<String> {
    let lag_p99 = if s.lag.is_empty() {
        0
    } else {
        s.lag.value_at_quantile(0.99)
    };
    let limit_us = recorder::LAG_LIMIT.as_micros() as u64;
    let mut broken = Vec::new();
    match target {
        Some(q) => {
            if achieved < 0.99 * q {
                broken.push(format!(
                    "sent {achieved:.0}/s, {:.1}% of the target (needs 99%)",
                    100.0 * achieved / q
                ));
            }
            if s.unsent_late > 0 {
                broken.push(format!(
                    "{} calls due more than 1 ms before the end were never sent",
                    s.unsent_late
                ));
            }
            if lag_p99 > limit_us {
                broken.push(format!(
                    "send lag p99 {lag_p99} µs is over {limit_us} µs (the sender fell behind)"
                ));
            }
        }
        None if s.unanswered > 0 => {
            broken.push(format!("{} calls were never answered", s.unanswered))
        }
        None => {}
    }
    broken
}

fn build_report(
    args: &Args,
    started_at_utc: String,
    connections: usize,
    source: Source,
    s: &recorder::Snapshot,
) -> Report {
    let duration_s = args.duration.as_secs_f64();
    let qps = args.qps.fixed();
    let achieved_qps = s.sent_in_window as f64 / duration_s;
    // The Channel's I/O threads; the engine's loops are its sender threads.
    let io_threads = (source.client != "engine").then_some(args.io_threads);
    Report {
        label: args.label.clone(),
        target: target_name(args),
        client: source.client,
        io_threads,
        mode: if qps.is_some() { "open" } else { "closed" }.into(),
        command: std::env::args().collect(),
        started_at_utc,
        endpoint: source.endpoint,
        service: args.service.clone(),
        method: args.method.clone(),
        also_call: args.also_call.as_ref().map(ToString::to_string),
        connections: args.connections,
        channels: connections,
        threads: args.threads,
        in_flight: args.in_flight,
        window: source.window,
        request_bytes: source.request_bytes,
        warmup_s: args.warmup.as_secs_f64(),
        duration_s,
        target_qps: qps,
        achieved_qps,
        ok_qps: (s.completed - s.errors) as f64 / duration_s,
        target_held: target_held(qps, achieved_qps, s),
        not_held_because: not_held_because(qps, achieved_qps, s),
        cpu: None,
        sent: s.sent_measured,
        sent_total: s.sent,
        unsent: s.unsent,
        unanswered: s.unanswered,
        completed: s.completed,
        errors: s.errors,
        errors_by_code: s.errors_by_code.clone(),
        delayed: s.delayed,
        send_lag_us: LagPercentiles::of(&s.lag),
        latency_us: Percentiles::of(&s.latency),
        service_time_us: Percentiles::of(&s.service),
        ok_latency_us: Percentiles::of(&s.ok_latency),
        latency_curve: curve(&s.latency),
        per_channel: source
            .names
            .into_iter()
            .zip(&s.per_conn)
            .map(|(name, &calls)| ChannelCount { name, calls })
            .collect(),
        discovered_providers: source.discovered,
        counted_per: source.counted_per,
        workers: Vec::new(),
    }
}

/// One line per second until the senders are done.
fn progress(
    recorders: &[&'static Recorder],
    start: Instant,
    measure_from: Instant,
    end: Instant,
    io: &dyn RunIo,
) {
    let mut last_done = 0u64;
    let mut last_at = start;
    let mut tick = start + Duration::from_secs(1);
    loop {
        let now = Instant::now();
        if tick > now {
            std::thread::sleep(tick - now);
        }
        let s = snapshot(recorders);
        let now = Instant::now();
        // Calls completed in this second, warm-up included, from `sent - in_flight`.
        let done = s.sent.saturating_sub(s.in_flight);
        let rate =
            done.saturating_sub(last_done) as f64 / now.duration_since(last_at).as_secs_f64();
        let phase = phase(now, measure_from, end);
        io.tick(
            &progress_line(now.duration_since(start), phase, rate, &s),
            &s,
        );
        last_done = done;
        last_at = now;
        tick += Duration::from_secs(1);
        if now >= end && s.in_flight == 0 {
            break;
        }
        if now >= end + Duration::from_secs(30) {
            break;
        }
    }
}

/// Which part of the run `now` is in, padded for the progress line.
fn phase(now: Instant, measure_from: Instant, end: Instant) -> &'static str {
    if now < measure_from {
        "warmup "
    } else if now < end {
        "measure"
    } else {
        "drain  "
    }
}

/// One progress line: time since the start, phase, the completion rate of
/// the last second, and the cumulative figures.
fn progress_line(elapsed: Duration, phase: &str, rate: f64, s: &Snapshot) -> String {
    let q = |p: f64| {
        fmt_us(if s.latency.is_empty() {
            0
        } else {
            s.latency.value_at_quantile(p)
        })
    };
    format!(
        "[{:>4.0}s] {phase} rate {:>9.0}/s  measured {:>9}  errors {:>6}  in-flight {:>6}  p50 {:>8}  p99 {:>8}",
        elapsed.as_secs_f64(),
        rate,
        s.completed,
        s.errors,
        s.in_flight,
        q(0.5),
        q(0.99),
    )
}
