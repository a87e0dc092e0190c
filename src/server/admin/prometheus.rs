//! `/metrics`: the [`Snapshot`] in the Prometheus text exposition format
//! (0.0.4): `mprpc_` names, `_total` counters, `_seconds` and `_bytes`
//! units, labels `service`, `method`, `code`, `reactor`.

use std::fmt::Write;

use super::{ReactorFigures, Snapshot};

/// Histogram bucket bounds, in seconds (handler times).
const BUCKETS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// The whole exposition.
pub(super) fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    methods(&mut out, s);
    reactors(&mut out, &s.reactors);
    stream_outcomes(&mut out, s);
    header(
        &mut out,
        "mprpc_admin_requests_total",
        "counter",
        "Admin HTTP requests served.",
    );
    let _ = writeln!(out, "mprpc_admin_requests_total {}", s.admin_requests);
    registry(&mut out, s);
    process(&mut out, s);
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn methods(out: &mut String, s: &Snapshot) {
    let label =
        |svc: &str, m: &str| format!("service=\"{}\",method=\"{}\"", escape(svc), escape(m));
    header(
        out,
        "mprpc_calls_total",
        "counter",
        "Calls answered, per method.",
    );
    for (svc, m, slot, _) in &s.methods {
        let _ = writeln!(out, "mprpc_calls_total{{{}}} {}", label(svc, m), slot.calls);
    }
    header(
        out,
        "mprpc_errors_total",
        "counter",
        "Calls answered with an error status, per method and code.",
    );
    for (svc, m, slot, _) in &s.methods {
        for (code, n) in slot.errors_by_code() {
            let _ = writeln!(
                out,
                "mprpc_errors_total{{{},code=\"{code}\"}} {n}",
                label(svc, m)
            );
        }
    }
    header(
        out,
        "mprpc_in_flight",
        "gauge",
        "Handlers running now, per method.",
    );
    for (svc, m, _, in_flight) in &s.methods {
        let _ = writeln!(out, "mprpc_in_flight{{{}}} {in_flight}", label(svc, m));
    }
    header(
        out,
        "mprpc_handler_duration_seconds",
        "histogram",
        "Handler time of sampled calls (every call for a thread's first 1024, then 1 in 8).",
    );
    for (svc, m, slot, _) in &s.methods {
        let labels = label(svc, m);
        let mut counts = [0u64; BUCKETS.len()];
        let mut sum_us = 0f64;
        for v in slot.latency_us.iter_recorded() {
            let (us, n) = (v.value_iterated_to(), v.count_at_value());
            sum_us += us as f64 * n as f64;
            let secs = us as f64 / 1e6;
            for (bound, count) in BUCKETS.iter().zip(counts.iter_mut()) {
                if secs <= *bound {
                    *count += n;
                }
            }
        }
        for (bound, count) in BUCKETS.iter().zip(counts) {
            let _ = writeln!(
                out,
                "mprpc_handler_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
            );
        }
        let total = slot.latency_us.len();
        let _ = writeln!(
            out,
            "mprpc_handler_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {total}"
        );
        let _ = writeln!(
            out,
            "mprpc_handler_duration_seconds_sum{{{labels}}} {}",
            sum_us / 1e6
        );
        let _ = writeln!(
            out,
            "mprpc_handler_duration_seconds_count{{{labels}}} {total}"
        );
    }
}

