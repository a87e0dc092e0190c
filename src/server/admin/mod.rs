//! The admin pages: HTTP on the provider's own port (told apart from RPC by
//! its first bytes, see `protocol::detect`) or on `admin_port`.
//!
//! | path | what |
//! |---|---|
//! | `GET /metrics` | Prometheus text exposition format (version 0.0.4) |
//! | `GET /status` | the same figures as JSON, plus version, uptime and config (shape below) |
//! | `GET /` | a page (HTML, JS, canvas; embedded, no CDN) charting /status every second |
//! | `GET /connections` | one line per open connection |
//!
//! `HEAD` works too; other methods get 405, other paths 404. With
//! `admin_token` set every request must carry it, as `Authorization: Bearer
//! TOKEN` or `?token=TOKEN` (the page passes its own `?token=` on to
//! /status); a missing or wrong token gets 401 (compared in constant time).
//! Requests are served on the reactor that owns the connection, under the
//! same idle and slow-frame timers as RPC; a request head is bounded
//! ([`http::MAX_REQUEST`]) and a bad one gets a 4xx reply and a close.
//!
//! # `/status` JSON
//!
//! ```text
//! {
//!   "version": "0.1.0",              // mprpc crate version
//!   "pid": 4242,
//!   "addr": "127.0.0.1:8000",        // the RPC listen address
//!   "uptime_s": 12.5,
//!   "process": {"rss_bytes": 9000000, "cpu_seconds": 0.42},   // null if unknown
//!   "connections": 3,                // open now, all reactors
//!   "reactors": [{"index": 0, "connections": 2, "accepted": 9, "bytes_in": 1200,
//!                 "bytes_out": 900, "frames_rejected": 0, "seed_connections": 0}],
//!   "streams": {"open": 1, "opened": 12, "ended": 11,   // all reactors
//!               "messages_sent": 5000, "messages_received": 40,
//!               "ended_by_code": {"ok": 9, "cancelled": 1, "deadline_exceeded": 0,
//!                                 "unavailable": 0, "application": 1}},
//!   "methods": [{"service": "UserServiceRpc", "method": "Login",
//!                "calls": 100, "errors": 2, "errors_by_code": {"application": 2},
//!                "in_flight": 0, "p50_us": 12, "p90_us": 20, "p99_us": 40,
//!                "p999_us": 80, "max_us": 95, "latency_samples": 100,
//!                "recent": {"window_s": 7.5, "calls": 40, "calls_per_s": 5.3,
//!                           "p50_us": 11, "p99_us": 35} | null}],
//!   "registry": null | {"connect": "127.0.0.1:2181", "registered": true,
//!                "session": "SyncConnected", "nodes": ["/mprpc/services/.../127.0.0.1:8000"]},
//!   "config": {"rpcserverport": "8000", "admin_token": "<redacted>", ...}
//! }
//! ```
//!
//! A stream counts as one call of its method (its outcome in `errors` and
//! `errors_by_code`, its whole duration as its latency) besides the
//! `streams` figures. `ended_by_code` has the usual outcomes (`ok`,
//! `cancelled`, `deadline_exceeded`, `unavailable`) always and any other
//! code once a stream ended with it; a stream whose connection was lost
//! ends `cancelled` on this side (its caller sees `unavailable`).
//!
//! Counters (`calls`, `errors`, bytes, `accepted`, `frames_rejected`) count
//! since start; a reader takes differences for rates. Latency is handler
//! time since start, sampled (every call for a thread's first 1024, then one
//! in eight); `recent` covers the last 5 to 10 seconds (null until the
//! server has been asked twice, 5 s apart); `methods` lists every method served, called or not (the
//! built-in `mprpc.Reflection` too).
//! `config` is the config file's keys as read overlaid with the server's
//! settings in effect; the framework's keys holding secrets read
//! `<redacted>`, and an application's own keys only `<set>`.

pub(crate) mod http;
mod json;
mod prometheus;
mod recent;
mod status;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;

use super::mailbox::ReactorShared;
use super::metrics::{MetricsRegistry, Slot};
use super::stats;
use crate::net::auth::{self, AuthToken};
use crate::options::AdminOptions;
use crate::protocol::WireFormat;
use crate::Code;
use http::{Request, Response};

/// The page `/`, compiled into the binary.
const PAGE: &str = include_str!("page.html");

