//! Node paths and node data of the registry layout (see the module docs).
//!
//! Everything read back from ZooKeeper is untrusted input: parsing never
//! panics, and a node that does not parse is skipped by the caller.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::tls::TlsMode;

/// `<root>/services`.
pub(crate) fn services_path(root: &str) -> String {
    format!("{}/services", root.trim_end_matches('/'))
}

/// `<root>/services/<service>/providers`.
pub(crate) fn providers_path(root: &str, service: &str) -> String {
    format!("{}/{service}/providers", services_path(root))
}

/// `<root>/services/<service>/providers/<addr>`.
pub(crate) fn provider_path(root: &str, service: &str, addr: SocketAddr) -> String {
    format!("{}/{addr}", providers_path(root, service))
}

/// The seed's `/<service>`.
pub(crate) fn legacy_service_path(service: &str) -> String {
    format!("/{service}")
}

/// The seed's `/<service>/<method>`.
pub(crate) fn legacy_method_path(service: &str, method: &str) -> String {
    format!("/{service}/{method}")
}

/// What a provider node says about its provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// The address consumers dial.
    pub addr: SocketAddr,
    /// The service's methods the provider serves.
    pub methods: Vec<String>,
    /// Relative share of traffic (default [`Self::DEFAULT_WEIGHT`]).
    pub weight: u32,
    /// The provider's mprpc version.
    pub version: String,
    /// When the provider started, in milliseconds since the Unix epoch.
    pub start_time_ms: u64,
    /// The provider's process id, for operators.
    pub pid: u32,
    /// The largest frame body the provider accepts (`None`: not published),
    /// so consumers refuse larger calls before sending them.
    pub max_frame: Option<usize>,
    /// TLS on the provider's port (`Off` when not published), so consumers
    /// know a plain connection would be refused.
    pub tls: TlsMode,
}

impl ProviderInfo {
    /// The weight of a provider that publishes none.
    pub const DEFAULT_WEIGHT: u32 = 100;

    /// This process, serving `methods` at `addr`, started at `start_time_ms`,
    /// accepting frames of up to `max_frame` bytes.
    pub(crate) fn local(
        addr: SocketAddr,
        methods: &[&str],
        start_time_ms: u64,
        max_frame: usize,
        tls: TlsMode,
    ) -> ProviderInfo {
        ProviderInfo {
            addr,
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            weight: Self::DEFAULT_WEIGHT,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            start_time_ms,
            pid: std::process::id(),
            max_frame: Some(max_frame),
            tls,
        }
    }

    /// The node data: `key=value` lines.
    pub fn encode(&self) -> String {
        format!(
            "protocol=mprpc\naddr={}\nmethods={}\nweight={}\nversion={}\nstart_time_ms={}\npid={}\ntls={}\n{}",
            self.addr,
            self.methods.join(","),
            self.weight,
            self.version,
            self.start_time_ms,
            self.pid,
            self.tls,
            self.max_frame
                .map_or(String::new(), |m| format!("max_frame={m}\n"))
        )
    }

    /// Reads a provider node: the address comes from the node `name`, the
    /// rest from `data` (missing or bad values take defaults). `None` if the
    /// name is not an `ip:port`.
    pub fn parse(name: &str, data: &[u8]) -> Option<ProviderInfo> {
        let addr: SocketAddr = name.parse().ok()?;
        let mut info = ProviderInfo {
            addr,
            methods: Vec::new(),
            weight: Self::DEFAULT_WEIGHT,
            version: String::new(),
            start_time_ms: 0,
            pid: 0,
            max_frame: None,
            tls: TlsMode::Off,
        };
        let text = String::from_utf8_lossy(data);
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "methods" => {
                    info.methods = value
                        .split(',')
                        .filter(|m| !m.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                "weight" => info.weight = value.parse().unwrap_or(Self::DEFAULT_WEIGHT),
                "version" => info.version = value.to_owned(),
                "start_time_ms" => info.start_time_ms = value.parse().unwrap_or(0),
                "pid" => info.pid = value.parse().unwrap_or(0),
                "max_frame" => info.max_frame = value.parse().ok(),
                "tls" => info.tls = value.parse().unwrap_or_default(),
                _ => {}
            }
        }
        Some(info)
    }
}

/// Parses a seed method node's data, `ip:port` (NULs and spaces trimmed; a
/// host name is resolved). `None` if it is not an address.
pub(crate) fn parse_legacy_addr(data: &[u8]) -> Option<SocketAddr> {
    let text = std::str::from_utf8(data).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if let Ok(addr) = text.parse() {
        return Some(addr);
    }
    if text.is_empty() || !text.contains(':') {
        return None;
    }
    text.to_socket_addrs().ok()?.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_info_round_trips() {
        let addr: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let info =
            ProviderInfo::local(addr, &["Login", "Register"], 42, 1 << 20, TlsMode::Required);
        let back = ProviderInfo::parse("127.0.0.1:8000", info.encode().as_bytes()).unwrap();
        assert_eq!(back, info);
    }

    #[test]
    fn garbage_data_takes_defaults_and_bad_names_are_rejected() {
        let info = ProviderInfo::parse("[::1]:9", b"\xff\xfe weight=lots\nnoequals\n").unwrap();
        assert_eq!(info.weight, 100);
        assert!(info.methods.is_empty());
        assert_eq!(info.max_frame, None, "not published by older providers");
        assert_eq!(info.tls, TlsMode::Off, "not published by older providers");
        assert!(ProviderInfo::parse("not-an-addr", b"").is_none());
        assert!(ProviderInfo::parse("", b"weight=1").is_none());
    }

    #[test]
    fn legacy_data_is_ip_colon_port() {
        assert_eq!(
            parse_legacy_addr(b"127.0.0.1:8000\0"),
            Some("127.0.0.1:8000".parse().unwrap())
        );
        assert_eq!(parse_legacy_addr(b""), None);
        assert_eq!(parse_legacy_addr(b"\xff"), None);
        assert_eq!(parse_legacy_addr(b"nonsense"), None);
    }

    #[test]
    fn paths_follow_the_documented_layout() {
        let addr: SocketAddr = "10.0.0.1:1".parse().unwrap();
        assert_eq!(
            provider_path("/mprpc", "S", addr),
            "/mprpc/services/S/providers/10.0.0.1:1"
        );
        assert_eq!(providers_path("/", "S"), "/services/S/providers");
        assert_eq!(legacy_method_path("S", "M"), "/S/M");
    }
}
