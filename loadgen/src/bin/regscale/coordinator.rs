//! The measurement: registers the providers itself, starts consumer
//! processes ([`crate::consumers`]) for the consumers, then times what the
//! issue asks for — registration, convergence after one provider leaves or
//! joins, the idle cost of the sessions, a rolling restart of every
//! provider — while [`Ensemble`] records the ensemble's side. Prints
//! progress on stderr and returns one JSON object for the report.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use mprpc::registry::Registrar;
use serde::Serialize;
use serde_json::{json, Value};

use crate::ensemble::{Ensemble, Load, Sampler, Snapshot};
use crate::fleet::{self, provider_addr};
use crate::probe::{self, Converged, Ready, Request, Watched};

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub connect: String,
    pub providers: usize,
    pub consumers: usize,
    pub consumers_per_process: usize,
    pub events: usize,
    pub rolling: bool,
    pub restart_pause: Duration,
    pub idle: Duration,
    pub session_timeout: Duration,
    pub threads: usize,
    pub converge_timeout: Duration,
    pub ensemble: Ensemble,
    pub label: String,
}

/// Convergence over every consumer after one change.
#[derive(Debug, Serialize)]
struct Convergence {
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Consumers whose list was not right by the timeout.
    missed: usize,
}

/// One provider leaving or joining, and what it cost.
#[derive(Debug, Serialize)]
struct Event {
    kind: &'static str,
    /// How long the provider's own step took (deregister, or register).
    action_ms: f64,
    convergence: Convergence,
    load: Load,
}

/// A consumer process and its request/answer pipes.
struct ConsumerProcess {
    child: Child,
    requests: ChildStdin,
    answers: BufReader<ChildStdout>,
}

impl ConsumerProcess {
    fn spawn(plan: &Plan, count: usize) -> Result<ConsumerProcess, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
        let mut child = Command::new(exe)
            .args(["consumers", "--zk", &plan.connect])
            .args(["--count", &count.to_string()])
            .args([
                "--session-timeout-ms",
                &plan.session_timeout.as_millis().to_string(),
            ])
            .args(["--threads", &plan.threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start a consumer process: {e}"))?;
        let requests = child.stdin.take().ok_or("consumer process without stdin")?;
        let answers = BufReader::new(
            child
                .stdout
                .take()
                .ok_or("consumer process without stdout")?,
        );
        Ok(ConsumerProcess {
            child,
            requests,
            answers,
        })
    }

    fn send(&mut self, request: &Request) -> Result<(), String> {
        writeln!(self.requests, "{}", probe::line("request", request))
            .and_then(|()| self.requests.flush())
            .map_err(|e| format!("consumer process {} went away: {e}", self.child.id()))
    }

    fn receive<T: for<'de> serde::Deserialize<'de>>(&mut self, word: &str) -> Result<T, String> {
        let mut text = String::new();
        match self.answers.read_line(&mut text) {
            Ok(0) => Err(format!("consumer process {} exited early", self.child.id())),
            Ok(_) => probe::parse(&text, word),
            Err(e) => Err(format!("reading consumer process {}: {e}", self.child.id())),
        }
    }
}

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        let _ = self.send(&Request::Quit);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The running measurement.
struct Run<'a> {
    plan: &'a Plan,
    providers: Vec<Option<Registrar>>,
    processes: Vec<ConsumerProcess>,
    sampler: Sampler,
}

