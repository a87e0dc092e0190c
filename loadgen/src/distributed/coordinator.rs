//! The coordinator (`loadgen --zk HOST:PORT --workers K ...`): claims K
//! idle workers, publishes the run, starts them at one instant, prints one
//! merged progress line a second, and merges their results into one
//! report with a per-worker table (see the module `distributed`).

use std::time::{Duration, Instant};

use super::merge::{self, Outcome, Status};
use super::spec::{RunSpec, WorkerNode, VERSION};
use super::wire::{kind_of, Frame, Kind};
use super::zk::{clock_offset_ms, explain, unix_ms, BlockingSession, Error};
use super::{base, HEARTBEAT, SESSION_TIMEOUT, START_LEAD};
use crate::cli::Args;
use crate::recorder::Snapshot;
use crate::{build_report, phase, print_and_write, progress_line, report};

/// How often the coordinator looks at the workers' nodes.
const POLL: Duration = Duration::from_millis(50);

/// How long claimed workers may take to start their run processes and
/// probe the target.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long after the workers' whole seconds the coordinator reads them.
const READ_AFTER: Duration = Duration::from_millis(250);

/// How long after the drain the coordinator waits for results.
const RESULT_GRACE: Duration = Duration::from_secs(10);

/// A run left by a dead coordinator is removed once this old.
const STALE_RUN: Duration = Duration::from_secs(60);

/// `loadgen --zk HOST:PORT --workers K ...`.
pub fn run(args: &Args) -> Result<(), String> {
    let args = &RunSpec::portable(args)?;
    let k = args.workers.ok_or("--workers K is needed")?;
    let connect = args.zk.as_deref().ok_or("--workers needs --zk HOST:PORT")?;
    for note in RunSpec::split_notes(args, k) {
        println!("loadgen: note: {note}");
    }
    let zk = BlockingSession::connect(connect, SESSION_TIMEOUT, args.zk_digest.as_deref())
        .map_err(|e| e.to_string())?;
    let base = base(&args.zk_root);
    for dir in ["workers", "runs"] {
        zk.mkdir(&format!("{base}/{dir}")).map_err(|e| {
            format!(
                "ZooKeeper {connect}: cannot create {base}/{dir}: {}",
                explain(&e)
            )
        })?;
    }
    remove_stale_runs(&zk, &base);
    let mut run = claim(&zk, args, &base, k as usize)?;
    let result = run.drive(args);
    if let Err(e) = zk.delete_tree(&run.path) {
        eprintln!("loadgen: cannot remove {}: {e}", run.path);
    }
    result
}

/// A run being coordinated.
struct Run<'a> {
    zk: &'a BlockingSession,
    path: String,
    workers: Vec<String>,
    /// ZooKeeper's clock minus ours, ms.
    offset: i64,
    beats: u64,
    last_beat: Instant,
}

