//! Configuration file, the seed's `MprpcConfig`, and the values it sets.
//!
//! The format is the seed's, accepted verbatim: one `key=value` per line,
//! `#` starts a comment line, blank lines are skipped, and spaces around keys
//! and values are trimmed. The seed's keys (`rpcserverip`, `rpcserverport`,
//! `zookeeperip`, `zookeeperport`) work unchanged; ours add tuning knobs.
//! Unlike the seed, a bad line is an error that names the file, the line and
//! the key, instead of being skipped silently.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::client::LoadBalance;

/// A configuration error, pointing at the offending file, line and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line number; 0 when the error is about the file as a whole.
    pub line: usize,
    /// The key involved, when there is one.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key '{key}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Where providers are published and found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryKind {
    /// Apache ZooKeeper, as in the seed.
    ZooKeeper,
    /// No registry: a consumer dials the configured provider address.
    None,
}

/// Every setting the framework reads, with its default.
#[derive(Debug, Clone)]
pub struct Config {
    /// `rpcserverip`: the address the provider listens on and publishes.
    pub rpc_server_ip: String,
    /// `rpcserverport`: the provider's port (0 picks a free one).
    pub rpc_server_port: u16,
    /// `zookeeperip` / `zookeeperport`: the seed's single ZooKeeper server.
    pub zookeeper_ip: String,
    pub zookeeper_port: u16,
    /// `zookeeper`: a full connect string (`h1:p1,h2:p2,h3:p3`) for an
    /// ensemble; when set it wins over `zookeeperip`/`zookeeperport`.
    pub zookeeper: Option<String>,
    /// `registry`: `zookeeper` (default: providers register, consumers
    /// discover) or `none` (no ZooKeeper: consumers dial
    /// rpcserverip:rpcserverport directly).
    pub registry: RegistryKind,
    /// `zk_session_timeout_ms`: the ZooKeeper session timeout.
    pub zk_session_timeout: Duration,
    /// `zk_root`: where our registry layout lives.
    pub zk_root: String,
    /// `zk_legacy_layout`: also write the seed's `/Service/Method` nodes.
    pub zk_legacy_layout: bool,
    /// `zk_digest`: `user:password` protecting our registry nodes with a digest ACL.
    pub zk_digest: Option<String>,
    /// `reactor_threads`: event-loop threads (0 = one per core).
    pub reactor_threads: usize,
    /// `worker_threads`: threads for services published as blocking.
    pub worker_threads: usize,
    /// `max_frame_size`: the largest frame body accepted or sent, in bytes.
    pub max_frame_size: usize,
    /// `max_connections`: connections a server accepts at once.
    pub max_connections: usize,
    /// `max_inflight_per_connection`: calls a connection may have in flight
    /// before the server stops reading from it.
    pub max_inflight_per_connection: usize,
    /// `idle_timeout_ms`: close a server connection idle this long (0 = never).
    pub idle_timeout: Option<Duration>,
    /// `frame_timeout_ms`: close a connection whose frame stays incomplete
    /// this long, so slow or stalled peers cannot pin buffers (0 = never).
    pub frame_timeout: Option<Duration>,
    /// `listen_backlog`: connections the kernel queues before the server
    /// accepts them (capped by `net.core.somaxconn`).
    pub listen_backlog: u32,
    /// `write_high_water_bytes`: unsent reply bytes on a server connection
    /// above which the server stops reading from it (a peer that never
    /// reads costs at most about this much).
    pub write_high_water: usize,
    /// `load_balance`: how a consumer spreads calls over providers:
    /// round_robin, random, least_outstanding or consistent_hash.
    pub load_balance: LoadBalance,
    /// `call_timeout_ms`: a client call's default timeout.
    pub call_timeout: Duration,
    /// `connect_timeout_ms`: how long a client waits for a TCP connect.
    pub connect_timeout: Duration,
    /// `drain_ms`: on graceful shutdown, how long to keep serving after
    /// deregistering so consumers notice.
    pub drain: Duration,
    /// `log_dir`: where daily log files go.
    pub log_dir: PathBuf,
    /// `log_level`: trace, debug, info, warn or error (`RUST_LOG` wins).
    pub log_level: String,
    /// Every key/value as read, including ones the framework does not know,
    /// for applications that keep their own settings in the same file.
    pub raw: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rpc_server_ip: "127.0.0.1".into(),
            rpc_server_port: 8000,
            zookeeper_ip: "127.0.0.1".into(),
            zookeeper_port: 2181,
            zookeeper: None,
            registry: RegistryKind::ZooKeeper,
            zk_session_timeout: Duration::from_millis(6000),
            zk_root: "/mprpc".into(),
            zk_legacy_layout: true,
            zk_digest: None,
            reactor_threads: 0,
            worker_threads: 4,
            max_frame_size: crate::codec::DEFAULT_MAX_FRAME,
            max_connections: 100_000,
            max_inflight_per_connection: 1024,
            idle_timeout: None,
            frame_timeout: Some(Duration::from_secs(10)),
            listen_backlog: 4096,
            write_high_water: 4 * 1024 * 1024,
            load_balance: LoadBalance::RoundRobin,
            call_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            drain: Duration::from_millis(1000),
            log_dir: PathBuf::from("logs"),
            log_level: "info".into(),
            raw: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            key: None,
            message: format!("cannot read config file: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Parses config text; `path` is only used in error messages.
    pub fn parse(path: impl AsRef<Path>, text: &str) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let mut config = Config::default();
        for (index, raw_line) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw_line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |key: Option<&str>, message: String| ConfigError {
                file: path.to_path_buf(),
                line: line_no,
                key: key.map(str::to_owned),
                message,
            };
            let Some((key, value)) = line.split_once('=') else {
                return Err(err(None, format!("expected key=value, found '{line}'")));
            };
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() {
                return Err(err(None, "empty key before '='".into()));
            }
            config
                .apply(key, value)
                .map_err(|message| err(Some(key), message))?;
            config.raw.insert(key.to_owned(), value.to_owned());
        }
        Ok(config)
    }

    /// Sets one known key; unknown keys are kept in `raw` only.
    fn apply(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "rpcserverip" => self.rpc_server_ip = non_empty(value)?,
            "rpcserverport" => self.rpc_server_port = number(value)?,
            "zookeeperip" => self.zookeeper_ip = non_empty(value)?,
            "zookeeperport" => self.zookeeper_port = number(value)?,
            "zookeeper" => self.zookeeper = Some(non_empty(value)?),
            "registry" => self.registry = registry_kind(value)?,
            "zk_session_timeout_ms" => self.zk_session_timeout = millis(value)?,
            "zk_root" => self.zk_root = zk_path(value)?,
            "zk_legacy_layout" => self.zk_legacy_layout = boolean(value)?,
            "zk_digest" => self.zk_digest = Some(digest(value)?),
            "reactor_threads" => self.reactor_threads = number(value)?,
            "worker_threads" => self.worker_threads = positive(value)?,
            "max_frame_size" => self.max_frame_size = positive(value)?,
            "max_connections" => self.max_connections = positive(value)?,
            "max_inflight_per_connection" => self.max_inflight_per_connection = positive(value)?,
            "idle_timeout_ms" => {
                let d = millis(value)?;
                self.idle_timeout = (!d.is_zero()).then_some(d);
            }
            "frame_timeout_ms" => {
                let d = millis(value)?;
                self.frame_timeout = (!d.is_zero()).then_some(d);
            }
            "write_high_water_bytes" => self.write_high_water = positive(value)?,
            "listen_backlog" => self.listen_backlog = number(value)?,
            "load_balance" => self.load_balance = load_balance(value)?,
            "call_timeout_ms" => self.call_timeout = millis(value)?,
            "connect_timeout_ms" => self.connect_timeout = millis(value)?,
            "drain_ms" => self.drain = millis(value)?,
            "log_dir" => self.log_dir = PathBuf::from(non_empty(value)?),
            "log_level" => self.log_level = level(value)?,
            _ => {}
        }
        Ok(())
    }

    /// The ZooKeeper connect string: `zookeeper`, or the seed's ip:port pair.
    pub fn zookeeper_connect(&self) -> String {
        self.zookeeper
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.zookeeper_ip, self.zookeeper_port))
    }

    /// The provider's listen address as `ip:port`.
    pub fn rpc_server_addr(&self) -> String {
        format!("{}:{}", self.rpc_server_ip, self.rpc_server_port)
    }

    /// Event-loop threads to start: `reactor_threads`, or one per core.
    pub fn effective_reactor_threads(&self) -> usize {
        if self.reactor_threads > 0 {
            self.reactor_threads
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }

    /// A value of a key the framework does not interpret (application keys).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw.get(key).map(String::as_str)
    }
}

