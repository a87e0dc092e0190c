//! What the `--stream` sender threads count, merged into one report:
//! streams by outcome, messages each way, the provider's own count (client
//! streams) and the per-message latency histogram (µs, as the unary
//! report's).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::cpu::CpuUsage;
use crate::recorder::{new_histogram, HIGHEST_US};

/// One thread's (or the merged) counts.
pub(super) struct Tally {
    /// Streams by outcome: `ok`, a status code's name, `ShortStream`, `BadReply`.
    pub outcomes: BTreeMap<String, u64>,
    /// Messages loadgen sent (client and bidi streams).
    pub sent: u64,
    /// Messages loadgen received (server and bidi streams).
    pub received: u64,
    /// Client streams: the messages the provider said it received.
    pub provider_counted: u64,
    latency: Histogram<u64>,
}

/// The run's time window as every sender sees it: streams opened before
/// `measure_from` are the warm-up's (not reported), none open after `end`.
#[derive(Clone, Copy)]
pub(super) struct Window {
    pub measure_from: Instant,
    pub end: Instant,
}

impl Window {
    /// The tally the stream opening now counts in, or `None` once the
    /// window has ended.
    pub fn next<'a>(
        &self,
        measured: &'a mut Tally,
        warm_up: &'a mut Tally,
    ) -> Option<&'a mut Tally> {
        let now = Instant::now();
        if now >= self.end {
            None
        } else if now >= self.measure_from {
            Some(measured)
        } else {
            Some(warm_up)
        }
    }
}

/// The async modes' sender tasks, merged into one tally.
pub(super) async fn gather(tasks: Vec<tokio::task::JoinHandle<Tally>>) -> Result<Tally, String> {
    let mut total = Tally::default();
    for task in tasks {
        total = total.merge(
            task.await
                .map_err(|e| format!("a stream task failed: {e}"))?,
        );
    }
    Ok(total)
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            outcomes: BTreeMap::new(),
            sent: 0,
            received: 0,
            provider_counted: 0,
            latency: new_histogram(),
        }
    }
}

impl Tally {
    /// One message's latency, in µs.
    pub fn record(&mut self, micros: u64) {
        self.latency.saturating_record(micros.min(HIGHEST_US));
    }

    /// `n` messages of the same latency, in µs.
    pub fn record_n(&mut self, micros: u64, n: u64) {
        self.latency.saturating_record_n(micros.min(HIGHEST_US), n);
    }

    /// Counts a finished stream's outcome.
    pub fn end_stream(&mut self, outcome: Result<(), String>) {
        let name = outcome.err().unwrap_or_else(|| "ok".into());
        *self.outcomes.entry(name).or_default() += 1;
    }

    /// Both tallies in one.
    pub fn merge(mut self, other: Tally) -> Tally {
        for (outcome, n) in other.outcomes {
            *self.outcomes.entry(outcome).or_default() += n;
        }
        self.sent += other.sent;
        self.received += other.received;
        self.provider_counted += other.provider_counted;
        self.latency
            .add(&other.latency)
            .expect("histograms of the same bounds");
        self
    }

    /// The report: a header, the counts, the rate over `elapsed`, the
    /// latency percentiles, the CPU per message (when read), and one
    /// `summary:` line of `key=value` pairs for scripts.
    pub fn report(
        &self,
        header: &str,
        kind: &str,
        elapsed: Duration,
        cpu: Option<&CpuUsage>,
    ) -> String {
        let streams: u64 = self.outcomes.values().sum();
        let ok = self.outcomes.get("ok").copied().unwrap_or(0);
        let messages = self.sent.max(self.received);
        let secs = elapsed.as_secs_f64().max(1e-9);
        let outcomes = self
            .outcomes
            .iter()
            .map(|(o, n)| format!("{o} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut out = String::new();
        let _ = writeln!(out, "{header}");
        let _ = writeln!(out, "streams: {streams} ({outcomes})");
        let _ = writeln!(
            out,
            "messages: {} sent, {} received{} in {:.2} s: {:.0} messages/s",
            self.sent,
            self.received,
            if kind == "client" {
                format!(", {} counted by the provider", self.provider_counted)
            } else {
                String::new()
            },
            secs,
            messages as f64 / secs
        );
        let h = &self.latency;
        let _ = writeln!(
            out,
            "latency per message (µs): p50 {} p90 {} p99 {} p99.9 {} max {} ({} messages)",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.9),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
            h.len()
        );
        let per_message = |v: Option<f64>| v.map_or("-".to_owned(), |us| format!("{us:.3}"));
        let (server_us, client_us) = (
            per_message(cpu.and_then(|c| c.server_us_per_call)),
            per_message(cpu.and_then(|c| c.client_us_per_call)),
        );
        if cpu.is_some() {
            let _ = writeln!(
                out,
                "CPU per message (µs): server {server_us}, loadgen {client_us}"
            );
        }
        let _ = writeln!(
            out,
            "summary: kind={kind} streams={streams} ok={ok} failed={} sent={} received={} \
             provider_counted={} messages_per_s={:.0} p50_us={} p99_us={} \
             server_us_per_msg={server_us} client_us_per_msg={client_us}",
            streams - ok,
            self.sent,
            self.received,
            self.provider_counted,
            messages as f64 / secs,
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99)
        );
        out
    }
}
