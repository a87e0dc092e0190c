//! The consumer side: a [`Discover`] answering from a cache that ZooKeeper
//! watches keep current.
//!
//! A lookup reads the cache under a read lock and clones an `Arc`; a
//! channel does not even ask while the cache's generation (bumped after
//! each change, see `Discover::generation`) stays put. Only the
//! first lookup of a service goes to the registry thread, which fetches the
//! providers, arms a watch and fills the cache; from then on the thread
//! re-fetches whenever a watch fires, reading only the provider nodes it
//! has not read yet (`node_cache`: one change costs each consumer one
//! listing, not one read per provider). When the session is lost, the cache
//! keeps serving the last lists; after a new session every known service is
//! fetched again and its watches re-armed.
//!
//! A service with no provider in our layout falls back to the seed's layout
//! (`/<Service>/<Method>` holding `ip:port`), looked up per method as the
//! seed's consumer does; those endpoints speak the seed's wire format. A
//! seed-layout node that one of our providers wrote (it carries our mark) is
//! never used: that provider is called in our format through our layout.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;
use zookeeper_client as zk;

use super::layout::{self, ProviderInfo};
use super::session::{self, Settings};
use super::RegistryError;
use crate::app::config::Config;
use crate::call::status::Status;
use crate::discovery::{Discover, Endpoint, WireFormat};
use crate::net::tls::TlsMode;

mod worker;

use worker::Worker;

/// The provider lists, and how many times they changed (see
/// `Discover::generation`).
#[derive(Default)]
struct Cache {
    lists: RwLock<HashMap<String, Listing>>,
    generation: AtomicU64,
}

/// A service's providers as cached: ours, or the seed layout's per method.
#[derive(Debug, Clone, PartialEq)]
struct Listing {
    /// Every provider (from the seed's layout: each address once).
    all: Arc<[Endpoint]>,
    /// From the seed's layout only: each method node's provider.
    seed_methods: Option<Arc<BTreeMap<String, Arc<[Endpoint]>>>>,
}

impl Listing {
    fn ours(endpoints: Vec<Endpoint>) -> Listing {
        Listing {
            all: endpoints.into(),
            seed_methods: None,
        }
    }

    /// Seed-format endpoints from the `method → ip:port` nodes found.
    fn seed(nodes: BTreeMap<String, SocketAddr>) -> Listing {
        if nodes.is_empty() {
            return Listing::ours(Vec::new());
        }
        let endpoint = |addr| Endpoint {
            addr,
            weight: ProviderInfo::DEFAULT_WEIGHT,
            format: WireFormat::Seed,
            max_frame: None,
            tls: TlsMode::Off,
        };
        let mut addrs: Vec<SocketAddr> = nodes.values().copied().collect();
        addrs.sort();
        addrs.dedup();
        let by_method = nodes
            .into_iter()
            .map(|(method, addr)| (method, Arc::from([endpoint(addr)])))
            .collect();
        Listing {
            all: addrs.into_iter().map(endpoint).collect(),
            seed_methods: Some(Arc::new(by_method)),
        }
    }

    /// What the discovery log says about the list, naming the wire format
    /// each endpoint will be called in.
    fn describe(&self) -> String {
        match &self.seed_methods {
            None => {
                let addrs: Vec<SocketAddr> = self.all.iter().map(|e| e.addr).collect();
                format!("{addrs:?}, called in mprpc's format")
            }
            Some(methods) => {
                let nodes: Vec<String> = methods
                    .iter()
                    .map(|(method, e)| format!("{method} at {}", e[0].addr))
                    .collect();
                format!(
                    "none of ours; from the seed's layout: {}, called in the seed's format \
                     (no metadata, deadline, trace id or token)",
                    nodes.join(", ")
                )
            }
        }
    }
}

/// Provider lists from ZooKeeper, cached and watched.
pub struct ZkDiscover {
    cache: Arc<Cache>,
    commands: mpsc::UnboundedSender<Command>,
    thread: Mutex<Option<JoinHandle<()>>>,
    session: Arc<Mutex<Option<zk::SessionInfo>>>,
    lookup_timeout: Duration,
    connect: String,
    root: String,
}

impl std::fmt::Debug for ZkDiscover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkDiscover")
            .field("connect", &self.connect)
            .field("lookup_timeout", &self.lookup_timeout)
            .field("cached_services", &self.cache.lists.read().len())
            .finish_non_exhaustive()
    }
}

