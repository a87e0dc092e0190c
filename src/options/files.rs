//! What the config file sets around the server and the channel: the
//! provider's address and shutdown, logging, and the TLS files from which
//! [`ServerOptions::tls`](super::ServerOptions::tls) and
//! [`ChannelOptions::tls`](super::ChannelOptions::tls) are built.

use std::path::PathBuf;
use std::time::Duration;

use super::kinds::{
    Dir, Level, Millis, Number, OptionalText, Parsed, Positive, ReadableFile, Text,
};
use crate::net::tls::TlsMode;

options! {
    /// The provider's address and graceful shutdown.
    pub struct ProviderOptions("provider") {
        /// The address the provider listens on and registers (consumers
        /// dial it with `registry=none`).
        ["rpcserverip", Text]
        rpc_server_ip: String = "127.0.0.1".into(),
        /// The provider's port (0: any free port).
        ["rpcserverport", Number]
        rpc_server_port: u16 = 8000,
        /// Graceful shutdown: serve this long after deregistering, so
        /// consumers notice.
        ["drain_ms", Millis]
        drain: Duration = Duration::from_millis(1000),
    }
}

impl ProviderOptions {
    /// The provider's listen address as `ip:port`.
    pub fn rpc_server_addr(&self) -> String {
        format!("{}:{}", self.rpc_server_ip, self.rpc_server_port)
    }
}

options! {
    /// The daily log files of a provider or consumer program.
    pub struct LogOptions("provider, consumer") {
        /// Where daily rolling log files go.
        ["log_dir", Dir]
        dir: PathBuf = PathBuf::from("logs"),
        /// trace, debug, info, warn or error (`RUST_LOG` wins).
        ["log_level", Level]
        level: String = "info".into(),
        /// Bytes one day's log file may take from a process (past it, lines
        /// are dropped, and the next day's file says how many). Warnings a
        /// peer can cause are logged at most 10 per cause per 10 s per
        /// thread, with the count left out.
        ["log_max_bytes", Positive]
        max_bytes: u64 = 256 * 1024 * 1024,
        /// Daily log files kept (older ones are deleted).
        ["log_max_files", Positive]
        max_files: usize = 7,
    }
}

options! {
    /// The provider's TLS as a config file names it.
    pub struct ServerTlsFiles("provider") {
        /// TLS on the provider's port: `off`, `optional` (TLS and plain
        /// clients share it, told apart by their first bytes) or `required`.
        ["tls", Parsed]
        mode: TlsMode = TlsMode::Off,
        /// The provider's certificate chain (PEM, leaf first).
        ["tls_cert", ReadableFile]
        cert: Option<PathBuf> = None,
        /// The provider's private key (PEM).
        ["tls_key", ReadableFile]
        key: Option<PathBuf> = None,
        /// Mutual TLS: only clients whose certificate this CA (PEM) signed
        /// get in.
        ["tls_client_ca", ReadableFile]
        client_ca: Option<PathBuf> = None,
    }
}

options! {
    /// The consumer's TLS as a config file names it.
    pub struct ClientTlsFiles("consumer") {
        /// Speak TLS to every provider, trusting certificates this CA (PEM)
        /// signed.
        ["tls_ca", ReadableFile]
        ca: Option<PathBuf> = None,
        /// The name checked against the provider's certificate (default: the
        /// provider's IP address).
        ["tls_server_name", OptionalText]
        server_name: Option<String> = None,
        /// The certificate chain (PEM) a consumer presents for mutual TLS.
        ["tls_client_cert", ReadableFile]
        client_cert: Option<PathBuf> = None,
        /// That certificate's private key (PEM).
        ["tls_client_key", ReadableFile]
        client_key: Option<PathBuf> = None,
    }
}