/// What the registry tells the admin pages (set by the provider once it
/// registered).
#[derive(Debug, Clone, Default)]
pub(crate) struct RegistryStatus {
    pub(crate) connect: String,
    pub(crate) registered: bool,
    /// The session's last state (`SyncConnected`, `Disconnected`, ...).
    pub(crate) session: String,
    /// The nodes this provider holds now.
    pub(crate) nodes: Vec<String>,
}

/// A source of [`RegistryStatus`] (the ZooKeeper registrar).
pub(crate) trait RegistryProbe: Send + Sync {
    fn status(&self) -> RegistryStatus;
}

/// Everything the pages read, shared by the reactors.
pub(crate) struct Admin {
    token: Option<AuthToken>,
    /// Served on the RPC port (else only on `admin_port`).
    on_rpc_port: bool,
    started: Instant,
    addr: SocketAddr,
    metrics: Arc<MetricsRegistry>,
    reactors: OnceLock<Vec<Arc<ReactorShared>>>,
    registry: Mutex<Option<Arc<dyn RegistryProbe>>>,
    /// Config in effect, secrets redacted.
    settings: Vec<(String, String)>,
    /// Baselines for the recent-latency window of `/status`.
    window: recent::Window,
}

/// One reactor's figures at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReactorFigures {
    connections: usize,
    accepted: u64,
    bytes_in: u64,
    bytes_out: u64,
    frames_rejected: u64,
    seed_connections: u64,
    streams_opened: u64,
    streams_ended: u64,
    /// Streams ended, by code byte.
    streams_ended_by_code: [u64; stats::STREAM_CODES],
    stream_messages_sent: u64,
    stream_messages_received: u64,
}

/// The stream outcomes `/status` and `/metrics` always show (0 when none
/// ended so): a stream's usual ends. Others show once one has ended so.
pub(crate) const STREAM_OUTCOMES: [Code; 4] = [
    Code::Ok,
    Code::Cancelled,
    Code::DeadlineExceeded,
    Code::Unavailable,
];

impl Snapshot {
    /// Streams ended on every reactor, by outcome: the usual ones
    /// ([`STREAM_OUTCOMES`]) always, then any other code some ended with.
    pub(crate) fn streams_ended_by_code(&self) -> Vec<(Code, u64)> {
        let mut total = [0u64; stats::STREAM_CODES];
        for r in &self.reactors {
            for (sum, n) in total.iter_mut().zip(r.streams_ended_by_code) {
                *sum += n;
            }
        }
        let usual = STREAM_OUTCOMES
            .iter()
            .map(|&code| (code, total[code as usize]));
        let others = (0..=Code::Unimplemented as u8)
            .map(Code::from_u8)
            .filter(|code| !STREAM_OUTCOMES.contains(code))
            .map(|code| (code, total[code as usize]))
            .filter(|(_, n)| *n > 0);
        usual.chain(others).collect()
    }
}

/// Everything `/metrics` and `/status` show, read once per request.
pub(crate) struct Snapshot {
    methods: Vec<(&'static str, &'static str, Slot, u64)>,
    reactors: Vec<ReactorFigures>,
    admin_requests: u64,
    rss_bytes: Option<u64>,
    cpu_seconds: Option<f64>,
    uptime_s: f64,
    registry: Option<RegistryStatus>,
}

impl Admin {
    pub(crate) fn new(
        options: &AdminOptions,
        addr: SocketAddr,
        metrics: Arc<MetricsRegistry>,
        settings: Vec<(String, String)>,
    ) -> Admin {
        Admin {
            token: options.token.clone(),
            on_rpc_port: options.port.is_none(),
            started: Instant::now(),
            addr,
            metrics,
            reactors: OnceLock::new(),
            registry: Mutex::new(None),
            settings: redacted(settings),
            window: recent::Window::default(),
        }
    }

    /// The reactors, once they run (the pages list their connections).
    pub(crate) fn set_reactors(&self, reactors: Vec<Arc<ReactorShared>>) {
        let _ = self.reactors.set(reactors);
    }

    #[cfg_attr(not(feature = "zookeeper"), allow(dead_code))]
    pub(crate) fn set_registry(&self, probe: Arc<dyn RegistryProbe>) {
        *self.registry.lock() = Some(probe);
    }

    /// Whether HTTP on the RPC port is served (else only on `admin_port`).
    pub(crate) fn on_rpc_port(&self) -> bool {
        self.on_rpc_port
    }