enum Command {
    Resolve {
        service: String,
        reply: std::sync::mpsc::SyncSender<Result<Listing, String>>,
    },
    Shutdown,
}

impl ZkDiscover {
    /// Opens a session; fails (without panicking) if ZooKeeper cannot be
    /// reached in time.
    pub fn connect(config: &Config) -> Result<Arc<ZkDiscover>, RegistryError> {
        let settings = Settings::from_config(config);
        let cache: Arc<Cache> = Arc::default();
        let session_info = Arc::new(Mutex::new(None));
        let (commands, receiver) = mpsc::unbounded_channel();
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let worker = Worker::new(settings.clone(), cache.clone(), session_info.clone());
        let thread =
            session::spawn_thread("mprpc-zk-discover", move || worker.run(receiver, first_tx))
                .map_err(|e| settings.error("cannot start the discovery thread", e))?;
        match first_rx.recv_timeout(settings.op_timeout * 2 + Duration::from_secs(1)) {
            Ok(Ok(())) => Ok(Arc::new(ZkDiscover {
                cache,
                commands,
                thread: Mutex::new(Some(thread)),
                session: session_info,
                lookup_timeout: settings.op_timeout,
                connect: settings.connect,
                root: settings.root,
            })),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = commands.send(Command::Shutdown);
                Err(settings.error("cannot open a session", "timed out"))
            }
        }
    }

    /// The current session (for tests that force a session expiry).
    #[doc(hidden)]
    pub fn zk_session(&self) -> Option<zk::SessionInfo> {
        self.session.lock().clone()
    }

    /// Asks the registry thread to fetch `service` and start watching it.
    fn resolve(&self, service: &str) -> Result<Listing, Status> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let command = Command::Resolve {
            service: service.to_owned(),
            reply,
        };
        let unavailable = |cause: &str| {
            Status::unavailable(format!(
                "ZooKeeper {}: cannot resolve service '{service}': {cause}",
                self.connect
            ))
        };
        if self.commands.send(command).is_err() {
            return Err(unavailable("the discovery thread has stopped"));
        }
        match answer.recv_timeout(self.lookup_timeout) {
            Ok(Ok(listing)) => Ok(listing),
            Ok(Err(cause)) => Err(unavailable(&cause)),
            Err(_) => Err(unavailable("no answer in time")),
        }
    }
}

impl ZkDiscover {
    fn listing(&self, service: &str) -> Result<Listing, Status> {
        if let Some(listing) = self.cache.lists.read().get(service) {
            return Ok(listing.clone());
        }
        self.resolve(service)
    }

    /// "No provider" for `service`.`method`, naming every place looked at.
    fn no_provider(&self, service: &str, method: &str, listing: &Listing) -> Status {
        let seed_path = layout::seed_method_path(service, method);
        let seed_has = match &listing.seed_methods {
            Some(methods) => {
                let names: Vec<&str> = methods.keys().map(String::as_str).collect();
                format!(" (the seed's layout has only {})", names.join(", "))
            }
            None => String::new(),
        };
        Status::unavailable(format!(
            "no provider of {service}.{method}: ZooKeeper {} has none under {} \
             and no seed-layout node {seed_path}{seed_has}",
            self.connect,
            layout::providers_path(&self.root, service),
        ))
    }
}

impl Discover for ZkDiscover {
    fn providers(&self, service: &str) -> Result<Arc<[Endpoint]>, Status> {
        self.listing(service).map(|listing| listing.all)
    }

    /// Our providers of `service`; without any, the seed-layout node
    /// `/<service>/<method>`'s provider, as the seed's consumer looks it up.
    fn method_providers(&self, service: &str, method: &str) -> Result<Arc<[Endpoint]>, Status> {
        let listing = self.listing(service)?;
        let found = match &listing.seed_methods {
            None => Some(listing.all.clone()).filter(|all| !all.is_empty()),
            Some(methods) => methods.get(method).cloned(),
        };
        found.ok_or_else(|| self.no_provider(service, method, &listing))
    }

    /// Moves each time a watch brings a changed listing (or a first one).
    fn generation(&self) -> Option<u64> {
        Some(self.cache.generation.load(Ordering::Acquire))
    }
}

impl Drop for ZkDiscover {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}
