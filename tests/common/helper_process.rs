//! Child processes for tests that must kill a provider with SIGKILL (so its
//! ZooKeeper session really dies with it): the test binary runs one of its
//! own `#[ignore]`d helper tests as a child.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Runs this test binary's ignored test `helper` in a child process with
/// `envs`, and waits (at most 20 s) for a stdout line containing `marker`.
/// Returns the child and what follows the marker on that line.
pub fn spawn_helper(
    helper: &str,
    envs: &[(&str, String)],
    marker: &'static str,
) -> (Child, String) {
    let mut command = Command::new(std::env::current_exe().expect("test binary path"));
    command.args([
        "--exact",
        helper,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("helper process starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The test harness may print "test ... " before the marker.
            if let Some((_, rest)) = line.split_once(marker) {
                let _ = tx.send(rest.trim().to_owned());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(rest) => (child, rest),
        Err(_) => {
            let _ = child.kill();
            panic!("helper process {helper} never printed {marker:?}");
        }
    }
}
