//! Logging, the seed's async logger done with well-kept libraries.
//!
//! The seed queues log lines to a writer thread that appends to a daily
//! `YYYY-M-D-log.txt`. We use `tracing` with `tracing-appender`'s
//! non-blocking writer over a daily rolling file: a log call formats the line
//! and hands it to a channel, never touching the disk on the caller's thread
//! (the hot path). Warnings and errors are also printed to stderr so a person
//! running a binary sees them, in colour only when stderr is a terminal (and
//! `NO_COLOR` is not set): redirected to a file, the lines stay plain text.
//!
//! Disk use is bounded: at most `log_max_files` daily files are kept, and
//! each day's file takes at most `log_max_bytes` from one process (past it,
//! lines are dropped and counted, and the next day's file says how many).
//! Warnings peers can cause at will are rate-limited where they are logged
//! (`server::warn_limit`).

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Keeps the background writer alive; dropping it flushes pending lines.
#[derive(Debug)]
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

/// How much disk the log files may take.
#[derive(Debug, Clone, Copy)]
pub struct LogLimits {
    /// Bytes one day's file may take from this process.
    pub max_bytes: u64,
    /// Daily files kept (older ones are deleted).
    pub max_files: usize,
}

/// Installs the global subscriber: a daily file `mprpc.log.YYYY-MM-DD` in
/// `dir` at `level` (or whatever `RUST_LOG` says), within `limits`, plus
/// warnings on stderr.
///
/// Calling it again (e.g. from several tests) is harmless: the first
/// subscriber stays.
pub fn init(dir: &Path, level: &str, limits: LogLimits) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_target(false)
        .with_filter(EnvFilter::new("warn"));
    let appender = std::fs::create_dir_all(dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix("mprpc.log")
                .max_log_files(limits.max_files.max(1))
                .build(dir)
                .map_err(|e| e.to_string())
        });
    let (file_layer, guard) = match appender {
        Ok(appender) => {
            let capped = Capped::new(appender, limits.max_bytes);
            let (writer, guard) = tracing_appender::non_blocking(capped);
            let layer = fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_thread_names(true)
                .with_filter(filter);
            (Some(layer), Some(guard))
        }
        Err(e) => {
            eprintln!(
                "mprpc: cannot create log dir {}: {e}; logging to stderr only",
                dir.display()
            );
            (None, None)
        }
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file_layer)
        .try_init();
    LogGuard { _file: guard }
}

/// A daily file writer that takes at most `max_bytes` a day: past it,
/// lines are dropped and counted, and the next day's first line says how
/// many were. It runs on the non-blocking writer's thread, never a caller's.
struct Capped<W> {
    inner: W,
    max_bytes: u64,
    written: u64,
    day: u64,
    dropped: u64,
}

impl<W: Write> Capped<W> {
    fn new(inner: W, max_bytes: u64) -> Capped<W> {
        Capped {
            inner,
            max_bytes,
            written: 0,
            day: today(),
            dropped: 0,
        }
    }

    /// A new day (a new file): the cap starts again, after a line saying
    /// what the last one dropped.
    fn start_day(&mut self, day: u64) -> std::io::Result<()> {
        self.day = day;
        self.written = 0;
        if self.dropped > 0 {
            let note = format!(
                "mprpc: {} log lines dropped yesterday past log_max_bytes ({} bytes)\n",
                std::mem::take(&mut self.dropped),
                self.max_bytes
            );
            self.inner.write_all(note.as_bytes())?;
            self.written += note.len() as u64;
        }
        Ok(())
    }
}

impl<W: Write> Write for Capped<W> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let day = today();
        if day != self.day {
            self.start_day(day)?;
        }
        if self.written + line.len() as u64 > self.max_bytes {
            if self.dropped == 0 {
                let note =
                    b"mprpc: log_max_bytes reached; lines are dropped until tomorrow's file\n";
                self.inner.write_all(note)?;
            }
            self.dropped += 1;
            return Ok(line.len());
        }
        self.inner.write_all(line)?;
        self.written += line.len() as u64;
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Days since the Unix epoch (UTC), as the daily file names count them.
fn today() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since.as_secs() / 86_400
}

/// Whether stderr lines get ANSI colours: only on a terminal, and not when
/// `NO_COLOR` is set to anything non-empty (<https://no-color.org>).
fn colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && !matches!(no_color, Some(v) if !v.is_empty())
}

/// For tests: warnings and errors to the test's captured stderr, once.
pub fn init_for_tests() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_takes_at_most_its_cap_and_the_next_day_says_what_was_dropped() {
        let mut file = Capped::new(Vec::new(), 40);
        for _ in 0..10 {
            file.write_all(b"0123456789\n").unwrap();
        }
        let text = String::from_utf8(file.inner.clone()).unwrap();
        assert_eq!(text.matches("0123456789").count(), 3, "{text}");
        assert!(text.ends_with("until tomorrow's file\n"), "{text}");
        assert_eq!(file.dropped, 7);
        file.inner.clear();
        file.start_day(file.day + 1).unwrap();
        file.write_all(b"0123456789\n").unwrap();
        let text = String::from_utf8(file.inner).unwrap();
        assert!(
            text.starts_with("mprpc: 7 log lines dropped yesterday"),
            "{text}"
        );
        assert!(text.ends_with("0123456789\n"), "{text}");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None), "a redirected stderr gets plain text");
        assert!(!colour(true, Some("1".into())));
        assert!(colour(true, Some("".into())));
    }
}
