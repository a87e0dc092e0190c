//! Configuration file, the seed's `MprpcConfig`, and the values it sets.
//!
//! The format is the seed's, accepted verbatim: one `key=value` per line,
//! `#` starts a comment line, blank lines are skipped, and spaces around keys
//! and values are trimmed. The seed's keys (`rpcserverip`, `rpcserverport`,
//! `zookeeperip`, `zookeeperport`) work unchanged; ours add tuning knobs.
//! Unlike the seed, a bad line is an error that names the file, the line and
//! the key, instead of being skipped silently. A key the framework does not
//! know is kept for the application ([`Config::get`]) but reported as a
//! [`ConfigWarning`] with the closest known key, so `registy=none` does not
//! silently mean "use ZooKeeper".
//!
//! Every key the framework reads is one row of [`KEYS`]: its name and how it
//! sets the [`Config`]. Adding a key is adding a row (and a line in the
//! table of docs/configuration.md, which a test compares against [`KEYS`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::discovery::balance::LoadBalance;
use crate::net::auth::AuthToken;
use crate::net::tls::{ClientTls, ServerTls, TlsMode};
use crate::server::{ConcurrencyLimiter, MaxConcurrency};

/// A configuration error, pointing at the offending file, line and key.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file that was being read.
    pub file: PathBuf,
    /// 1-based line number; 0 when the error is about the file as a whole.
    pub line: usize,
    /// The key involved, when there is one.
    pub key: Option<String>,
    /// What is wrong, for a person to read.
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

