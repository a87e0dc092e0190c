//! What travels before a run: the run's spec (the coordinator's parsed
//! flags and its workers, in slice order), each worker's share of it
//! ([`Slice`]), what a worker hands its child, and the key=value text of a
//! worker's registration node.

use serde::{Deserialize, Serialize};

use crate::cli::{Args, Rate};

/// The loadgen version; a worker refuses a spec from another version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Worker `index` of `of`: its share of the totals the run splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    pub index: usize,
    pub of: usize,
}

impl Default for Slice {
    /// A single run: everything.
    fn default() -> Slice {
        Slice { index: 0, of: 1 }
    }
}

impl Slice {
    /// This worker's part of `total` (the first workers take the remainder).
    pub fn share(self, total: u64) -> u64 {
        let of = self.of as u64;
        total / of + u64::from((self.index as u64) < total % of)
    }

    /// The global number of this worker's sending thread `t` of `threads`
    /// (each worker has `threads`), and the number of all threads: worker
    /// w's thread t is thread w·T+t of K·T of one schedule.
    pub fn thread(self, t: usize, threads: usize) -> (usize, usize) {
        (self.index * threads + t, self.of * threads)
    }
}

/// The run as the coordinator publishes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSpec {
    pub version: String,
    pub run: String,
    /// Claimed workers; a worker's position is its slice index.
    pub workers: Vec<String>,
    /// The coordinator's flags (the load's shape and totals).
    pub args: Args,
}

impl RunSpec {
    /// The coordinator's flags as the workers need them on other machines:
    /// a `--request-file` travels as its bytes (in hex). Paths that stay
    /// paths (`--tls-ca`) name a file on every worker's machine.
    pub fn portable(args: &Args) -> Result<Args, String> {
        let mut args = args.clone();
        if let Some(path) = args.request_file.take() {
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("--request-file {}: {e}", path.display()))?;
            args.request_hex = Some(bytes.iter().map(|b| format!("{b:02x}")).collect());
        }
        Ok(args)
    }

    /// Totals too small to split: each worker still gets one.
    pub fn split_notes(args: &Args, workers: u32) -> Vec<String> {
        [
            ("--connections", args.connections),
            ("--in-flight", args.in_flight),
        ]
        .into_iter()
        .filter(|&(_, total)| total < workers)
        .map(|(flag, total)| {
            format!("{flag} {total} is less than {workers} workers: each worker uses 1 ({workers} in all)")
        })
        .collect()
    }

    /// The flags of worker `name`'s child: its slice of the totals, no
    /// report files, providers discovered in `zk` unless the spec has --addr.
    pub fn child_args(&self, name: &str, zk: &str) -> Result<Args, String> {
        let index = self
            .workers
            .iter()
            .position(|w| w == name)
            .ok_or_else(|| format!("run {} does not list worker {name}", self.run))?;
        let slice = Slice {
            index,
            of: self.workers.len(),
        };
        let mut args = self.args.clone();
        args.connections = slice.share(u64::from(args.connections)).max(1) as u32;
        args.in_flight = slice.share(u64::from(args.in_flight)).max(1) as u32;
        if let Rate::Fixed(q) = args.qps {
            args.qps = Rate::Fixed(q / slice.of as f64);
        }
        args.slice = slice;
        args.workers = None;
        args.no_write = true;
        args.label = format!("{}-{name}", args.label);
        args.zk = if args.addr.is_some() {
            None
        } else {
            Some(zk.to_owned())
        };
        Ok(args)
    }
}

/// A worker's registration node: `state=idle` or `state=claimed` with
/// `run=<RUN>`, plus who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerNode {
    /// The run that claimed it, if any.
    pub run: Option<String>,
    pub host: String,
    pub pid: u32,
    pub version: String,
}

impl WorkerNode {
    pub fn encode(&self) -> Vec<u8> {
        let state = match &self.run {
            Some(run) => format!("state=claimed\nrun={run}\n"),
            None => "state=idle\n".into(),
        };
        format!(
            "{state}host={}\npid={}\nversion={}\n",
            self.host, self.pid, self.version
        )
        .into_bytes()
    }

    /// Unknown keys are ignored; a node without `state` is not a worker's.
    pub fn decode(data: &[u8]) -> Result<WorkerNode, String> {
        let text = std::str::from_utf8(data).map_err(|_| "not UTF-8".to_string())?;
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::trim)
        };
        let run = match get("state") {
            Some("idle") => None,
            Some("claimed") => Some(get("run").ok_or("claimed without run=")?.to_owned()),
            other => return Err(format!("unknown state {other:?}")),
        };
        Ok(WorkerNode {
            run,
            host: get("host").unwrap_or("?").to_owned(),
            pid: get("pid").and_then(|p| p.parse().ok()).unwrap_or(0),
            version: get("version").unwrap_or("?").to_owned(),
        })
    }
}

