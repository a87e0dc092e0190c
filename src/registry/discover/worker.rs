//! The discovery thread: owns the ZooKeeper session, answers a first
//! lookup by fetching the service's providers and arming a watch, fetches
//! again when a watch fires (reading only provider nodes it has not read),
//! and after a new session fetches every known service again.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zookeeper_client as zk;

use super::{Cache, Command, Listing};
use crate::discovery::{Endpoint, WireFormat};
use crate::registry::layout::{self, ProviderInfo};
use crate::registry::node_cache::NodeCache;
use crate::registry::session::{self, Backoff, Settings};
use crate::registry::RegistryError;

/// A listing of children with the parent's `cversion` (`None`: no parent).
struct Listed {
    names: Vec<String>,
    cversion: Option<i32>,
}

impl Listed {
    fn at(names: Vec<String>, stat: &zk::Stat) -> Listed {
        Listed {
            names,
            cversion: Some(stat.cversion),
        }
    }

    fn none() -> Listed {
        Listed {
            names: Vec::new(),
            cversion: None,
        }
    }
}

/// A fired watch: which service to fetch again.
struct Fired {
    generation: u64,
    service: String,
    path: String,
    event: zk::WatchedEvent,
}

/// The discovery thread's state.
pub(super) struct Worker {
    settings: Settings,
    cache: Arc<Cache>,
    session_info: Arc<Mutex<Option<zk::SessionInfo>>>,
    client: Option<zk::Client>,
    state: Option<zk::StateWatcher>,
    /// Services looked up so far (fetched again after a new session).
    services: HashSet<String>,
    /// Services whose last fetch failed; retried at `retry_at`.
    stale: HashSet<String>,
    /// Paths with a watch pending in the current session, so re-fetching
    /// never stacks up duplicate watches.
    armed: HashSet<String>,
    /// Provider nodes already read, so a changed list reads only newcomers.
    nodes: NodeCache,
    generation: u64,
    backoff: Backoff,
    reconnect_at: Option<Instant>,
    retry_at: Option<Instant>,
    fired_tx: mpsc::UnboundedSender<Fired>,
    fired_rx: mpsc::UnboundedReceiver<Fired>,
}

impl Worker {
    pub(super) fn new(
        settings: Settings,
        cache: Arc<Cache>,
        session_info: Arc<Mutex<Option<zk::SessionInfo>>>,
    ) -> Worker {
        let (fired_tx, fired_rx) = mpsc::unbounded_channel();
        Worker {
            settings,
            cache,
            session_info,
            client: None,
            state: None,
            services: HashSet::new(),
            stale: HashSet::new(),
            armed: HashSet::new(),
            nodes: NodeCache::default(),
            generation: 0,
            backoff: Backoff::new(),
            reconnect_at: None,
            retry_at: None,
            fired_tx,
            fired_rx,
        }
    }

