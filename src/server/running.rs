//! A running server's handle: its addresses, services and figures, and
//! shutting it down and waiting for its threads (a panicked one is
//! reported, not hidden).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;

use super::admin::{self, Admin};
use super::mailbox::ReactorShared;
use super::metrics::MetricsRegistry;
use super::workers::WorkerPool;
use super::{BackpressureStats, MethodConcurrency, Metrics, ServerShared};
use crate::service::ServiceInfo;

/// A server thread that died by a panic, reported by [`ServerHandle::wait`].
#[derive(Debug)]
struct ThreadPanicked {
    thread: String,
    message: String,
}

impl ThreadPanicked {
    fn new(thread: String, payload: &(dyn std::any::Any + Send)) -> ThreadPanicked {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-text panic payload".to_owned());
        ThreadPanicked { thread, message }
    }
}

impl std::fmt::Display for ThreadPanicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "server thread {} panicked: {}",
            self.thread, self.message
        )
    }
}

pub(super) struct HandleInner {
    pub(super) local_addr: SocketAddr,
    pub(super) admin_addr: Option<SocketAddr>,
    #[cfg_attr(not(feature = "zookeeper"), allow(dead_code))]
    pub(super) admin: Option<Arc<Admin>>,
    pub(super) services: Vec<ServiceInfo>,
    pub(super) metrics: Arc<MetricsRegistry>,
    pub(super) shared: Arc<ServerShared>,
    pub(super) reactors: Vec<Arc<ReactorShared>>,
    pub(super) acceptor_waker: Arc<mio::Waker>,
    pub(super) pool: Mutex<Option<WorkerPool>>,
    pub(super) threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Controls a running server; cheap to clone and usable from any thread.
#[derive(Clone)]
pub struct ServerHandle {
    inner: Arc<HandleInner>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.inner.local_addr)
            .field("connections", &self.connection_count())
            .field("shut_down", &self.is_shut_down())
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    pub(super) fn new(inner: HandleInner) -> ServerHandle {
        ServerHandle {
            inner: Arc::new(inner),
        }
    }

    /// The address the server listens on (with the real port if 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Where the admin pages are served (the RPC address itself unless
    /// `admin_port` is set); `None` when they are off.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.inner.admin_addr
    }

    /// Lets the admin pages show the registry's state.
    #[cfg_attr(not(feature = "zookeeper"), allow(dead_code))]
    pub(crate) fn set_registry(&self, probe: Arc<dyn admin::RegistryProbe>) {
        if let Some(admin) = &self.inner.admin {
            admin.set_registry(probe);
        }
    }

    /// The published services and their methods.
    pub fn services(&self) -> Vec<ServiceInfo> {
        self.inner.services.clone()
    }

    /// Per-method calls, errors and latency percentiles since start.
    pub fn metrics(&self) -> Metrics {
        self.inner.metrics.snapshot()
    }

    /// How often backpressure paused reading, and the most output any
    /// connection held unsent.
    pub fn backpressure(&self) -> BackpressureStats {
        self.inner.shared.backpressure().snapshot()
    }

    /// The concurrency limit of every limited method: its current limit,
    /// calls in flight and calls refused with `Overloaded`.
    pub fn concurrency(&self) -> Vec<MethodConcurrency> {
        self.inner.shared.limits().snapshot()
    }

    /// Input bytes connections hold beyond their allowance, charged
    /// against `max_buffered_bytes` (large partial frames).
    pub fn buffered_bytes(&self) -> usize {
        self.inner.shared.buffers().charged()
    }

    /// Connections currently open.
    pub fn connection_count(&self) -> usize {
        self.inner.shared.connections().load(Ordering::Relaxed)
    }

    /// Stops accepting, answers what is in flight (new requests get
    /// `ShuttingDown`), closes every connection and stops all threads.
    /// Returns at once; `wait()` blocks until it is done. Idempotent.
    pub fn shutdown(&self) {
        if self.inner.shared.begin_shutdown() {
            return;
        }
        tracing::info!(addr = %self.inner.local_addr, "server shutting down");
        let _ = self.inner.acceptor_waker.wake();
        for reactor in &self.inner.reactors {
            reactor.wake();
        }
    }

    /// Blocks until every server thread has stopped.
    ///
    /// # Panics
    ///
    /// If a server thread (a reactor, the acceptor) panicked, with that
    /// thread's name and message: a dead reactor must not go unnoticed.
    pub fn wait(&self) {
        if let Err(panicked) = self.join_threads() {
            panic!("{panicked}");
        }
    }

    /// Waits for every server thread to stop and joins them; the first
    /// one that panicked is the error.
    fn join_threads(&self) -> Result<(), ThreadPanicked> {
        self.inner.shared.wait_until_threads_stop();
        // Reactors are gone, so no job can be queued any more: stop workers.
        if let Some(pool) = self.inner.pool.lock().take() {
            pool.stop();
        }
        let threads: Vec<_> = self.inner.threads.lock().drain(..).collect();
        let mut first = Ok(());
        for thread in threads {
            let name = thread.thread().name().unwrap_or("unnamed").to_owned();
            if let Err(payload) = thread.join() {
                let panicked = ThreadPanicked::new(name, payload.as_ref());
                tracing::error!(%panicked, "server thread died");
                first = first.and(Err(panicked));
            }
        }
        first
    }

    /// True once [`shutdown`](Self::shutdown) has been called (the server
    /// may still be draining; `wait()` for it to stop).
    pub fn is_shut_down(&self) -> bool {
        self.inner.shared.is_shutting_down()
    }
}

#[cfg(test)]
mod tests {
    use crate::server::{Server, ServerOptions};

    #[test]
    fn wait_reports_a_server_thread_that_panicked() {
        let handle = Server::with_options(ServerOptions::default().addr("127.0.0.1:0".into()))
            .start()
            .expect("server starts");
        // Stands in for a reactor that died: a server thread of this
        // handle ending by a panic.
        let dying = std::thread::Builder::new()
            .name("mprpc-reactor-test".into())
            .spawn(|| panic!("reactor invariant broken"))
            .unwrap();
        handle.inner.threads.lock().push(dying);
        handle.shutdown();
        let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle.wait()));
        let payload = waited.expect_err("wait() must not hide a panicked thread");
        let message = payload
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert_eq!(
            message,
            "server thread mprpc-reactor-test panicked: reactor invariant broken"
        );
    }
}
