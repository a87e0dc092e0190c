//! What a coordinator asks of a consumer process, and how that process
//! answers: one request per line on its stdin, one answer per line on its
//! stdout (`<word> <json>`). Times cross processes as CLOCK_MONOTONIC
//! nanoseconds, the one clock every process on the machine shares.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A request to a consumer process.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Report when each consumer's list is right: `len` providers, with
    /// `addr` among them (`present`) or not, timed from `since_ns`.
    Expect {
        len: usize,
        addr: Option<SocketAddr>,
        present: bool,
        since_ns: u64,
        timeout_ms: u64,
    },
    /// Sweep every consumer's list over and over until [`Request::Stop`],
    /// noting the shortest list seen.
    Watch,
    /// End a [`Request::Watch`].
    Stop,
    /// Close every consumer and exit.
    Quit,
}

/// The consumer process is up: its consumers opened and looked up the service.
#[derive(Debug, Serialize, Deserialize)]
pub struct Ready {
    pub consumers: usize,
    pub open_seconds: f64,
    pub rss_before: u64,
    pub rss_after: u64,
}

/// The answer to [`Request::Expect`]: per consumer, microseconds until its
/// list was right; `missed` consumers were not right by the timeout.
#[derive(Debug, Serialize, Deserialize)]
pub struct Converged {
    pub latencies_us: Vec<u64>,
    pub missed: usize,
}

/// The answer to [`Request::Stop`].
#[derive(Debug, Serialize, Deserialize)]
pub struct Watched {
    /// Full sweeps over every consumer.
    pub sweeps: u64,
    /// The shortest provider list any consumer returned.
    pub min_len: usize,
    /// Lookups that returned an empty list or an error.
    pub empty_seen: u64,
}

/// Now on CLOCK_MONOTONIC, in nanoseconds.
pub fn mono_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Time since `since_ns` on CLOCK_MONOTONIC.
pub fn elapsed_since(since_ns: u64) -> Duration {
    Duration::from_nanos(mono_ns().saturating_sub(since_ns))
}

/// One line: `<word> <json>`.
pub fn line(word: &str, body: &impl Serialize) -> String {
    format!(
        "{word} {}",
        serde_json::to_string(body).unwrap_or_else(|_| "null".into())
    )
}

/// Splits `<word> <json>` and parses the json as `T`.
pub fn parse<T: for<'de> Deserialize<'de>>(text: &str, word: &str) -> Result<T, String> {
    let body = text
        .strip_prefix(word)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or_else(|| format!("expected `{word} ...`, got `{}`", text.trim()))?;
    serde_json::from_str(body).map_err(|e| format!("bad `{word}` line: {e}"))
}