fn non_empty(value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err("value is empty".into())
    } else {
        Ok(value.to_owned())
    }
}

fn number<T: FromStr>(value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("'{value}' is not a valid number here"))
}

fn positive(value: &str) -> Result<usize, String> {
    match number::<usize>(value)? {
        0 => Err("must be greater than 0".into()),
        n => Ok(n),
    }
}

fn millis(value: &str) -> Result<Duration, String> {
    number::<u64>(value).map(Duration::from_millis)
}

fn boolean(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("'{value}' is not a boolean (true/false)")),
    }
}

fn load_balance(value: &str) -> Result<LoadBalance, String> {
    match value.to_ascii_lowercase().replace('-', "_").as_str() {
        "round_robin" => Ok(LoadBalance::RoundRobin),
        "random" => Ok(LoadBalance::Random),
        "least_outstanding" => Ok(LoadBalance::LeastOutstanding),
        "consistent_hash" => Ok(LoadBalance::ConsistentHash),
        _ => Err(format!(
            "'{value}' is not one of round_robin, random, least_outstanding, consistent_hash"
        )),
    }
}

fn registry_kind(value: &str) -> Result<RegistryKind, String> {
    match value.to_ascii_lowercase().as_str() {
        "zookeeper" | "zk" => Ok(RegistryKind::ZooKeeper),
        "none" | "direct" => Ok(RegistryKind::None),
        _ => Err(format!("'{value}' is not one of zookeeper, none")),
    }
}

