//! Node paths and node data of the registry layout (see the module docs).
//!
//! Everything read back from ZooKeeper is untrusted input: parsing never
//! panics, and a node that does not parse is skipped by the caller.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::net::tls::TlsMode;

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
pub(crate) fn seed_service_path(service: &str) -> String {
    format!("/{service}")
}

/// The seed's `/<service>/<method>`.
pub(crate) fn seed_method_path(service: &str, method: &str) -> String {
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

/// What follows the NUL in the seed-layout node of one of our providers.
const OURS_MARK: &str = "protocol=mprpc";

/// The data of one of our providers' seed-layout method nodes:
/// `ip:port`, a NUL, then [`OURS_MARK`]. The seed's consumer
/// (`ZkClient::GetData`) returns the buffer as a C string, so it reads
/// exactly `ip:port` and splits it at ':' as before; our consumers see the
/// mark and never call one of our providers in the seed's format.
pub(crate) fn encode_seed_node(addr: SocketAddr) -> Vec<u8> {
    format!("{addr}\0{OURS_MARK}").into_bytes()
}

/// A seed-layout method node, read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeedNode {
    /// The `ip:port` it holds.
    pub addr: SocketAddr,
    /// Written by one of our providers ([`encode_seed_node`]), which must be
    /// called in our format through our own layout, never in the seed's.
    pub ours: bool,
}

/// Parses a seed method node's data: `ip:port` (trailing NULs and spaces
/// trimmed; a host name is resolved), then our mark after a NUL if one of
/// ours wrote it. `None` if it is not an address.
pub(crate) fn parse_seed_node(data: &[u8]) -> Option<SeedNode> {
    let text = std::str::from_utf8(data).ok()?;
    let (addr, rest) = text.split_once('\0').unwrap_or((text, ""));
    let addr = addr.trim();
    let ours = rest.trim_matches(|c: char| c == '\0' || c.is_whitespace()) == OURS_MARK;
    let addr = match addr.parse() {
        Ok(addr) => addr,
        Err(_) if addr.contains(':') => addr.to_socket_addrs().ok()?.next()?,
        Err(_) => return None,
    };
    Some(SeedNode { addr, ours })
}

/// The `ip:port` a seed method node holds (see [`parse_seed_node`]).
pub(crate) fn parse_seed_addr(data: &[u8]) -> Option<SocketAddr> {
    parse_seed_node(data).map(|node| node.addr)
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
    fn seed_data_is_ip_colon_port() {
        assert_eq!(
            parse_seed_addr(b"127.0.0.1:8000\0"),
            Some("127.0.0.1:8000".parse().unwrap())
        );
        assert_eq!(parse_seed_addr(b""), None);
        assert_eq!(parse_seed_addr(b"\xff"), None);
        assert_eq!(parse_seed_addr(b"nonsense"), None);
    }

    #[test]
    fn our_seed_nodes_are_marked_and_still_read_as_ip_port_by_a_c_string_reader() {
        let addr: SocketAddr = "127.0.0.1:8100".parse().unwrap();
        let data = encode_seed_node(addr);
        assert_eq!(parse_seed_node(&data), Some(SeedNode { addr, ours: true }));
        // The seed's consumer: the data as a C string, split at the first ':'.
        let c_string = data.split(|b| *b == 0).next().unwrap();
        assert_eq!(c_string, b"127.0.0.1:8100");
        assert!(
            data.len() < 64,
            "the seed reads node data into a 64-byte buffer"
        );
        assert_eq!(
            parse_seed_node(b"127.0.0.1:8100"),
            Some(SeedNode { addr, ours: false }),
            "a seed provider's node"
        );
        assert_eq!(
            parse_seed_node(b"127.0.0.1:8100\0something-else").map(|n| n.ours),
            Some(false)
        );
    }

    #[test]
    fn paths_follow_the_documented_layout() {
        let addr: SocketAddr = "10.0.0.1:1".parse().unwrap();
        assert_eq!(
            provider_path("/mprpc", "S", addr),
            "/mprpc/services/S/providers/10.0.0.1:1"
        );
        assert_eq!(providers_path("/", "S"), "/services/S/providers");
        assert_eq!(seed_method_path("S", "M"), "/S/M");
    }
}
