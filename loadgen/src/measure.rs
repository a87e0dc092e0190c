//! One measured run, whatever drives it: the sending threads with their
//! recorders, a progress line a second, and the report at the end, written
//! locally ([`Local`]) or handed to a distributed worker's frames ([`RunIo`]).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cli::Args;
use crate::cpu;
use crate::driver::Plan;
use crate::recorder::{self, snapshot, Recorder, Snapshot};
use crate::report::{self, curve, fmt_us, ChannelCount, LagPercentiles, Percentiles, Report};
use crate::request::target_name;
use crate::schedule::Schedule;

/// Where a run gets its start instant and where its progress and result
/// go: the terminal and report files ([`Local`]), or a distributed
/// worker's frames (`distributed::child`).
pub(crate) trait RunIo: Sync {
    /// The target answered its probe; returns the instant the load starts.
    fn ready(&self) -> Result<Instant, String>;
    /// Once a second: the progress line and the cumulative figures.
    fn tick(&self, line: &str, s: &Snapshot);
    /// The run is over.
    fn finish(&self, args: &Args, end: Finished) -> Result<(), String>;
}

/// A finished run, for [`RunIo::finish`].
pub(crate) struct Finished {
    pub(crate) started_at_utc: String,
    pub(crate) connections: usize,
    pub(crate) source: Source,
    pub(crate) snapshot: Snapshot,
    /// CPU time of the server (`--cpu-pid`) and of loadgen in the window.
    pub(crate) cpu: Option<cpu::CpuUsage>,
}

/// A single run: starts at once, prints, writes the report files.
pub(crate) struct Local;

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
pub(crate) fn print_and_write(
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

/// Where the load went, for the report (a distributed worker sends it
/// with its result).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Source {
    pub(crate) endpoint: String,
    pub(crate) names: Vec<String>,
    pub(crate) discovered: Vec<String>,
    pub(crate) counted_per: String,
    pub(crate) request_bytes: usize,
    /// Which client sent: "engine", "channel" or "blocking".
    pub(crate) client: String,
    /// Calls outstanding per connection (engine) or in all (channel).
    pub(crate) window: usize,
}

/// Runs `sender` on `--threads` threads (each with its `Plan` and
/// `Recorder`), reports progress every second, then the result, all
/// through `io`.
pub(crate) fn measure(
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
pub(crate) fn target_held(target: Option<f64>, achieved: f64, s: &recorder::Snapshot) -> bool {
    not_held_because(target, achieved, s).is_empty()
}

/// Which of [`target_held`]'s rules the run broke, in words (none: held).
pub(crate) fn not_held_because(
    target: Option<f64>,
    achieved: f64,
    s: &recorder::Snapshot,
) -> Vec<String> {
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

pub(crate) fn build_report(
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
        tls: args.tls_ca.is_some(),
        tls_server_name: args.tls_server_name.clone(),
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
pub(crate) fn progress(
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
pub(crate) fn phase(now: Instant, measure_from: Instant, end: Instant) -> &'static str {
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
pub(crate) fn progress_line(elapsed: Duration, phase: &str, rate: f64, s: &Snapshot) -> String {
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
