//! The provider side: registers a provider's services and keeps them
//! registered across connection loss and session expiry.
//!
//! All ZooKeeper work happens on the registrar's own thread; the provider's
//! threads only send it commands. While ZooKeeper is unreachable the worker
//! retries with back-off and the provider keeps serving.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use zookeeper_client as zk;

use super::session::{self, Settings};
use super::RegistryError;
use crate::app::config::Config;
use crate::net::tls::TlsMode;
use crate::server::admin::{RegistryProbe, RegistryStatus};
use crate::service::ServiceInfo;

mod worker;

use worker::Worker;

/// Attempts at creating one ephemeral node while others race for it.
const CREATE_ATTEMPTS: usize = 3;

/// What [`Worker::create_ephemeral`] found at its node.
enum Created {
    /// Our session holds it.
    Ours,
    /// Another provider's session holds it, with this data.
    Held { data: Vec<u8> },
    /// Still taken after every attempt (deleted and re-created under us).
    Contended,
}

/// A provider's registration; one per provider process.
///
/// Dropping it closes the session, which removes the provider's ephemeral
/// nodes at once.
pub struct Registrar {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    thread: Option<JoinHandle<()>>,
    settings: Settings,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("connect", &self.settings.connect)
            .field("root", &self.settings.root)
            .field("registered", &self.is_registered())
            .finish_non_exhaustive()
    }
}

/// State the worker publishes to the provider's threads.
#[derive(Default)]
struct Shared {
    registered: AtomicBool,
    session: Mutex<Option<zk::SessionInfo>>,
    /// For the admin pages: the session's last state, the nodes we hold.
    state: Mutex<String>,
    nodes: Mutex<BTreeSet<String>>,
}

/// What the admin pages show of a registrar.
struct Probe {
    shared: Arc<Shared>,
    connect: String,
}

impl RegistryProbe for Probe {
    fn status(&self) -> RegistryStatus {
        RegistryStatus {
            connect: self.connect.clone(),
            registered: self.shared.registered.load(Ordering::Acquire),
            session: self.shared.state.lock().clone(),
            nodes: self.shared.nodes.lock().iter().cloned().collect(),
        }
    }
}

enum Command {
    Deregister(std::sync::mpsc::Sender<()>),
    Shutdown,
}

impl Registrar {
    /// Connects, registers every service, and keeps doing so on its own
    /// thread across session expiry. Fails (without panicking) if ZooKeeper
    /// cannot be reached or the nodes cannot be written.
    pub fn start(
        config: &Config,
        addr: SocketAddr,
        services: Vec<ServiceInfo>,
    ) -> Result<Registrar, RegistryError> {
        let settings = Settings::from_config(config);
        let shared = Arc::new(Shared::default());
        let (commands, receiver) = mpsc::unbounded_channel();
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let mut worker = Worker::new(settings.clone(), addr, services, shared.clone());
        worker.max_frame = config.server.max_frame_size;
        worker.tls = config
            .server
            .tls
            .as_ref()
            .map_or(TlsMode::Off, |t| t.mode());
        let thread =
            session::spawn_thread("mprpc-zk-registrar", move || worker.run(receiver, first_tx))
                .map_err(|e| settings.error("cannot start the registrar thread", e))?;
        // The worker bounds each step itself; this is a backstop.
        match first_rx.recv_timeout(settings.op_timeout * 4 + Duration::from_secs(1)) {
            Ok(Ok(())) => Ok(Registrar {
                shared,
                commands,
                thread: Some(thread),
                settings,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = commands.send(Command::Shutdown);
                Err(settings.error("cannot register", "the registrar did not finish in time"))
            }
        }
    }

    /// Deletes our nodes now (the first step of a graceful shutdown) and
    /// stops re-registering. Idempotent.
    pub fn deregister(&self) {
        let (ack, done) = std::sync::mpsc::channel();
        if self.commands.send(Command::Deregister(ack)).is_ok() {
            let _ = done.recv_timeout(self.settings.op_timeout * 2 + Duration::from_secs(2));
        }
    }

    /// True while our nodes are known to be in ZooKeeper.
    pub fn is_registered(&self) -> bool {
        self.shared.registered.load(Ordering::Acquire)
    }

    /// The registration's state for the admin pages.
    pub(crate) fn admin_probe(&self) -> Arc<dyn RegistryProbe> {
        Arc::new(Probe {
            shared: self.shared.clone(),
            connect: self.settings.connect.clone(),
        })
    }

    /// The current session (for tests that force a session expiry).
    #[doc(hidden)]
    pub fn zk_session(&self) -> Option<zk::SessionInfo> {
        self.shared.session.lock().clone()
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
