//! The end of a run: the summary printed to the terminal, and the three
//! files written into `--out-dir`: `<date>-<label>.json` (everything, for
//! scripts), `.hgrm` (the HDR percentile distribution, in the text format
//! HdrHistogram's plotter reads; values in milliseconds) and `.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let empty = h.is_empty();
        let q = |p: f64| if empty { 0 } else { h.value_at_quantile(p) };
        Percentiles {
            count: h.len(),
            min: if empty { 0 } else { h.min() },
            mean: if empty { 0.0 } else { h.mean() },
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            p999: q(0.999),
            p9999: q(0.9999),
            max: if empty { 0 } else { h.max() },
        }
    }
}

/// Send lag (actual minus intended send time), µs.
#[derive(Debug, Clone, Serialize)]
pub struct LagPercentiles {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

impl LagPercentiles {
    pub fn of(h: &Histogram<u64>) -> LagPercentiles {
        let p = Percentiles::of(h);
        LagPercentiles {
            p50: p.p50,
            p99: p.p99,
            max: p.max,
        }
    }
}

/// One worker of a distributed run, from its own figures.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerRow {
    pub name: String,
    /// "complete", "died at +Ns", "failed: why" or "no result".
    pub status: String,
    /// Its figures stop before the run's end (it died or went silent):
    /// what it published last is merged, and marked so.
    pub partial: bool,
    /// It held its share of the target (see [`Report::target_held`]).
    pub target_held: bool,
    pub connections: usize,
    pub target_qps: Option<f64>,
    pub achieved_qps: f64,
    pub sent: u64,
    pub unsent: u64,
    pub completed: u64,
    pub unanswered: u64,
    pub errors: u64,
    pub send_lag_p99_us: u64,
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChannelCount {
    pub name: String,
    pub calls: u64,
}

/// Everything about one run; serialised as the JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: String,
    pub target: String,
    /// "engine" (loadgen's own pipelining engine) or "channel" (mprpc's `Channel`).
    pub client: String,
    /// The `Channel`'s I/O threads per channel (`--io-threads`); absent
    /// for the engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_threads: Option<u32>,
    /// Whether the calls went over TLS (`--tls-ca`): true, or plain TCP.
    pub tls: bool,
    /// With TLS: the name the provider's certificate was checked against
    /// (`--tls-server-name`; absent: the provider's IP address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// "open" (fixed rate) or "closed" (`--qps max`).
    pub mode: String,
    pub command: Vec<String>,
    pub started_at_utc: String,
    pub endpoint: String,
    pub service: String,
    pub method: String,
    /// `--also-call`: `Service.Method` sent alongside each call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub also_call: Option<String>,
    pub connections: u32,
    pub channels: usize,
    pub threads: u32,
    pub in_flight: u32,
    /// Calls outstanding per connection (engine), or in all (channel).
    pub window: usize,
    pub request_bytes: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub target_qps: Option<f64>,
    /// Calls whose actual send fell inside the measured window, per second.
    pub achieved_qps: f64,
    /// Successful replies to measured calls per second of the window.
    pub ok_qps: f64,
    /// Open loop: achieved within 1% of the target, nothing unsent that was
    /// due more than 1 ms before the window ended, send lag p99 ≤ 1 ms.
    /// Closed loop: nothing unanswered.
    pub target_held: bool,
    /// The rules of `target_held` the run broke, in words (empty: held).
    pub not_held_because: Vec<String>,
    /// CPU time of the server (`--cpu-pid`) and of loadgen in the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<crate::cpu::CpuUsage>,
    /// Measured calls (intended inside the window) that were sent.
    pub sent: u64,
    /// Every call sent, warm-up included (per-call costs counted over the
    /// whole process, such as syscalls, divide by this).
    pub sent_total: u64,
    /// Measured calls never sent before the window ended (entered in the
    /// latency histogram as window end − intended send).
    pub unsent: u64,
    /// Sent calls never answered before the drain ended (entered as give-up
    /// time − intended send).
    pub unanswered: u64,
    /// Measured calls answered (ok or not).
    pub completed: u64,
    pub errors: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    /// Open loop: due calls that waited for an in-flight slot.
    pub delayed: u64,
    /// Actual minus intended send time of the sent measured calls.
    pub send_lag_us: LagPercentiles,
    /// Microseconds from the intended send time (coordinated omission corrected).
    pub latency_us: Percentiles,
    /// Microseconds from the actual send.
    pub service_time_us: Percentiles,
    /// `latency_us` of the successful calls only.
    pub ok_latency_us: Percentiles,
    /// (percentile in %, latency in µs) points of the latency curve.
    pub latency_curve: Vec<(f64, u64)>,
    pub per_channel: Vec<ChannelCount>,
    pub discovered_providers: Vec<String>,
    pub counted_per: String,
    /// A distributed run's workers (empty for a single run). The run holds
    /// its target only if every worker held its share and none is partial.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerRow>,
}

