//! `mprpc top [SERVICE]`: live per-method rates and latencies of every
//! provider of a service, from each provider's admin `/status` (shape in
//! `src/server/admin/mod.rs`), refreshed every interval in the terminal.
//!
//! `/status` counts since the provider started, so rates are differences
//! between two readings. Latency percentiles are the provider's own over
//! its last 5 to 10 seconds (`recent`); until it has that window (its
//! first seconds of being asked) they are since it started, marked `*`.
//! Providers are looked up again every round, so ones that come and go
//! show up and drop out.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Args;
use mprpc::discovery::{Discover, Endpoint, WireFormat};
use mprpc::net::tls::ClientTls;
use serde_json::Value;

use crate::error::{fail, Result};
use crate::http;
use crate::target::Target;

/// What to watch and how often.
#[derive(Debug, Args)]
pub(crate) struct TopArgs {
    /// The service to watch (needed with --zk; with --addr, all by default).
    service: Option<String>,
    /// Time between refreshes, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    interval_ms: u64,
    /// Stop after this many refreshes (default: until Ctrl-C).
    #[arg(long, value_name = "N")]
    iterations: Option<u64>,
    /// The providers serve their admin pages on this port instead of the RPC port.
    #[arg(long, value_name = "PORT")]
    admin_port: Option<u16>,
    /// The providers' `admin_token`.
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,
}

/// One method's counters in one reading.
#[derive(Debug, Clone, Default)]
struct MethodRow {
    calls: f64,
    errors: f64,
    in_flight: f64,
    /// Recent percentiles, or since start with a `*`.
    p50_us: String,
    p99_us: String,
}

/// One provider's reading: `service.method` → counters.
#[derive(Debug, Clone)]
struct Reading {
    at: Instant,
    methods: Vec<(String, MethodRow)>,
}

/// Runs `top` until `--iterations` refreshes have been shown (or forever).
pub(crate) fn run(target: &Target, args: &TopArgs) -> Result<()> {
    let service = args.service.as_deref();
    if target.endpoint().is_none() && service.is_none() {
        fail!("with --zk, say which service to watch: mprpc top SERVICE")
    }
    let discover = target.discover()?;
    let interval = Duration::from_millis(args.interval_ms.max(50));
    let terminal = std::io::stdout().is_terminal();
    let mut last: HashMap<SocketAddr, Reading> = HashMap::new();
    let mut shown = 0;
    let mut first = true; // the first round is only a baseline for rates
    eprintln!("mprpc top: first figures in {interval:?} (Ctrl-C to stop)");
    loop {
        let providers = providers(target, &*discover, service)?;
        let readings = read_all(
            &providers,
            target.client_tls(),
            args,
            target.timeout().min(interval * 2),
            service,
        );
        let table = render(service, &providers, &readings, &last, interval);
        if !first {
            if terminal {
                print!("\x1b[H\x1b[2J"); // clear the screen, cursor home
            }
            println!("{table}");
            shown += 1;
            if args.iterations.is_some_and(|n| shown >= n) {
                return Ok(());
            }
        }
        first = false;
        last = readings
            .into_iter()
            .filter_map(|(addr, r)| Some((addr, r.ok()?)))
            .collect();
        std::thread::sleep(interval);
    }
}

/// The providers to read this round.
fn providers(
    target: &Target,
    discover: &dyn Discover,
    service: Option<&str>,
) -> Result<Vec<Endpoint>> {
    match (target.endpoint(), service) {
        (Some(endpoint), _) => Ok(vec![endpoint.clone()]),
        (None, Some(service)) => {
            let mut list = target.providers(discover, service)?;
            list.sort_by_key(|e| e.addr);
            Ok(list)
        }
        (None, None) => Ok(Vec::new()),
    }
}

/// Reads every provider's /status at once (one thread each).
fn read_all(
    providers: &[Endpoint],
    tls: Option<&ClientTls>,
    args: &TopArgs,
    timeout: Duration,
    service: Option<&str>,
) -> Vec<(SocketAddr, std::result::Result<Reading, String>)> {
    std::thread::scope(|scope| {
        let reads: Vec<_> = providers
            .iter()
            .map(|p| {
                let addr = p.addr;
                let format = p.format;
                (
                    addr,
                    scope.spawn(move || read(addr, tls, format, args, timeout, service)),
                )
            })
            .collect();
        reads
            .into_iter()
            .map(|(addr, h)| {
                (
                    addr,
                    h.join().unwrap_or_else(|_| Err("reader panicked".into())),
                )
            })
            .collect()
    })
}