    pub(super) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        first: std::sync::mpsc::Sender<Result<(), RegistryError>>,
    ) {
        let first_result = self.open_session().await;
        let started = first_result.is_ok();
        let _ = first.send(first_result);
        if started {
            self.serve(&mut commands).await;
        }
        if let Some(client) = self.client.take() {
            session::close(client).await;
        }
    }

    async fn serve(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) {
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Resolve { service, reply }) => {
                        let answer = self.resolve(service).await;
                        let _ = reply.try_send(answer);
                    }
                    Some(Command::Shutdown) | None => return,
                },
                state = session::next_state(&mut self.state) => self.on_state(state).await,
                () = session::sleep_until(self.reconnect_at) => self.reconnect().await,
                () = session::sleep_until(self.retry_at) => self.retry_stale().await,
                Some(fired) = self.fired_rx.recv() => self.on_fired(fired).await,
            }
        }
    }

    async fn open_session(&mut self) -> Result<(), RegistryError> {
        let client = self.settings.connect().await?;
        info!(session = %client.session_id(), "ZooKeeper {}: discovery session opened", self.settings.connect);
        self.generation += 1;
        self.armed.clear();
        self.nodes.clear();
        self.state = Some(client.state_watcher());
        *self.session_info.lock() = Some(client.session().clone());
        self.client = Some(client);
        Ok(())
    }

    async fn resolve(&mut self, service: String) -> Result<Listing, String> {
        if let Some(listing) = self.cache.lists.read().get(&service) {
            return Ok(listing.clone());
        }
        self.services.insert(service.clone());
        if self.client.is_none() {
            self.stale.insert(service);
            return Err("no ZooKeeper session (reconnecting)".into());
        }
        match self.fetch(&service).await {
            Ok(listing) => Ok(self.publish(&service, listing)),
            Err(e) => {
                self.mark_stale(service);
                Err(e.to_string())
            }
        }
    }

    async fn on_state(&mut self, state: zk::SessionState) {
        use zk::SessionState::*;
        match state {
            Expired | Closed | AuthFailed => {
                warn!(
                    "ZooKeeper {}: discovery session {state}; serving cached providers while opening a new session",
                    self.settings.connect
                );
                self.client = None;
                self.state = None;
                self.armed.clear();
                self.generation += 1;
                self.reconnect_at = Some(Instant::now());
            }
            Disconnected => warn!(
                "ZooKeeper {}: connection lost; serving cached providers while reconnecting",
                self.settings.connect
            ),
            SyncConnected | ConnectedReadOnly => {
                info!(
                    "ZooKeeper {}: discovery reconnected ({state})",
                    self.settings.connect
                );
                // Watches are restored by the server; re-read anyway in case
                // an event fell into the gap.
                self.refresh_all().await;
            }
        }
    }

    async fn reconnect(&mut self) {
        self.reconnect_at = None;
        match self.open_session().await {
            Ok(()) => {
                self.backoff.reset();
                self.refresh_all().await;
            }
            Err(e) => {
                let delay = self.backoff.next_delay();
                warn!("{e}; serving cached providers, retrying in {delay:?}");
                self.reconnect_at = Some(Instant::now() + delay);
            }
        }
    }

    async fn retry_stale(&mut self) {
        self.retry_at = None;
        if self.client.is_none() {
            return;
        }
        for service in std::mem::take(&mut self.stale) {
            self.refresh(service).await;
        }
    }

    async fn refresh_all(&mut self) {
        let services: Vec<String> = self.services.iter().cloned().collect();
        for service in services {
            self.refresh(service).await;
        }
    }

    async fn on_fired(&mut self, fired: Fired) {
        if fired.generation != self.generation {
            return;
        }
        self.armed.remove(&fired.path);
        if fired.event.event_type == zk::EventType::Session {
            return;
        }
        debug!(
            "watch fired on {}: {:?}",
            fired.path, fired.event.event_type
        );
        self.refresh(fired.service).await;
    }

    /// Fetches `service` again and swaps its cached list.
    async fn refresh(&mut self, service: String) {
        match self.fetch(&service).await {
            Ok(listing) => {
                self.stale.remove(&service);
                self.publish(&service, listing);
            }
            Err(e) => {
                warn!("{e}; keeping the cached providers of '{service}'");
                self.mark_stale(service);
            }
        }
    }

    fn mark_stale(&mut self, service: String) {
        self.stale.insert(service);
        if self.retry_at.is_none() {
            self.retry_at = Some(Instant::now() + self.backoff.next_delay());
        }
    }

    fn publish(&self, service: &str, listing: Listing) -> Listing {
        let mut cache = self.cache.lists.write();
        if cache.get(service) != Some(&listing) {
            info!("providers of '{service}': {}", listing.describe());
            cache.insert(service.to_owned(), listing.clone());
            // After the new listing is in: a client that sees the new
            // number asks again and finds it.
            self.cache.generation.fetch_add(1, Ordering::Release);
        }
        listing
    }

    /// Reads the providers of `service` (our layout, else the seed's),
    /// arming watches on every path read.
    async fn fetch(&mut self, service: &str) -> Result<Listing, RegistryError> {
        let client = self
            .client
            .clone()
            .ok_or_else(|| self.settings.error("cannot fetch providers", "no session"))?;
        let path = layout::providers_path(&self.settings.root, service);
        let listed = self.children_versioned(&client, service, &path).await?;
        let ours = self.read_providers(&client, &path, listed).await?;
        if !ours.is_empty() {
            return Ok(Listing::ours(ours));
        }
        let seed_path = layout::seed_service_path(service);
        let methods = self.children(&client, service, &seed_path).await?;
        let nodes = self.read_seed_layout(&client, service, &methods).await?;
        Ok(Listing::seed(nodes))
    }

    /// Children of `path` (none if it does not exist), watched unless a
    /// watch is already pending there.
    async fn children(
        &mut self,
        client: &zk::Client,
        service: &str,
        path: &str,
    ) -> Result<Vec<String>, RegistryError> {
        Ok(self.children_versioned(client, service, path).await?.names)
    }

    /// [`Worker::children`] with the parent's `cversion` (`None` if the
    /// parent does not exist).
    async fn children_versioned(
        &mut self,
        client: &zk::Client,
        service: &str,
        path: &str,
    ) -> Result<Listed, RegistryError> {
        let fail = |e: zk::Error| self.settings.error("cannot list", e).at(path);
        if self.armed.contains(path) {
            return match self.settings.bounded(client.get_children(path)).await {
                Ok((names, stat)) => Ok(Listed::at(names, &stat)),
                Err(zk::Error::NoNode) => Ok(Listed::none()),
                Err(e) => Err(fail(e)),
            };
        }
        for _ in 0..3 {
            match self
                .settings
                .bounded(client.get_and_watch_children(path))
                .await
            {
                Ok((names, stat, watcher)) => {
                    self.arm(service, path, watcher);
                    return Ok(Listed::at(names, &stat));
                }
                Err(zk::Error::NoNode) => {}
                Err(e) => return Err(fail(e)),
            }
            // No node yet: watch for its creation instead.
            match self
                .settings
                .bounded(client.check_and_watch_stat(path))
                .await
            {
                Ok((None, watcher)) => {
                    self.arm(service, path, watcher);
                    return Ok(Listed::none());
                }
                Ok((Some(_), _)) => continue, // created meanwhile: list it
                Err(e) => return Err(fail(e)),
            }
        }
        Err(fail(zk::Error::RuntimeInconsistent))
    }

    fn arm(&mut self, service: &str, path: &str, watcher: zk::OneshotWatcher) {
        self.armed.insert(path.to_owned());
        let tx = self.fired_tx.clone();
        let (generation, service, path) = (self.generation, service.to_owned(), path.to_owned());
        tokio::spawn(async move {
            let event = watcher.changed().await;
            let _ = tx.send(Fired {
                generation,
                service,
                path,
                event,
            });
        });
    }

    /// The provider nodes under `path`: those read before from the cache,
    /// the others read now (requests pipelined).
    async fn read_providers(
        &mut self,
        client: &zk::Client,
        path: &str,
        listed: Listed,
    ) -> Result<Vec<Endpoint>, RegistryError> {
        let Some(cversion) = listed.cversion else {
            return Ok(Vec::new());
        };
        let plan = self.nodes.plan(path, &listed.names, cversion);
        let reads: Vec<_> = plan
            .read
            .iter()
            .map(|name| client.get_data(&format!("{path}/{name}")))
            .collect();
        let mut known = plan.reuse;
        for (name, read) in plan.read.into_iter().zip(reads) {
            let data = match self.settings.bounded(read).await {
                Ok((data, _)) => data,
                Err(zk::Error::NoNode) => continue, // gone meanwhile; its watch fires
                Err(e) => {
                    return Err(self
                        .settings
                        .error("cannot read", e)
                        .at(&format!("{path}/{name}")))
                }
            };
            let endpoint = ProviderInfo::parse(&name, &data).map(|info| Endpoint {
                addr: info.addr,
                weight: info.weight,
                format: WireFormat::Mprpc,
                max_frame: info.max_frame,
                tls: info.tls,
            });
            if endpoint.is_none() {
                debug!("skipping provider node {path}/{name}: not an ip:port");
            }
            known.push((name, endpoint));
        }
        let mut endpoints: Vec<Endpoint> = known.iter().filter_map(|(_, e)| e.clone()).collect();
        endpoints.sort_by_key(|e| e.addr);
        self.nodes.store(path, cversion, known);
        Ok(endpoints)
    }

    /// Reads the seed's `/<service>/<method>` nodes: each method's
    /// `ip:port`, leaving out the nodes our own providers wrote.
    async fn read_seed_layout(
        &self,
        client: &zk::Client,
        service: &str,
        methods: &[String],
    ) -> Result<BTreeMap<String, SocketAddr>, RegistryError> {
        let paths: Vec<String> = methods
            .iter()
            .map(|m| layout::seed_method_path(service, m))
            .collect();
        let reads: Vec<_> = paths.iter().map(|p| client.get_data(p)).collect();
        let mut nodes = BTreeMap::new();
        for ((method, path), read) in methods.iter().zip(&paths).zip(reads) {
            let data = match self.settings.bounded(read).await {
                Ok((data, _)) => data,
                Err(zk::Error::NoNode) => continue,
                Err(e) => return Err(self.settings.error("cannot read", e).at(path)),
            };
            match layout::parse_seed_node(&data) {
                Some(node) if node.ours => info!(
                    "seed-layout node {path} is an mprpc provider's ({}): not calling it in \
                     the seed's format; waiting for its node under {}",
                    node.addr,
                    layout::providers_path(&self.settings.root, service)
                ),
                Some(node) => {
                    nodes.insert(method.clone(), node.addr);
                }
                None => debug!("skipping seed-layout node {path}: data is not ip:port"),
            }
        }
        Ok(nodes)
    }
}
