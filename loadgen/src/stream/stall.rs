//! `loadgen --stream server --stall-reader SECS`: the slow-reader
//! experiment of issue 26. One `Channel` with one connection carries
//! `--connections` closed-loop `Pump` streams, `--stall-unary` blocking
//! `Echo` callers and one endless `Pump` stream of `--stall-size`-byte
//! messages that the provider pushes as fast as credit lets it. Three
//! phases: `before` (`--duration`, after `--warmup`; everyone reads),
//! `stalled` (SECS; the endless stream's reader reads nothing) and `after`
//! (`--duration`; it reads again). Flow control should hold the pushed
//! bytes to about one stream window (`stream_window` messages), and the
//! other streams and calls on the connection should keep their rate. The
//! report gives each phase's rates and the RSS of the provider
//! (`--cpu-pid`) and of loadgen, sampled every 20 ms.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mprpc::client::Channel;
use mprpc::CallOptions;
use mprpc_examples::bench::{EchoRequest, EchoResponse, PumpRequest};

use super::Plan;
use crate::cli::Args;
use crate::mprpc_target::MprpcTarget;

/// What the threads count, read by the sampler at phase boundaries.
#[derive(Default)]
struct Counters {
    other_messages: AtomicU64,
    other_failed: AtomicU64,
    unary_calls: AtomicU64,
    unary_failed: AtomicU64,
    stalled_messages: AtomicU64,
    stop: AtomicBool,
}

/// The counters at one instant.
#[derive(Clone, Copy, Default)]
struct Snapshot {
    at: Option<Instant>,
    other: u64,
    unary: u64,
    stalled: u64,
}

impl Counters {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: Some(Instant::now()),
            other: self.other_messages.load(Relaxed),
            unary: self.unary_calls.load(Relaxed),
            stalled: self.stalled_messages.load(Relaxed),
        }
    }
}

/// The phase boundaries.
#[derive(Clone, Copy)]
struct Timeline {
    measure_from: Instant,
    stall_from: Instant,
    stall_to: Instant,
    end: Instant,
}

/// Runs the experiment and prints its report.
pub(super) fn run(args: &Args, plan: &Plan, stall: Duration) -> Result<(), String> {
    let mut one_connection = args.clone();
    one_connection.service = plan.service.clone();
    one_connection.connections = 1;
    one_connection.channels = 1;
    one_connection.io_threads = 1;
    let target = MprpcTarget::connect(&one_connection, Default::default(), None)?;
    let channel = &target.channels()[0];
    let size = args.stream.stall_size;
    let window = window_messages(channel.options().stream_window, size);
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let stall_from = measure_from + args.duration;
    let stall_to = stall_from + stall;
    let times = Timeline {
        measure_from,
        stall_from,
        stall_to,
        end: stall_to + args.duration,
    };
    let counters = Counters::default();
    let provider = args.cpu_pid.first().copied();
    let (marks, rss, stalled_outcome) = std::thread::scope(|s| {
        let stalled = s.spawn(|| stalled_reader(channel, size, times, &counters));
        for _ in 0..args.connections {
            s.spawn(|| other_streams(channel, plan, &counters));
        }
        for _ in 0..args.stream.stall_unary {
            s.spawn(|| unary_caller(channel, plan, &counters));
        }
        let (marks, rss) = sample(provider, times, &counters);
        counters.stop.store(true, Relaxed);
        let outcome = stalled.join().expect("the stalled reader panicked");
        (marks, rss, outcome)
    });
    print!(
        "{}",
        report(
            plan,
            args,
            &marks,
            &rss,
            &counters,
            window,
            size,
            stalled_outcome
        )
    );
    Ok(())
}

