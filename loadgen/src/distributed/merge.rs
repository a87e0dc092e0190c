//! The end of a distributed run: each worker's outcome, merged into one
//! snapshot (histograms added with `Histogram::add`, counts summed,
//! per-connection counts listed worker by worker) and one row per worker.

use std::time::Duration;

use crate::cli::Args;
use crate::recorder::Snapshot;
use crate::report::{Percentiles, WorkerRow};
use crate::Source;

/// How a worker's part of the run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Its final result arrived.
    Complete,
    /// Its run node vanished (its session ended): noticed `gone` after the
    /// start; its last figures were published `last` after the start.
    Died {
        gone: Duration,
        last: Option<Duration>,
    },
    /// It reported that it could not run (or crashed saying why).
    Failed(String),
    /// Alive, but no result came before the coordinator gave up.
    Silent,
}

impl Status {
    pub fn text(&self) -> String {
        match self {
            Status::Complete => "complete".into(),
            Status::Died { gone, last } => format!(
                "died (gone at +{:.1}s, last report {})",
                gone.as_secs_f64(),
                last.map_or("none".into(), |l| format!("at +{:.1}s", l.as_secs_f64()))
            ),
            Status::Failed(why) => format!("failed: {why}"),
            Status::Silent => "no result".into(),
        }
    }
}

/// What the coordinator knows of one worker at the end.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub status: Status,
    /// Its final figures, or else the last second it published.
    pub snapshot: Option<Snapshot>,
    pub source: Option<Source>,
}

impl Outcome {
    /// Its figures stop before the run's end (or there are none).
    pub fn partial(&self) -> bool {
        self.status != Status::Complete
    }
}

/// Every worker's figures as one run's: exact, whatever the mix.
pub fn merge(outcomes: &[Outcome]) -> Result<Snapshot, String> {
    let mut m = Snapshot::empty(0);
    for o in outcomes {
        let Some(s) = &o.snapshot else { continue };
        let add = |into: &mut hdrhistogram::Histogram<u64>, h| {
            into.add(h)
                .map_err(|e| format!("worker {}: cannot merge its histogram: {e:?}", o.name))
        };
        add(&mut m.latency, &s.latency)?;
        add(&mut m.service, &s.service)?;
        add(&mut m.lag, &s.lag)?;
        add(&mut m.ok_latency, &s.ok_latency)?;
        m.sent_measured += s.sent_measured;
        m.sent_in_window += s.sent_in_window;
        m.unanswered += s.unanswered;
        m.completed += s.completed;
        m.errors += s.errors;
        for (code, n) in &s.errors_by_code {
            *m.errors_by_code.entry(code.clone()).or_insert(0) += n;
        }
        m.per_conn.extend(&s.per_conn);
        m.sent += s.sent;
        m.delayed += s.delayed;
        m.unsent += s.unsent;
        m.unsent_late += s.unsent_late;
        m.in_flight += s.in_flight;
    }
    Ok(m)
}

/// The run's source: the first complete worker's, with every worker's
/// connections named `worker/connection` (in the merged `per_conn` order).
pub fn source(outcomes: &[Outcome], fallback_endpoint: String) -> Source {
    let first = outcomes.iter().find_map(|o| o.source.as_ref());
    let mut names = Vec::new();
    let mut discovered: Vec<String> = Vec::new();
    for o in outcomes {
        let Some(s) = &o.snapshot else { continue };
        let theirs = o.source.as_ref().map(|src| &src.names);
        for i in 0..s.per_conn.len() {
            let conn = theirs
                .and_then(|n| n.get(i).cloned())
                .unwrap_or_else(|| format!("#{i}"));
            names.push(format!("{}/{conn}", o.name));
        }
        for p in o.source.iter().flat_map(|src| &src.discovered) {
            if !discovered.contains(p) {
                discovered.push(p.clone());
            }
        }
    }
    Source {
        endpoint: first.map_or(fallback_endpoint, |s| s.endpoint.clone()),
        names,
        discovered,
        counted_per: first.map_or("connection".into(), |s| s.counted_per.clone()),
        request_bytes: first.map_or(0, |s| s.request_bytes),
        client: first.map_or("engine".into(), |s| s.client.clone()),
        window: first.map_or(0, |s| s.window),
    }
}

