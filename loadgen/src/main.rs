//! `loadgen`: stress mprpc providers (found in ZooKeeper or at an address)
//! or the tonic baseline, open loop at a fixed rate or closed loop to
//! saturation, and report HDR latency percentiles. See `loadgen --help`.

mod cli;
mod driver;
mod mprpc_target;
mod raw;
mod recorder;
mod report;
#[cfg(feature = "tonic")]
mod tonic_target;

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;

use cli::{Args, ClientKind, TargetKind};
use driver::{run_sender, Plan, Target};
use recorder::{snapshot, Recorder};
use report::{curve, fmt_us, ChannelCount, Percentiles, Report};

/// An encoded `mprpc.bench.EchoRequest` (the same message in the tonic mode).
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    #[prost(bytes = "bytes", tag = "1")]
    pub payload: Bytes,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
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
    if args.method == "Echo" {
        let payload: Vec<u8> = (0..args.payload).map(|i| b'a' + (i % 26) as u8).collect();
        let encoded = prost::Message::encode_to_vec(&EchoRequest {
            payload: payload.into(),
        });
        let len = encoded.len();
        return Ok((encoded.into(), Some(len)));
    }
    Ok((Bytes::new(), None))
}

fn run(args: &Args) -> Result<(), String> {
    let (request, expect_len) = request(args)?;
    match args.target {
        TargetKind::Mprpc => {
            let target = mprpc_target::MprpcTarget::connect(args, request.clone(), expect_len)?;
            target.probe()?;
            let endpoint = args
                .zk
                .as_ref()
                .map(|zk| format!("zk://{zk}{}", args.zk_root))
                .or(args.addr.clone())
                .unwrap_or_default();
            let counted_per = if args.pin_providers {
                "provider"
            } else {
                "channel"
            };
            let discovered = target.discovered.clone();
            if args.client == ClientKind::Raw {
                return run_raw(args, request, endpoint, discovered);
            }
            let names = target.describe.clone();
            let drain = args.timeout + Duration::from_secs(1);
            let sender = |plan: &Plan, rec| run_sender(&target, plan, rec, drain);
            let source = Source {
                endpoint,
                names,
                discovered,
                counted_per,
            };
            measure(args, request.len(), target.connections(), source, sender)
        }
        TargetKind::Tonic => run_tonic(args, request.len()),
    }
}

#[cfg(feature = "tonic")]
fn run_tonic(args: &Args, request_len: usize) -> Result<(), String> {
    let target = tonic_target::TonicTarget::connect(args)?;
    target.probe()?;
    let addr = args.addr.clone().unwrap_or_default();
    let names = (0..target.connections())
        .map(|i| format!("{addr} #{i}"))
        .collect();
    let drain = args.timeout + Duration::from_secs(1);
    let sender = |plan: &Plan, rec| run_sender(&target, plan, rec, drain);
    let source = Source {
        endpoint: addr,
        names,
        discovered: Vec::new(),
        counted_per: "connection",
    };
    measure(args, request_len, target.connections(), source, sender)
}

/// `--client raw`: each sending thread drives its share of the
/// connections with the minimal pipelining client (closed loop).
fn run_raw(
    args: &Args,
    request: Bytes,
    endpoint: String,
    discovered: Vec<String>,
) -> Result<(), String> {
    if args.qps.fixed().is_some() {
        return Err("--client raw is closed loop only: use --qps max".into());
    }
    let addrs: Vec<std::net::SocketAddr> = if discovered.is_empty() {
        let addr = args.addr.clone().unwrap_or_default();
        vec![addr.parse().map_err(|e| format!("--addr {addr}: {e}"))?]
    } else {
        discovered
            .iter()
            .map(|a| a.parse().map_err(|e| format!("provider {a}: {e}")))
            .collect::<Result<_, String>>()?
    };
    let threads = args.threads as usize;
    let connections = (args.connections as usize).max(threads);
    let depth = (args.in_flight as usize / connections).max(1);
    let per_thread = |t: usize| connections / threads + usize::from(t < connections % threads);
    let first_conn = |t: usize| (0..t).map(per_thread).sum::<usize>();
    let names = (0..connections)
        .map(|i| format!("{} #{i}", addrs[i % addrs.len()]))
        .collect();
    let sender = |plan: &Plan, rec| {
        let raw_plan = raw::RawPlan {
            addrs: addrs.clone(),
            connections: per_thread(plan.thread),
            depth,
            service: args.service.clone(),
            method: args.method.clone(),
            request: request.clone(),
            start: plan.start,
            end: plan.end,
            drain: args.timeout + Duration::from_secs(1),
            first_conn: first_conn(plan.thread),
        };
        if let Err(e) = raw::run(&raw_plan, rec) {
            eprintln!("loadgen: raw client thread {}: {e}", plan.thread);
        }
    };
    let source = Source {
        endpoint,
        names,
        discovered,
        counted_per: "connection",
    };
    measure(args, request.len(), connections, source, sender)
}