/// The endless stream: reads until the stall, reads nothing during it,
/// reads again until the end, then cancels.
fn stalled_reader(channel: &Channel, size: u32, times: Timeline, counters: &Counters) -> String {
    let request = PumpRequest {
        count: u32::MAX,
        size,
    };
    let whole_run = times.end.saturating_duration_since(Instant::now()) + Duration::from_secs(30);
    let mut replies = channel.server_stream::<_, EchoResponse>(
        "EchoStreamService",
        "Pump",
        &request,
        &CallOptions::with_timeout(whole_run),
    );
    let mut read_until = |until: Instant| -> Result<(), String> {
        while Instant::now() < until {
            match replies.recv() {
                Ok(Some(_)) => counters.stalled_messages.fetch_add(1, Relaxed),
                Ok(None) => return Err("ended early".into()),
                Err(status) => return Err(status.code().as_str().to_owned()),
            };
        }
        Ok(())
    };
    let outcome = read_until(times.stall_from).and_then(|()| {
        std::thread::sleep(times.stall_to.saturating_duration_since(Instant::now()));
        read_until(times.end)
    });
    replies.cancel();
    match outcome {
        Ok(()) => "ok (read again after the stall, then cancelled)".into(),
        Err(e) => e,
    }
}

/// Closed-loop `Pump` streams of the plan's shape until told to stop.
fn other_streams(channel: &Channel, plan: &Plan, counters: &Counters) {
    let request = PumpRequest {
        count: plan.messages,
        size: plan.payload as u32,
    };
    while !counters.stop.load(Relaxed) {
        let mut replies = channel.server_stream::<_, EchoResponse>(
            &plan.service,
            "Pump",
            &request,
            &plan.options,
        );
        loop {
            match replies.recv() {
                Ok(Some(_)) => {
                    counters.other_messages.fetch_add(1, Relaxed);
                }
                Ok(None) => break,
                Err(_) => {
                    counters.other_failed.fetch_add(1, Relaxed);
                    break;
                }
            }
        }
    }
}

/// Blocking `EchoService.Echo` calls of the plan's payload, one at a
/// time, until told to stop.
fn unary_caller(channel: &Channel, plan: &Plan, counters: &Counters) {
    let request: Bytes = prost::Message::encode_to_vec(&EchoRequest {
        payload: Bytes::from(vec![b'a'; plan.payload]),
    })
    .into();
    while !counters.stop.load(Relaxed) {
        match channel.call("EchoService", "Echo", request.clone(), &plan.options, None) {
            Ok(_) => counters.unary_calls.fetch_add(1, Relaxed),
            Err(_) => counters.unary_failed.fetch_add(1, Relaxed),
        };
    }
}

/// RSS readings in KiB: (provider, loadgen) at the end of `before`, the
/// most seen during the stall, and at its end.
#[derive(Default)]
struct Rss {
    before: (u64, u64),
    stall_max: (u64, u64),
    stall_end: (u64, u64),
}

/// Samples the RSS every 20 ms and snapshots the counters at each phase
/// boundary (measure_from, stall_from, stall_to, end) until `end`.
fn sample(provider: Option<u32>, times: Timeline, counters: &Counters) -> ([Snapshot; 4], Rss) {
    let read = || {
        (
            provider.map_or(0, |pid| rss_kib(&pid.to_string())),
            rss_kib("self"),
        )
    };
    let mut marks = [Snapshot::default(); 4];
    let bounds = [
        times.measure_from,
        times.stall_from,
        times.stall_to,
        times.end,
    ];
    let mut rss = Rss::default();
    let mut next = 0;
    while next < bounds.len() {
        let now = Instant::now();
        if now >= bounds[next] {
            marks[next] = counters.snapshot();
            match next {
                1 => rss.before = read(),
                2 => rss.stall_end = read(),
                _ => {}
            }
            next += 1;
            continue;
        }
        if next == 2 {
            let (p, l) = read();
            rss.stall_max = (rss.stall_max.0.max(p), rss.stall_max.1.max(l));
        }
        std::thread::sleep((bounds[next] - now).min(Duration::from_millis(20)));
    }
    (marks, rss)
}