fn reactors(out: &mut String, reactors: &[ReactorFigures]) {
    type Field = fn(&ReactorFigures) -> f64;
    let rows: [(&str, &str, &str, Field); 10] = [
        (
            "mprpc_connections",
            "gauge",
            "Open connections, per reactor.",
            |r| r.connections as f64,
        ),
        (
            "mprpc_connections_accepted_total",
            "counter",
            "Connections accepted, per reactor.",
            |r| r.accepted as f64,
        ),
        (
            "mprpc_received_bytes_total",
            "counter",
            "Bytes read from connections, per reactor.",
            |r| r.bytes_in as f64,
        ),
        (
            "mprpc_sent_bytes_total",
            "counter",
            "Bytes written to connections, per reactor.",
            |r| r.bytes_out as f64,
        ),
        (
            "mprpc_frames_rejected_total",
            "counter",
            "Bad input refused: oversized frames, and connections closed for protocol errors.",
            |r| r.frames_rejected as f64,
        ),
        (
            "mprpc_seed_connections_total",
            "counter",
            "Connections that spoke the seed's wire format (one call each), per reactor.",
            |r| r.seed_connections as f64,
        ),
        (
            "mprpc_streams_open",
            "gauge",
            "Streams open now, per reactor.",
            |r| r.streams_opened.saturating_sub(r.streams_ended) as f64,
        ),
        (
            "mprpc_streams_opened_total",
            "counter",
            "Streams opened, per reactor; each one's outcome counts once in \
             mprpc_calls_total and mprpc_errors_total of its method.",
            |r| r.streams_opened as f64,
        ),
        (
            "mprpc_stream_messages_sent_total",
            "counter",
            "Stream messages sent by handlers to clients, per reactor.",
            |r| r.stream_messages_sent as f64,
        ),
        (
            "mprpc_stream_messages_received_total",
            "counter",
            "Stream messages received from clients, per reactor.",
            |r| r.stream_messages_received as f64,
        ),
    ];
    for (name, kind, help, field) in rows {
        header(out, name, kind, help);
        for (index, r) in reactors.iter().enumerate() {
            let _ = writeln!(out, "{name}{{reactor=\"{index}\"}} {}", field(r));
        }
    }
}

/// Streams ended by outcome, all reactors together: ok, cancelled,
/// deadline_exceeded and unavailable always, other codes once one ended so.
fn stream_outcomes(out: &mut String, s: &Snapshot) {
    let name = "mprpc_streams_ended_total";
    header(
        out,
        name,
        "counter",
        "Streams ended, by outcome (a lost connection ends the server's side \
         cancelled; its caller sees unavailable).",
    );
    for (code, n) in s.streams_ended_by_code() {
        let _ = writeln!(out, "{name}{{code=\"{code}\"}} {n}");
    }
}

fn registry(out: &mut String, s: &Snapshot) {
    let Some(reg) = &s.registry else {
        return;
    };
    header(
        out,
        "mprpc_zk_registered",
        "gauge",
        "1 while this provider's nodes are in ZooKeeper.",
    );
    let _ = writeln!(out, "mprpc_zk_registered {}", u8::from(reg.registered));
    header(
        out,
        "mprpc_zk_session_state",
        "gauge",
        "The ZooKeeper session's state (the one labelled is 1).",
    );
    let _ = writeln!(
        out,
        "mprpc_zk_session_state{{state=\"{}\"}} 1",
        escape(&reg.session)
    );
    header(
        out,
        "mprpc_zk_registered_nodes",
        "gauge",
        "ZooKeeper nodes this provider holds.",
    );
    let _ = writeln!(out, "mprpc_zk_registered_nodes {}", reg.nodes.len());
}

fn process(out: &mut String, s: &Snapshot) {
    if let Some(rss) = s.rss_bytes {
        header(
            out,
            "mprpc_process_resident_memory_bytes",
            "gauge",
            "Resident memory of the process.",
        );
        let _ = writeln!(out, "mprpc_process_resident_memory_bytes {rss}");
    }
    if let Some(cpu) = s.cpu_seconds {
        header(
            out,
            "mprpc_process_cpu_seconds_total",
            "counter",
            "User and system CPU time of the process.",
        );
        let _ = writeln!(out, "mprpc_process_cpu_seconds_total {cpu}");
    }
    header(
        out,
        "mprpc_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    let _ = writeln!(out, "mprpc_uptime_seconds {}", s.uptime_s);
    header(
        out,
        "mprpc_build_info",
        "gauge",
        "The mprpc version, as a label.",
    );
    let _ = writeln!(
        out,
        "mprpc_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
