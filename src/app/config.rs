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
//! A [`Config`] is made of the options structs of [`crate::options`], one
//! per side; each key is declared once there, with its type, default and
//! doc. This module only reads the file into them, builds the TLS settings
//! from their files, and writes the table of `docs/configuration.md`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::net::tls::TlsMode;
#[cfg(feature = "tls")]
use crate::net::tls::{ClientTls, ServerTls};
pub use crate::options::RegistryKind;
use crate::options::{
    ChannelOptions, ClientTlsFiles, KeyRow, LogOptions, ProviderOptions, RegistryOptions,
    ServerOptions, ServerTlsFiles, Settings,
};

/// A configuration error, pointing at the offending file, line and key.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
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
#[non_exhaustive]
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

/// Every setting the framework reads, side by side: the options structs a
/// config file fills, with their defaults where it is silent.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Config {
    /// The provider's address and graceful shutdown.
    pub provider: ProviderOptions,
    /// Where providers register and consumers find them.
    pub registry: RegistryOptions,
    /// The provider's server (its `addr` comes from [`Config::provider`]:
    /// use [`ServerOptions::from_config`]).
    pub server: ServerOptions,
    /// A consumer's channels.
    pub channel: ChannelOptions,
    /// The program's daily log files.
    pub log: LogOptions,
    /// The provider's TLS files (`server.tls` is built from them).
    pub server_tls_files: ServerTlsFiles,
    /// The consumer's TLS files (`channel.tls` is built from them).
    pub client_tls_files: ClientTlsFiles,
    /// Every key/value as read, including ones the framework does not know,
    /// for applications that keep their own settings in the same file;
    /// secrets (`auth_token`, `admin_token`) are left out.
    pub raw: BTreeMap<String, String>,
}

/// Keys whose values are secrets: kept out of [`Config::raw`].
const SECRET_KEYS: &[&str] = &["auth_token", "admin_token"];

/// Keys renamed since files were written with them: (old name, name).
/// A file with the old name still sets the option.
const RENAMED_KEYS: &[(&str, &str)] = &[("zk_legacy_layout", "zk_seed_layout")];

