//! `loadgen --stream server|client|bidi`: drives a provider's streaming
//! method through the `Channel`'s stream API (`server_stream`,
//! `client_stream`, `bidi_stream`), closed loop: `--connections` N sender
//! threads each keep one stream open, opening the next as one ends, each
//! stream `--stream-messages` messages of `--payload` bytes. It reports
//! messages/s, per-message latency (HDR) and how the streams ended. By
//! default it drives the echo provider's `EchoStreamService` (`Pump`,
//! `Collect`, `EchoStream`, from `proto/bench.proto`). With `--cpu-pid` the
//! report gives the server's and loadgen's CPU µs per message. Built with
//! the `tonic` feature, `--stream server --target tonic` drives
//! `tonic-echo-server`'s `Pump` with tonic's own client, the same way (the
//! streaming baseline of `scripts/streaming.sh`); `--stall-reader SECS`
//! runs the slow-reader experiment instead (`stall`). `--stream-async`
//! reads the streams as futures on one tokio thread (`async_server`),
//! `--stream-callback` hands them to `StreamHandler`s on the `Channel`'s
//! I/O thread (`callback`), instead of a thread per stream.

mod async_server;
mod callback;
mod kinds;
mod stall;
mod tally;
#[cfg(feature = "tonic")]
mod tonic_client;

use std::time::{Duration, Instant};

use clap::ValueEnum;
use mprpc::client::Channel;
use mprpc::CallOptions;
use serde::{Deserialize, Serialize};

use crate::cli::{Args, TargetKind};
use crate::cpu;
use crate::mprpc_target::MprpcTarget;
use tally::Tally;

/// Which way the messages of a `--stream` run go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum StreamKind {
    /// The provider sends (`Pump`): latency is each message's gap from the
    /// stream's open or the message before.
    Server,
    /// loadgen sends (`Collect`): latency is each `send` (it waits for
    /// credit), the provider's count is checked against what was sent.
    Client,
    /// Both (`EchoStream`): latency is each message's round trip.
    Bidi,
}

impl StreamKind {
    fn name(self) -> &'static str {
        match self {
            StreamKind::Server => "server",
            StreamKind::Client => "client",
            StreamKind::Bidi => "bidi",
        }
    }

    /// `EchoStreamService`'s method of this kind.
    fn default_method(self) -> &'static str {
        match self {
            StreamKind::Server => "Pump",
            StreamKind::Client => "Collect",
            StreamKind::Bidi => "EchoStream",
        }
    }
}

/// The streaming options of `loadgen` (flattened into its `Args`).
#[derive(Debug, Clone, Default, clap::Args, Serialize, Deserialize)]
pub struct StreamArgs {
    /// Drive a streaming method instead of unary calls (--target mprpc,
    /// closed loop): `server` (the provider sends), `client` (loadgen
    /// sends) or `bidi` (each message echoed). --connections streams are
    /// open at once, each of --stream-messages messages of --payload
    /// bytes; --service/--method default to the echo provider's
    /// EchoStreamService (Pump, Collect, EchoStream).
    #[arg(long, value_enum, value_name = "KIND")]
    #[serde(default)]
    pub stream: Option<StreamKind>,

    /// With --stream: messages in each stream.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    #[serde(default)]
    pub stream_messages: u32,

    /// With --stream server: the slow-reader experiment. On one connection
    /// (one `Channel`), --connections Pump streams and --stall-unary
    /// blocking Echo callers run beside one Pump stream of
    /// --stall-size-byte messages that the provider pushes as fast as it
    /// can; after --warmup and --duration that stream's reader stops
    /// reading for SECS seconds, then reads again for --duration. Reports
    /// each phase's rates and the RSS of --cpu-pid (the provider) and of
    /// loadgen, with the stream window.
    #[arg(long, value_name = "SECS")]
    #[serde(default)]
    pub stall_reader: Option<f64>,