/// (percentile %, value) points, denser towards the tail.
pub fn curve(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points: Vec<(f64, u64)> = h
        .iter_quantiles(5)
        .map(|v| (v.quantile_iterated_to() * 100.0, v.value_iterated_to()))
        .collect();
    points.dedup_by(|a, b| a.0 == b.0);
    points
}

/// The HDR percentile distribution text (values in milliseconds).
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let inv = if q < 1.0 {
                format!("{:>14.2}", 1.0 / (1.0 - q))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{:>12.3} {:>14.12} {:>10} {}",
                v.value_iterated_to() as f64 / 1000.0,
                q,
                total,
                inv
            );
        }
    }
    let (mean, sd, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean(), h.stdev(), h.max() as f64)
    };
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        mean / 1000.0,
        sd / 1000.0
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        max / 1000.0,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        h.distinct_values()
    );
    out
}

pub fn fmt_us(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{:.2}s", us as f64 / 1e6)
    } else if us >= 1_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{us}µs")
    }
}

impl Report {
    /// "TLS (...)" or "plain TCP (no TLS)", for the summary.
    fn transport(&self) -> String {
        match (self.tls, &self.tls_server_name) {
            (false, _) => "plain TCP (no TLS)".into(),
            (true, Some(name)) => format!("TLS (certificate checked against `{name}`)"),
            (true, None) => "TLS (certificate checked against the provider's IP address)".into(),
        }
    }

    /// The human-readable summary (terminal and .md share it).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let target = self
            .target_qps
            .map_or("max (closed loop)".to_string(), |q| format!("{q:.0}/s"));
        let _ = writeln!(s, "## loadgen: {}\n", self.label);
        let _ = writeln!(
            s,
            "- target: {} {} `{}.{}` via the {} client{}, {} connection(s), {} sender thread(s), window {} ({})",
            self.target,
            self.endpoint,
            self.service,
            self.method,
            self.client,
            self.io_threads
                .map(|n| format!(" ({n} I/O thread(s) per channel)"))
                .unwrap_or_default(),
            self.connections,
            self.threads,
            self.window,
            if self.client == "engine" { "per connection" } else { "in all" }
        );
        let _ = writeln!(s, "- transport: {}", self.transport());
        if let Some(also) = &self.also_call {
            let _ = writeln!(
                s,
                "- each call went out together with `{also}`, and counts once, when both answered"
            );
        }
        if !self.workers.is_empty() {
            let _ = writeln!(
                s,
                "- distributed over {} workers: rate, connections and in-flight calls split between them, sender threads per worker; one common start",
                self.workers.len()
            );
        }
        let _ = writeln!(
            s,
            "- request: {} bytes; warm-up {:.1} s (real calls to the target, not measured), measured {:.1} s; started {}",
            self.request_bytes, self.warmup_s, self.duration_s, self.started_at_utc
        );
        let _ = writeln!(
            s,
            "- rate: target {target}, achieved {:.0}/s ({:.0}/s ok){}",
            self.achieved_qps,
            self.ok_qps,
            self.target_qps
                .map(|q| format!(", {:.1}% of target", 100.0 * self.achieved_qps / q))
                .unwrap_or_default()
        );
        let _ = writeln!(
            s,
            "- {}; send lag p50 {}, p99 {}, max {}",
            if self.target_held {
                "target held".to_owned()
            } else {
                format!("**TARGET NOT HELD** ({})", self.not_held_because.join("; "))
            },
            fmt_us(self.send_lag_us.p50),
            fmt_us(self.send_lag_us.p99),
            fmt_us(self.send_lag_us.max)
        );
        let _ = writeln!(
            s,
            "- measured calls: {} sent, {} unsent, {} answered, {} unanswered, {} errors",
            self.sent, self.unsent, self.completed, self.unanswered, self.errors
        );
        if let Some(cpu) = &self.cpu {
            let per_call = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.2} µs/call"));
            let _ = writeln!(
                s,
                "- CPU in the window: server(s) {} ({}), loadgen {} ({:.2} s); {} calls",
                cpu.server_cpu_s
                    .map_or("not sampled".into(), |v| format!("{v:.2} s")),
                per_call(cpu.server_us_per_call),
                per_call(cpu.client_us_per_call),
                cpu.client_cpu_s,
                cpu.calls
            );
        }
        if !self.errors_by_code.is_empty() {
            let list: Vec<String> = self
                .errors_by_code
                .iter()
                .map(|(c, n)| format!("{c}: {n}"))
                .collect();
            let _ = writeln!(s, "- errors by status: {}", list.join(", "));
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| latency | p50 | p90 | p99 | p99.9 | p99.99 | max | mean |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for (name, p) in [
            ("from intended send (CO-corrected)", &self.latency_us),
            ("from actual send", &self.service_time_us),
            ("successful calls, from intended send", &self.ok_latency_us),
        ] {
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} | {} | {} | {} | {} |",
                fmt_us(p.p50),
                fmt_us(p.p90),
                fmt_us(p.p99),
                fmt_us(p.p999),
                fmt_us(p.p9999),
                fmt_us(p.max),
                fmt_us(p.mean.round() as u64)
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "Calls per {}:\n", self.counted_per);
        if self.per_channel.len() <= 10 {
            for c in &self.per_channel {
                let _ = writeln!(s, "- {}: {}", c.name, c.calls);
            }
        } else {
            let calls = self.per_channel.iter().map(|c| c.calls);
            let _ = writeln!(
                s,
                "- {} {}s: min {}, max {} each (all in the JSON report)",
                self.per_channel.len(),
                self.counted_per,
                calls.clone().min().unwrap_or(0),
                calls.max().unwrap_or(0)
            );
        }
        if !self.workers.is_empty() {
            self.worker_table(&mut s);
        }
        if !self.discovered_providers.is_empty() {
            let _ = writeln!(
                s,
                "\nProviders discovered in ZooKeeper: {}",
                self.discovered_providers.join(", ")
            );
        }
        let _ = writeln!(s, "\nCommand: `{}`", self.command.join(" "));
        s
    }

    /// The per-worker table of a distributed run.
    fn worker_table(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "\nWorkers ({}; latencies and counts merged exactly above):\n",
            self.workers.len()
        );
        let _ = writeln!(
            s,
            "| worker | status | conns | target/s | achieved/s | sent | unsent | answered | unanswered | errors | lag p99 | p50 | p99 | held |"
        );
        let _ = writeln!(
            s,
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for w in &self.workers {
            let _ = writeln!(
                s,
                "| {} | {}{} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                w.name,
                w.status,
                if w.partial { " (**partial**)" } else { "" },
                w.connections,
                w.target_qps.map_or("max".into(), |q| format!("{q:.0}")),
                w.achieved_qps,
                w.sent,
                w.unsent,
                w.completed,
                w.unanswered,
                w.errors,
                fmt_us(w.send_lag_p99_us),
                fmt_us(w.latency_p50_us),
                fmt_us(w.latency_p99_us),
                if w.target_held { "yes" } else { "**no**" }
            );
        }
        let partial: Vec<&str> = self
            .workers
            .iter()
            .filter(|w| w.partial)
            .map(|w| w.name.as_str())
            .collect();
        if !partial.is_empty() {
            let _ = writeln!(
                s,
                "\n**INCOMPLETE RUN**: {} stopped reporting before the end; what they published last is merged above.",
                partial.join(", ")
            );
        }
    }

    /// Writes `<dir>/<date>-<label>.{json,hgrm,md}`; returns the JSON path.
    pub fn write(&self, dir: &Path, latency: &Histogram<u64>) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let stem = format!("{}-{}", file_stamp(), sanitize(&self.label));
        let json = dir.join(format!("{stem}.json"));
        let body = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&json, body + "\n")?;
        std::fs::write(dir.join(format!("{stem}.hgrm")), hgrm(latency))?;
        std::fs::write(dir.join(format!("{stem}.md")), self.summary())?;
        Ok(json)
    }
}