/// The name `key` has now (itself unless it was renamed).
fn current_name(key: &str) -> &str {
    RENAMED_KEYS
        .iter()
        .find(|(old, _)| *old == key)
        .map_or(key, |(_, new)| new)
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
            match config.set(current_name(key), value) {
                Some(set) => {
                    set.map_err(|m| err(Some(key), m))?;
                    lines.insert(key.to_owned(), line_no);
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

    /// The options structs a config file fills, each with its key table.
    fn sections(&self) -> [&dyn Settings; 8] {
        [
            &self.provider,
            &self.registry,
            &self.server,
            &self.server.admin,
            &self.channel,
            &self.log,
            &self.server_tls_files,
            &self.client_tls_files,
        ]
    }

    /// Sets `key` in every section that reads it (`max_frame_size` and
    /// `auth_token` are read by both sides); `None` for an unknown key.
    fn set(&mut self, key: &str, value: &str) -> Option<Result<(), String>> {
        let mut known = self.server.admin.set(key, value);
        let sections: [&mut dyn Settings; 7] = [
            &mut self.provider,
            &mut self.registry,
            &mut self.server,
            &mut self.channel,
            &mut self.log,
            &mut self.server_tls_files,
            &mut self.client_tls_files,
        ];
        for section in sections {
            match section.set(key, value) {
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(())) => known = Some(Ok(())),
                None => {}
            }
        }
        known
    }

    /// Without the `tls` feature: a `tls*` key that asks for TLS is an
    /// error naming the feature (`tls=off` is fine).
    #[cfg(not(feature = "tls"))]
    fn build_tls(&mut self) -> Result<(), (&'static str, String)> {
        let (server, client) = (&self.server_tls_files, &self.client_tls_files);
        let set = [
            ("tls", server.mode != TlsMode::Off),
            ("tls_cert", server.cert.is_some()),
            ("tls_key", server.key.is_some()),
            ("tls_client_ca", server.client_ca.is_some()),
            ("tls_ca", client.ca.is_some()),
            ("tls_server_name", client.server_name.is_some()),
            ("tls_client_cert", client.client_cert.is_some()),
            ("tls_client_key", client.client_key.is_some()),
        ];
        match set.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err((
                key,
                "TLS is not built in: this program was built without mprpc's `tls` feature".into(),
            )),
            None => Ok(()),
        }
    }

    /// Builds `server.tls` and `channel.tls` from the `tls*` keys, or says
    /// which key is wrong and why.
    #[cfg(feature = "tls")]
    fn build_tls(&mut self) -> Result<(), (&'static str, String)> {
        let files = &self.server_tls_files;
        let server_only = [
            ("tls_cert", files.cert.is_some()),
            ("tls_key", files.key.is_some()),
            ("tls_client_ca", files.client_ca.is_some()),
        ];
        if files.mode == TlsMode::Off {
            if let Some((key, _)) = server_only.iter().find(|(_, set)| *set) {
                return Err((
                    key,
                    "has no effect with tls=off (set tls=optional or required)".into(),
                ));
            }
        } else {
            let (Some(cert), Some(key)) = (&files.cert, &files.key) else {
                return Err((
                    "tls",
                    format!("tls={} needs tls_cert and tls_key", files.mode),
                ));
            };
            let tls = ServerTls::from_pem_files(cert, key, files.client_ca.as_deref(), files.mode)
                .map_err(|e| ("tls", e.to_string()))?;
            self.server.tls = Some(tls);
        }
        let files = &self.client_tls_files;
        let identity = match (&files.client_cert, &files.client_key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            (None, None) => None,
            (Some(_), None) => return Err(("tls_client_cert", "needs tls_client_key".into())),
            (None, Some(_)) => return Err(("tls_client_key", "needs tls_client_cert".into())),
        };
        let Some(ca) = &files.ca else {
            let client_only = [
                ("tls_server_name", files.server_name.is_some()),
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
        if let Some(name) = &files.server_name {
            tls = tls
                .with_server_name(name)
                .map_err(|e| ("tls_server_name", e.to_string()))?;
        }
        self.channel.tls = Some(tls);
        Ok(())
    }

    /// A value of a key the framework does not interpret (application keys).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw.get(key).map(String::as_str)
    }
}

impl ServerOptions {
    /// The options a config file sets: [`Config::server`] listening on
    /// `rpcserverip:rpcserverport`.
    pub fn from_config(config: &Config) -> ServerOptions {
        let addr = config.provider.rpc_server_addr();
        config.server.clone().addr(addr)
    }
}

impl ChannelOptions {
    /// The options a config file sets: [`Config::channel`].
    pub fn from_config(config: &Config) -> ChannelOptions {
        config.channel.clone()
    }
}

/// Every key the framework reads, one row per (key, side), in the order
/// of the docs table.
pub(crate) fn key_rows() -> Vec<KeyRow> {
    let defaults = Config::default();
    defaults.sections().iter().flat_map(|s| s.rows()).collect()
}

/// Whether the framework reads `key`.
pub(crate) fn is_known_key(key: &str) -> bool {
    key_rows().iter().any(|row| row.name == key)
}

/// The known key `key` most likely meant: the nearest by edit distance,
/// if at most a third of its letters (and at least one) differ.
fn closest_key(key: &str) -> Option<&'static str> {
    let known: Vec<&'static str> = key_rows().iter().map(|row| row.name).collect();
    closest_match(&key.to_ascii_lowercase(), known)
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::balance::LoadBalance;
    use crate::options::{markdown_table, ConcurrencyLimiter};

    /// Where `docs/configuration.md`'s generated key table starts and ends.
    const TABLE_BEGIN: &str = "<!-- keys: generated from src/options/ by \
        `UPDATE_DOCS=1 cargo test -p mprpc --lib the_docs_table`; do not edit -->";
    const TABLE_END: &str = "<!-- keys: end -->";

    /// `doc` with the table between its markers written from the declarations.
    fn write_key_table(doc: &str) -> Option<String> {
        let (before, rest) = doc.split_once(TABLE_BEGIN)?;
        let (_, after) = rest.split_once(TABLE_END)?;
        let table = markdown_table(&key_rows());
        Some(format!("{before}{TABLE_BEGIN}\n{table}{TABLE_END}{after}"))
    }

    const SEED_CONF: &str = "#rpc节点的ip地址\nrpcserverip=127.0.0.1\n#rpc节点的port端口号\nrpcserverport=8000\n#zk的ip地址\nzookeeperip=127.0.0.1\n#zk的port端口号\nzookeeperport=5000\n";

    #[test]
    fn the_seeds_file_is_accepted_verbatim() {
        let c = Config::parse("test.conf", SEED_CONF).unwrap();
        assert_eq!(c.provider.rpc_server_addr(), "127.0.0.1:8000");
        assert_eq!(c.registry.connect_string(), "127.0.0.1:5000");
    }

    #[test]
    fn spaces_comments_and_blank_lines_are_tolerated() {
        let c = Config::parse(
            "x.conf",
            "\n   # comment\n  rpcserverport =  9001  \n\nreactor_threads=3\nmy_app_key = hello\n",
        )
        .unwrap();
        assert_eq!(c.provider.rpc_server_port, 9001);
        assert_eq!(c.server.reactor_threads, 3);
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
        assert_eq!(c.channel.load_balance, LoadBalance::LeastOutstanding);
        assert_eq!(c.server.write_high_water, 65536);
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
        assert_eq!(c.registry.kind, RegistryKind::ZooKeeper);
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
    fn a_renamed_key_is_still_read_under_its_old_name() {
        for key in ["zk_seed_layout", "zk_legacy_layout"] {
            let (c, warnings) =
                Config::parse_with_warnings("a.conf", &format!("{key}=false\n")).unwrap();
            assert!(!c.registry.seed_layout, "{key}");
            assert!(warnings.is_empty(), "{key}: {warnings:?}");
            assert_eq!(c.get(key), Some("false"), "kept as written");
        }
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
        let text: String = key_rows()
            .iter()
            .filter(|row| !row.name.starts_with("tls_"))
            .map(|row| format!("{}={}\n", row.name, sample_value(row.name)))
            .collect();
        let (_, warnings) = Config::parse_with_warnings("all.conf", &text).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    /// A valid value for each known key.
    fn sample_value(key: &str) -> &'static str {
        match key {
            "registry" => "none",
            "zk_root" => "/mprpc",
            "zk_seed_layout" | "trim_memory" => "true",
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

    /// `docs/configuration.md`'s key table is the one `options!` writes:
    /// regenerate it with `UPDATE_DOCS=1 cargo test -p mprpc --lib
    /// config::tests::the_docs_table`.
    #[test]
    fn the_docs_table_is_generated_from_the_declarations() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let doc = std::fs::read_to_string(path).expect("docs/configuration.md exists");
        let expected = write_key_table(&doc).expect("the doc has the table's markers");
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &expected).expect("docs/configuration.md is writable");
        } else {
            assert!(
                doc == expected,
                "docs/configuration.md's key table differs from the options declared in \
                 src/options/; regenerate it with UPDATE_DOCS=1 (see this test's doc)"
            );
        }
    }

    #[test]
    fn a_key_read_by_both_sides_has_one_default() {
        let rows = key_rows();
        for row in &rows {
            for other in rows.iter().filter(|o| o.name == row.name) {
                assert_eq!(row.default, other.default, "{}", row.name);
            }
        }
        assert!(rows.iter().filter(|r| r.name == "max_frame_size").count() == 2);
    }

    #[test]
    fn shared_keys_set_both_sides() {
        let c = Config::parse("s.conf", "max_frame_size=1024").unwrap();
        assert_eq!(
            (c.server.max_frame_size, c.channel.max_frame_size),
            (1024, 1024)
        );
        let e = Config::parse("s.conf", "max_frame_size=0").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("max_frame_size"));
    }

    #[test]
    fn concurrency_keys_parse_and_bad_ones_name_file_line_and_key() {
        let c = Config::parse(
            "o.conf",
            "concurrency_limiter = auto\nmax_concurrency = EchoService.Echo:50, *:200\n",
        )
        .unwrap();
        assert_eq!(c.server.concurrency_limiter, ConcurrencyLimiter::Auto);
        let limits = &c.server.max_concurrency;
        assert_eq!(limits.for_method("EchoService", "Echo"), Some(50));
        assert_eq!(limits.for_method("Other", "Call"), Some(200));
        let plain = Config::parse("o.conf", "max_concurrency=100").unwrap();
        assert_eq!(plain.server.max_concurrency.for_method("A", "b"), Some(100));
        let default = Config::default();
        assert_eq!(default.server.concurrency_limiter, ConcurrencyLimiter::Off);
        assert!(default.server.max_concurrency.is_empty());

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

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_keys_name_the_missing_feature() {
        let e = Config::parse("t.conf", "# x\ntls=required\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.conf:2: key 'tls': TLS is not built in: this program was built without \
             mprpc's `tls` feature"
        );
        assert!(Config::parse("t.conf", "tls=off").is_ok());
    }

    #[cfg(feature = "tls")]
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
        assert_eq!(c.server.auth_tokens.len(), 2);
        assert!(c.channel.auth_token.is_some(), "a consumer sends the first");
        assert_eq!(c.get("auth_token"), None);
        assert!(!format!("{c:?}").contains("alpha"));
    }

    #[test]
    fn an_ensemble_connect_string_wins() {
        let c = Config::parse("c", "zookeeperip=1.1.1.1\nzookeeper=a:1,b:2,c:3").unwrap();
        assert_eq!(c.registry.connect_string(), "a:1,b:2,c:3");
    }
}
