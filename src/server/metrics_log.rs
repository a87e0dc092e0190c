//! The periodic metrics log: every `metrics_log_interval_s` the server logs
//! one line per method that has been called (totals, the change since the
//! previous line, latency), at info level under the target
//! `mprpc::metrics`, so a provider's log shows its traffic without a
//! scraper. A thread of its own; it stops with the server.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::metrics::{log_line, Metrics, MetricsRegistry};
use super::ServerShared;

/// How often the thread checks whether the server is shutting down.
const POLL: Duration = Duration::from_millis(100);

/// Starts the logging thread; it logs every `interval` until shutdown.
pub(crate) fn spawn(
    metrics: Arc<MetricsRegistry>,
    interval: Duration,
    server: Arc<ServerShared>,
) -> io::Result<JoinHandle<()>> {
    let guard = server.thread_guard();
    super::thread::spawn("mprpc-metrics-log".into(), move || {
        let _guard = guard;
        let mut before: Option<Metrics> = None;
        let mut next = Instant::now() + interval;
        while !server.is_shutting_down() {
            let now = Instant::now();
            if now < next {
                std::thread::sleep(POLL.min(next - now));
                continue;
            }
            next += interval;
            let snapshot = metrics.snapshot();
            log_all(&snapshot, before.as_ref(), interval);
            before = Some(snapshot);
        }
    })
}

fn log_all(now: &Metrics, before: Option<&Metrics>, interval: Duration) {
    for m in now.methods.iter().filter(|m| m.calls > 0) {
        let previous = before.and_then(|b| b.get(m.service, m.method));
        tracing::info!(target: "mprpc::metrics", "{}", log_line(m, previous, interval));
    }
}
