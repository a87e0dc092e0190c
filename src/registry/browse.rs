//! A one-shot read of the whole registry, for operators' tools (`mprpc ls`):
//! every service, the providers registered under it with their node data,
//! and the seed's `/<Service>/<Method>` nodes.
//!
//! Discovery ([`super::ZkDiscover`]) follows the services a consumer calls,
//! watched and cached; this reads everything once, without watches, on a
//! session of its own that it closes before returning. Node data is
//! untrusted: what does not parse is left out, never a panic.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use zookeeper_client as zk;

use super::layout::{self, ProviderInfo};
use super::session::{self, Settings};
use super::RegistryError;
use crate::app::config::Config;

/// One service as the registry shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceListing {
    /// The service's registered name.
    pub name: String,
    /// Its providers in our layout, by address.
    pub providers: Vec<ProviderInfo>,
    /// Its nodes in the seed's layout, by method: our providers write them
    /// too (`zk_seed_layout`); one whose address is no provider above
    /// belongs to a seed-format (C++) provider.
    pub seed_methods: Vec<SeedMethod>,
}

impl ServiceListing {
    /// Addresses named only by the seed's layout: seed-format providers.
    pub fn seed_providers(&self) -> Vec<SocketAddr> {
        let mut addrs: Vec<SocketAddr> = self
            .seed_methods
            .iter()
            .map(|m| m.addr)
            .filter(|a| !self.providers.iter().any(|p| p.addr == *a))
            .collect();
        addrs.sort();
        addrs.dedup();
        addrs
    }
}

/// A seed-layout method node, `/<Service>/<Method>` holding `ip:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedMethod {
    /// The method's name.
    pub method: String,
    /// The provider the node names.
    pub addr: SocketAddr,
}

/// Reads every service of the registry `config` names, sorted by name.
pub fn browse(config: &Config) -> Result<Vec<ServiceListing>, RegistryError> {
    let settings = Settings::from_config(config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| settings.error("cannot start a runtime", e))?;
    runtime.block_on(async {
        let client = settings.connect().await?;
        let listing = read_all(&settings, &client).await;
        session::close(client).await;
        listing
    })
}

async fn read_all(
    settings: &Settings,
    client: &zk::Client,
) -> Result<Vec<ServiceListing>, RegistryError> {
    let mut services: BTreeMap<String, ServiceListing> = BTreeMap::new();
    fn entry<'a>(
        services: &'a mut BTreeMap<String, ServiceListing>,
        name: &str,
    ) -> &'a mut ServiceListing {
        services
            .entry(name.to_owned())
            .or_insert_with(|| ServiceListing {
                name: name.to_owned(),
                providers: Vec::new(),
                seed_methods: Vec::new(),
            })
    }
    for name in children(settings, client, &layout::services_path(&settings.root)).await? {
        let dir = layout::providers_path(&settings.root, &name);
        let mut providers = Vec::new();
        for node in children(settings, client, &dir).await? {
            let Some(data) = data(settings, client, &format!("{dir}/{node}")).await? else {
                continue; // gone since it was listed
            };
            providers.extend(ProviderInfo::parse(&node, &data));
        }
        providers.sort_by_key(|p| p.addr);
        entry(&mut services, &name).providers = providers;
    }
    let our_root = settings
        .root
        .trim_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    for name in children(settings, client, "/").await? {
        if name == "zookeeper" || name == our_root {
            continue;
        }
        let seed_methods = read_seed_service(settings, client, &name).await?;
        if !seed_methods.is_empty() {
            // (no address below it: not a service, something else shares this ZooKeeper)
            entry(&mut services, &name).seed_methods = seed_methods;
        }
    }
    Ok(services.into_values().collect())
}

/// The seed's method nodes under `/<service>` that hold an address.
async fn read_seed_service(
    settings: &Settings,
    client: &zk::Client,
    service: &str,
) -> Result<Vec<SeedMethod>, RegistryError> {
    let mut methods = Vec::new();
    for method in children(settings, client, &layout::seed_service_path(service)).await? {
        let path = layout::seed_method_path(service, &method);
        let addr = data(settings, client, &path)
            .await?
            .and_then(|d| layout::parse_seed_addr(&d));
        if let Some(addr) = addr {
            methods.push(SeedMethod { method, addr });
        }
    }
    methods.sort_by(|a, b| a.method.cmp(&b.method));
    Ok(methods)
}

/// Children of `path`, sorted; none if it does not exist.
async fn children(
    settings: &Settings,
    client: &zk::Client,
    path: &str,
) -> Result<Vec<String>, RegistryError> {
    match settings.bounded(client.list_children(path)).await {
        Ok(mut names) => {
            names.sort();
            Ok(names)
        }
        Err(zk::Error::NoNode) => Ok(Vec::new()),
        Err(e) => Err(settings.error("cannot list", e).at(path)),
    }
}

/// The data of `path`; `None` if it vanished meanwhile.
async fn data(
    settings: &Settings,
    client: &zk::Client,
    path: &str,
) -> Result<Option<Vec<u8>>, RegistryError> {
    match settings.bounded(client.get_data(path)).await {
        Ok((data, _)) => Ok(Some(data)),
        Err(zk::Error::NoNode) => Ok(None),
        Err(e) => Err(settings.error("cannot read", e).at(path)),
    }
}