    /// With --stream server --target mprpc: consume the streams as
    /// `futures_core::Stream`s, every one a task of one current-thread
    /// tokio runtime (the tonic client's shape), not one blocking thread
    /// per stream.
    #[arg(long)]
    #[serde(default)]
    pub stream_async: bool,

    /// With --stream server|bidi --target mprpc: consume the streams with
    /// `StreamHandler`s on the Channel's I/O thread (`*_stream_with`), a
    /// bidi stream's next message sent from inside the handler, not one
    /// blocking thread per stream; bookkeeping once per delivered batch.
    #[arg(long)]
    #[serde(default)]
    pub stream_callback: bool,

    /// With --stream --target mprpc: the Channel's `stream_window`, the
    /// messages the provider may send a stream before loadgen grants more
    /// (default: the Channel's own default).
    #[arg(long, value_name = "MESSAGES", value_parser = clap::value_parser!(u32).range(1..))]
    #[serde(default)]
    pub stream_window: Option<u32>,

    /// With --stall-reader: the stalled stream's message size in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 65536)]
    #[serde(default)]
    pub stall_size: u32,

    /// With --stall-reader: blocking unary Echo callers on the same
    /// connection.
    #[arg(long, value_name = "N", default_value_t = 4)]
    #[serde(default)]
    pub stall_unary: u32,
}

/// What one run drives: the names and the per-stream shape.
struct Plan {
    kind: StreamKind,
    service: String,
    method: String,
    messages: u32,
    payload: usize,
    options: CallOptions,
}

/// Checks the flags a `--stream` run cannot take.
pub fn check(args: &Args) -> Result<(), String> {
    if args.stream.stream.is_none() {
        return Ok(());
    }
    let kind = args.stream.stream;
    let tonic_server = cfg!(feature = "tonic") && kind == Some(StreamKind::Server);
    let stall = args.stream.stall_reader.is_some();
    let unary_only = [
        (
            args.target == TargetKind::Tonic && !tonic_server,
            "--target tonic (only --stream server, in a build with the tonic feature)",
        ),
        (
            !matches!(args.target, TargetKind::Mprpc | TargetKind::Tonic),
            "--target other than mprpc or tonic",
        ),
        (
            stall && (kind != Some(StreamKind::Server) || args.target != TargetKind::Mprpc),
            "--stall-reader (only --stream server --target mprpc)",
        ),
        (
            args.stream.stream_async
                && (kind != Some(StreamKind::Server) || args.target != TargetKind::Mprpc || stall),
            "--stream-async (only --stream server --target mprpc, without --stall-reader)",
        ),
        (
            args.stream.stream_callback
                && (kind == Some(StreamKind::Client)
                    || args.target != TargetKind::Mprpc
                    || stall
                    || args.stream.stream_async),
            "--stream-callback (only --stream server|bidi --target mprpc, without \
             --stall-reader or --stream-async)",
        ),
        (
            args.client == crate::cli::ClientKind::Raw && args.target == TargetKind::Mprpc,
            "--client raw",
        ),
        (
            args.qps.fixed().is_some(),
            "--qps N (streams run closed loop)",
        ),
        (args.workers.is_some(), "--workers"),
        (args.ledger.is_some(), "--ledger"),
        (args.also_call.is_some(), "--also-call"),
    ];
    match unary_only.iter().find(|(bad, _)| *bad) {
        Some((_, what)) => Err(format!("--stream: not with {what}")),
        None => Ok(()),
    }
}

