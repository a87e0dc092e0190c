//! `loadgen worker`: registers an ephemeral node in ZooKeeper, waits to be
//! claimed by a coordinator, runs its slice of each run in a child process
//! (see [`super::child`]) and relays the child's frames to the run's nodes.
//!
//! The worker watches the coordinator's heartbeat throughout a run and
//! kills the child when it stops changing for [`HEARTBEAT_LOST`]. After a
//! run (done, failed or abandoned) it deletes its run node and marks itself
//! idle again. If its session expires it registers anew.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::child::PARENT_ENV;
use super::spec::{check_name, hostname, RunSpec, WorkerNode, VERSION};
use super::wire::{kind_of, read_frame, Frame, Kind};
use super::zk::{clock_offset_ms, explain, unix_ms, BlockingSession, Error};
use super::{base, HEARTBEAT_LOST, SESSION_TIMEOUT};
use crate::cli::WorkerArgs;

/// How often the worker looks at its node, the heartbeat and the start.
const POLL: Duration = Duration::from_millis(50);

/// Lines of a child's stderr kept to explain its failure.
const STDERR_TAIL: usize = 4;

/// `loadgen worker`: serves runs until killed.
pub fn serve(args: &WorkerArgs) -> Result<(), String> {
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    check_name(&name)?;
    // The first session must open: a wrong address is an error, not a wait.
    let mut worker = Worker::register(args, &name)?;
    let mut backoff = Duration::from_millis(100);
    loop {
        worker.serve();
        eprintln!("loadgen worker {name}: ZooKeeper session ended; registering again");
        loop {
            std::thread::sleep(backoff);
            match Worker::register(args, &name) {
                Ok(w) => {
                    worker = w;
                    backoff = Duration::from_millis(100);
                    break;
                }
                Err(e) => {
                    eprintln!("loadgen worker {name}: {e}; retrying in {backoff:?}");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

struct Worker<'a> {
    zk: BlockingSession,
    args: &'a WorkerArgs,
    name: String,
    base: String,
    /// Our registration node.
    node: String,
    idle: WorkerNode,
}

impl<'a> Worker<'a> {
    /// Opens a session and creates the registration node.
    fn register(args: &'a WorkerArgs, name: &str) -> Result<Worker<'a>, String> {
        let zk = BlockingSession::connect(&args.zk, SESSION_TIMEOUT, args.zk_digest.as_deref())
            .map_err(|e| e.to_string())?;
        let base = base(&args.zk_root);
        for dir in ["workers", "runs"] {
            zk.mkdir(&format!("{base}/{dir}")).map_err(|e| {
                format!(
                    "ZooKeeper {}: cannot create {base}/{dir}: {}",
                    args.zk,
                    explain(&e)
                )
            })?;
        }
        let node = format!("{base}/workers/{name}");
        let idle = WorkerNode {
            run: None,
            host: hostname(),
            pid: std::process::id(),
            version: VERSION.into(),
        };
        match zk.create(&node, &idle.encode(), true) {
            Ok(_) => {}
            Err(Error::NodeExists) => {
                return Err(format!(
                    "a worker named {name} is already registered at {node}; give another --name"
                ))
            }
            Err(e) => {
                return Err(format!(
                    "ZooKeeper {}: cannot create {node}: {}",
                    args.zk,
                    explain(&e)
                ))
            }
        }
        println!(
            "loadgen worker {name}: registered at {node} in ZooKeeper {}; waiting for runs",
            args.zk
        );
        Ok(Worker {
            zk,
            args,
            name: name.to_owned(),
            base,
            node,
            idle,
        })
    }

    /// Waits for claims and runs them; returns when the session is over.
    fn serve(&mut self) {
        loop {
            std::thread::sleep(POLL);
            match self.zk.get(&self.node) {
                Ok(Some((data, _))) => {
                    if let Ok(WorkerNode { run: Some(run), .. }) = WorkerNode::decode(&data) {
                        self.take(&run);
                    }
                }
                Ok(None) => return,
                Err(_) if self.zk.expired() => return,
                Err(_) => {} // disconnected for now: the client reconnects
            }
        }
    }

    /// Does run `run`, then deletes our run node and goes idle.
    fn take(&self, run: &str) {
        let run_path = format!("{}/runs/{run}", self.base);
        println!("loadgen worker {}: claimed for run {run}", self.name);
        match self.run(&run_path) {
            Ok(()) => println!("loadgen worker {}: run {run} done", self.name),
            Err(e) => eprintln!("loadgen worker {}: run {run}: {e}", self.name),
        }
        let _ = self.zk.delete(&format!("{run_path}/workers/{}", self.name));
        if let Err(e) = self.zk.set(&self.node, &self.idle.encode(), None) {
            eprintln!("loadgen worker {}: cannot mark itself idle: {e}", self.name);
        }
    }

    fn run(&self, run_path: &str) -> Result<(), String> {
        let spec = match self.zk.get(run_path) {
            Ok(Some((data, _))) => data,
            Ok(None) => return Err("the run is gone (its coordinator gave it up)".into()),
            Err(e) => return Err(format!("cannot read the run's spec: {e}")),
        };
        let child_args = serde_json::from_slice::<RunSpec>(&spec)
            .map_err(|e| format!("bad run spec: {e}"))
            .and_then(|spec| {
                if spec.version != VERSION {
                    return Err(format!(
                        "worker {} runs loadgen {VERSION}, the coordinator {}",
                        self.name, spec.version
                    ));
                }
                spec.child_args(&self.name, &self.args.zk)
            });
        let child_args = match child_args {
            Ok(a) => a,
            Err(e) => {
                self.publish_result(run_path, &Frame::Failed(e.clone()));
                return Err(e);
            }
        };
        let mine = format!("{run_path}/workers/{}", self.name);
        let before = unix_ms();
        let stat = self
            .zk
            .create(&mine, b"", true)
            .map_err(|e| format!("cannot join the run at {mine}: {e}"))?;
        let offset = clock_offset_ms(stat.ctime, before, unix_ms());
        let mut beat = Heartbeat::new(format!("{run_path}/coordinator"));
        let mut run = ChildRun::spawn(&child_args)?;
        let outcome = self.relay(run_path, &mine, offset, &mut beat, &mut run);
        run.stop();
        outcome
    }

    /// Relays the child's frames until it ends, starting it when the
    /// coordinator says so and killing it if the heartbeat stops.
    fn relay(
        &self,
        run_path: &str,
        mine: &str,
        offset: i64,
        beat: &mut Heartbeat,
        run: &mut ChildRun,
    ) -> Result<(), String> {
        let start_path = format!("{run_path}/start");
        let (mut ready, mut started, mut finished) = (false, false, false);
        loop {
            if beat.lost(&self.zk) {
                if finished {
                    // The coordinator has our result and removed the run.
                    return Ok(());
                }
                return Err(format!(
                    "the coordinator's heartbeat stopped for {HEARTBEAT_LOST:?}: load stopped"
                ));
            }
            let exited = run.exited();
            // Frames written before an exit are all read before it is handled.
            for frame in run.frames(exited) {
                match kind_of(&frame) {
                    Ok(Kind::Ready) => {
                        ready = true;
                        self.write(mine, &frame)?;
                    }
                    // Progress only: a second that cannot be published
                    // (ZooKeeper briefly away) is skipped.
                    Ok(Kind::Tick) => {
                        if let Err(e) = self.write(mine, &frame) {
                            eprintln!("loadgen worker {}: {e}", self.name);
                        }
                    }
                    Ok(Kind::Final | Kind::Failed) => {
                        finished = true;
                        self.publish(run_path, &frame);
                    }
                    Err(e) => eprintln!("loadgen worker {}: {e}", self.name),
                }
            }
            if let Some(status) = exited {
                if finished {
                    return Ok(());
                }
                let why = format!("its run process exited ({status}): {}", run.stderr_tail());
                self.publish_result(run_path, &Frame::Failed(why.clone()));
                return Err(why);
            }
            if ready && !started {
                if let Ok(Some((data, _))) = self.zk.get(&start_path) {
                    let start_zk: i64 = String::from_utf8_lossy(&data)
                        .trim()
                        .parse()
                        .map_err(|_| "bad start instant".to_string())?;
                    run.start(start_zk - offset)?;
                    started = true;
                }
            }
            std::thread::sleep(POLL);
        }
    }

    /// Replaces our run node's data with a frame.
    fn write(&self, mine: &str, frame: &[u8]) -> Result<(), String> {
        self.zk
            .set(mine, frame, None)
            .map(|_| ())
            .map_err(|e| format!("cannot publish to {mine}: {e}"))
    }

    fn publish_result(&self, run_path: &str, frame: &Frame) {
        match frame.encode() {
            Ok(bytes) => self.publish(run_path, &bytes),
            Err(e) => eprintln!("loadgen worker {}: {e}", self.name),
        }
    }

    /// Writes our result node.
    fn publish(&self, run_path: &str, bytes: &[u8]) {
        let path = format!("{run_path}/results/{}", self.name);
        if let Err(e) = self.zk.create(&path, bytes, false) {
            eprintln!("loadgen worker {}: cannot write {path}: {e}", self.name);
        }
    }
}

/// The coordinator's heartbeat as this worker last saw it change.
struct Heartbeat {
    path: String,
    version: Option<i32>,
    changed: Instant,
}

impl Heartbeat {
    fn new(path: String) -> Heartbeat {
        Heartbeat {
            path,
            version: None,
            changed: Instant::now(),
        }
    }

    /// The node is gone, or has not changed for [`HEARTBEAT_LOST`] (an
    /// unanswered check counts as no change).
    fn lost(&mut self, zk: &BlockingSession) -> bool {
        match zk.stat_within(&self.path, HEARTBEAT_LOST / 4) {
            Ok(None) => return true,
            Ok(Some(stat)) if self.version != Some(stat.version) => {
                self.version = Some(stat.version);
                self.changed = Instant::now();
            }
            _ => {}
        }
        self.changed.elapsed() > HEARTBEAT_LOST
    }
}

/// A run's child process and the threads reading its output.
struct ChildRun {
    child: Child,
    stdin: Option<ChildStdin>,
    frames: Receiver<Vec<u8>>,
    /// The stdout and stderr readers, joined once the child has exited.
    readers: Vec<std::thread::JoinHandle<()>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl ChildRun {
    /// Starts `loadgen --worker-child` and hands it the run's flags.
    fn spawn(args: &crate::cli::Args) -> Result<ChildRun, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find loadgen itself: {e}"))?;
        let mut child = Command::new(exe)
            .arg("--worker-child")
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the run process: {e}"))?;
        let (tx, frames) = std::sync::mpsc::channel();
        let (Some(mut stdout), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            return Err("the run process has no output pipes".into());
        };
        let reader = std::thread::spawn(move || {
            while let Ok(Some(frame)) = read_frame(&mut stdout) {
                if tx.send(frame).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let tail = stderr.clone();
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("  | {line}");
                let mut tail = tail.lock();
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        let mut run = ChildRun {
            stdin: child.stdin.take(),
            child,
            frames,
            readers: vec![reader, err_reader],
            stderr,
        };
        let json = serde_json::to_string(args).map_err(|e| format!("run flags: {e}"))?;
        run.send(&json)?;
        Ok(run)
    }

    fn send(&mut self, line: &str) -> Result<(), String> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or("the run process's input is closed")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("cannot talk to the run process: {e}"))
    }

    /// Tells the child its start instant, in this machine's Unix ms.
    fn start(&mut self, unix_ms: i64) -> Result<(), String> {
        self.send(&format!("start {unix_ms}"))
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Frames received so far; after an exit, all of them.
    fn frames(&mut self, exited: Option<std::process::ExitStatus>) -> Vec<Vec<u8>> {
        if exited.is_some() {
            for reader in self.readers.drain(..) {
                let _ = reader.join();
            }
        }
        let mut out = Vec::new();
        loop {
            match self.frames.try_recv() {
                Ok(frame) => out.push(frame),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return out,
            }
        }
    }

    fn stderr_tail(&self) -> String {
        let tail = self.stderr.lock();
        if tail.is_empty() {
            "no message".into()
        } else {
            tail.iter().cloned().collect::<Vec<_>>().join(" / ")
        }
    }

    /// Kills the child if it still runs, and reaps it.
    fn stop(&mut self) {
        self.stdin = None;
        if self.exited().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