/// Runs `plan` and returns its results.
pub fn run(plan: &Plan) -> Result<Value, String> {
    let me = std::process::id();
    let config = fleet::config(&plan.connect, plan.session_timeout);
    let sampler = plan.ensemble.sampler();
    let heap_start = plan.ensemble.live_heap();

    eprintln!("regscale: registering {} providers", plan.providers);
    let rss_before = fleet::rss_bytes(me);
    let (providers, register) = timed(&plan.ensemble, &sampler, || {
        fleet::open_all("providers", plan.providers, plan.threads, |i| {
            fleet::start_provider(&config, i)
        })
    })?;
    let provider_rss = fleet::rss_bytes(me).saturating_sub(rss_before);
    let mut run = Run {
        plan,
        providers: providers.into_iter().map(Some).collect(),
        processes: Vec::new(),
        sampler,
    };

    eprintln!("regscale: opening {} consumers", plan.consumers);
    run.sampler.take_peak();
    let before_open = plan.ensemble.snapshot();
    let ready = run.open_consumers()?;
    let after_open = plan.ensemble.snapshot();
    let consumers_open = before_open.load_until(&after_open, run.sampler.take_peak());
    let initial = run.expect(plan.providers, None, true, probe::mono_ns())?;
    let heap_open = plan.ensemble.live_heap();
    let consumer_rss: u64 = ready
        .iter()
        .map(|r| r.rss_after.saturating_sub(r.rss_before))
        .sum();

    eprintln!("regscale: idle for {:?}", plan.idle);
    let (_, idle) = timed(&plan.ensemble, &run.sampler, || {
        std::thread::sleep(plan.idle);
        Ok(())
    })?;

    let mut events = Vec::new();
    for e in 0..plan.events {
        let i = e % plan.providers.max(1);
        events.push(run.leave(i)?);
        events.push(run.join(&config, i)?);
    }
    let rolling = if plan.rolling {
        Some(run.rolling_restart(&config)?)
    } else {
        None
    };

    let sessions = (plan.providers + plan.consumers).max(1) as u64;
    Ok(json!({
        "label": plan.label,
        "providers": plan.providers,
        "consumers": plan.consumers,
        "consumer_processes": run.processes.len(),
        "session_timeout_ms": plan.session_timeout.as_millis() as u64,
        "register": register,
        "consumers_open": {
            "seconds": ready.iter().map(|r| r.open_seconds).fold(0.0, f64::max),
            "load": consumers_open,
            "initial_convergence": initial,
        },
        "memory": {
            "provider_bytes_per_session": provider_rss / plan.providers.max(1) as u64,
            "consumer_bytes_per_session": consumer_rss / plan.consumers.max(1) as u64,
            "ensemble_heap_start": heap_start,
            "ensemble_heap_open": heap_open,
            "ensemble_bytes_per_session": heap_open.saturating_sub(heap_start) / sessions,
        },
        "idle": idle,
        "events": events,
        "rolling_restart": rolling,
    }))
}

/// Runs `step`, returning its result and the ensemble's load meanwhile.
fn timed<T>(
    ensemble: &Ensemble,
    sampler: &Sampler,
    step: impl FnOnce() -> Result<T, String>,
) -> Result<(T, Load), String> {
    sampler.take_peak();
    let before: Snapshot = ensemble.snapshot();
    let out = step()?;
    let load = before.load_until(&ensemble.snapshot(), sampler.take_peak());
    Ok((out, load))
}