/// Runs the `--stream` load and prints its report.
pub fn run(args: &Args) -> Result<(), String> {
    let kind = args.stream.stream.expect("run only with --stream");
    if args.target == TargetKind::Tonic {
        #[cfg(feature = "tonic")]
        return tonic_client::run(args, kind);
        #[cfg(not(feature = "tonic"))]
        return Err("--target tonic: build loadgen with --features tonic".into());
    }
    let plan = plan(args, kind);
    if let Some(secs) = args.stream.stall_reader {
        return stall::run(args, &plan, Duration::from_secs_f64(secs));
    }
    if args.stream.stream_async {
        return async_server::run(args, plan);
    }
    if args.stream.stream_callback {
        return callback::run(args, plan);
    }
    let mut target_args = args.clone();
    target_args.service = plan.service.clone();
    let target = MprpcTarget::connect(&target_args, Default::default(), None)?;
    // One stream first, unmeasured: fails fast with the reason.
    let mut probe = Tally::default();
    kinds::one(&plan, &target.channels()[0], &mut probe);
    if let Some((outcome, _)) = probe.outcomes.iter().find(|(o, _)| *o != "ok") {
        return Err(format!(
            "probe stream {}.{} failed: {outcome}",
            plan.service, plan.method
        ));
    }
    let senders = args.connections as usize;
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let (tallies, cpu): (Vec<Tally>, _) = std::thread::scope(|s| {
        let cpu = s.spawn(|| cpu::measure_window(&args.cpu_pid, measure_from, end));
        let handles: Vec<_> = (0..senders)
            .map(|i| {
                let channel = &target.channels()[i % target.channels().len()];
                let plan = &plan;
                s.spawn(move || sender(plan, channel, measure_from, end))
            })
            .collect();
        let tallies = handles
            .into_iter()
            .map(|h| h.join().expect("a stream sender thread panicked"))
            .collect();
        (tallies, cpu.join().expect("the CPU sampler panicked"))
    });
    let elapsed = Instant::now().saturating_duration_since(measure_from);
    let total = tallies.into_iter().fold(Tally::default(), Tally::merge);
    let header = format!(
        "stream: {} {}.{} at {}, {senders} streams at once, {} messages of {} bytes each \
         (client: mprpc Channel)",
        kind.name(),
        plan.service,
        plan.method,
        target.describe.join(", "),
        plan.messages,
        plan.payload
    );
    print_report(&total, &header, kind, elapsed, cpu);
    Ok(())
}

/// The names and per-stream shape of a run: `--service`/`--method`
/// default to `EchoStreamService`'s method of `kind`.
fn plan(args: &Args, kind: StreamKind) -> Plan {
    let service = if args.service == "EchoService" {
        "EchoStreamService".to_owned()
    } else {
        args.service.clone()
    };
    let method = if args.method == "Echo" {
        kind.default_method().to_owned()
    } else {
        args.method.clone()
    };
    Plan {
        kind,
        service,
        method,
        messages: args.stream.stream_messages,
        payload: args.payload,
        options: CallOptions::with_timeout(args.timeout),
    }
}

/// Prints the report, with CPU µs per message when the window was read
/// (the messages in the window estimated from the rate over the run).
fn print_report(
    total: &Tally,
    header: &str,
    kind: StreamKind,
    elapsed: Duration,
    cpu: Result<cpu::CpuWindow, String>,
) {
    let messages = total.sent.max(total.received);
    let rate = messages as f64 / elapsed.as_secs_f64().max(1e-9);
    let usage = match cpu {
        Ok(window) => {
            let in_window = (rate * window.window_s()).round() as u64;
            Some(window.usage(in_window))
        }
        Err(e) => {
            eprintln!("loadgen: CPU time not read: {e}");
            None
        }
    };
    print!(
        "{}",
        total.report(header, kind.name(), elapsed, usage.as_ref())
    );
}

/// One sender thread: streams back to back until `end`; those opened
/// before `measure_from` (the warm-up) are not recorded.
fn sender(plan: &Plan, channel: &Channel, measure_from: Instant, end: Instant) -> Tally {
    let window = tally::Window { measure_from, end };
    let (mut tally, mut warm_up) = (Tally::default(), Tally::default());
    while let Some(into) = window.next(&mut tally, &mut warm_up) {
        kinds::one(plan, channel, into);
    }
    tally
}

/// The time from `from` to now, in whole microseconds (at least 1).
fn micros_since(from: Instant) -> u64 {
    (from.elapsed().as_micros() as u64).max(1)
}
