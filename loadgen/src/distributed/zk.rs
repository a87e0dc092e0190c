//! A blocking ZooKeeper session for the worker and the coordinator: the
//! `zookeeper-client` crate's tasks run on a current-thread tokio runtime
//! on their own thread (as the library's registry does), so the session's
//! pings go on while the caller sleeps; every request is bounded by
//! [`OP_TIMEOUT`]. Nodes are created with the open ACL, or with a digest
//! (`user:password`, as the library's `zk_digest`) "holders of the secret
//! may do anything, everyone may read".

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zookeeper_client as zk;

pub use zk::Error;

/// Bound on opening a session and on each request.
pub const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// One session.
pub struct Zk {
    /// Taken on drop to close the session.
    client: Option<zk::Client>,
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The connect string, for messages.
    pub connect: String,
    acls: zk::Acls<'static>,
}

/// Holders of the same digest may do anything; everyone may read.
static DIGEST_ACLS: [zk::Acl; 2] = [
    zk::Acl::new_const(zk::Permission::ALL, "auth", ""),
    zk::Acl::new_const(zk::Permission::READ, "world", "anyone"),
];

impl std::fmt::Debug for Zk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Zk({})", self.connect)
    }
}

type Ready = Result<(zk::Client, tokio::runtime::Handle), String>;

impl Zk {
    /// Opens a session (authenticated with `digest` if given), failing
    /// within [`OP_TIMEOUT`] if no server answers.
    pub fn connect(
        connect: &str,
        session_timeout: Duration,
        digest: Option<&str>,
    ) -> Result<Zk, String> {
        let auth = digest.map(str::to_owned);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Ready>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let target = connect.to_owned();
        let thread = std::thread::Builder::new()
            .name("loadgen-zk".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot build a runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let mut connector = zk::Client::connector()
                        .with_session_timeout(session_timeout)
                        .with_fail_eagerly();
                    if let Some(auth) = &auth {
                        connector = connector.with_auth("digest", auth.as_bytes());
                    }
                    let client = match tokio::time::timeout(OP_TIMEOUT, connector.connect(&target))
                        .await
                    {
                        Ok(Ok(client)) => client,
                        Ok(Err(e)) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                        Err(_) => {
                            let _ = ready_tx.send(Err(format!("no answer within {OP_TIMEOUT:?}")));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok((client, tokio::runtime::Handle::current())));
                    let _ = stopped.await;
                });
            })
            .map_err(|e| format!("cannot start the ZooKeeper thread: {e}"))?;
        let ready = ready_rx
            .recv()
            .map_err(|_| "the ZooKeeper thread ended".to_string())
            .and_then(|r| r);
        match ready {
            Ok((client, handle)) => Ok(Zk {
                client: Some(client),
                handle,
                stop: Some(stop),
                thread: Some(thread),
                connect: connect.to_owned(),
                acls: if digest.is_some() {
                    zk::Acls::new(&DIGEST_ACLS)
                } else {
                    zk::Acls::anyone_all()
                },
            }),
            Err(e) => {
                let _ = thread.join();
                Err(format!("ZooKeeper {connect}: cannot open a session: {e}"))
            }
        }
    }

    /// Runs `op` with a clone of the client on the session's runtime.
    fn run<T, F>(&self, op: impl FnOnce(zk::Client) -> F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        self.run_within(OP_TIMEOUT, op)
    }

    /// [`Zk::run`] bounded by `limit`.
    fn run_within<T, F>(
        &self,
        limit: Duration,
        op: impl FnOnce(zk::Client) -> F,
    ) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        let Some(client) = self.client.clone() else {
            return Err(Error::ClientClosed);
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let fut = op(client);
        self.handle.spawn(async move {
            let result = tokio::time::timeout(limit, fut)
                .await
                .unwrap_or(Err(Error::Timeout));
            let _ = tx.send(result);
        });
        rx.recv().unwrap_or(Err(Error::ClientClosed))
    }

    /// Creates `path` (its parent must exist); returns its stat.
    pub fn create(&self, path: &str, data: &[u8], ephemeral: bool) -> Result<zk::Stat, Error> {
        let (path, data, acls) = (path.to_owned(), data.to_vec(), self.acls);
        self.run(move |c| async move {
            let mode = if ephemeral {
                zk::CreateMode::Ephemeral
            } else {
                zk::CreateMode::Persistent
            };
            let options = mode.with_acls(acls);
            c.create(&path, &data, &options).await.map(|(stat, _)| stat)
        })
    }

    /// Creates `path` and its missing parents (persistent, empty).
    pub fn mkdir(&self, path: &str) -> Result<(), Error> {
        let (path, acls) = (path.to_owned(), self.acls);
        self.run(move |c| async move {
            let options = zk::CreateMode::Persistent.with_acls(acls);
            c.mkdir(&path, &options).await
        })
    }

    /// Data and stat of `path`, `None` if it does not exist.
    pub fn get(&self, path: &str) -> Result<Option<(Vec<u8>, zk::Stat)>, Error> {
        let path = path.to_owned();
        match self.run(move |c| async move { c.get_data(&path).await }) {
            Ok(found) => Ok(Some(found)),
            Err(Error::NoNode) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The stat of `path` within `limit` (`None` if it does not exist):
    /// for checks that must not wait long.
    pub fn stat_within(&self, path: &str, limit: Duration) -> Result<Option<zk::Stat>, Error> {
        let path = path.to_owned();
        self.run_within(limit, move |c| async move { c.check_stat(&path).await })
    }

    /// Replaces the data of `path` (only at `version`, if given).
    pub fn set(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<zk::Stat, Error> {
        let (path, data) = (path.to_owned(), data.to_vec());
        self.run(move |c| async move { c.set_data(&path, &data, version).await })
    }

    /// Sorted children of `path` (none if it does not exist).
    pub fn children(&self, path: &str) -> Result<Vec<String>, Error> {
        let path = path.to_owned();
        match self.run(move |c| async move { c.list_children(&path).await }) {
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
        match self.run(move |c| async move { c.delete(&path, None).await }) {
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

impl Drop for Zk {
    /// Closes the session so its ephemeral nodes go now, not after the timeout.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let (tx, rx) = std::sync::mpsc::channel();
            self.handle.spawn(async move {
                let mut state = client.state_watcher();
                drop(client);
                if !state.peek_state().is_terminated() {
                    let closed = async { while !state.changed().await.is_terminated() {} };
                    let _ = tokio::time::timeout(Duration::from_secs(2), closed).await;
                }
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

/// `e`, with what to do when it is a refusal by a digest ACL.
pub fn explain(e: &Error) -> String {
    match e {
        Error::NoAuth => format!("{e} (these nodes are protected: give --zk-digest user:password)"),
        _ => e.to_string(),
    }
}

/// Unix time now, in milliseconds.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// ZooKeeper's clock minus ours, in ms, from the `ctime` of a node created
/// between our `before` and `after` (Unix ms): ZooKeeper stamps it between
/// the two, so the error is at most half the round trip plus 1 ms.
pub fn clock_offset_ms(ctime: i64, before: i64, after: i64) -> i64 {
    ctime - (before + after) / 2
}