impl Run<'_> {
    /// Starts the consumer processes and waits until each is ready.
    fn open_consumers(&mut self) -> Result<Vec<Ready>, String> {
        let per = self.plan.consumers_per_process.max(1);
        let mut left = self.plan.consumers;
        while left > 0 {
            let count = left.min(per);
            self.processes
                .push(ConsumerProcess::spawn(self.plan, count)?);
            left -= count;
        }
        self.processes
            .iter_mut()
            .map(|p| p.receive::<Ready>("ready"))
            .collect()
    }

    fn broadcast(&mut self, request: &Request) -> Result<(), String> {
        self.processes.iter_mut().try_for_each(|p| p.send(request))
    }

    /// Waits until every consumer lists `len` providers, with or without `addr`.
    fn expect(
        &mut self,
        len: usize,
        addr: Option<std::net::SocketAddr>,
        present: bool,
        since_ns: u64,
    ) -> Result<Convergence, String> {
        self.ask_expect(len, addr, present, since_ns)?;
        self.collect_convergence()
    }

    /// Asks every consumer process to time the consumers until their lists
    /// are right (asked before the change, so they sweep while it happens).
    fn ask_expect(
        &mut self,
        len: usize,
        addr: Option<std::net::SocketAddr>,
        present: bool,
        since_ns: u64,
    ) -> Result<(), String> {
        self.broadcast(&Request::Expect {
            len,
            addr,
            present,
            since_ns,
            timeout_ms: self.plan.converge_timeout.as_millis() as u64,
        })
    }

    /// The answers to [`Run::ask_expect`], over every consumer.
    fn collect_convergence(&mut self) -> Result<Convergence, String> {
        let mut latencies = Vec::new();
        let mut missed = 0;
        for process in &mut self.processes {
            let answer: Converged = process.receive("converged")?;
            latencies.extend(answer.latencies_us);
            missed += answer.missed;
        }
        Ok(convergence(latencies, missed))
    }

    fn leave(&mut self, i: usize) -> Result<Event, String> {
        let registrar = self.providers[i].take().ok_or("provider already gone")?;
        self.event("leave", i, false, move || {
            registrar.deregister();
            drop(registrar);
            Ok(None)
        })
    }

    fn join(&mut self, config: &mprpc::Config, i: usize) -> Result<Event, String> {
        let event = self.event("join", i, true, || {
            fleet::start_provider(config, i).map(Some)
        })?;
        Ok(event)
    }

    /// Times one provider's `action` and the consumers' convergence on it.
    fn event(
        &mut self,
        kind: &'static str,
        i: usize,
        present: bool,
        action: impl FnOnce() -> Result<Option<Registrar>, String>,
    ) -> Result<Event, String> {
        let len = self.plan.providers - usize::from(!present);
        self.sampler.take_peak();
        let before = self.plan.ensemble.snapshot();
        let since = probe::mono_ns();
        self.ask_expect(len, Some(provider_addr(i)), present, since)?;
        let started = Instant::now();
        if let Some(registrar) = action()? {
            self.providers[i] = Some(registrar);
        }
        let action_ms = ms(started.elapsed());
        let convergence = self.collect_convergence()?;
        let load = before.load_until(&self.plan.ensemble.snapshot(), self.sampler.take_peak());
        eprintln!(
            "regscale: {kind} of provider {i}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} missed; ensemble {:.2} cores, {:.0} req/s",
            convergence.p50_ms, convergence.p99_ms, convergence.max_ms, convergence.missed, load.cpu_cores, load.requests_per_s
        );
        Ok(Event {
            kind,
            action_ms,
            convergence,
            load,
        })
    }

    /// Restarts every provider in turn (deregister, close, register again)
    /// while the consumers' lists are swept for the shortest one.
    fn rolling_restart(&mut self, config: &mprpc::Config) -> Result<Value, String> {
        let n = self.providers.len();
        eprintln!("regscale: rolling restart of {n} providers");
        self.broadcast(&Request::Watch)?;
        self.sampler.take_peak();
        let before = self.plan.ensemble.snapshot();
        let started = Instant::now();
        let mut start_failures = 0;
        for i in 0..n {
            if let Some(registrar) = self.providers[i].take() {
                registrar.deregister();
            }
            let (registrar, failures) = start_with_retries(config, i)?;
            start_failures += failures;
            self.providers[i] = Some(registrar);
            if (i + 1).is_multiple_of((n / 10).max(1)) {
                eprintln!("regscale: rolling restart: {} of {n} restarted", i + 1);
            }
            std::thread::sleep(self.plan.restart_pause);
        }
        let restart_seconds = started.elapsed().as_secs_f64();
        let final_convergence = self.expect(n, None, true, probe::mono_ns())?;
        self.broadcast(&Request::Stop)?;
        let mut watched = Vec::new();
        for process in &mut self.processes {
            watched.push(process.receive::<Watched>("watched")?);
        }
        let load = before.load_until(&self.plan.ensemble.snapshot(), self.sampler.take_peak());
        let min_len = watched.iter().map(|w| w.min_len).min().unwrap_or(0);
        let empty_seen: u64 = watched.iter().map(|w| w.empty_seen).sum();
        let sweeps = watched.iter().map(|w| w.sweeps).min().unwrap_or(0);
        eprintln!(
            "regscale: rolling restart took {restart_seconds:.1} s; shortest list seen {min_len}, empty {empty_seen} times in {sweeps} sweeps; ensemble {:.2} cores",
            load.cpu_cores
        );
        Ok(json!({
            "seconds": restart_seconds,
            "per_provider_ms": restart_seconds * 1000.0 / n.max(1) as f64,
            "final_convergence": final_convergence,
            "min_list_len": min_len,
            "start_failures": start_failures,
            "empty_seen": empty_seen,
            "sweeps": sweeps,
            "load": load,
        }))
    }
}

/// Registers provider `i` again, as a deploy tool would: a start that
/// fails (an overloaded ensemble times requests out) is retried, up to
/// [`START_ATTEMPTS`] in all. Returns the registrar and the failed attempts.
fn start_with_retries(config: &mprpc::Config, i: usize) -> Result<(Registrar, usize), String> {
    let mut failures = 0;
    loop {
        match fleet::start_provider(config, i) {
            Ok(registrar) => return Ok((registrar, failures)),
            Err(e) if failures + 1 < START_ATTEMPTS => {
                eprintln!("regscale: {e}; retrying");
                failures += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Attempts per provider start in the rolling restart.
const START_ATTEMPTS: usize = 3;

fn convergence(mut latencies_us: Vec<u64>, missed: usize) -> Convergence {
    latencies_us.sort_unstable();
    let at = |q: f64| -> f64 {
        if latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies_us.len() as f64 * q).ceil() as usize).clamp(1, latencies_us.len()) - 1;
        latencies_us[i] as f64 / 1000.0
    };
    Convergence {
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        missed,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
