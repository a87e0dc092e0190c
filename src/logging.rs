//! Logging, the seed's async logger done with well-kept libraries.
//!
//! The seed queues log lines to a writer thread that appends to a daily
//! `YYYY-M-D-log.txt`. We use `tracing` with `tracing-appender`'s
//! non-blocking writer over a daily rolling file: a log call formats the line
//! and hands it to a channel, never touching the disk on the caller's thread
//! (the hot path). Warnings and errors are also printed to stderr so a person
//! running a binary sees them, in colour only when stderr is a terminal (and
//! `NO_COLOR` is not set): redirected to a file, the lines stay plain text.

use std::io::IsTerminal;
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Keeps the background writer alive; dropping it flushes pending lines.
#[derive(Debug)]
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

/// Installs the global subscriber: a daily file `mprpc.log.YYYY-MM-DD` in
/// `dir` at `level` (or whatever `RUST_LOG` says), plus warnings on stderr.
///
/// Calling it again (e.g. from several tests) is harmless: the first
/// subscriber stays.
pub fn init(dir: &Path, level: &str) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_target(false)
        .with_filter(EnvFilter::new("warn"));
    let (file_layer, guard) = match std::fs::create_dir_all(dir) {
        Ok(()) => {
            let appender = tracing_appender::rolling::daily(dir, "mprpc.log");
            let (writer, guard) = tracing_appender::non_blocking(appender);
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
    use super::colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None), "a redirected stderr gets plain text");
        assert!(!colour(true, Some("1".into())));
        assert!(colour(true, Some("".into())));
    }
}
