//! A consumer process: opens `count` consumers ([`fleet::start_consumer`])
//! and then serves the coordinator's [`Request`]s. Several of them hold a
//! large consumer fleet because one process may hold only so many file
//! descriptors (each consumer owns a socket and its runtime's epoll fds).

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mprpc::registry::ZkDiscover;
use mprpc::Discover;

use crate::fleet::{self, SERVICE};
use crate::probe::{self, Converged, Ready, Request, Watched};

/// How long a sweep rests between passes over the fleet.
const SWEEP_PAUSE: Duration = Duration::from_millis(1);

/// Runs a consumer process until [`Request::Quit`] or end of input.
pub fn run(
    connect: &str,
    count: usize,
    session_timeout: Duration,
    threads: usize,
) -> Result<(), String> {
    let config = fleet::config(connect, session_timeout);
    let pid = std::process::id();
    let rss_before = fleet::rss_bytes(pid);
    let started = Instant::now();
    let consumers = fleet::open_all("consumers", count, threads, |_| {
        fleet::start_consumer(&config)
    })?;
    let ready = Ready {
        consumers: consumers.len(),
        open_seconds: started.elapsed().as_secs_f64(),
        rss_before,
        rss_after: fleet::rss_bytes(pid),
    };
    answer(&probe::line("ready", &ready))?;
    let consumers: Arc<Vec<Arc<ZkDiscover>>> = Arc::new(consumers);
    let mut watching: Option<(Arc<AtomicBool>, std::thread::JoinHandle<Watched>)> = None;
    for text in std::io::stdin().lock().lines() {
        let text = text.map_err(|e| format!("reading requests: {e}"))?;
        let request: Request = probe::parse(&text, "request")?;
        match request {
            Request::Expect {
                len,
                addr,
                present,
                since_ns,
                timeout_ms,
            } => {
                let right = |list: &[mprpc::Endpoint]| {
                    list.len() == len
                        && match addr {
                            Some(a) => list.iter().any(|e| e.addr == a) == present,
                            None => true,
                        }
                };
                let converged = converge(
                    &consumers,
                    right,
                    since_ns,
                    Duration::from_millis(timeout_ms),
                );
                answer(&probe::line("converged", &converged))?;
            }
            Request::Watch => {
                let stop = Arc::new(AtomicBool::new(false));
                let (fleet, flag) = (consumers.clone(), stop.clone());
                watching = Some((stop, std::thread::spawn(move || watch(&fleet, &flag))));
            }
            Request::Stop => {
                let Some((stop, thread)) = watching.take() else {
                    return Err("`stop` without `watch`".into());
                };
                stop.store(true, Ordering::Relaxed);
                let watched = thread.join().map_err(|_| "the watch thread panicked")?;
                answer(&probe::line("watched", &watched))?;
            }
            Request::Quit => break,
        }
    }
    eprintln!("regscale: closing {} consumers", consumers.len());
    Ok(())
}

fn answer(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("answering the coordinator: {e}"))
}

/// Sweeps the consumers until each one's list is `right`, noting when.
fn converge(
    consumers: &[Arc<ZkDiscover>],
    right: impl Fn(&[mprpc::Endpoint]) -> bool,
    since_ns: u64,
    timeout: Duration,
) -> Converged {
    let mut pending: Vec<usize> = (0..consumers.len()).collect();
    let mut latencies_us = Vec::with_capacity(consumers.len());
    loop {
        pending.retain(|&i| {
            let is_right = consumers[i]
                .providers(SERVICE)
                .is_ok_and(|list| right(&list));
            if is_right {
                latencies_us.push(probe::elapsed_since(since_ns).as_micros() as u64);
            }
            !is_right
        });
        if pending.is_empty() || probe::elapsed_since(since_ns) > timeout {
            break;
        }
        std::thread::sleep(SWEEP_PAUSE);
    }
    Converged {
        latencies_us,
        missed: pending.len(),
    }
}

/// Sweeps every consumer until `stop`, noting the shortest list seen.
fn watch(consumers: &[Arc<ZkDiscover>], stop: &AtomicBool) -> Watched {
    let mut watched = Watched {
        sweeps: 0,
        min_len: usize::MAX,
        empty_seen: 0,
    };
    while !stop.load(Ordering::Relaxed) {
        for consumer in consumers {
            let len = consumer.providers(SERVICE).map_or(0, |list| list.len());
            watched.min_len = watched.min_len.min(len);
            if len == 0 {
                watched.empty_seen += 1;
            }
        }
        watched.sweeps += 1;
        std::thread::sleep(SWEEP_PAUSE);
    }
    watched
}