    /// The reply to one request.
    pub(crate) fn respond(&self, request: &Request) -> Response {
        if !self.authorized(request) {
            return Response::text(
                401,
                "admin_token required: Authorization: Bearer TOKEN or ?token=TOKEN",
            )
            .with_header("WWW-Authenticate: Bearer realm=\"mprpc admin\"".into());
        }
        match request.path.as_str() {
            "/" => Response::new(200, "text/html; charset=utf-8", PAGE),
            "/metrics" => Response::new(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                prometheus::render(&self.snapshot()),
            ),
            "/status" => {
                let snapshot = self.snapshot();
                let slots: Vec<&Slot> = snapshot.methods.iter().map(|m| &m.2).collect();
                let recent = self.window.recent(&slots, Instant::now());
                let json = status::json(&snapshot, &recent, self.addr, &self.settings);
                Response::new(200, "application/json", json)
            }
            "/connections" => {
                let number = |name, default| {
                    let given = request.query_param(name).and_then(|v| v.parse().ok());
                    given.unwrap_or(default)
                };
                let offset = number("offset", 0);
                let limit = number("limit", status::CONNECTIONS_PAGE);
                let limit = limit.min(status::CONNECTIONS_PAGE_MAX);
                let page = status::connections(self.reactors(), Instant::now(), offset, limit);
                Response::new(200, "text/plain; charset=utf-8", page)
            }
            other => Response::text(
                404,
                &format!("no admin page '{other}' (try /, /metrics, /status, /connections)"),
            ),
        }
    }

    fn authorized(&self, request: &Request) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = request
            .bearer
            .clone()
            .or_else(|| request.query_param("token"));
        given.is_some_and(|given| auth::accepts(std::slice::from_ref(token), given.as_bytes()))
    }

    fn reactors(&self) -> &[Arc<ReactorShared>] {
        self.reactors.get().map_or(&[], Vec::as_slice)
    }

    fn snapshot(&self) -> Snapshot {
        let reactors: Vec<ReactorFigures> = self
            .reactors()
            .iter()
            .map(|r| {
                let s = r.stats();
                ReactorFigures {
                    connections: s.connections(),
                    accepted: stats::read(&s.accepted),
                    bytes_in: stats::read(&s.bytes_in),
                    bytes_out: stats::read(&s.bytes_out),
                    frames_rejected: stats::read(&s.frames_rejected),
                    seed_connections: s.connections_speaking(WireFormat::Seed),
                    streams_opened: stats::read(&s.streams_opened),
                    streams_ended: stats::read(&s.streams_ended),
                    streams_ended_by_code: s.streams_ended_by_code(),
                    stream_messages_sent: stats::read(&s.stream_messages_sent),
                    stream_messages_received: stats::read(&s.stream_messages_received),
                }
            })
            .collect();
        let admin_requests = self
            .reactors()
            .iter()
            .map(|r| stats::read(&r.stats().admin_requests))
            .sum();
        Snapshot {
            methods: self.metrics.merged(),
            reactors,
            admin_requests,
            rss_bytes: crate::sys::rss_bytes(),
            cpu_seconds: crate::sys::cpu_seconds(),
            uptime_s: self.started.elapsed().as_secs_f64(),
            registry: self.registry.lock().as_ref().map(|probe| probe.status()),
        }
    }
}

/// What `/status` shows of each setting: keys the framework knows (and
/// `listen`), verbatim, except those holding a secret (`<redacted>`); an
/// application's own keys only as `<set>`, since their names cannot be
/// trusted to say whether they hold one (`db_passwd`, `mysql_pwd`,
/// `private_pem`).
fn redacted(settings: Vec<(String, String)>) -> Vec<(String, String)> {
    const SECRET: [&str; 3] = ["token", "digest", "password"];
    let known = |key: &str| key == "listen" || crate::app::config::is_known_key(key);
    settings
        .into_iter()
        .map(|(key, value)| {
            let shown = if !known(&key) {
                "<set>".into()
            } else if SECRET.iter().any(|s| key.contains(s)) {
                "<redacted>".into()
            } else {
                value
            };
            (key, shown)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let settings = redacted(vec![
            ("admin_token".into(), "x".into()),
            ("zk_digest".into(), "u:p".into()),
            ("rpcserverport".into(), "8000".into()),
            ("db_passwd".into(), "hunter2".into()),
            ("private_pem".into(), "-----BEGIN".into()),
        ]);
        let shown: Vec<&str> = settings.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            shown,
            ["<redacted>", "<redacted>", "8000", "<set>", "<set>"],
            "only the framework's own keys are shown"
        );
    }
}
