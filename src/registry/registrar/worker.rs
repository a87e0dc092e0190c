//! The registrar thread: owns the ZooKeeper session, creates the provider's
//! nodes (our layout and, if asked, the seed's), re-creates them after a new
//! session, takes over a seed node another provider frees, and deletes
//! them on deregistration.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zookeeper_client as zk;

use super::{Command, Created, Shared, CREATE_ATTEMPTS};
use crate::net::tls::TlsMode;
use crate::registry::layout::{self, ProviderInfo};
use crate::registry::session::{self, Backoff, Settings};
use crate::registry::RegistryError;
use crate::service::ServiceInfo;

/// The registrar thread's state.
pub(super) struct Worker {
    settings: Settings,
    addr: SocketAddr,
    services: Vec<ServiceInfo>,
    start_time_ms: u64,
    /// Published so consumers refuse oversized calls before sending.
    pub(super) max_frame: usize,
    /// TLS on the provider's port, published so consumers connect right.
    pub(super) tls: TlsMode,
    shared: Arc<Shared>,
    client: Option<zk::Client>,
    state: Option<zk::StateWatcher>,
    backoff: Backoff,
    retry_at: Option<Instant>,
    deregistered: bool,
    /// Bumped per session, so events from an old session's watches are ignored.
    generation: u64,
    /// Seed-layout nodes held by another provider that we watch to take over.
    waiting_seed: HashSet<String>,
    freed_tx: mpsc::UnboundedSender<(u64, String)>,
    freed_rx: mpsc::UnboundedReceiver<(u64, String)>,
}

impl Worker {
    pub(super) fn new(
        settings: Settings,
        addr: SocketAddr,
        services: Vec<ServiceInfo>,
        shared: Arc<Shared>,
    ) -> Worker {
        let (freed_tx, freed_rx) = mpsc::unbounded_channel();
        let start_time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Worker {
            settings,
            addr,
            services,
            start_time_ms,
            max_frame: crate::protocol::mprpc::DEFAULT_MAX_FRAME,
            tls: TlsMode::Off,
            shared,
            client: None,
            state: None,
            backoff: Backoff::new(),
            retry_at: None,
            deregistered: false,
            generation: 0,
            waiting_seed: HashSet::new(),
            freed_tx,
            freed_rx,
        }
    }

