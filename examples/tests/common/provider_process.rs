//! An example provider binary run as a person runs it (`-i CONFIG`), as a
//! child process that is killed when the test ends; its port is read from
//! the line the seed's provider prints when it starts serving.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the seed's provider prints once it serves: this, then the port.
pub const ANNOUNCEMENT: &str = "RpcProvider start service at ip:127.0.0.1 port:";

/// How long a provider may take to announce itself.
const START_WAIT: Duration = Duration::from_secs(20);

/// Kills the child when the test ends, however it ends.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A provider that has announced its port.
pub struct Started {
    pub proc: Proc,
    pub port: u16,
    /// The lines it printed before the announcement.
    pub before: Vec<String>,
    /// The lines it prints from now on.
    pub lines: mpsc::Receiver<String>,
}

/// Starts `bin -i config` and waits until it announces its port.
pub fn start(bin: &str, config: &Path) -> Started {
    let mut child = Command::new(bin)
        .arg("-i")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin} starts: {e}"));
    let stdout = child.stdout.take().expect("stdout is piped");
    let proc = Proc(child);
    let (tx, lines) = mpsc::channel();
    // Drained for the child's whole life, whether or not the test still
    // listens: a closed pipe would make the provider's next print fail.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + START_WAIT;
    let mut before = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{bin} never announced its port; printed {before:?}"));
        if let Some(port) = line
            .strip_prefix(ANNOUNCEMENT)
            .and_then(|p| p.trim().parse().ok())
        {
            return Started {
                proc,
                port,
                before,
                lines,
            };
        }
        before.push(line);
    }
}
