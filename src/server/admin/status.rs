//! `/status` (the [`Snapshot`] as JSON, shape in the module above) and
//! `/connections` (one text line per open connection).

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::json::Json;
use super::recent::Recent;
use super::Snapshot;
use crate::server::mailbox::ReactorShared;
use crate::server::stats;

pub(super) fn json(
    s: &Snapshot,
    recent: &[Option<Recent>],
    addr: SocketAddr,
    settings: &[(String, String)],
) -> String {
    let mut j = Json::default();
    j.begin_object();
    j.str_field("version", env!("CARGO_PKG_VERSION"));
    j.num_field("pid", std::process::id());
    j.str_field("addr", &addr.to_string());
    j.num_field("uptime_s", s.uptime_s);
    j.object_field("process");
    match s.rss_bytes {
        Some(rss) => j.num_field("rss_bytes", rss as f64),
        None => j.null_field("rss_bytes"),
    }
    match s.cpu_seconds {
        Some(cpu) => j.num_field("cpu_seconds", cpu),
        None => j.null_field("cpu_seconds"),
    }
    j.end_object();
    let total: usize = s.reactors.iter().map(|r| r.connections).sum();
    j.num_field("connections", total as f64);
    j.array_field("reactors");
    for (index, r) in s.reactors.iter().enumerate() {
        j.begin_object();
        j.num_field("index", index as f64);
        j.num_field("connections", r.connections as f64);
        j.num_field("accepted", r.accepted as f64);
        j.num_field("bytes_in", r.bytes_in as f64);
        j.num_field("bytes_out", r.bytes_out as f64);
        j.num_field("frames_rejected", r.frames_rejected as f64);
        j.num_field("seed_connections", r.seed_connections as f64);
        j.end_object();
    }
    j.end_array();
    streams(&mut j, s);
    methods(&mut j, s, recent);
    registry(&mut j, s);
    j.object_field("config");
    for (key, value) in settings {
        j.str_field(key, value);
    }
    j.end_object();
    j.end_object();
    j.finish()
}

/// The streams of every reactor: open now, opened and ended since start
/// (and ended by outcome: the usual ones always, others once seen),
/// messages each way.
fn streams(j: &mut Json, s: &Snapshot) {
    let sum = |f: fn(&super::ReactorFigures) -> u64| s.reactors.iter().map(f).sum::<u64>();
    let (opened, ended) = (sum(|r| r.streams_opened), sum(|r| r.streams_ended));
    j.object_field("streams");
    j.num_field("open", opened.saturating_sub(ended) as f64);
    j.num_field("opened", opened as f64);
    j.num_field("ended", ended as f64);
    j.num_field("messages_sent", sum(|r| r.stream_messages_sent) as f64);
    j.num_field(
        "messages_received",
        sum(|r| r.stream_messages_received) as f64,
    );
    j.object_field("ended_by_code");
    for (code, n) in s.streams_ended_by_code() {
        j.num_field(code.as_str(), n as f64);
    }
    j.end_object();
    j.end_object();
}

fn methods(j: &mut Json, s: &Snapshot, recent: &[Option<Recent>]) {
    j.array_field("methods");
    let recent = recent.iter().copied().chain(std::iter::repeat(None));
    for ((service, method, slot, in_flight), recent) in s.methods.iter().zip(recent) {
        let h = &slot.latency_us;
        j.begin_object();
        j.str_field("service", service);
        j.str_field("method", method);
        j.num_field("calls", slot.calls as f64);
        j.num_field("errors", slot.errors as f64);
        j.object_field("errors_by_code");
        for (code, n) in slot.errors_by_code() {
            j.num_field(code.as_str(), n as f64);
        }
        j.end_object();
        j.num_field("in_flight", *in_flight as f64);
        for (key, q) in [
            ("p50_us", 0.5),
            ("p90_us", 0.9),
            ("p99_us", 0.99),
            ("p999_us", 0.999),
        ] {
            j.num_field(key, h.value_at_quantile(q) as f64);
        }
        j.num_field("max_us", h.max() as f64);
        j.num_field("latency_samples", h.len() as f64);
        match recent {
            Some(r) => {
                let secs = r.window_ms as f64 / 1000.0;
                j.object_field("recent");
                j.num_field("window_s", secs);
                j.num_field("calls", r.calls as f64);
                j.num_field("calls_per_s", r.calls as f64 / secs.max(1e-3));
                j.num_field("p50_us", r.p50_us as f64);
                j.num_field("p99_us", r.p99_us as f64);
                j.end_object();
            }
            None => j.null_field("recent"),
        }
        j.end_object();
    }
    j.end_array();
}

fn registry(j: &mut Json, s: &Snapshot) {
    let Some(reg) = &s.registry else {
        return j.null_field("registry");
    };
    j.object_field("registry");
    j.str_field("connect", &reg.connect);
    j.bool_field("registered", reg.registered);
    j.str_field("session", &reg.session);
    j.array_field("nodes");
    for node in &reg.nodes {
        j.str_item(node);
    }
    j.end_array();
    j.end_object();
}

/// Lines `/connections` shows at most unless `?limit=` says otherwise,
/// and the most it may say: the reply stays small with 10,000s open.
pub(super) const CONNECTIONS_PAGE: usize = 1000;
pub(super) const CONNECTIONS_PAGE_MAX: usize = 10_000;

/// A header line, then one line per open connection (reactor by reactor,
/// oldest first), `limit` of them from `offset` on; a last line says how
/// many more there are and how to see them.
pub(super) fn connections(
    reactors: &[Arc<ReactorShared>],
    now: Instant,
    offset: usize,
    limit: usize,
) -> String {
    let mut out = format!(
        "{:<22} {:>7} {:>9} {:<8} {:>10} {:>12} {:>12} {:>9}\n",
        "peer", "reactor", "age_s", "protocol", "calls", "bytes_in", "bytes_out", "in_flight"
    );
    let mut index = 0;
    for reactor in reactors {
        for c in reactor.stats().live() {
            index += 1;
            if index <= offset || index > offset + limit {
                continue;
            }
            let _ = writeln!(
                out,
                "{:<22} {:>7} {:>9.1} {:<8} {:>10} {:>12} {:>12} {:>9}",
                c.peer.to_string(),
                c.reactor,
                now.duration_since(c.opened).as_secs_f64(),
                c.protocol(),
                stats::read(&c.calls),
                stats::read(&c.bytes_in),
                stats::read(&c.bytes_out),
                stats::read(&c.in_flight),
            );
        }
    }
    let shown_to = (offset + limit).min(index);
    if shown_to < index {
        let _ = writeln!(
            out,
            "# {} more of {index} connections not shown: /connections?offset={shown_to}&limit={limit}",
            index - shown_to
        );
    }
    out
}