/// Something in a config file that is not wrong but probably a mistake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The config file the key is in.
    pub file: PathBuf,
    /// 1-based line number of the key.
    pub line: usize,
    /// The unknown key as written.
    pub key: String,
    /// The known key it most likely meant, if one is close.
    pub suggestion: Option<&'static str>,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: unknown key '{}'",
            self.file.display(),
            self.line,
            self.key
        )?;
        if let Some(known) = self.suggestion {
            write!(f, " (did you mean '{known}'?)")?;
        }
        write!(f, "; kept for the application (Config::get)")
    }
}

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
    /// `zookeeperip`: the host of the seed's single ZooKeeper server.
    pub zookeeper_ip: String,
    /// `zookeeperport`: that ZooKeeper server's client port.
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
    /// `max_queued_calls`: blocking calls waiting for a worker, over all
    /// connections, beyond which a new one is answered `Overloaded` without
    /// running (a bound on the queue's memory; `concurrency_limiter=auto`
    /// bounds its latency).
    pub max_queued_calls: usize,
    /// `max_buffered_bytes`: bytes of input the provider's connections may
    /// hold at once beyond a small allowance each (partial frames); a
    /// connection whose frame would pass it is closed.
    pub max_buffered_bytes: usize,
    /// `idle_timeout_ms`: close a server connection idle this long (0 = never).
    pub idle_timeout: Option<Duration>,
    /// `auth_timeout_ms`: on a provider that requires a token, close an RPC
    /// connection that has not sent one this long after it opened (0 = never).
    pub auth_timeout: Option<Duration>,
    /// `write_stall_timeout_ms`: close a server connection whose unsent
    /// replies have not moved for this long (a peer that never reads; 0 = never).
    pub write_stall_timeout: Option<Duration>,
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
    /// `concurrency_limiter`: `auto` gives every method of a blocking
    /// service without a fixed limit an adaptive concurrency limit; `off`
    /// (default) gives none.
    pub concurrency_limiter: ConcurrencyLimiter,
    /// `max_concurrency`: fixed per-method limits on calls running or
    /// queued at once (`100`, or `Service.Method:50, *:100`; `0`: none).
    /// Calls over a limit are answered `Overloaded` without running.
    pub max_concurrency: MaxConcurrency,
    /// `trim_memory`: after a storm of connection closes, a provider gives
    /// the memory its allocator kept back to the kernel (glibc's
    /// `malloc_trim`, once closes have stopped for a second).
    pub trim_memory: bool,
    /// `load_balance`: how a consumer spreads calls over providers:
    /// round_robin, random, least_outstanding or consistent_hash.
    pub load_balance: LoadBalance,
    /// `call_timeout_ms`: a client call's default timeout.
    pub call_timeout: Duration,
    /// `deadline_margin_ms`: a call started while serving one gets what
    /// remains of that call's deadline minus this (for the hop back).
    pub deadline_margin: Duration,
    /// `client_io_threads`: I/O driver threads per client channel.
    pub client_io_threads: usize,
    /// `connect_timeout_ms`: how long a client waits for a TCP connect.
    pub connect_timeout: Duration,
    /// `drain_ms`: on graceful shutdown, how long to keep serving after
    /// deregistering so consumers notice.
    pub drain: Duration,
    /// `log_dir`: where daily log files go.
    pub log_dir: PathBuf,
    /// `log_level`: trace, debug, info, warn or error (`RUST_LOG` wins).
    pub log_level: String,
    /// `log_max_bytes`: bytes one day's log file may take from a process
    /// (past it, lines are dropped and counted).
    pub log_max_bytes: u64,
    /// `log_max_files`: daily log files kept (older ones are deleted).
    pub log_max_files: usize,
    /// `tls`: off, optional (TLS and plain clients share the port) or
    /// required, on the provider's port.
    pub tls: TlsMode,
    /// `tls_cert`: the provider's certificate chain (PEM, leaf first).
    pub tls_cert: Option<PathBuf>,
    /// `tls_key`: the provider's private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// `tls_client_ca`: mutual TLS; only clients whose certificate this CA
    /// (PEM) signed get in.
    pub tls_client_ca: Option<PathBuf>,
    /// `tls_ca`: a consumer speaks TLS, trusting providers whose
    /// certificate this CA (PEM) signed.
    pub tls_ca: Option<PathBuf>,
    /// `tls_server_name`: the name a consumer checks the provider's
    /// certificate against (default: the provider's IP address).
    pub tls_server_name: Option<String>,
    /// `tls_client_cert`: the certificate chain (PEM) a consumer presents
    /// for mutual TLS.
    pub tls_client_cert: Option<PathBuf>,
    /// `tls_client_key`: that certificate's private key (PEM).
    pub tls_client_key: Option<PathBuf>,
    /// The provider's TLS, built from `tls`, `tls_cert`, `tls_key` and
    /// `tls_client_ca` when the file was read (`None` with `tls=off`).
    pub server_tls: Option<ServerTls>,
    /// The consumer's TLS, built from `tls_ca`, `tls_server_name`,
    /// `tls_client_cert` and `tls_client_key` (`None` without `tls_ca`).
    pub client_tls: Option<ClientTls>,
    /// `auth_token`: comma-separated tokens. A provider accepts calls only
    /// on connections that sent one of them; a consumer sends the first.
    /// Never logged, and kept out of [`Config::raw`].
    pub auth_tokens: Vec<AuthToken>,
    /// `admin`: serve the admin pages (HTTP `/metrics`, `/status`, `/`,
    /// `/connections`): `on`, `off`, or `auto` (default: on when the
    /// provider listens on a loopback address).
    pub admin: Option<bool>,
    /// `admin_port`: serve the admin pages on this port instead of the RPC
    /// port (0: any free port).
    pub admin_port: Option<u16>,
    /// `admin_token`: a token every admin request must carry (a secret:
    /// kept out of [`Config::raw`], like `auth_token`).
    pub admin_token: Option<AuthToken>,
    /// `metrics_log_interval_s`: log one metrics line per method this often
    /// (0 = off).
    pub metrics_log_interval: Option<Duration>,
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
            max_frame_size: crate::protocol::mprpc::DEFAULT_MAX_FRAME,
            max_connections: 100_000,
            max_inflight_per_connection: 1024,
            max_queued_calls: 16 * 1024,
            max_buffered_bytes: 1 << 30,
            idle_timeout: Some(Duration::from_secs(300)),
            auth_timeout: Some(Duration::from_secs(10)),
            write_stall_timeout: Some(Duration::from_secs(30)),
            frame_timeout: Some(Duration::from_secs(10)),
            listen_backlog: 4096,
            write_high_water: 4 * 1024 * 1024,
            concurrency_limiter: ConcurrencyLimiter::Off,
            max_concurrency: MaxConcurrency::default(),
            trim_memory: true,
            load_balance: LoadBalance::RoundRobin,
            call_timeout: Duration::from_secs(5),
            deadline_margin: Duration::from_millis(5),
            client_io_threads: 1,
            connect_timeout: Duration::from_secs(2),
            drain: Duration::from_millis(1000),
            log_dir: PathBuf::from("logs"),
            log_level: "info".into(),
            log_max_bytes: 256 * 1024 * 1024,
            log_max_files: 7,
            tls: TlsMode::Off,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_ca: None,
            tls_server_name: None,
            tls_client_cert: None,
            tls_client_key: None,
            server_tls: None,
            client_tls: None,
            auth_tokens: Vec::new(),
            admin: None,
            admin_port: None,
            admin_token: None,
            metrics_log_interval: Some(Duration::from_secs(60)),
            raw: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Reads and validates a config file. Unknown keys are logged as
    /// warnings (through `tracing`, if a subscriber is installed); use
    /// [`Config::load_with_warnings`] to handle them yourself.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let (config, warnings) = Config::load_with_warnings(path)?;
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        Ok(config)
    }

    /// Reads and validates a config file; also returns what looks like a typo.
    pub fn load_with_warnings(
        path: impl AsRef<Path>,
    ) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            key: None,
            message: format!("cannot read config file: {e}"),
        })?;
        Config::parse_with_warnings(path, &text)
    }

    /// Parses config text; `path` is only used in messages.
    pub fn parse(path: impl AsRef<Path>, text: &str) -> Result<Config, ConfigError> {
        Config::parse_with_warnings(path, text).map(|(config, _)| config)
    }

    /// Parses config text, returning the unknown keys as warnings.
    pub fn parse_with_warnings(
        path: impl AsRef<Path>,
        text: &str,
    ) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
        let path = path.as_ref();
        let mut config = Config::default();
        let mut warnings = Vec::new();
        let mut lines = HashMap::new();
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
            match KEYS.iter().find(|(name, _)| *name == key) {
                Some((name, set)) => {
                    set(&mut config, value).map_err(|m| err(Some(key), m))?;
                    lines.insert(*name, line_no);
                }
                None => warnings.push(ConfigWarning {
                    file: path.to_path_buf(),
                    line: line_no,
                    key: key.to_owned(),
                    suggestion: closest_key(key),
                }),
            }
            if !SECRET_KEYS.contains(&key) {
                config.raw.insert(key.to_owned(), value.to_owned());
            }
        }
        config.build_tls().map_err(|(key, message)| ConfigError {
            file: path.to_path_buf(),
            line: lines.get(key).copied().unwrap_or(0),
            key: Some(key.to_owned()),
            message,
        })?;
        Ok((config, warnings))
    }

    /// Builds [`Config::server_tls`] and [`Config::client_tls`] from the
    /// `tls*` keys, or says which key is wrong and why.
    fn build_tls(&mut self) -> Result<(), (&'static str, String)> {
        let server_only = [
            ("tls_cert", self.tls_cert.is_some()),
            ("tls_key", self.tls_key.is_some()),
            ("tls_client_ca", self.tls_client_ca.is_some()),
        ];
        if self.tls == TlsMode::Off {
            if let Some((key, _)) = server_only.iter().find(|(_, set)| *set) {
                return Err((
                    key,
                    "has no effect with tls=off (set tls=optional or required)".into(),
                ));
            }
        } else {
            let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
                return Err((
                    "tls",
                    format!("tls={} needs tls_cert and tls_key", self.tls),
                ));
            };
            let tls = ServerTls::from_pem_files(cert, key, self.tls_client_ca.as_deref(), self.tls)
                .map_err(|e| ("tls", e.to_string()))?;
            self.server_tls = Some(tls);
        }
        let identity = match (&self.tls_client_cert, &self.tls_client_key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            (None, None) => None,
            (Some(_), None) => return Err(("tls_client_cert", "needs tls_client_key".into())),
            (None, Some(_)) => return Err(("tls_client_key", "needs tls_client_cert".into())),
        };
        let Some(ca) = &self.tls_ca else {
            let client_only = [
                ("tls_server_name", self.tls_server_name.is_some()),
                ("tls_client_cert", identity.is_some()),
            ];
            if let Some((key, _)) = client_only.iter().find(|(_, set)| *set) {
                return Err((
                    key,
                    "needs tls_ca (the CA that signed the providers' certificates)".into(),
                ));
            }
            return Ok(());
        };
        let mut tls =
            ClientTls::from_pem_files(ca, identity).map_err(|e| ("tls_ca", e.to_string()))?;
        if let Some(name) = &self.tls_server_name {
            tls = tls
                .with_server_name(name)
                .map_err(|e| ("tls_server_name", e.to_string()))?;
        }
        self.client_tls = Some(tls);
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

