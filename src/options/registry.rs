//! The registry options: where providers are published and found.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::kinds::{Bool, Digest, Millis, Number, OptionalText, Parsed, Text, ZkPath};

/// Where providers are published and found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryKind {
    /// Apache ZooKeeper, as in the seed.
    ZooKeeper,
    /// No registry: a consumer dials the configured provider address.
    None,
}

impl FromStr for RegistryKind {
    type Err = String;

    fn from_str(value: &str) -> Result<RegistryKind, String> {
        match value.to_ascii_lowercase().as_str() {
            "zookeeper" | "zk" => Ok(RegistryKind::ZooKeeper),
            "none" | "direct" => Ok(RegistryKind::None),
            _ => Err(format!("'{value}' is not one of zookeeper, none")),
        }
    }
}

impl fmt::Display for RegistryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegistryKind::ZooKeeper => "zookeeper",
            RegistryKind::None => "none",
        })
    }
}

options! {
    /// Where providers register and consumers discover them.
    pub struct RegistryOptions("provider, consumer") {
        /// `zookeeper`: providers register, consumers discover; `none`: no
        /// ZooKeeper, consumers dial `rpcserverip:rpcserverport`.
        ["registry", Parsed]
        kind: RegistryKind = RegistryKind::ZooKeeper,
        /// The host of the seed's single ZooKeeper server.
        ["zookeeperip", Text]
        zookeeper_ip: String = "127.0.0.1".into(),
        /// That ZooKeeper server's client port.
        ["zookeeperport", Number]
        zookeeper_port: u16 = 2181,
        /// A full connect string (`h1:p1,h2:p2,h3:p3`) for an ensemble;
        /// wins over `zookeeperip` and `zookeeperport`.
        ["zookeeper", OptionalText]
        zookeeper: Option<String> = None,
        /// The ZooKeeper session timeout.
        ["zk_session_timeout_ms", Millis]
        session_timeout: Duration = Duration::from_millis(6000),
        /// The root of our registry layout.
        ["zk_root", ZkPath]
        root: String = "/mprpc".into(),
        /// Also write the seed's `/Service/Method` nodes, so C++ consumers
        /// find our providers (`zk_legacy_layout`, its old name, is read
        /// too).
        ["zk_seed_layout", Bool]
        seed_layout: bool = true,
        /// `user:password`: protect our registry nodes with a digest ACL.
        ["zk_digest", Digest]
        digest: Option<String> = None,
    }
}

impl RegistryOptions {
    /// The ZooKeeper connect string: `zookeeper`, or the seed's ip:port pair.
    pub fn connect_string(&self) -> String {
        self.zookeeper
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.zookeeper_ip, self.zookeeper_port))
    }
}