fn read(
    addr: SocketAddr,
    tls: Option<&ClientTls>,
    format: WireFormat,
    args: &TopArgs,
    timeout: Duration,
    service: Option<&str>,
) -> std::result::Result<Reading, String> {
    if format == WireFormat::Seed {
        return Err("seed-format provider: no admin pages".into());
    }
    let admin = SocketAddr::new(addr.ip(), args.admin_port.unwrap_or(addr.port()));
    let body = http::get(admin, "/status", args.admin_token.as_deref(), tls, timeout)
        .map_err(|e| e.to_string())?;
    let at = Instant::now();
    let status: Value =
        serde_json::from_str(&body).map_err(|e| format!("/status is not JSON: {e}"))?;
    let Some(methods) = status["methods"].as_array() else {
        return Err("/status has no methods list".into());
    };
    let num = |m: &Value, key: &str| m[key].as_f64().unwrap_or(0.0);
    let methods = methods
        .iter()
        .filter(|m| service.is_none_or(|s| m["service"] == s))
        .map(|m| {
            let name = format!(
                "{}.{}",
                m["service"].as_str().unwrap_or("?"),
                m["method"].as_str().unwrap_or("?")
            );
            let (p50_us, p99_us) = match m.get("recent").filter(|r| r.is_object()) {
                Some(recent) => (
                    num(recent, "p50_us").to_string(),
                    num(recent, "p99_us").to_string(),
                ),
                None => (
                    format!("{}*", num(m, "p50_us")),
                    format!("{}*", num(m, "p99_us")),
                ),
            };
            let row = MethodRow {
                calls: num(m, "calls"),
                errors: num(m, "errors"),
                in_flight: num(m, "in_flight"),
                p50_us,
                p99_us,
            };
            (name, row)
        })
        .collect();
    Ok(Reading { at, methods })
}

/// The table of one round: a row per provider and method, then totals.
fn render(
    service: Option<&str>,
    providers: &[Endpoint],
    readings: &[(SocketAddr, std::result::Result<Reading, String>)],
    last: &HashMap<SocketAddr, Reading>,
    interval: Duration,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "mprpc top: {} on {} provider(s), every {:.1} s; latency over the provider's last 5-10 s (* since it started)",
        service.unwrap_or("every service"),
        providers.len(),
        interval.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "{:<22} {:<36} {:>10} {:>9} {:>9} {:>8} {:>8} {:>12}",
        "PROVIDER", "METHOD", "CALLS/S", "ERRORS/S", "IN_FLIGHT", "P50_US", "P99_US", "CALLS"
    );
    let mut totals: Vec<(String, f64, f64, f64, f64)> = Vec::new();
    for (addr, reading) in readings {
        let now = match reading {
            Ok(now) => now,
            Err(why) => {
                let _ = writeln!(out, "{:<22} cannot read /status: {why}", addr.to_string());
                continue;
            }
        };
        let before = last.get(addr);
        for (name, row) in &now.methods {
            let per_s = before.and_then(|b| rate(b, now, name, row));
            let (calls_s, errors_s) = match per_s {
                Some((r, e)) => (format!("{r:.1}"), format!("{e:.1}")),
                None => ("-".into(), "-".into()),
            };
            let _ = writeln!(
                out,
                "{:<22} {:<36} {:>10} {:>9} {:>9} {:>8} {:>8} {:>12}",
                addr.to_string(),
                name,
                calls_s,
                errors_s,
                row.in_flight,
                row.p50_us,
                row.p99_us,
                row.calls
            );
            let r = per_s.unwrap_or_default();
            match totals.iter_mut().find(|t| t.0 == *name) {
                Some(t) => {
                    t.1 += r.0;
                    t.2 += r.1;
                    t.3 += row.in_flight;
                    t.4 += row.calls;
                }
                None => totals.push((name.clone(), r.0, r.1, row.in_flight, row.calls)),
            }
        }
    }
    if readings.len() > 1 {
        for (name, rate, errors, in_flight, calls) in totals {
            let _ = writeln!(
                out,
                "{:<22} {:<36} {:>10.1} {:>9.1} {:>9} {:>8} {:>8} {:>12}",
                "all", name, rate, errors, in_flight, "-", "-", calls
            );
        }
    }
    out
}

/// Calls and errors per second of `name` between two readings.
fn rate(before: &Reading, now: &Reading, name: &str, row: &MethodRow) -> Option<(f64, f64)> {
    let (_, old) = before.methods.iter().find(|(n, _)| n == name)?;
    let dt = now.at.duration_since(before.at).as_secs_f64();
    if dt <= 0.0 || row.calls < old.calls {
        return None; // the provider restarted: counters began again
    }
    Some((
        (row.calls - old.calls) / dt,
        (row.errors - old.errors).max(0.0) / dt,
    ))
}