/// Sets one field of a [`Config`] from a value, or says what is wrong.
pub type KeySetter = fn(&mut Config, &str) -> Result<(), String>;

/// One [`KEYS`] row: `key!("name" => field: parser)` sets `config.field`
/// to `parser(value)?`.
macro_rules! key {
    ($name:literal => $field:ident: $parse:expr) => {
        ($name, |config: &mut Config, value: &str| {
            config.$field = ($parse)(value)?;
            Ok(())
        })
    };
}

/// Every key the framework reads, and how. The one list of known keys:
/// parsing, "did you mean" suggestions and the docs check all use it.
pub const KEYS: &[(&str, KeySetter)] = &[
    key!("rpcserverip" => rpc_server_ip: non_empty),
    key!("rpcserverport" => rpc_server_port: number),
    key!("zookeeperip" => zookeeper_ip: non_empty),
    key!("zookeeperport" => zookeeper_port: number),
    key!("zookeeper" => zookeeper: |v| non_empty(v).map(Some)),
    key!("registry" => registry: registry_kind),
    key!("zk_session_timeout_ms" => zk_session_timeout: millis),
    key!("zk_root" => zk_root: zk_path),
    key!("zk_legacy_layout" => zk_legacy_layout: boolean),
    key!("zk_digest" => zk_digest: |v| digest(v).map(Some)),
    key!("reactor_threads" => reactor_threads: number),
    key!("worker_threads" => worker_threads: positive),
    key!("max_frame_size" => max_frame_size: positive),
    key!("max_connections" => max_connections: positive),
    key!("max_inflight_per_connection" => max_inflight_per_connection: positive),
    key!("max_queued_calls" => max_queued_calls: positive),
    key!("max_buffered_bytes" => max_buffered_bytes: positive),
    key!("idle_timeout_ms" => idle_timeout: optional_millis),
    key!("frame_timeout_ms" => frame_timeout: optional_millis),
    key!("auth_timeout_ms" => auth_timeout: optional_millis),
    key!("write_stall_timeout_ms" => write_stall_timeout: optional_millis),
    key!("write_high_water_bytes" => write_high_water: positive),
    key!("listen_backlog" => listen_backlog: number),
    key!("concurrency_limiter" => concurrency_limiter: str::parse),
    key!("max_concurrency" => max_concurrency: str::parse),
    key!("trim_memory" => trim_memory: boolean),
    key!("load_balance" => load_balance: load_balance),
    key!("call_timeout_ms" => call_timeout: millis),
    key!("deadline_margin_ms" => deadline_margin: millis),
    key!("client_io_threads" => client_io_threads: positive),
    key!("connect_timeout_ms" => connect_timeout: millis),
    key!("drain_ms" => drain: millis),
    key!("log_dir" => log_dir: |v| non_empty(v).map(PathBuf::from)),
    key!("log_level" => log_level: level),
    key!("log_max_bytes" => log_max_bytes: |v| positive(v).map(|n| n as u64)),
    key!("log_max_files" => log_max_files: positive),
    key!("tls" => tls: |v: &str| v.parse()),
    key!("tls_cert" => tls_cert: |v| readable_file(v).map(Some)),
    key!("tls_key" => tls_key: |v| readable_file(v).map(Some)),
    key!("tls_client_ca" => tls_client_ca: |v| readable_file(v).map(Some)),
    key!("tls_ca" => tls_ca: |v| readable_file(v).map(Some)),
    key!("tls_server_name" => tls_server_name: |v| non_empty(v).map(Some)),
    key!("tls_client_cert" => tls_client_cert: |v| readable_file(v).map(Some)),
    key!("tls_client_key" => tls_client_key: |v| readable_file(v).map(Some)),
    key!("auth_token" => auth_tokens: AuthToken::list),
    key!("admin" => admin: on_off_auto),
    key!("admin_port" => admin_port: |v| number(v).map(Some)),
    key!("admin_token" => admin_token: |v| AuthToken::new(v).map(Some)),
    key!("metrics_log_interval_s" => metrics_log_interval: optional_secs),
];

