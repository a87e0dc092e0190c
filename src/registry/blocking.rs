//! A ZooKeeper session for blocking code: tools that keep nodes of their
//! own (loadgen's distributed mode coordinates its workers through one).
//!
//! It runs on the registry's session runtime (`session`): its own thread,
//! a current-thread tokio runtime driving the `zookeeper-client` tasks, so
//! the session's pings go on while the caller waits; the same connect, ACLs
//! and close as the registrar and discovery. Every request is bounded in
//! time. Requests and answers are `zookeeper-client`'s types, re-exported as
//! [`crate::registry::zk`].

use std::future::Future;
use std::time::Duration;

use zookeeper_client as zk;
use zookeeper_client::Error;

use super::session::{self, Settings};
use super::RegistryError;

/// One session, closed (its ephemeral nodes removed at once) when dropped.
pub struct BlockingSession {
    /// Taken on drop to close the session.
    client: Option<zk::Client>,
    runtime: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    settings: Settings,
}

impl std::fmt::Debug for BlockingSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockingSession({})", self.settings.connect)
    }
}

/// What the session thread hands back once the session is open.
type Opened = Result<(zk::Client, tokio::runtime::Handle), RegistryError>;

impl BlockingSession {
    /// Bound on opening a session and on each request.
    pub const OP_TIMEOUT: Duration = Duration::from_secs(10);

    /// Opens a session to `connect` (`host:port[,host:port...]`),
    /// authenticated with `digest` (`user:password`) if given: its nodes
    /// then carry the registry's ACL (holders of the secret may do
    /// anything, everyone may read). Fails within [`BlockingSession::OP_TIMEOUT`] if no
    /// server answers.
    pub fn connect(
        connect: &str,
        session_timeout: Duration,
        digest: Option<&str>,
    ) -> Result<BlockingSession, RegistryError> {
        let settings = Settings::session(connect, session_timeout, Self::OP_TIMEOUT, digest);
        let (opened_tx, opened_rx) = std::sync::mpsc::channel::<Opened>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let opening = settings.clone();
        let thread = session::spawn_thread("mprpc-zk-session", move || async move {
            match opening.connect().await {
                Ok(client) => {
                    let _ = opened_tx.send(Ok((client, tokio::runtime::Handle::current())));
                    let _ = stopped.await;
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                }
            }
        })
        .map_err(|e| settings.error("cannot start the session thread", e))?;
        let opened = opened_rx.recv().unwrap_or_else(|_| {
            Err(settings.error("cannot open a session", "the session thread ended"))
        });
        match opened {
            Ok((client, runtime)) => Ok(BlockingSession {
                client: Some(client),
                runtime,
                stop: Some(stop),
                thread: Some(thread),
                settings,
            }),
            Err(e) => {
                let _ = thread.join();
                Err(e)
            }
        }
    }

    /// The connect string, for messages.
    pub fn connect_string(&self) -> &str {
        &self.settings.connect
    }

    /// Runs `op` with a clone of the client on the session's runtime,
    /// bounded by `limit`.
    fn run<T, F>(&self, limit: Duration, op: impl FnOnce(zk::Client) -> F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        let Some(client) = self.client.clone() else {
            return Err(Error::ClientClosed);
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let request = op(client);
        self.runtime.spawn(async move {
            let result = tokio::time::timeout(limit, request)
                .await
                .unwrap_or(Err(Error::Timeout));
            let _ = tx.send(result);
        });
        rx.recv().unwrap_or(Err(Error::ClientClosed))
    }

    /// Creates `path` (its parent must exist); returns its stat.
    pub fn create(&self, path: &str, data: &[u8], ephemeral: bool) -> Result<zk::Stat, Error> {
        let mode = if ephemeral {
            zk::CreateMode::Ephemeral
        } else {
            zk::CreateMode::Persistent
        };
        let options = mode.with_acls(self.settings.acls());
        let (path, data) = (path.to_owned(), data.to_vec());
        self.run(Self::OP_TIMEOUT, move |c| async move {
            c.create(&path, &data, &options).await.map(|(stat, _)| stat)
        })
    }

    /// Creates `path` and its missing parents (persistent, empty).
    pub fn mkdir(&self, path: &str) -> Result<(), Error> {
        let options = zk::CreateMode::Persistent.with_acls(self.settings.acls());
        let path = path.to_owned();
        self.run(Self::OP_TIMEOUT, move |c| async move {
            c.mkdir(&path, &options).await
        })
    }

    /// Data and stat of `path`, `None` if it does not exist.
    pub fn get(&self, path: &str) -> Result<Option<(Vec<u8>, zk::Stat)>, Error> {
        let path = path.to_owned();
        match self.run(
            Self::OP_TIMEOUT,
            move |c| async move { c.get_data(&path).await },
        ) {
            Ok(found) => Ok(Some(found)),
            Err(Error::NoNode) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The stat of `path` within `limit` (`None` if it does not exist):
    /// for checks that must not wait long.
    pub fn stat_within(&self, path: &str, limit: Duration) -> Result<Option<zk::Stat>, Error> {
        let path = path.to_owned();
        self.run(limit, move |c| async move { c.check_stat(&path).await })
    }

    /// Replaces the data of `path` (only at `version`, if given).
    pub fn set(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<zk::Stat, Error> {
        let (path, data) = (path.to_owned(), data.to_vec());
        self.run(Self::OP_TIMEOUT, move |c| async move {
            c.set_data(&path, &data, version).await
        })
    }

    /// Sorted children of `path` (none if it does not exist).
    pub fn children(&self, path: &str) -> Result<Vec<String>, Error> {
        let path = path.to_owned();
        match self.run(Self::OP_TIMEOUT, move |c| async move {
            c.list_children(&path).await
        }) {
            Ok(mut children) => {
                children.sort();
                Ok(children)
            }
            Err(Error::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Deletes `path` (a missing node is fine).
    pub fn delete(&self, path: &str) -> Result<(), Error> {
        let path = path.to_owned();
        match self.run(Self::OP_TIMEOUT, move |c| async move {
            c.delete(&path, None).await
        }) {
            Ok(()) | Err(Error::NoNode) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes `path` and everything under it.
    pub fn delete_tree(&self, path: &str) -> Result<(), Error> {
        for child in self.children(path)? {
            self.delete_tree(&format!("{path}/{child}"))?;
        }
        self.delete(path)
    }

    /// The session is over for good (expired or closed): its ephemeral
    /// nodes are gone and a new session is needed.
    pub fn expired(&self) -> bool {
        self.client
            .as_ref()
            .is_none_or(|c| c.state().is_terminated())
    }
}

impl Drop for BlockingSession {
    /// Closes the session so its ephemeral nodes go now, not after the
    /// session timeout, then stops its thread.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let (tx, rx) = std::sync::mpsc::channel();
            self.runtime.spawn(async move {
                session::close(client).await;
                let _ = tx.send(());
            });
            let _ = rx.recv_timeout(Duration::from_secs(3));
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