/// This machine's host name ("?" if it has none).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "?".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A ZooKeeper node name: non-empty, no `/`, not `.` or `..`, printable.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a usable worker name (letters, digits, '-', '_', '.')"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn shares_add_up_to_the_totals() {
        for (total, of) in [(7u64, 3usize), (3, 3), (1000, 4), (5, 1)] {
            let sum: u64 = (0..of).map(|index| Slice { index, of }.share(total)).sum();
            assert_eq!(sum, total, "{total} over {of}");
        }
        assert_eq!(Slice { index: 0, of: 3 }.share(7), 3);
        assert_eq!(Slice { index: 2, of: 3 }.share(7), 2);
        assert_eq!(Slice { index: 1, of: 3 }.thread(1, 2), (3, 6));
    }

    #[test]
    fn the_workers_schedules_interleave_into_one() {
        use crate::schedule::Schedule;
        use std::time::{Duration, Instant};
        let (start, qps, threads, workers) = (Instant::now(), 600.0, 2, 3);
        let end = start + Duration::from_millis(500);
        let one: Vec<Instant> = Schedule::new(start, qps, 0, 1).unsent(0, end).collect();
        // Each worker runs qps/K on its threads, placed as main.rs does.
        let mut all: Vec<Instant> = (0..workers)
            .flat_map(|index| {
                let slice = Slice { index, of: workers };
                (0..threads).flat_map(move |t| {
                    let (thread, of) = slice.thread(t, threads);
                    let share = qps / workers as f64;
                    Schedule::new(start, share * slice.of as f64, thread, of)
                        .unsent(0, end)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        all.sort();
        assert_eq!(all.len(), one.len());
        for (a, b) in all.iter().zip(&one) {
            let gap = if a > b { *a - *b } else { *b - *a };
            assert!(gap < Duration::from_micros(1), "{gap:?}");
        }
    }

    #[test]
    fn child_args_take_the_worker_s_slice() {
        let args = Args::try_parse_from([
            "loadgen",
            "--zk",
            "z:1",
            "--workers",
            "3",
            "--qps",
            "3000",
            "-c",
            "7",
            "--in-flight",
            "30",
        ])
        .unwrap();
        let spec = RunSpec {
            version: VERSION.into(),
            run: "r".into(),
            workers: vec!["a".into(), "b".into(), "c".into()],
            args,
        };
        let b = spec.child_args("b", "zk:9").unwrap();
        assert_eq!((b.connections, b.in_flight), (2, 10));
        assert_eq!(b.qps, Rate::Fixed(1000.0));
        assert_eq!(b.slice, Slice { index: 1, of: 3 });
        assert_eq!((b.workers, b.no_write), (None, true));
        assert_eq!(
            b.zk.as_deref(),
            Some("zk:9"),
            "discovers where it was told to"
        );
        assert!(spec.child_args("d", "zk:9").is_err());
        assert_eq!(RunSpec::split_notes(&spec.args, 8).len(), 1);
        assert!(RunSpec::split_notes(&spec.args, 7).is_empty());
    }

    #[test]
    fn a_request_file_travels_as_its_bytes() {
        let path = std::env::temp_dir().join(format!("loadgen-spec-{}", std::process::id()));
        std::fs::write(&path, [0x0a, 0x02, 0xff]).unwrap();
        let args = Args::try_parse_from(["loadgen", "--zk", "z:1", "--workers", "2"])
            .map(|mut a| {
                a.request_file = Some(path.clone());
                a
            })
            .unwrap();
        let portable = RunSpec::portable(&args).unwrap();
        assert_eq!(portable.request_file, None);
        assert_eq!(portable.request_hex.as_deref(), Some("0a02ff"));
        std::fs::remove_file(&path).unwrap();
        assert!(RunSpec::portable(&args)
            .unwrap_err()
            .contains("--request-file"));
    }

    #[test]
    fn worker_nodes_round_trip() {
        let mut node = WorkerNode {
            run: None,
            host: "h".into(),
            pid: 7,
            version: VERSION.into(),
        };
        assert_eq!(WorkerNode::decode(&node.encode()), Ok(node.clone()));
        node.run = Some("run-1".into());
        assert_eq!(WorkerNode::decode(&node.encode()), Ok(node));
        assert!(WorkerNode::decode(b"state=odd\n").is_err());
        assert!(WorkerNode::decode(b"state=claimed\n").is_err());
    }

    #[test]
    fn names() {
        assert!(check_name("box-1.lab_2").is_ok());
        for bad in ["", "a/b", "..", "sp ace"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