/// Keys whose values are secrets: kept out of [`Config::raw`].
const SECRET_KEYS: &[&str] = &["auth_token", "admin_token"];

/// The known key `key` most likely meant: the nearest by edit distance,
/// if at most a third of its letters (and at least one) differ.
fn closest_key(key: &str) -> Option<&'static str> {
    closest_match(
        &key.to_ascii_lowercase(),
        KEYS.iter().map(|(known, _)| *known),
    )
}

/// The candidate `word` most likely meant, for "did you mean" hints: the
/// nearest by edit distance, if at most a third of its letters (and at
/// least one) differ.
pub fn closest_match<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|known| (edit_distance(word, known), known))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Levenshtein distance (insertions, deletions, substitutions), by chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

fn non_empty(value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err("value is empty".into())
    } else {
        Ok(value.to_owned())
    }
}

/// A file that exists and can be read (its content is checked when the
/// TLS settings are built).
fn readable_file(value: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(non_empty(value)?);
    std::fs::File::open(&path).map_err(|e| format!("cannot read '{value}': {e}"))?;
    Ok(path)
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

/// Milliseconds where 0 means "off".
fn optional_millis(value: &str) -> Result<Option<Duration>, String> {
    millis(value).map(|d| (!d.is_zero()).then_some(d))
}

/// Seconds where 0 means "off".
fn optional_secs(value: &str) -> Result<Option<Duration>, String> {
    number::<u64>(value).map(|s| (s > 0).then(|| Duration::from_secs(s)))
}

/// `auto` (None) or a boolean.
fn on_off_auto(value: &str) -> Result<Option<bool>, String> {
    if value.eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    boolean(value)
        .map(Some)
        .map_err(|_| format!("'{value}' is not one of on, off, auto"))
}

fn boolean(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("'{value}' is not a boolean (true/false)")),
    }
}