/// Waits for `k` idle workers, creates the run and claims them.
fn claim<'a>(
    zk: &'a BlockingSession,
    args: &Args,
    base: &str,
    k: usize,
) -> Result<Run<'a>, String> {
    let deadline = Instant::now() + args.wait_workers;
    let mut next_note = Instant::now();
    println!(
        "loadgen: waiting up to {:?} for {k} idle worker(s) under {base}/workers",
        args.wait_workers
    );
    loop {
        let (idle, busy) = list_workers(zk, base)?;
        if idle.len() >= k {
            let chosen: Vec<(String, i32, WorkerNode)> = idle.into_iter().take(k).collect();
            if let Some(run) = try_claim(zk, args, base, &chosen)? {
                return Ok(run);
            }
            continue; // another coordinator took one of them: look again
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(format!(
                "only {} of {k} workers came within {:?} (idle: {}; busy: {}); start \
                 `loadgen worker --zk HOST:PORT` on each load machine, or raise --wait-workers",
                idle.len(),
                args.wait_workers,
                names(&idle),
                if busy.is_empty() {
                    "none".into()
                } else {
                    busy.join(", ")
                }
            ));
        }
        if now >= next_note {
            println!(
                "loadgen: {} of {k} workers idle ({}); waiting",
                idle.len(),
                names(&idle)
            );
            next_note = now + Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn names(workers: &[(String, i32, WorkerNode)]) -> String {
    if workers.is_empty() {
        return "none".into();
    }
    let list: Vec<&str> = workers.iter().map(|(n, ..)| n.as_str()).collect();
    list.join(", ")
}

/// Idle workers (name, node version, node), sorted by name; busy names.
#[allow(clippy::type_complexity)]
fn list_workers(
    zk: &BlockingSession,
    base: &str,
) -> Result<(Vec<(String, i32, WorkerNode)>, Vec<String>), String> {
    let dir = format!("{base}/workers");
    let mut idle = Vec::new();
    let mut busy = Vec::new();
    for name in zk
        .children(&dir)
        .map_err(|e| format!("cannot list {dir}: {e}"))?
    {
        let Ok(Some((data, stat))) = zk.get(&format!("{dir}/{name}")) else {
            continue;
        };
        match WorkerNode::decode(&data) {
            Ok(node) if node.run.is_none() => idle.push((name, stat.version, node)),
            Ok(_) => busy.push(name),
            Err(_) => {} // not a worker's node
        }
    }
    Ok((idle, busy))
}

/// Creates the run for `chosen` and claims each with a versioned write;
/// `None` (run removed) if another coordinator was faster for one.
fn try_claim<'a>(
    zk: &'a BlockingSession,
    args: &Args,
    base: &str,
    chosen: &[(String, i32, WorkerNode)],
) -> Result<Option<Run<'a>>, String> {
    let run_id = format!(
        "{}-{}-{}",
        crate::report::sanitize(&args.label),
        unix_ms(),
        std::process::id()
    );
    let path = format!("{base}/runs/{run_id}");
    let spec = RunSpec {
        version: VERSION.into(),
        run: run_id.clone(),
        workers: chosen.iter().map(|(n, ..)| n.clone()).collect(),
        args: args.clone(),
    };
    let json = serde_json::to_vec(&spec).map_err(|e| format!("run spec: {e}"))?;
    let fail = |what: &str, e: Error| format!("cannot create {what}: {}", explain(&e));
    let before = unix_ms();
    let stat = zk.create(&path, &json, false).map_err(|e| fail(&path, e))?;
    let offset = clock_offset_ms(stat.ctime, before, unix_ms());
    let made = zk
        .create(&format!("{path}/coordinator"), b"0", true)
        .and_then(|_| zk.create(&format!("{path}/workers"), b"", false))
        .and_then(|_| zk.create(&format!("{path}/results"), b"", false));
    if let Err(e) = made {
        let _ = zk.delete_tree(&path);
        return Err(fail(&format!("the nodes of {path}"), e));
    }
    for (name, version, node) in chosen {
        let claimed = WorkerNode {
            run: Some(run_id.clone()),
            ..node.clone()
        };
        let node_path = format!("{base}/workers/{name}");
        if let Err(e) = zk.set(&node_path, &claimed.encode(), Some(*version)) {
            // Raced (BadVersion) or gone: workers claimed so far see the
            // run vanish and go idle again.
            println!("loadgen: worker {name} was taken meanwhile ({e}); choosing again");
            let _ = zk.delete_tree(&path);
            return Ok(None);
        }
    }
    println!(
        "loadgen: run {run_id} on {}; ZooKeeper's clock is {offset:+} ms from ours",
        spec.workers.join(", ")
    );
    Ok(Some(Run {
        zk,
        path,
        workers: spec.workers,
        offset,
        beats: 0,
        last_beat: Instant::now(),
    }))
}

/// Removes runs whose coordinator is gone (left by a killed coordinator).
fn remove_stale_runs(zk: &BlockingSession, base: &str) {
    let dir = format!("{base}/runs");
    for run in zk.children(&dir).unwrap_or_default() {
        let path = format!("{dir}/{run}");
        let orphan = matches!(zk.get(&format!("{path}/coordinator")), Ok(None));
        let old = matches!(zk.get(&path), Ok(Some((_, stat)))
            if stat.ctime < unix_ms() - STALE_RUN.as_millis() as i64);
        if orphan && old {
            let _ = zk.delete_tree(&path);
        }
    }
}

