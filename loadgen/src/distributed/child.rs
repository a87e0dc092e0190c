//! The per-run process a worker starts (`loadgen --worker-child`): a single
//! run of the worker's slice with the usual engine, recorder and schedule,
//! whose start instant comes from the worker and whose progress and result
//! go back to it as frames.
//!
//! A child per run keeps the worker's own process clean (a run leaks its
//! recorders and clients by design, for `'static` completions) and makes
//! stopping a run instant and certain: the worker kills the child. The
//! child dies with its worker too (`PR_SET_PDEATHSIG`), so a worker killed
//! with `kill -9` leaves no load behind.
//!
//! Protocol, on the child's stdin: one line with the run's flags as JSON
//! (its slice already applied), later `start <unix-ms>` (in this machine's
//! clock). On its stdout: length-prefixed [`Frame`]s: `Ready` once the
//! target answered a probe, a `Tick` a second, then `Final` (or `Failed`).
//! Progress lines go to stderr.

use std::io::Write;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::wire::{write_frame, Frame};
use super::zk::unix_ms;
use crate::cli::Args;
use crate::recorder::Snapshot;
use crate::{Finished, RunIo};

/// The worker's pid, for the child to check it is still there.
pub const PARENT_ENV: &str = "LOADGEN_WORKER_PID";

/// A start instant more than this far in the past is refused (the worker
/// was too slow to get ready: its schedule would begin with a burst).
const LATE_START: Duration = Duration::from_millis(200);

/// `loadgen --worker-child`.
pub fn run() -> Result<(), String> {
    die_with_parent()?;
    let line = read_line()?;
    let args: Args = serde_json::from_str(&line).map_err(|e| format!("bad run spec: {e}"))?;
    let io = Child {
        out: Mutex::new(std::io::stdout()),
    };
    crate::run(&args, &io).inspect_err(|e| {
        let _ = io.send(&Frame::Failed(e.clone()));
    })
}

struct Child {
    out: Mutex<std::io::Stdout>,
}

impl Child {
    fn send(&self, frame: &Frame) -> Result<(), String> {
        let bytes = frame.encode()?;
        write_frame(&mut *self.out.lock(), &bytes)
            .map_err(|e| format!("cannot report to the worker: {e}"))
    }
}

impl RunIo for Child {
    fn ready(&self) -> Result<Instant, String> {
        self.send(&Frame::Ready)?;
        let line = read_line()?;
        let start_ms: i64 = line
            .strip_prefix("start ")
            .and_then(|ms| ms.trim().parse().ok())
            .ok_or_else(|| format!("expected `start <unix-ms>`, got {line:?}"))?;
        let ahead = start_ms - unix_ms();
        if ahead < -(LATE_START.as_millis() as i64) {
            return Err(format!(
                "the common start instant had passed {} ms before this worker was ready",
                -ahead
            ));
        }
        Ok(Instant::now() + Duration::from_millis(ahead.max(0) as u64))
    }

    fn tick(&self, line: &str, s: &Snapshot) {
        eprintln!("{line}");
        // A tick that cannot be reported is skipped; the result still counts.
        if let Err(e) = self.send(&Frame::Tick(s.clone())) {
            eprintln!("loadgen: {e}");
        }
    }

    fn finish(&self, _: &Args, end: Finished) -> Result<(), String> {
        self.send(&Frame::Final(end.snapshot, end.source))?;
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// One line of stdin; its end means the worker is gone.
fn read_line() -> Result<String, String> {
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(0) => Err("the worker closed our input".into()),
        Ok(_) => Ok(line.trim_end().to_owned()),
        Err(e) => Err(format!("cannot read from the worker: {e}")),
    }
}

/// Asks Linux to kill this process when the worker dies, then checks the
/// worker did not die before that.
fn die_with_parent() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_PDEATHSIG only sets the signal this process gets when
    // its parent thread exits.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    let expected: Option<i32> = std::env::var(PARENT_ENV).ok().and_then(|p| p.parse().ok());
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    match expected {
        Some(pid) if pid != parent => Err("the worker that started this run is gone".into()),
        _ => Ok(()),
    }
}