/// Where the load went, for the report.
struct Source {
    endpoint: String,
    names: Vec<String>,
    discovered: Vec<String>,
    counted_per: &'static str,
}

#[cfg(not(feature = "tonic"))]
fn run_tonic(_: &Args, _: usize) -> Result<(), String> {
    Err("this loadgen was built without the `tonic` feature (cargo build -p loadgen --features tonic)".into())
}

/// Runs `sender` on `--threads` threads (each with its `Plan` and
/// `Recorder`), prints progress every second, then the report.
fn measure(
    args: &Args,
    request_bytes: usize,
    connections: usize,
    source: Source,
    sender: impl Fn(&Plan, &'static Recorder) + Sync,
) -> Result<(), String> {
    let Source {
        endpoint,
        names,
        discovered,
        counted_per,
    } = source;
    let threads = args.threads as usize;
    let started_at_utc = report::utc_now();
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let qps = args.qps.fixed();
    let cap_total = args.in_flight as usize;
    let sender = &sender;

    let recorders = std::thread::scope(|scope| -> Result<Vec<&'static Recorder>, String> {
        let (tx, rx) = mpsc::channel();
        for t in 0..threads {
            let tx = tx.clone();
            let plan = Plan {
                thread: t,
                threads,
                start,
                end,
                qps: qps.map(|q| q / threads as f64),
                // Split the cap; the first threads take the remainder.
                cap: (cap_total / threads + usize::from(t < cap_total % threads)).max(1),
            };
            std::thread::Builder::new()
                .name(format!("loadgen-{t}"))
                .spawn_scoped(scope, move || {
                    let rec = Recorder::new(measure_from, connections, std::thread::current());
                    let _ = tx.send(rec);
                    sender(&plan, rec);
                })
                .map_err(|e| format!("cannot start a sender thread: {e}"))?;
        }
        drop(tx);
        let recorders: Vec<&'static Recorder> = rx.iter().take(threads).collect();
        progress(&recorders, start, measure_from, end);
        Ok(recorders)
    })?;

    let s = snapshot(&recorders);
    let duration_s = args.duration.as_secs_f64();
    let ok = s.completed - s.errors;
    let report = Report {
        label: args.label.clone(),
        target: format!("{:?}", args.target).to_lowercase(),
        mode: if qps.is_some() { "open" } else { "closed" }.into(),
        command: std::env::args().collect(),
        started_at_utc,
        endpoint,
        service: args.service.clone(),
        method: args.method.clone(),
        connections: args.connections,
        channels: connections,
        threads: args.threads,
        in_flight: args.in_flight,
        request_bytes,
        warmup_s: args.warmup.as_secs_f64(),
        duration_s,
        target_qps: qps,
        achieved_qps: s.completed as f64 / duration_s,
        ok_qps: ok as f64 / duration_s,
        sent: s.sent,
        completed: s.completed,
        errors: s.errors,
        errors_by_code: s.errors_by_code.clone(),
        delayed: s.delayed,
        unsent: s.unsent,
        unfinished: s.in_flight,
        latency_us: Percentiles::of(&s.latency),
        service_time_us: Percentiles::of(&s.service),
        latency_curve: curve(&s.latency),
        per_channel: names
            .into_iter()
            .zip(&s.per_conn)
            .map(|(name, &calls)| ChannelCount { name, calls })
            .collect(),
        discovered_providers: discovered,
        counted_per: counted_per.into(),
    };
    println!("\n{}", report.summary());
    if !args.no_write {
        let path = report.write(&args.out_dir, &s.latency).map_err(|e| {
            format!(
                "cannot write the report into {}: {e}",
                args.out_dir.display()
            )
        })?;
        println!("report: {}", path.display());
    }
    Ok(())
}

/// One line per second until the senders are done.
fn progress(recorders: &[&'static Recorder], start: Instant, measure_from: Instant, end: Instant) {
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
        let phase = if now < measure_from {
            "warmup "
        } else if now < end {
            "measure"
        } else {
            "drain  "
        };
        println!(
            "[{:>4.0}s] {phase} rate {:>9.0}/s  measured {:>9}  errors {:>6}  in-flight {:>6}  p50 {:>8}  p99 {:>8}",
            now.duration_since(start).as_secs_f64(),
            rate,
            s.completed,
            s.errors,
            s.in_flight,
            fmt_us(if s.latency.is_empty() { 0 } else { s.latency.value_at_quantile(0.5) }),
            fmt_us(if s.latency.is_empty() { 0 } else { s.latency.value_at_quantile(0.99) }),
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