/// What is known of a worker while the run goes on.
struct Seen {
    status: Option<Status>,
    snapshot: Option<Snapshot>,
    source: Option<crate::Source>,
    /// When its latest tick was read (after the start).
    last_report: Option<Duration>,
}

impl Run<'_> {
    /// Rewrites the heartbeat node every [`HEARTBEAT`].
    fn beat(&mut self) -> Result<(), String> {
        if self.last_beat.elapsed() < HEARTBEAT {
            return Ok(());
        }
        self.beats += 1;
        self.last_beat = Instant::now();
        match self.zk.set(
            &format!("{}/coordinator", self.path),
            self.beats.to_string().as_bytes(),
            None,
        ) {
            Ok(_) => Ok(()),
            Err(_) if self.zk.expired() => {
                Err("lost the ZooKeeper session: the workers stop their load".into())
            }
            Err(e) => {
                eprintln!("loadgen: heartbeat not written: {e}");
                Ok(())
            }
        }
    }

    /// Sleeps `d` while keeping the heartbeat going.
    fn pause(&mut self, d: Duration) -> Result<(), String> {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.beat()?;
            std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
        }
        self.beat()
    }

    fn drive(&mut self, args: &Args) -> Result<(), String> {
        self.wait_ready()?;
        let start_zk = unix_ms() + self.offset + START_LEAD.as_millis() as i64;
        let start_path = format!("{}/start", self.path);
        self.zk
            .create(&start_path, start_zk.to_string().as_bytes(), false)
            .map_err(|e| format!("cannot write {start_path}: {e}"))?;
        let ahead = (start_zk - self.offset - unix_ms()).max(0) as u64;
        let start = Instant::now() + Duration::from_millis(ahead);
        let started_at_utc = report::utc_now();
        let seen = self.follow(args, start)?;
        self.finish(args, started_at_utc, seen)
    }

    /// Waits until every claimed worker reports ready.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let mut ready = 0;
            for name in self.workers.clone() {
                let node = format!("{}/workers/{name}", self.path);
                match self.zk.get(&node) {
                    Ok(Some((data, _))) if kind_of(&data) == Ok(Kind::Ready) => ready += 1,
                    Ok(Some(_)) => {}
                    Ok(None) => self.check_not_failed(&name)?,
                    Err(e) => return Err(format!("cannot read {node}: {e}")),
                }
            }
            if ready == self.workers.len() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "only {ready} of {} workers were ready within {READY_TIMEOUT:?}",
                    self.workers.len()
                ));
            }
            self.pause(POLL)?;
        }
    }

    /// A worker that has not joined yet: it failed, or it is gone.
    fn check_not_failed(&self, name: &str) -> Result<(), String> {
        let result = format!("{}/results/{name}", self.path);
        if let Ok(Some((data, _))) = self.zk.get(&result) {
            let why = match Frame::decode(&data) {
                Ok(Frame::Failed(why)) => why,
                _ => "it gave up".into(),
            };
            return Err(format!("worker {name} cannot run: {why}"));
        }
        let registered = self
            .path
            .rsplit_once("/runs/")
            .map(|(base, _)| format!("{base}/workers/{name}"))
            .unwrap_or_default();
        match self.zk.get(&registered) {
            Ok(None) => Err(format!("worker {name} left before the run started")),
            _ => Ok(()),
        }
    }

    /// Prints a merged progress line a second until every worker has a
    /// result (or died, or the grace period is over).
    fn follow(&mut self, args: &Args, start: Instant) -> Result<Vec<Seen>, String> {
        let measure_from = start + args.warmup;
        let end = measure_from + args.duration;
        let give_up = end + args.timeout + Duration::from_secs(1) + RESULT_GRACE;
        let mut seen: Vec<Seen> = self
            .workers
            .iter()
            .map(|_| Seen {
                status: None,
                snapshot: None,
                source: None,
                last_report: None,
            })
            .collect();
        let (mut last_done, mut last_at) = (0u64, start);
        // Workers publish on their whole seconds; read a little after.
        let mut tick = start + Duration::from_secs(1) + READ_AFTER;
        loop {
            self.pause(tick.saturating_duration_since(Instant::now()))?;
            let now = Instant::now();
            for (i, name) in self.workers.clone().iter().enumerate() {
                if seen[i].status.is_none() {
                    self.look(name, &mut seen[i], now.saturating_duration_since(start));
                }
            }
            let merged = merge::merge(&outcomes_view(&self.workers, &seen))?;
            let done = merged.sent.saturating_sub(merged.in_flight);
            let rate =
                done.saturating_sub(last_done) as f64 / now.duration_since(last_at).as_secs_f64();
            let live = seen.iter().filter(|s| s.status.is_none()).count();
            println!(
                "{}  workers {live}/{} running",
                progress_line(
                    now.saturating_duration_since(start),
                    phase(now, measure_from, end),
                    rate,
                    &merged
                ),
                self.workers.len()
            );
            (last_done, last_at) = (done, now);
            if live == 0 {
                return Ok(seen);
            }
            if now >= give_up {
                for s in seen.iter_mut().filter(|s| s.status.is_none()) {
                    s.status = Some(Status::Silent);
                }
                return Ok(seen);
            }
            tick += Duration::from_secs(1);
        }
    }

    /// Reads worker `name`'s result, or its latest second, or notices it died.
    fn look(&self, name: &str, seen: &mut Seen, since_start: Duration) {
        let result = format!("{}/results/{name}", self.path);
        if let Ok(Some((data, _))) = self.zk.get(&result) {
            seen.status = Some(match Frame::decode(&data) {
                Ok(Frame::Final(s, source)) => {
                    seen.snapshot = Some(s);
                    seen.source = Some(source);
                    Status::Complete
                }
                Ok(Frame::Failed(why)) => Status::Failed(why),
                Ok(_) => Status::Failed("an unexpected frame as its result".into()),
                Err(e) => Status::Failed(format!("an unreadable result: {e}")),
            });
            return;
        }
        match self.zk.get(&format!("{}/workers/{name}", self.path)) {
            Ok(Some((data, _))) => {
                if let Ok(Frame::Tick(s)) = Frame::decode(&data) {
                    seen.snapshot = Some(s);
                    seen.last_report = Some(since_start);
                }
            }
            // Gone without a result: its session ended.
            Ok(None) => {
                seen.status = Some(Status::Died {
                    gone: since_start,
                    last: seen.last_report,
                })
            }
            Err(e) => eprintln!("loadgen: cannot read worker {name}'s progress: {e}"),
        }
    }

    fn finish(&self, args: &Args, started_at_utc: String, seen: Vec<Seen>) -> Result<(), String> {
        let outcomes: Vec<Outcome> = self
            .workers
            .iter()
            .zip(seen)
            .map(|(name, s)| Outcome {
                name: name.clone(),
                status: s.status.unwrap_or(Status::Silent),
                snapshot: s.snapshot,
                source: s.source,
            })
            .collect();
        let merged = merge::merge(&outcomes)?;
        let endpoint = args.addr.clone().unwrap_or_else(|| {
            format!("zk://{}{}", args.zk.as_deref().unwrap_or(""), args.zk_root)
        });
        let source = merge::source(&outcomes, endpoint);
        let mut report = build_report(args, started_at_utc, merged.per_conn.len(), source, &merged);
        report.workers = merge::rows(args, &outcomes);
        report.target_held = report.workers.iter().all(|w| w.target_held);
        report.not_held_because = report
            .workers
            .iter()
            .filter(|w| !w.target_held)
            .map(|w| format!("worker {} did not hold its share (see its row)", w.name))
            .collect();
        print_and_write(args, &report, &merged.latency)?;
        let partial: Vec<String> = outcomes
            .iter()
            .filter(|o| o.partial())
            .map(|o| format!("{} ({})", o.name, o.status.text()))
            .collect();
        if partial.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "incomplete run: {}; their last published figures are merged and marked partial",
                partial.join(", ")
            ))
        }
    }
}

/// The workers' latest figures as outcomes, for a progress line.
fn outcomes_view(workers: &[String], seen: &[Seen]) -> Vec<Outcome> {
    workers
        .iter()
        .zip(seen)
        .map(|(name, s)| Outcome {
            name: name.clone(),
            status: Status::Complete,
            snapshot: s.snapshot.clone(),
            source: None,
        })
        .collect()
}
