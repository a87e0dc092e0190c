//! An example provider binary run as a person runs it (`-i CONFIG`), as a
//! child process that is killed when the test ends; its port is read from
//! the line the seed's provider prints when it starts serving. Also the
//! seed's config file the examples read, and a consumer run to its end.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
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
    start_with(bin, config, &[])
}

/// Starts `bin -i config args...` and waits until it announces its port.
pub fn start_with(bin: &str, config: &Path, args: &[&str]) -> Started {
    let mut child = Command::new(bin)
        .arg("-i")
        .arg(config)
        .args(args)
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

/// Writes the seed's config as `dir/name`. With `zk_port` the programs use
/// that ZooKeeper (as the seed does); without, `registry=none` makes a
/// consumer dial `port`.
pub fn write_config(dir: &Path, name: &str, port: u16, zk_port: Option<u16>) -> PathBuf {
    let path = dir.join(name);
    let registry = match zk_port {
        Some(_) => "zk_session_timeout_ms=2000",
        None => "registry=none",
    };
    let text = format!(
        "#rpc节点的ip地址\nrpcserverip=127.0.0.1\n#rpc节点的port端口号\nrpcserverport={port}\n\
         #zk的ip地址\nzookeeperip=127.0.0.1\n#zk的port端口号\nzookeeperport={}\n\
         log_dir={}\ncall_timeout_ms=5000\n{registry}\n",
        zk_port.unwrap_or(2181),
        dir.join("logs").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `consumer -i conf args...` to its end (bounded: 30 s); returns
/// (success, stdout).
pub fn run_consumer(conf: &Path, args: &[&str]) -> (bool, String) {
    let mut child = Proc(
        Command::new(env!("CARGO_BIN_EXE_consumer"))
            .arg("-i")
            .arg(conf)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("consumer starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "consumer hung");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.0.stdout.take().unwrap(), &mut out).unwrap();
    (status.success(), out)
}
