//! Where the providers are: ZooKeeper (`--zk`, discovery as consumers do
//! it, through `mprpc::registry`) or one address (`--addr`, in our wire
//! format or with `--seed` in the seed's), and how to talk to them: a
//! consumer's config file (`-i`) brings its TLS keys, token and timeouts,
//! so a secured cluster is reached the way its consumers reach it. Every
//! command starts here.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use mprpc::app::config::RegistryKind;
use mprpc::discovery::{Discover, Endpoint, StaticDiscover, WireFormat};
use mprpc::net::auth::AuthToken;
use mprpc::net::tls::ClientTls;
use mprpc::registry::{ServiceListing, ZkDiscover};
use mprpc::{Channel, ChannelOptions, Config};

use crate::error::{fail, Error, Result};

/// Where to find providers: `--zk`, `--addr`, or a consumer's config file.
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// ZooKeeper to discover providers in (`host:port`, or a list `h1:p1,h2:p2`).
    #[arg(long, global = true, value_name = "HOST:PORT", conflicts_with = "addr")]
    zk: Option<String>,
    /// Root of the registry layout in ZooKeeper [default: /mprpc, or the config's zk_root].
    #[arg(long, global = true, value_name = "PATH")]
    zk_root: Option<String>,
    /// One provider to talk to directly, without ZooKeeper.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// The provider at --addr speaks the seed's (C++ mprpc's) wire format;
    /// it has no reflection, so `call` and `describe` need --proto.
    #[arg(long, global = true, requires = "addr")]
    seed: bool,
    /// A consumer's config file (the seed's format): its registry, TLS keys,
    /// auth_token, zk_digest and timeouts apply; --zk and --addr win over it.
    #[arg(short = 'i', long = "config", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// How long a call (or opening a ZooKeeper session) may take, in
    /// milliseconds [default: 5000, or the config's call_timeout_ms].
    #[arg(long, global = true, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Speak TLS to providers, trusting this CA (PEM); the admin pages of
    /// a provider with tls=required are read over HTTPS too [config: tls_ca].
    #[arg(long, global = true, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) for providers that require mutual TLS
    /// [config: tls_client_cert]; needs --tls-client-key.
    #[arg(long, global = true, value_name = "FILE", requires_all = ["tls_ca", "tls_client_key"])]
    tls_client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM) [config: tls_client_key].
    #[arg(long, global = true, value_name = "FILE", requires = "tls_client_cert")]
    tls_client_key: Option<PathBuf>,
    /// The auth token providers want [config: auth_token].
    #[arg(long, global = true, value_name = "TOKEN")]
    token: Option<String>,
}

impl TargetArgs {
    /// Reads the config, checks the flags and resolves the address.
    pub(crate) fn resolve(&self) -> Result<Target> {
        let mut config = match &self.config {
            Some(path) => load(path)?,
            None => Config::default(),
        };
        if let Some(ms) = self.timeout_ms {
            let timeout = Duration::from_millis(ms.max(1));
            config.channel.call_timeout = timeout;
            config.channel.connect_timeout = timeout;
        }
        // A one-shot tool: the timeout bounds opening the session too.
        config.registry.session_timeout = config.channel.call_timeout;
        if let Some(root) = &self.zk_root {
            config.registry.root = root.clone();
        }
        self.secure(&mut config)?;
        let addr = match (&self.zk, &self.addr, &self.config) {
            (Some(connect), _, _) => {
                config.registry.zookeeper = Some(connect.clone());
                None
            }
            (None, Some(addr), _) => Some(addr.clone()),
            (None, None, Some(_)) if config.registry.kind == RegistryKind::ZooKeeper => None,
            (None, None, Some(_)) => Some(config.provider.rpc_server_addr()),
            (None, None, None) => fail!(
                "say where the providers are: --zk HOST:PORT (ZooKeeper), --addr HOST:PORT (one provider) or -i FILE (a consumer's config)"
            ),
        };
        let kind = match addr {
            None => Kind::Zk,
            Some(addr) => Kind::Addr(Endpoint::new(resolve(&addr)?).format(if self.seed {
                WireFormat::Seed
            } else {
                WireFormat::Mprpc
            })),
        };
        Ok(Target {
            kind,
            config: Box::new(config),
        })
    }
}