fn zk_path(value: &str) -> Result<String, String> {
    if !value.starts_with('/') || (value.len() > 1 && value.ends_with('/')) {
        return Err(format!("'{value}' must be an absolute path like /mprpc"));
    }
    Ok(value.to_owned())
}

fn digest(value: &str) -> Result<String, String> {
    match value.split_once(':') {
        Some((user, pass)) if !user.is_empty() && !pass.is_empty() => Ok(value.to_owned()),
        _ => Err("expected user:password".into()),
    }
}

fn level(value: &str) -> Result<String, String> {
    let v = value.to_ascii_lowercase();
    match v.as_str() {
        "trace" | "debug" | "info" | "warn" | "error" => Ok(v),
        _ => Err(format!(
            "'{value}' is not one of trace, debug, info, warn, error"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_CONF: &str = "#rpc节点的ip地址\nrpcserverip=127.0.0.1\n#rpc节点的port端口号\nrpcserverport=8000\n#zk的ip地址\nzookeeperip=127.0.0.1\n#zk的port端口号\nzookeeperport=5000\n";

    #[test]
    fn the_seeds_file_is_accepted_verbatim() {
        let c = Config::parse("test.conf", SEED_CONF).unwrap();
        assert_eq!(c.rpc_server_addr(), "127.0.0.1:8000");
        assert_eq!(c.zookeeper_connect(), "127.0.0.1:5000");
    }

    #[test]
    fn spaces_comments_and_blank_lines_are_tolerated() {
        let c = Config::parse(
            "x.conf",
            "\n   # comment\n  rpcserverport =  9001  \n\nreactor_threads=3\nmy_app_key = hello\n",
        )
        .unwrap();
        assert_eq!(c.rpc_server_port, 9001);
        assert_eq!(c.reactor_threads, 3);
        assert_eq!(c.get("my_app_key"), Some("hello"));
    }

    #[test]
    fn a_line_without_equals_names_file_and_line() {
        let e = Config::parse("bad.conf", "rpcserverip=1.2.3.4\nrpcserverport 8000\n").unwrap_err();
        assert_eq!(e.line, 2);
        let text = e.to_string();
        assert!(text.starts_with("bad.conf:2:"), "{text}");
    }

    #[test]
    fn a_bad_value_names_file_line_and_key() {
        let e = Config::parse("bad.conf", "# x\nrpcserverport=eighty\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad.conf:2: key 'rpcserverport': 'eighty' is not a valid number here"
        );
        let e = Config::parse("bad.conf", "log_level=loud").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("log_level"));
        let e = Config::parse("bad.conf", "zk_root=relative").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("zk_root"));
    }

    #[test]
    fn a_missing_file_names_the_file() {
        let e = Config::load("/definitely/not/here.conf").unwrap_err();
        assert!(e.to_string().contains("/definitely/not/here.conf"));
    }

    #[test]
    fn tuning_keys_parse_and_bad_ones_name_the_key() {
        let c = Config::parse(
            "t",
            "load_balance=least-outstanding\nwrite_high_water_bytes=65536",
        )
        .unwrap();
        assert_eq!(c.load_balance, LoadBalance::LeastOutstanding);
        assert_eq!(c.write_high_water, 65536);
        let e = Config::parse("t", "load_balance=fastest").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("load_balance"));
    }

    #[test]
    fn an_ensemble_connect_string_wins() {
        let c = Config::parse("c", "zookeeperip=1.1.1.1\nzookeeper=a:1,b:2,c:3").unwrap();
        assert_eq!(c.zookeeper_connect(), "a:1,b:2,c:3");
    }
}
