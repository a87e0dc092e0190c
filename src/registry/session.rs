//! What the provider and consumer sides (and [`super::BlockingSession`])
//! share: settings taken from the config, opening a session (with digest
//! auth), node ACLs, the registry thread with its runtime, closing a
//! session, and reconnect back-off.

use std::future::Future;
use std::time::Duration;

use zookeeper_client as zk;

use super::RegistryError;
use crate::app::config::Config;

/// Registry settings, from [`Config`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub connect: String,
    pub session_timeout: Duration,
    /// Bound on opening a session and on each batch of requests.
    pub op_timeout: Duration,
    pub root: String,
    pub seed_layout: bool,
    pub digest: Option<String>,
}

impl Settings {
    pub(crate) fn from_config(config: &Config) -> Settings {
        let registry = &config.registry;
        Settings {
            connect: registry.connect_string(),
            session_timeout: registry.session_timeout,
            op_timeout: config
                .channel
                .connect_timeout
                .max(registry.session_timeout)
                .max(Duration::from_secs(1)),
            root: registry.root.clone(),
            seed_layout: registry.seed_layout,
            digest: registry.digest.clone(),
        }
    }

    /// Settings for a session outside the registry's layout (no root, no
    /// seed layout), as a [`super::BlockingSession`] opens.
    pub(crate) fn session(
        connect: &str,
        session_timeout: Duration,
        op_timeout: Duration,
        digest: Option<&str>,
    ) -> Settings {
        Settings {
            connect: connect.to_owned(),
            session_timeout,
            op_timeout,
            root: String::new(),
            seed_layout: false,
            digest: digest.map(str::to_owned),
        }
    }

    pub(crate) fn error(
        &self,
        action: &'static str,
        cause: impl std::fmt::Display,
    ) -> RegistryError {
        RegistryError::new(&self.connect, action, cause)
    }

    /// The ACL for nodes we create: open, or "same secret all, world read".
    pub(crate) fn acls(&self) -> zk::Acls<'static> {
        if self.digest.is_some() {
            zk::Acls::new(&DIGEST_ACLS)
        } else {
            zk::Acls::anyone_all()
        }
    }

    /// Opens a session, failing within `op_timeout` if no server answers.
    ///
    /// Each attempt fails eagerly (once every host has been tried, after
    /// the client's connection timeout of 2/5 of the session timeout), and
    /// attempts repeat until `op_timeout`: a server that is up but slow to
    /// answer (a JVM warming up, a loaded machine) gets several tries, while
    /// an address where nothing answers still fails within `op_timeout`.
    /// Refused credentials fail at once.
    pub(crate) async fn connect(&self) -> Result<zk::Client, RegistryError> {
        let until = tokio::time::Instant::now() + self.op_timeout;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let error = match tokio::time::timeout(left, self.connect_once()).await {
                Ok(Ok(client)) => return Ok(client),
                Ok(Err(e)) if matches!(e, zk::Error::NoHosts | zk::Error::Timeout) => e,
                Ok(Err(e)) => return Err(self.cannot_open(e, attempts)),
                Err(_) => {
                    return Err(self.error(
                        "cannot open a session",
                        format!(
                            "no answer within {:?} (is ZooKeeper running there?)",
                            self.op_timeout
                        ),
                    ))
                }
            };
            let pause = Duration::from_millis(100);
            if tokio::time::Instant::now() + pause >= until {
                return Err(self.cannot_open(error, attempts));
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// One session attempt that gives up once every host has been tried.
    async fn connect_once(&self) -> Result<zk::Client, zk::Error> {
        let mut connector = zk::Client::connector()
            .with_session_timeout(self.session_timeout)
            .with_fail_eagerly();
        if let Some(digest) = &self.digest {
            connector = connector.with_auth("digest", digest.as_bytes());
        }
        connector.connect(&self.connect).await
    }

    fn cannot_open(&self, cause: zk::Error, attempts: u32) -> RegistryError {
        let tries = match attempts {
            1 => String::new(),
            n => format!(", {n} attempts in {:?}", self.op_timeout),
        };
        self.error(
            "cannot open a session",
            format!(
                "{cause}{tries} (is ZooKeeper running there? check zookeeperip and zookeeperport)"
            ),
        )
    }

    /// Runs `op` bounded by `op_timeout`, so a stalled connection cannot
    /// hold the registry thread.
    pub(crate) async fn bounded<T>(
        &self,
        op: impl Future<Output = Result<T, zk::Error>>,
    ) -> Result<T, zk::Error> {
        tokio::time::timeout(self.op_timeout, op)
            .await
            .unwrap_or(Err(zk::Error::Timeout))
    }
}

/// Holders of the same digest may do anything; everyone may read.
static DIGEST_ACLS: [zk::Acl; 2] = [
    zk::Acl::new_const(zk::Permission::ALL, "auth", ""),
    zk::Acl::new_const(zk::Permission::READ, "world", "anyone"),
];

/// Starts the registry thread `name` running the future `make` builds on a
/// current-thread runtime (the zookeeper client spawns its tasks there).
pub(crate) fn spawn_thread<F, M>(
    name: &str,
    make: M,
) -> std::io::Result<std::thread::JoinHandle<()>>
where
    M: FnOnce() -> F + Send + 'static,
    F: Future<Output = ()>,
{
    let thread_name = name.to_owned();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::error!("{thread_name}: cannot build its runtime: {e}");
                    return;
                }
            };
            runtime.block_on(make());
        })
}

/// Waits for the next session state; never resolves without a session.
pub(crate) async fn next_state(watcher: &mut Option<zk::StateWatcher>) -> zk::SessionState {
    match watcher {
        Some(watcher) => watcher.changed().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`; never resolves if `at` is `None`.
pub(crate) async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Closes a session and waits (briefly) until the server has been told, so
/// its ephemeral nodes go away now rather than after the session timeout.
pub(crate) async fn close(client: zk::Client) {
    let mut state = client.state_watcher();
    drop(client);
    if state.peek_state().is_terminated() {
        return;
    }
    let closed = async { while !state.changed().await.is_terminated() {} };
    let _ = tokio::time::timeout(Duration::from_secs(2), closed).await;
}

/// Exponential back-off between reconnect attempts: 100 ms doubling to 5 s.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    pub(crate) fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        delay
    }
}
