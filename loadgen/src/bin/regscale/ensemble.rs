//! The ensemble's side of a measurement: what its servers say through the
//! `mntr` four-letter word (request counters, watches, outstanding
//! requests, connections) and what the kernel says about their JVMs (CPU
//! time and resident memory from /proc). A background sampler polls `mntr`
//! so a phase's peak of outstanding requests is seen, not only its ends.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

/// How often the sampler polls `mntr`.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// The ensemble's servers: their client ports (where `mntr` is asked) and,
/// if known, their JVMs' process ids.
#[derive(Debug, Clone)]
pub struct Ensemble {
    pub servers: Vec<SocketAddr>,
    pub pids: Vec<u32>,
}

/// The ensemble at one instant, summed over its servers.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    at: Option<Instant>,
    cpu_ticks: u64,
    rss: u64,
    packets_received: u64,
    packets_sent: u64,
    watches: u64,
    connections: u64,
    znodes: u64,
}

/// What the ensemble did between two snapshots.
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub seconds: f64,
    /// CPU the JVMs used, in cores (1.0 = one core busy all the time).
    pub cpu_cores: f64,
    pub cpu_seconds: f64,
    /// Requests the servers received per second (client packets, pings included).
    pub requests_per_s: f64,
    pub requests: u64,
    pub responses: u64,
    /// The most requests waiting at any one server (sampled).
    pub max_outstanding: u64,
    pub watches: u64,
    pub connections: u64,
    pub znodes: u64,
    pub rss: u64,
}

impl Ensemble {
    /// Reads every server's `mntr` and every JVM's /proc entries.
    pub fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot {
            at: Some(Instant::now()),
            ..Snapshot::default()
        };
        for &pid in &self.pids {
            snap.cpu_ticks += cpu_ticks(pid);
            snap.rss += crate::fleet::rss_bytes(pid);
        }
        for server in &self.servers {
            let m = mntr(*server);
            let get = |key: &str| m.get(key).copied().unwrap_or(0);
            snap.packets_received += get("zk_packets_received");
            snap.packets_sent += get("zk_packets_sent");
            snap.watches += get("zk_watch_count");
            snap.connections += get("zk_num_alive_connections");
            snap.znodes = snap.znodes.max(get("zk_znode_count"));
        }
        snap
    }

    /// The JVMs' live heap in bytes, after a full collection each (via
    /// `jcmd`; 0 for a JVM it cannot ask). Slow (a second or so per JVM):
    /// for between phases, not inside them.
    pub fn live_heap(&self) -> u64 {
        self.pids.iter().map(|&pid| live_heap(pid)).sum()
    }

    /// Starts polling the servers' outstanding requests in the background.
    pub fn sampler(&self) -> Sampler {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (servers, peak2, stop2) = (self.servers.clone(), peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                for server in &servers {
                    let outstanding = mntr(*server)
                        .get("zk_outstanding_requests")
                        .copied()
                        .unwrap_or(0);
                    peak2.fetch_max(outstanding, Ordering::Relaxed);
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
        });
        Sampler {
            peak,
            stop,
            thread: Some(thread),
        }
    }
}

impl Snapshot {
    /// The load from `self` (earlier) to `later`, with the sampled peak.
    pub fn load_until(&self, later: &Snapshot, max_outstanding: u64) -> Load {
        let seconds = match (self.at, later.at) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64().max(1e-6),
            _ => 1e-6,
        };
        let cpu_seconds =
            later.cpu_ticks.saturating_sub(self.cpu_ticks) as f64 / ticks_per_second();
        let requests = later.packets_received.saturating_sub(self.packets_received);
        Load {
            seconds,
            cpu_cores: cpu_seconds / seconds,
            cpu_seconds,
            requests_per_s: requests as f64 / seconds,
            requests,
            responses: later.packets_sent.saturating_sub(self.packets_sent),
            max_outstanding,
            watches: later.watches,
            connections: later.connections,
            znodes: later.znodes,
            rss: later.rss,
        }
    }
}

/// The background poller of [`Ensemble::sampler`]; stops on drop.
#[derive(Debug)]
pub struct Sampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// The peak of outstanding requests since the last call, and a restart.
    pub fn take_peak(&self) -> u64 {
        self.peak.swap(0, Ordering::Relaxed)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A server's `mntr` answer as numbers (non-numeric values are left out;
/// an unreachable server answers nothing).
fn mntr(server: SocketAddr) -> HashMap<String, u64> {
    let Ok(mut stream) = TcpStream::connect_timeout(&server, Duration::from_millis(500)) else {
        return HashMap::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"mntr").is_err() {
        return HashMap::new();
    }
    let _ = stream.shutdown(Shutdown::Write);
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.lines()
        .filter_map(|l| {
            let (key, value) = l.split_once('\t')?;
            Some((
                key.trim().to_owned(),
                value.trim().parse::<f64>().ok()? as u64,
            ))
        })
        .collect()
}

/// One JVM's heap in use after `GC.run`, from `GC.heap_info`'s
/// "... generation total NK, used NK" lines.
fn live_heap(pid: u32) -> u64 {
    let jcmd = |command: &str| {
        std::process::Command::new("jcmd")
            .args([&pid.to_string(), command])
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default()
    };
    jcmd("GC.run");
    jcmd("GC.heap_info")
        .lines()
        .filter(|l| l.contains("generation"))
        .filter_map(|l| {
            l.split("used ")
                .nth(1)?
                .split('K')
                .next()?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum::<u64>()
        * 1024
}

/// utime + stime of `pid`, in clock ticks (0 if it is gone).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces: count fields after its ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After ')': state is field 3 of stat(5), so utime (14) is index 11.
    field(11) + field(12)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}