/// VmRSS of /proc/PID/status in KiB (0 when unreadable).
fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// The messages of `size` bytes the provider sends the stalled reader
/// ahead of its reading: our window in messages, or as many as fit the
/// provider's cap in bytes (`stream_window_bytes`, its default assumed:
/// it sends while what was not read is under it), whichever is less.
fn window_messages(window: usize, size: u32) -> usize {
    use prost::Message;
    let reply = EchoResponse {
        payload: vec![0u8; size as usize].into(),
    };
    let frame = reply.encoded_len() + mprpc::protocol::mprpc::HEADER_LEN + 8;
    let cap = mprpc::server::ServerOptions::default().stream_window_bytes;
    window.min(cap.div_ceil(frame))
}

/// The report: per phase the rates, then the RSS and the window, then a
/// `summary:` line of `key=value` pairs for scripts.
#[allow(clippy::too_many_arguments)]
fn report(
    plan: &Plan,
    args: &Args,
    marks: &[Snapshot; 4],
    rss: &Rss,
    counters: &Counters,
    window: usize,
    size: u32,
    stalled_outcome: String,
) -> String {
    use std::fmt::Write;
    let rate = |a: &Snapshot, b: &Snapshot, f: fn(&Snapshot) -> u64| {
        let secs = match (a.at, b.at) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64().max(1e-9),
            _ => return 0.0,
        };
        (f(b) - f(a)) as f64 / secs
    };
    let phases = ["before", "stalled", "after"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "stall: one connection; {} Pump streams of {} x {} bytes and {} blocking Echo callers \
         beside one endless Pump stream of {size}-byte messages whose reader stops for {:.1} s",
        args.connections,
        plan.messages,
        plan.payload,
        args.stream.stall_unary,
        args.stream.stall_reader.unwrap_or(0.0)
    );
    let mut summary = format!(
        "summary: window_messages={window} window_bytes={} stall_size={size}",
        window as u64 * u64::from(size)
    );
    for (i, phase) in phases.iter().enumerate() {
        let (a, b) = (&marks[i], &marks[i + 1]);
        let other = rate(a, b, |s| s.other);
        let unary = rate(a, b, |s| s.unary);
        let stalled = rate(a, b, |s| s.stalled);
        let _ = writeln!(
            out,
            "phase {phase}: other streams {other:.0} messages/s, unary {unary:.0} calls/s, \
             the stalled stream {stalled:.0} messages/s"
        );
        let _ = write!(
            summary,
            " {phase}_other_per_s={other:.0} {phase}_unary_per_s={unary:.0} \
             {phase}_stalled_per_s={stalled:.0}"
        );
    }
    let growth = |a: u64, b: u64| b as i64 - a as i64;
    let _ = writeln!(
        out,
        "RSS (KiB): provider {} before the stall, at most {} during it ({:+}), {} at its end; \
         loadgen {} before, at most {} during ({:+}); window {window} messages x {size} bytes \
         = {} KiB",
        rss.before.0,
        rss.stall_max.0,
        growth(rss.before.0, rss.stall_max.0),
        rss.stall_end.0,
        rss.before.1,
        rss.stall_max.1,
        growth(rss.before.1, rss.stall_max.1),
        window as u64 * u64::from(size) / 1024
    );
    let _ = writeln!(
        out,
        "the stalled stream: {stalled_outcome}; other streams failed: {}, unary calls failed: {}",
        counters.other_failed.load(Relaxed),
        counters.unary_failed.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "{summary} provider_rss_before_kib={} provider_rss_stall_max_kib={} \
         provider_rss_growth_kib={} loadgen_rss_before_kib={} loadgen_rss_stall_max_kib={} \
         loadgen_rss_growth_kib={} other_failed={} unary_failed={} stalled_outcome={}",
        rss.before.0,
        rss.stall_max.0,
        growth(rss.before.0, rss.stall_max.0),
        rss.before.1,
        rss.stall_max.1,
        growth(rss.before.1, rss.stall_max.1),
        counters.other_failed.load(Relaxed),
        counters.unary_failed.load(Relaxed),
        stalled_outcome.split_whitespace().next().unwrap_or("")
    );
    out
}
