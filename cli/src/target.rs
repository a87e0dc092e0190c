//! Where the providers are: ZooKeeper (`--zk`, discovery as consumers do
//! it, through `mprpc::registry`) or one address (`--addr`, in our wire
//! format or with `--seed` in the seed's). Every command starts here.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use mprpc::discovery::{Discover, Endpoint, StaticDiscover, WireFormat};
use mprpc::registry::{ServiceListing, ZkDiscover};
use mprpc::{Channel, ChannelOptions, Config};

use crate::error::{fail, Error, Result};

/// Where to find providers (one of `--zk` and `--addr`).
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// ZooKeeper to discover providers in (`host:port`, or a list `h1:p1,h2:p2`).
    #[arg(long, global = true, value_name = "HOST:PORT", conflicts_with = "addr")]
    zk: Option<String>,
    /// Root of the registry layout in ZooKeeper.
    #[arg(long, global = true, default_value = "/mprpc", value_name = "PATH")]
    zk_root: String,
    /// One provider to talk to directly, without ZooKeeper.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// The provider at --addr speaks the seed's (C++ mprpc's) wire format;
    /// it has no reflection, so `call` and `describe` need --proto.
    #[arg(long, global = true, requires = "addr")]
    seed: bool,
    /// How long a call (or a ZooKeeper request) may take, in milliseconds.
    #[arg(long, global = true, default_value_t = 5000, value_name = "MS")]
    timeout_ms: u64,
}

impl TargetArgs {
    /// Checks the flags and resolves `--addr`.
    pub(crate) fn resolve(&self) -> Result<Target> {
        let timeout = Duration::from_millis(self.timeout_ms.max(1));
        let kind = match (&self.zk, &self.addr) {
            (Some(connect), None) => {
                Kind::Zk(Box::new(Config {
                    zookeeper: Some(connect.clone()),
                    zk_root: self.zk_root.clone(),
                    connect_timeout: timeout,
                    call_timeout: timeout,
                    ..Config::default()
                }))
            }
            (None, Some(addr)) => {
                let format = if self.seed {
                    WireFormat::Legacy
                } else {
                    WireFormat::Mprpc
                };
                Kind::Addr(Endpoint {
                    format,
                    ..Endpoint::new(resolve(addr)?)
                })
            }
            _ => fail!("say where the providers are: --zk HOST:PORT (ZooKeeper) or --addr HOST:PORT (one provider)"),
        };
        Ok(Target { kind, timeout })
    }
}

fn resolve(addr: &str) -> Result<SocketAddr> {
    let mut addrs = addr
        .to_socket_addrs()
        .map_err(|e| Error::new(format!("--addr {addr}: {e}")))?;
    match addrs.next() {
        Some(a) => Ok(a),
        None => fail!("--addr {addr}: resolves to no address"),
    }
}

#[derive(Debug)]
enum Kind {
    Zk(Box<Config>),
    Addr(Endpoint),
}

/// Resolved flags: how to reach providers.
#[derive(Debug)]
pub(crate) struct Target {
    kind: Kind,
    timeout: Duration,
}

impl Target {
    /// The call timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Where providers come from, for a channel.
    pub(crate) fn discover(&self) -> Result<Arc<dyn Discover>> {
        match &self.kind {
            Kind::Zk(config) => {
                let zk = ZkDiscover::connect(config).map_err(|e| Error::new(e.to_string()))?;
                Ok(zk)
            }
            Kind::Addr(endpoint) => Ok(Arc::new(StaticDiscover::new(vec![endpoint.clone()]))),
        }
    }

    /// The providers of `service`: from ZooKeeper (an unknown service is
    /// an error that says so), or the one `--addr`.
    pub(crate) fn providers(
        &self,
        discover: &dyn Discover,
        service: &str,
    ) -> Result<Vec<Endpoint>> {
        let list = discover
            .providers(service)
            .map_err(|status| Error::new(status.message().to_owned()))?;
        if list.is_empty() {
            match &self.kind {
                Kind::Zk(config) => fail!(
                    "unknown service '{service}': no provider registered in ZooKeeper {} (see `mprpc ls`)",
                    config.zookeeper_connect()
                ),
                Kind::Addr(_) => fail!("no provider for '{service}'"),
            }
        }
        Ok(list.to_vec())
    }

    /// A channel over `discover` with this target's timeouts.
    pub(crate) fn channel(&self, discover: Arc<dyn Discover>) -> Result<Channel> {
        let options = ChannelOptions {
            call_timeout: self.timeout,
            connect_timeout: self.timeout,
            ..ChannelOptions::default()
        };
        Channel::new(discover, options)
            .map_err(|e| Error::new(format!("cannot start the client: {e}")))
    }

    /// A channel to one provider.
    pub(crate) fn direct(&self, endpoint: &Endpoint) -> Result<Channel> {
        self.channel(Arc::new(StaticDiscover::new(vec![endpoint.clone()])))
    }

    /// The whole registry (`--zk`), or `None` for `--addr`.
    pub(crate) fn browse(&self) -> Result<Option<Vec<ServiceListing>>> {
        match &self.kind {
            Kind::Zk(config) => mprpc::registry::browse(config)
                .map(Some)
                .map_err(|e| Error::new(e.to_string())),
            Kind::Addr(_) => Ok(None),
        }
    }

    /// The `--addr` endpoint, if that is the target.
    pub(crate) fn endpoint(&self) -> Option<&Endpoint> {
        match &self.kind {
            Kind::Addr(endpoint) => Some(endpoint),
            Kind::Zk(_) => None,
        }
    }
}