    pub(super) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        first: std::sync::mpsc::Sender<Result<(), RegistryError>>,
    ) {
        let first_result = self.connect_and_register().await;
        let started = first_result.is_ok();
        let _ = first.send(first_result);
        if started {
            info!(addr = %self.addr, "registered in ZooKeeper {}", self.settings.connect);
            self.serve(&mut commands).await;
        }
        if let Some(client) = self.client.take() {
            session::close(client).await;
        }
        self.shared.registered.store(false, Ordering::Release);
    }

    async fn serve(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) {
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Deregister(ack)) => {
                        self.deregister().await;
                        let _ = ack.send(());
                    }
                    Some(Command::Shutdown) | None => return,
                },
                state = session::next_state(&mut self.state) => self.on_state(state),
                () = session::sleep_until(self.retry_at) => self.retry().await,
                Some((generation, path)) = self.freed_rx.recv() => {
                    if generation == self.generation && !self.deregistered {
                        self.waiting_seed.remove(&path);
                        if let Err(e) = self.claim_seed_node(&path).await {
                            warn!("{e}");
                        }
                    }
                }
            }
        }
    }

    fn on_state(&mut self, state: zk::SessionState) {
        use zk::SessionState::*;
        *self.shared.state.lock() = format!("{state:?}");
        match state {
            Expired | Closed | AuthFailed => {
                warn!(
                    "ZooKeeper {}: session {state}; registering again with a new session",
                    self.settings.connect
                );
                self.shared.registered.store(false, Ordering::Release);
                self.shared.nodes.lock().clear();
                self.client = None;
                self.state = None;
                if !self.deregistered {
                    self.retry_at = Some(Instant::now());
                }
            }
            Disconnected => warn!(
                "ZooKeeper {}: connection lost; the session (and our nodes) live on while the client reconnects",
                self.settings.connect
            ),
            SyncConnected | ConnectedReadOnly => {
                info!("ZooKeeper {}: connected ({state})", self.settings.connect)
            }
        }
    }

    async fn retry(&mut self) {
        self.retry_at = None;
        if self.deregistered {
            return;
        }
        match self.connect_and_register().await {
            Ok(()) => {
                self.backoff.reset();
                info!(addr = %self.addr, "registered in ZooKeeper {} again", self.settings.connect);
            }
            Err(e) => {
                let delay = self.backoff.next_delay();
                warn!("{e}; retrying in {delay:?}");
                self.retry_at = Some(Instant::now() + delay);
            }
        }
    }

    /// Opens a session if we have no live one, then writes every node.
    async fn connect_and_register(&mut self) -> Result<(), RegistryError> {
        let alive = self
            .client
            .as_ref()
            .is_some_and(|c| !c.state().is_terminated());
        if !alive {
            self.client = None;
            self.state = None;
            let client = self.settings.connect().await?;
            info!(session = %client.session_id(), "ZooKeeper {}: session opened", self.settings.connect);
            *self.shared.state.lock() = format!("{:?}", zk::SessionState::SyncConnected);
            self.shared.nodes.lock().clear();
            self.state = Some(client.state_watcher());
            *self.shared.session.lock() = Some(client.session().clone());
            self.generation += 1;
            self.waiting_seed.clear();
            self.client = Some(client);
        }
        self.register().await?;
        self.shared.registered.store(true, Ordering::Release);
        Ok(())
    }

    fn client(&self) -> Result<zk::Client, RegistryError> {
        self.client
            .clone()
            .ok_or_else(|| self.settings.error("cannot register", "no session"))
    }

    async fn register(&mut self) -> Result<(), RegistryError> {
        let client = self.client()?;
        for ServiceInfo {
            name: service,
            methods,
        } in self.services.clone()
        {
            self.mkdirs(
                &client,
                &layout::providers_path(&self.settings.root, service),
            )
            .await?;
            let path = layout::provider_path(&self.settings.root, service, self.addr);
            let data = ProviderInfo::local(
                self.addr,
                methods,
                self.start_time_ms,
                self.max_frame,
                self.tls,
            )
            .encode();
            self.create_ours(&client, &path, data.as_bytes()).await?;
            if self.settings.seed_layout {
                self.mkdirs(&client, &layout::seed_service_path(service))
                    .await?;
                for method in methods {
                    self.claim_seed_node(&layout::seed_method_path(service, method))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Creates persistent `path` and its parents; existing nodes are fine.
    async fn mkdirs(&self, client: &zk::Client, path: &str) -> Result<(), RegistryError> {
        if path.is_empty() || path == "/" {
            return Ok(());
        }
        let options = zk::CreateMode::Persistent.with_acls(self.settings.acls());
        self.settings
            .bounded(client.mkdir(path, &options))
            .await
            .map_err(|e| self.settings.error("cannot create", e).at(path))
    }

    /// Creates our ephemeral node at `path`, replacing a stale one (left by
    /// an earlier session of a provider at the same address).
    async fn create_ours(
        &self,
        client: &zk::Client,
        path: &str,
        data: &[u8],
    ) -> Result<(), RegistryError> {
        match self.create_ephemeral(client, path, data, |_| true).await? {
            Created::Ours => Ok(()),
            Created::Held { .. } | Created::Contended => Err(self
                .settings
                .error("cannot create", zk::Error::NodeExists)
                .at(path)),
        }
    }

    /// Writes the seed's method node `path` ("ip:port", marked as ours) if it is free; if
    /// another provider holds it, leaves it and watches it to take over.
    async fn claim_seed_node(&mut self, path: &str) -> Result<(), RegistryError> {
        let client = self.client()?;
        let ours = layout::encode_seed_node(self.addr);
        let addr = self.addr;
        // Ours, from an earlier session that has not expired yet.
        let stale = |data: &[u8]| layout::parse_seed_addr(data) == Some(addr);
        for _ in 0..CREATE_ATTEMPTS {
            let data = match self.create_ephemeral(&client, path, &ours, stale).await? {
                Created::Ours | Created::Contended => return Ok(()),
                Created::Held { data } => data,
            };
            debug!(
                "seed-layout node {path} is held by {}; leaving it",
                String::from_utf8_lossy(&data)
            );
            if self.waiting_seed.contains(path) {
                return Ok(());
            }
            match self
                .settings
                .bounded(client.check_and_watch_stat(path))
                .await
            {
                Ok((Some(_), watcher)) => {
                    self.watch_seed_node(path, watcher);
                    return Ok(());
                }
                Ok((None, _)) => continue, // freed meanwhile: try again
                Err(e) => return Err(self.settings.error("cannot watch", e).at(path)),
            }
        }
        Ok(())
    }

    /// Creates the ephemeral node `path` holding `data` for this session.
    /// A node already there is ours when our session owns it; one whose
    /// data `stale` says an earlier session of ours left is deleted and the
    /// create tried again; any other is another provider's.
    async fn create_ephemeral(
        &self,
        client: &zk::Client,
        path: &str,
        data: &[u8],
        stale: impl Fn(&[u8]) -> bool,
    ) -> Result<Created, RegistryError> {
        let options = zk::CreateMode::Ephemeral.with_acls(self.settings.acls());
        let session = client.session_id().0;
        let fail = |e: zk::Error| self.settings.error("cannot create", e).at(path);
        for _ in 0..CREATE_ATTEMPTS {
            match self
                .settings
                .bounded(client.create(path, data, &options))
                .await
            {
                Ok(_) => return self.holds(path).map(|()| Created::Ours),
                Err(zk::Error::NodeExists) => {}
                Err(e) => return Err(fail(e)),
            }
            let (found, stat) = match self.settings.bounded(client.get_data(path)).await {
                Ok(found) => found,
                Err(zk::Error::NoNode) => continue,
                Err(e) => return Err(fail(e)),
            };
            if stat.ephemeral_owner == session {
                return self.holds(path).map(|()| Created::Ours);
            }
            if !stale(&found) {
                return Ok(Created::Held { data: found });
            }
            info!(
                "replacing stale node {path} of session {:#x}",
                stat.ephemeral_owner
            );
            match self
                .settings
                .bounded(client.delete(path, Some(stat.version)))
                .await
            {
                Ok(()) | Err(zk::Error::NoNode | zk::Error::BadVersion) => {}
                Err(e) => return Err(self.settings.error("cannot delete stale", e).at(path)),
            }
        }
        Ok(Created::Contended)
    }

    /// Notes that our session holds node `path` (for the admin pages).
    fn holds(&self, path: &str) -> Result<(), RegistryError> {
        self.shared.nodes.lock().insert(path.to_owned());
        Ok(())
    }

    fn watch_seed_node(&mut self, path: &str, watcher: zk::OneshotWatcher) {
        self.waiting_seed.insert(path.to_owned());
        let (generation, path, tx) = (self.generation, path.to_owned(), self.freed_tx.clone());
        tokio::spawn(async move {
            let event = watcher.changed().await;
            if event.event_type != zk::EventType::Session {
                let _ = tx.send((generation, path));
            }
        });
    }

    /// Deletes our nodes, closes the session and stops re-registering.
    async fn deregister(&mut self) {
        self.deregistered = true;
        self.retry_at = None;
        self.generation += 1;
        self.shared.registered.store(false, Ordering::Release);
        self.shared.nodes.lock().clear();
        self.state = None;
        let Some(client) = self.client.take() else {
            return;
        };
        let session = client.session_id().0;
        for ServiceInfo {
            name: service,
            methods,
        } in self.services.clone()
        {
            let path = layout::provider_path(&self.settings.root, service, self.addr);
            self.delete_if_owned(&client, &path, session).await;
            if self.settings.seed_layout {
                for method in methods {
                    let path = layout::seed_method_path(service, method);
                    self.delete_if_owned(&client, &path, session).await;
                }
            }
        }
        session::close(client).await;
        info!(addr = %self.addr, "deregistered from ZooKeeper {}", self.settings.connect);
    }

    async fn delete_if_owned(&self, client: &zk::Client, path: &str, session: i64) {
        let result = match self.settings.bounded(client.get_data(path)).await {
            Ok((_, stat)) if stat.ephemeral_owner == session => {
                self.settings
                    .bounded(client.delete(path, Some(stat.version)))
                    .await
            }
            Ok(_) | Err(zk::Error::NoNode) => Ok(()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) | Err(zk::Error::NoNode) => {}
            // Closing the session removes it anyway.
            Err(e) => debug!("cannot delete {path}: {e}"),
        }
    }
}
