//! CPU time per process (user + system, from `/proc/PID/stat`) over the
//! measured window, so a report can give **CPU µs per call** for the
//! server (`--cpu-pid`) and for loadgen itself: the server's figure does
//! not depend on how fast the client is, unlike calls/s. Several server
//! processes (a gateway and its backend) are read one by one.
//!
//! Both are read the same way (utime + stime in clock ticks, 10 ms on
//! most kernels), at the start and at the end of the window, by a thread
//! that sleeps in between.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// CPU seconds used in the measured window, and per call sent in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CpuUsage {
    pub window_s: f64,
    /// The processes given with `--cpu-pid` (the servers under test).
    pub server_pids: Vec<u32>,
    /// Their CPU seconds, in the same order.
    pub per_server_cpu_s: Vec<f64>,
    /// Their sum (`None` without `--cpu-pid`).
    pub server_cpu_s: Option<f64>,
    /// loadgen, every thread.
    pub client_cpu_s: f64,
    /// Calls whose send fell in the window (what the rate counts).
    pub calls: u64,
    pub server_us_per_call: Option<f64>,
    pub client_us_per_call: Option<f64>,
    /// The resolution of both readings.
    pub tick_s: f64,
}

/// The utime + stime of a process so far.
pub fn process_cpu(pid: &str) -> Result<Duration, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_stat_cpu(&stat, clock_tick()).ok_or_else(|| format!("{path}: unexpected format"))
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line; the
/// command name (field 2) may contain spaces and parentheses, so fields
/// are counted after its last `)`.
fn parse_stat_cpu(stat: &str, tick: Duration) -> Option<Duration> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_nanos(
        tick.as_nanos() as u64 * (utime + stime),
    ))
}

/// One clock tick (`sysconf(_SC_CLK_TCK)`, 100 Hz when unknown).
fn clock_tick() -> Duration {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Duration::from_secs(1) / if hz > 0 { hz as u32 } else { 100 }
}

/// Readings of the servers and of this process.
struct Reading {
    servers: Vec<Duration>,
    client: Duration,
}

fn read(server_pids: &[u32]) -> Result<Reading, String> {
    Ok(Reading {
        servers: server_pids
            .iter()
            .map(|pid| process_cpu(&pid.to_string()))
            .collect::<Result<_, _>>()?,
        client: process_cpu("self")?,
    })
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// The two readings around the measured window.
pub struct CpuWindow {
    server_pids: Vec<u32>,
    window_s: f64,
    start: Reading,
    end: Reading,
}

/// Reads both processes at `from` and at `to`, sleeping in between.
pub fn measure_window(
    server_pids: &[u32],
    from: Instant,
    to: Instant,
) -> Result<CpuWindow, String> {
    sleep_until(from);
    let start = read(server_pids)?;
    sleep_until(to);
    let end = read(server_pids)?;
    Ok(CpuWindow {
        server_pids: server_pids.to_vec(),
        window_s: to.duration_since(from).as_secs_f64(),
        start,
        end,
    })
}

impl CpuWindow {
    /// The window's length in seconds.
    pub fn window_s(&self) -> f64 {
        self.window_s
    }

    /// The usage, per call for `calls` calls sent in the window.
    pub fn usage(&self, calls: u64) -> CpuUsage {
        let per_server_cpu_s: Vec<f64> = self
            .start
            .servers
            .iter()
            .zip(&self.end.servers)
            .map(|(a, b)| b.saturating_sub(*a).as_secs_f64())
            .collect();
        let server_cpu_s =
            (!per_server_cpu_s.is_empty()).then(|| per_server_cpu_s.iter().sum::<f64>());
        let client_cpu_s = self
            .end
            .client
            .saturating_sub(self.start.client)
            .as_secs_f64();
        let per_call = |s: f64| (calls > 0).then(|| s * 1e6 / calls as f64);
        CpuUsage {
            window_s: self.window_s,
            server_pids: self.server_pids.clone(),
            per_server_cpu_s,
            server_cpu_s,
            client_cpu_s,
            calls,
            server_us_per_call: server_cpu_s.and_then(per_call),
            client_us_per_call: per_call(client_cpu_s),
            tick_s: clock_tick().as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_after_a_command_name_with_spaces() {
        let line = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        let tick = Duration::from_millis(10);
        assert_eq!(
            parse_stat_cpu(line, tick),
            Some(Duration::from_millis(3000))
        );
        assert_eq!(parse_stat_cpu("garbage", tick), None);
    }

    #[test]
    fn own_cpu_time_grows_while_spinning() {
        let before = process_cpu("self").unwrap();
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        assert!(process_cpu("self").unwrap() > before);
    }

    #[test]
    fn a_missing_process_is_an_error_naming_it() {
        let e = process_cpu("999999999").unwrap_err();
        assert!(e.contains("/proc/999999999/stat"), "{e}");
    }
}