impl TargetArgs {
    /// `--tls-ca`, the client certificate and `--token` over the config's.
    fn secure(&self, config: &mut Config) -> Result<()> {
        if let Some(ca) = &self.tls_ca {
            let identity = self
                .tls_client_cert
                .as_deref()
                .zip(self.tls_client_key.as_deref());
            let tls = ClientTls::from_pem_files(ca, identity)
                .map_err(|e| Error::new(format!("--tls-ca: {e}")))?;
            config.channel.tls = Some(tls);
        }
        if let Some(token) = &self.token {
            let token = AuthToken::new(token).map_err(|e| Error::new(format!("--token: {e}")))?;
            config.channel.auth_token = Some(token);
        }
        Ok(())
    }
}

/// Reads a config file; what looks like a typo is reported, as providers do.
fn load(path: &Path) -> Result<Config> {
    let (config, warnings) =
        Config::load_with_warnings(path).map_err(|e| Error::new(e.to_string()))?;
    for warning in warnings {
        eprintln!("mprpc: warning: {warning}");
    }
    Ok(config)
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
    /// ZooKeeper, as `config` says.
    Zk,
    Addr(Endpoint),
}

/// Resolved flags: how to reach providers, and the client settings.
#[derive(Debug)]
pub(crate) struct Target {
    kind: Kind,
    config: Box<Config>,
}

impl Target {
    /// Providers at `addr`, or with `None` in the ZooKeeper `config`
    /// names, reached with `config`'s client settings.
    pub(crate) fn new(addr: Option<Endpoint>, config: Config) -> Target {
        let kind = addr.map_or(Kind::Zk, Kind::Addr);
        Target {
            kind,
            config: Box::new(config),
        }
    }

    /// The call timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.config.channel.call_timeout
    }

    /// Where providers come from, for a channel.
    pub(crate) fn discover(&self) -> Result<Arc<dyn Discover>> {
        match &self.kind {
            Kind::Zk => {
                let zk =
                    ZkDiscover::connect(&self.config).map_err(|e| Error::new(e.to_string()))?;
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
                Kind::Zk => fail!(
                    "unknown service '{service}': no provider registered in ZooKeeper {}{} (see `mprpc ls`)",
                    self.config.registry.connect_string(),
                    self.did_you_mean(service)
                ),
                Kind::Addr(_) => fail!("no provider for '{service}'"),
            }
        }
        Ok(list.to_vec())
    }

    /// A channel over `discover` with this target's timeouts.
    pub(crate) fn channel(&self, discover: Arc<dyn Discover>) -> Result<Channel> {
        // TLS, token and timeouts as the config says.
        let options = ChannelOptions::from_config(&self.config);
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
            Kind::Zk => mprpc::registry::browse(&self.config)
                .map(Some)
                .map_err(|e| Error::new(e.to_string())),
            Kind::Addr(_) => Ok(None),
        }
    }

    /// " (did you mean 'X'?)" for the registered service nearest `service`.
    fn did_you_mean(&self, service: &str) -> String {
        let Ok(Some(listing)) = self.browse() else {
            return String::new();
        };
        let names = listing.iter().map(|s| s.name.as_str());
        match mprpc::app::config::closest_match(service, names) {
            Some(name) => format!(" (did you mean '{name}'?)"),
            None => String::new(),
        }
    }

    /// TLS to the providers (`--tls-ca` or the config's `tls_ca`).
    pub(crate) fn client_tls(&self) -> Option<&ClientTls> {
        self.config.channel.tls.as_ref()
    }

    /// The `--addr` endpoint, if that is the target.
    pub(crate) fn endpoint(&self) -> Option<&Endpoint> {
        match &self.kind {
            Kind::Addr(endpoint) => Some(endpoint),
            Kind::Zk => None,
        }
    }
}