pub fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for now.
pub fn utc_now() -> String {
    let (y, mo, d, h, mi, s) = utc_parts(now_secs());
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `YYYYMMDD-HHMMSS` for file names.
fn file_stamp() -> String {
    let (y, mo, d, h, mi, s) = utc_parts(now_secs());
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Civil date and time from Unix seconds (Howard Hinnant's algorithm).
fn utc_parts(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::new_histogram;

    #[test]
    fn civil_dates() {
        assert_eq!(utc_parts(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(utc_parts(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(utc_parts(1_763_769_599), (2025, 11, 21, 23, 59, 59));
    }

    #[test]
    fn percentiles_and_hgrm() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert_eq!(p.p50, 500);
        assert_eq!(p.p99, 990);
        assert_eq!(p.max, 1000);
        let text = hgrm(&h);
        assert!(text.contains("Percentile"));
        assert!(
            text.contains("#[Max     =        1.000, Total count    =         1000]"),
            "{text}"
        );
        let last = text
            .lines()
            .rfind(|l| !l.starts_with('#') && !l.trim().is_empty())
            .unwrap();
        assert!(last.contains("1000"), "{last}");
        let c = curve(&h);
        assert!(c.first().unwrap().0 < 1.0 && c.last().unwrap().0 == 100.0);
        assert!(c.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
    }

    #[test]
    fn empty_histogram_is_fine() {
        let h = new_histogram();
        assert_eq!(Percentiles::of(&h).max, 0);
        assert!(curve(&h).is_empty());
        assert!(hgrm(&h).contains("Total count    =            0"));
    }

    #[test]
    fn labels_are_safe_file_names() {
        assert_eq!(sanitize("ours/50%"), "ours_50_");
    }
}
