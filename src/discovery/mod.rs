//! Where a consumer's provider addresses come from.
//!
//! The client asks a [`Discover`] for a service's providers on every call, so
//! implementations must answer from memory: [`StaticDiscover`] holds a fixed
//! list (a directly configured address, as in tests and the core examples);
//! the ZooKeeper registry keeps a watched cache behind the same trait
//! (`registry::ZkDiscover`, with the `zookeeper` feature). [`from_config`]
//! picks one as the config file says.

pub mod balance;
mod endpoint;

use std::sync::Arc;

use crate::app::config::{Config, RegistryKind};
#[cfg(feature = "zookeeper")]
use crate::registry::{RegistryError, ZkDiscover};
pub use balance::LoadBalance;
pub use endpoint::{Discover, Endpoint, StaticDiscover, WireFormat};

/// The provider source a config asks for: ZooKeeper discovery (the seed's
/// way, and the default), or with `registry=none` the configured
/// `rpcserverip:rpcserverport` directly.
pub fn from_config(config: &Config) -> Result<Arc<dyn Discover>, DiscoverError> {
    match config.registry.kind {
        #[cfg(feature = "zookeeper")]
        RegistryKind::ZooKeeper => {
            Ok(ZkDiscover::connect(config).map_err(DiscoverError::Registry)?)
        }
        #[cfg(not(feature = "zookeeper"))]
        RegistryKind::ZooKeeper => Err(DiscoverError::NoZooKeeper),
        RegistryKind::None => {
            let addr = config.provider.rpc_server_addr();
            let fixed =
                StaticDiscover::single(&addr).map_err(|e| DiscoverError::BadAddress(addr, e))?;
            Ok(Arc::new(fixed))
        }
    }
}

/// Why [`from_config`] could not build a provider source.
#[non_exhaustive]
pub enum DiscoverError {
    /// ZooKeeper could not be reached or read.
    #[cfg(feature = "zookeeper")]
    Registry(RegistryError),
    /// `registry=zookeeper`, but this build has no `zookeeper` feature.
    #[cfg(not(feature = "zookeeper"))]
    NoZooKeeper,
    /// `rpcserverip:rpcserverport` does not resolve.
    BadAddress(String, std::io::Error),
}

impl std::fmt::Display for DiscoverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            #[cfg(feature = "zookeeper")]
            DiscoverError::Registry(e) => write!(f, "{e}"),
            #[cfg(not(feature = "zookeeper"))]
            DiscoverError::NoZooKeeper => {
                f.write_str("registry=zookeeper, but mprpc was built without its zookeeper feature")
            }
            DiscoverError::BadAddress(addr, e) => write!(f, "bad provider address '{addr}': {e}"),
        }
    }
}

impl std::error::Error for DiscoverError {}
