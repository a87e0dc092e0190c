//! The process's log lines, captured for tests that check what was logged
//! (a refused peer's reason, an endpoint tried once).

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Every log line written since the first call, as one buffer.
pub fn captured_logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct Sink;
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                captured_logs().lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        // INFO, plus the DEBUG span each served call runs in (its trace id).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,mprpc::call=debug"))
            .with_writer(|| Sink)
            .with_ansi(false)
            .try_init();
        Mutex::new(Vec::new())
    })
}

/// The captured logs as text.
pub fn logged() -> String {
    String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned()
}

/// Waits up to five seconds for a line the server at `server` logged
/// (its threads log inside its `server{addr=…}` span) containing every one
/// of `parts`; returns that line. Other servers of the test binary, which
/// may log the same words, do not count.
#[allow(dead_code)] // not every test binary checks a server's lines
pub fn wait_logged_by(server: std::net::SocketAddr, parts: &[&str]) -> String {
    let span = format!("server{{addr={server}}}");
    let mut all = vec![span.as_str()];
    all.extend_from_slice(parts);
    wait_logged(&all)
}

/// Waits up to five seconds for a log line containing every one of
/// `parts`; returns that line.
pub fn wait_logged(parts: &[&str]) -> String {
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        let text = logged();
        if let Some(line) = text.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < give_up,
            "no log line with {parts:?} in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