/// One row per worker, its share of the target judged on its own figures.
pub fn rows(args: &Args, outcomes: &[Outcome]) -> Vec<WorkerRow> {
    let share = args.qps.fixed().map(|q| q / outcomes.len().max(1) as f64);
    let duration_s = args.duration.as_secs_f64();
    outcomes
        .iter()
        .map(|o| {
            let empty = Snapshot::empty(0);
            let s = o.snapshot.as_ref().unwrap_or(&empty);
            let achieved = s.sent_in_window as f64 / duration_s;
            let latency = Percentiles::of(&s.latency);
            WorkerRow {
                name: o.name.clone(),
                status: o.status.text(),
                partial: o.partial(),
                target_held: !o.partial() && crate::target_held(share, achieved, s),
                connections: s.per_conn.len(),
                target_qps: share,
                achieved_qps: achieved,
                sent: s.sent_measured,
                unsent: s.unsent,
                completed: s.completed,
                unanswered: s.unanswered,
                errors: s.errors,
                send_lag_p99_us: Percentiles::of(&s.lag).p99,
                latency_p50_us: latency.p50,
                latency_p99_us: latency.p99,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distributed::wire::Frame;
    use crate::recorder::new_histogram;

    /// A worker's result after a trip through its frame, as the
    /// coordinator receives it.
    fn received(name: &str, values: &[(u64, u64)], status: Status) -> Outcome {
        let mut s = Snapshot::empty(2);
        for &(v, n) in values {
            s.latency.record_n(v, n).unwrap();
            s.completed += n;
        }
        s.per_conn = vec![s.completed / 2, s.completed - s.completed / 2];
        let bytes = Frame::Tick(s).encode().unwrap();
        let Ok(Frame::Tick(s)) = Frame::decode(&bytes) else {
            panic!("frame")
        };
        Outcome {
            name: name.into(),
            status,
            snapshot: Some(s),
            source: None,
        }
    }

    #[test]
    fn known_histograms_merge_to_exact_percentiles() {
        // a: 990 calls at 100 µs; b: 10 calls at 2000 µs (values below
        // 2048 are exact at 3 significant digits).
        let a = received("a", &[(100, 990)], Status::Complete);
        let b = received("b", &[(2000, 10)], Status::Complete);
        let merged = merge(&[a, b]).unwrap();
        let mut direct = new_histogram();
        direct.record_n(100, 990).unwrap();
        direct.record_n(2000, 10).unwrap();
        assert_eq!(merged.latency, direct);
        let p = Percentiles::of(&merged.latency);
        assert_eq!(
            (p.count, p.p50, p.p99, p.p999, p.max),
            (1000, 100, 100, 2000, 2000)
        );
        // Averaging the workers' p99s would have said 1050 µs.
        assert_ne!(p.p99, (100 + 2000) / 2);
        assert_eq!(merged.completed, 1000);
        assert_eq!(merged.per_conn, vec![495, 495, 5, 5]);
    }

    #[test]
    fn a_dead_worker_is_partial_and_fails_the_target() {
        let args = <Args as clap::Parser>::try_parse_from([
            "loadgen",
            "--zk",
            "z:1",
            "--workers",
            "2",
            "--qps",
            "200",
            "--duration",
            "1s",
        ])
        .unwrap();
        let mut ok = received("a", &[(50, 100)], Status::Complete);
        if let Some(s) = ok.snapshot.as_mut() {
            s.sent_in_window = 100;
            s.sent_measured = 100;
        }
        let died = Status::Died {
            gone: Duration::from_millis(2400),
            last: Some(Duration::from_millis(400)),
        };
        let dead = received("b", &[(50, 40)], died);
        let rows = rows(&args, &[ok, dead]);
        assert_eq!(rows[0].status, "complete");
        assert!(rows[0].target_held && !rows[0].partial, "{:?}", rows[0]);
        assert_eq!(rows[1].status, "died (gone at +2.4s, last report at +0.4s)");
        assert!(rows[1].partial && !rows[1].target_held);
        assert_eq!(rows[1].completed, 40, "its partial figures are kept");
    }
}