fn load_balance(value: &str) -> Result<LoadBalance, String> {
    value.parse()
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
    fn an_unknown_key_is_kept_and_warned_about_with_the_closest_known_key() {
        let (c, warnings) =
            Config::parse_with_warnings("a.conf", "rpcserverport=1\nregisty=none\nmy_app_key=7\n")
                .unwrap();
        // Kept for the application, and not applied.
        assert_eq!(c.get("registy"), Some("none"));
        assert_eq!(c.get("my_app_key"), Some("7"));
        assert_eq!(c.registry, RegistryKind::ZooKeeper);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert_eq!(warnings[0].line, 2);
        assert_eq!(warnings[0].suggestion, Some("registry"));
        assert_eq!(
            warnings[0].to_string(),
            "a.conf:2: unknown key 'registy' (did you mean 'registry'?); kept for the application (Config::get)"
        );
        // Nothing close: no suggestion.
        assert_eq!(warnings[1].key, "my_app_key");
        assert_eq!(warnings[1].suggestion, None);
    }

    #[test]
    fn suggestions_cover_common_typos() {
        assert_eq!(closest_key("rpcserverpot"), Some("rpcserverport"));
        assert_eq!(closest_key("zookeper_ip"), Some("zookeeperip"));
        assert_eq!(closest_key("zookeeperIP"), Some("zookeeperip"));
        assert_eq!(closest_key("log-level"), Some("log_level"));
        assert_eq!(closest_key("call_timeout"), Some("call_timeout_ms"));
        assert_eq!(closest_key("x"), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn known_keys_give_no_warning() {
        // Keys naming certificate files are covered in tests/tls.rs, where
        // certificates are made.
        let text: String = KEYS
            .iter()
            .filter(|(key, _)| !key.starts_with("tls_"))
            .map(|(key, _)| format!("{key}={}\n", sample_value(key)))
            .collect();
        let (_, warnings) = Config::parse_with_warnings("all.conf", &text).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    /// A valid value for each known key.
    fn sample_value(key: &str) -> &'static str {
        match key {
            "registry" => "none",
            "zk_root" => "/mprpc",
            "zk_legacy_layout" | "trim_memory" => "true",
            "zk_digest" => "u:p",
            "load_balance" => "random",
            "concurrency_limiter" => "auto",
            "max_concurrency" => "EchoService.Echo:5, *:100",
            "log_level" => "warn",
            "tls" => "off",
            "auth_token" => "s3cret,other",
            "admin" => "auto",
            "admin_token" => "t0ken",
            "rpcserverip" | "zookeeperip" | "zookeeper" | "log_dir" => "x",
            _ => "7",
        }
    }

    /// The table of docs/configuration.md lists exactly the known keys.
    #[test]
    fn the_docs_document_every_known_key() {
        let page = include_str!("../../docs/configuration.md");
        let section = page
            .split("\n## Keys")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("docs/configuration.md has a Keys section");
        let mut documented: Vec<&str> = section
            .lines()
            .filter(|line| line.starts_with("| `"))
            .filter_map(|line| line.split('|').nth(1))
            .flat_map(|cell| cell.split('`').skip(1).step_by(2))
            .collect();
        documented.sort_unstable();
        let mut known: Vec<&str> = KEYS.iter().map(|(key, _)| *key).collect();
        known.sort_unstable();
        assert_eq!(documented, known);
    }

    #[test]
    fn concurrency_keys_parse_and_bad_ones_name_file_line_and_key() {
        let c = Config::parse(
            "o.conf",
            "concurrency_limiter = auto\nmax_concurrency = EchoService.Echo:50, *:200\n",
        )
        .unwrap();
        assert_eq!(c.concurrency_limiter, ConcurrencyLimiter::Auto);
        assert_eq!(
            c.max_concurrency.for_method("EchoService", "Echo"),
            Some(50)
        );
        assert_eq!(c.max_concurrency.for_method("Other", "Call"), Some(200));
        let plain = Config::parse("o.conf", "max_concurrency=100").unwrap();
        assert_eq!(plain.max_concurrency.for_method("A", "b"), Some(100));
        let default = Config::default();
        assert_eq!(default.concurrency_limiter, ConcurrencyLimiter::Off);
        assert!(default.max_concurrency.is_empty());

        let e = Config::parse("o.conf", "# x\nmax_concurrency = Echo:5\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.to_string()
                .starts_with("o.conf:2: key 'max_concurrency': 'Echo:5': expected N"),
            "{e}"
        );
        let e = Config::parse("o.conf", "concurrency_limiter=maybe").unwrap_err();
        assert_eq!(
            e.to_string(),
            "o.conf:1: key 'concurrency_limiter': 'maybe' is not one of auto, off"
        );
    }

    #[test]
    fn tls_keys_are_checked_together_and_tokens_kept_secret() {
        let e = Config::parse("t.conf", "# x\ntls=required\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.conf:2: key 'tls': tls=required needs tls_cert and tls_key"
        );
        let e = Config::parse("t.conf", "tls=sometimes").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("tls"));
        let e = Config::parse("t.conf", "tls_ca=/definitely/not/here.pem").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.conf:1: key 'tls_ca': cannot read"),
            "{e}"
        );
        let e = Config::parse("t.conf", "\ntls_server_name=x").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (2, Some("tls_server_name")));
        let c = Config::parse("t.conf", "auth_token=alpha, beta").unwrap();
        assert_eq!(c.auth_tokens.len(), 2);
        assert_eq!(c.get("auth_token"), None);
        assert!(!format!("{c:?}").contains("alpha"));
    }

    #[test]
    fn an_ensemble_connect_string_wins() {
        let c = Config::parse("c", "zookeeperip=1.1.1.1\nzookeeper=a:1,b:2,c:3").unwrap();
        assert_eq!(c.zookeeper_connect(), "a:1,b:2,c:3");
    }
}
