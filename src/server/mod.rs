//! The provider: publishes services on a multi-reactor TCP server.
//!
//! ```text
//!              accept            round robin (queue + Waker)
//!  clients ──► acceptor thread ───────────────► reactor 0..N  (one mio Poll each,
//!                                                 │            a slab of connections)
//!                                                 │ inline handlers run here
//!                                                 └─► worker pool (blocking services)
//!                                                       replies come back to the
//!                                                       owning reactor (queue + Waker)
//! ```
//!
//! This is the seed's `RpcProvider` (muduo `TcpServer` with 4 threads) done
//! with one event loop per thread: each connection lives on exactly one
//! reactor for its whole life, so its buffers need no locks. Replies are
//! written into the connection's output buffer and flushed once per loop
//! turn, so pipelined requests are answered with one `write`.
//!
//! Use: [`Server::new`], [`Server::add_service`] for each service,
//! [`Server::start`] to get a [`ServerHandle`], and `wait()` / `shutdown()`
//! on it (or [`Server::run`] to block, as the seed's `Run()` does).
//!
//! The same port serves the admin pages over HTTP (`admin`: `/metrics`,
//! `/status`, `/`, `/connections`), told apart by the first bytes; or
//! `admin_port` serves them apart. A `metrics_log` thread logs per-method
//! figures periodically.

mod acceptor;
pub(crate) mod admin;
mod budget;
pub(crate) mod close;
mod connection;
mod dispatch;
mod fd_limit;
mod handler;
mod limit;
mod mailbox;
mod metrics;
mod metrics_log;
mod pending;
mod reactor;
mod serve;
mod speaks;
mod stats;
mod table;
mod thread;
mod timer;
mod warn_limit;
mod workers;

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::app::config::Config;
use crate::call::interceptor::{Interceptor, Interceptors};
use crate::net::auth::AuthToken;
use crate::net::tls::{ServerTls, TlsMode};
use crate::service::{Service, ServiceInfo};
use limit::Limits;
use mailbox::ReactorShared;
use table::ServiceTable;
use workers::WorkerPool;

pub use limit::{ConcurrencyLimiter, MaxConcurrency, MethodConcurrency};

use admin::Admin;
pub use admin::AdminOptions;
use metrics::MetricsRegistry;
pub use metrics::{MethodMetrics, Metrics};

/// Server limits and sizes, usually taken from [`Config`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to listen on (`ip:port`; port 0 picks a free one).
    pub addr: String,
    /// Event-loop threads; each owns the connections it was handed.
    pub reactor_threads: usize,
    /// Threads that run blocking services' handlers.
    pub worker_threads: usize,
    /// The largest frame body accepted, in bytes; a larger call fails alone.
    pub max_frame_size: usize,
    /// Open connections above which new ones are refused.
    pub max_connections: usize,
    /// Blocking calls a connection may have in flight before reading pauses.
    pub max_inflight_per_connection: usize,
    /// Blocking calls waiting for a worker beyond which a new one is
    /// answered `Overloaded`.
    pub max_queued_calls: usize,
    /// Input bytes all connections may buffer beyond a small allowance
    /// each; a connection whose frame would pass it is closed.
    pub max_buffered_bytes: usize,
    /// Unsent reply bytes on a connection above which reading pauses.
    pub write_high_water: usize,
    /// Close connections idle for this long.
    pub idle_timeout: Option<Duration>,
    /// Close a connection whose frame stays incomplete this long (slow loris).
    pub frame_timeout: Option<Duration>,
    /// When tokens are required: close an RPC connection that sent none
    /// this long after it opened.
    pub auth_timeout: Option<Duration>,
    /// Close a connection whose unsent replies have not moved this long.
    pub write_stall_timeout: Option<Duration>,
    /// Connections the kernel may queue before we accept them.
    pub listen_backlog: u32,
    /// On shutdown, the longest we wait for in-flight calls to finish.
    pub shutdown_grace: Duration,
    /// Adaptive per-method limits for blocking services (`auto`) or none.
    pub concurrency_limiter: ConcurrencyLimiter,
    /// Fixed per-method limits; a method's own wins over the adaptive one.
    pub max_concurrency: MaxConcurrency,
    /// TLS on the port (`None`: plain only).
    pub tls: Option<ServerTls>,
    /// Tokens a connection must present one of before its calls run
    /// (empty: no authentication).
    pub auth_tokens: Vec<AuthToken>,
    /// The admin pages (HTTP): whether, where, and the token they require.
    pub admin: AdminOptions,
    /// Log one line per called method this often (`None`: never).
    pub metrics_log_interval: Option<Duration>,
    /// After a storm of connection closes, give freed memory back to the
    /// kernel (glibc's `malloc_trim`) once closes stop for a second.
    pub trim_memory: bool,
    /// Interceptors every call passes, in order (none by default; see
    /// [`crate::call::interceptor`]).
    pub interceptors: Interceptors,
}

impl Default for ServerOptions {
    /// The defaults of [`Config`], listening on a free loopback port.
    fn default() -> Self {
        ServerOptions {
            addr: "127.0.0.1:0".into(),
            ..ServerOptions::from_config(&Config::default())
        }
    }
}

impl ServerOptions {
    /// The options a config file sets (shutdown grace 5 s).
    pub fn from_config(config: &Config) -> ServerOptions {
        ServerOptions {
            addr: config.rpc_server_addr(),
            reactor_threads: config.effective_reactor_threads(),
            worker_threads: config.worker_threads,
            max_frame_size: config.max_frame_size,
            max_connections: config.max_connections,
            max_inflight_per_connection: config.max_inflight_per_connection,
            max_queued_calls: config.max_queued_calls,
            max_buffered_bytes: config.max_buffered_bytes,
            write_high_water: config.write_high_water,
            idle_timeout: config.idle_timeout,
            frame_timeout: config.frame_timeout,
            auth_timeout: config.auth_timeout,
            write_stall_timeout: config.write_stall_timeout,
            listen_backlog: config.listen_backlog,
            shutdown_grace: Duration::from_secs(5),
            concurrency_limiter: config.concurrency_limiter,
            max_concurrency: config.max_concurrency.clone(),
            tls: config.server_tls.clone(),
            auth_tokens: config.auth_tokens.clone(),
            admin: AdminOptions {
                enabled: config.admin,
                port: config.admin_port,
                token: config.admin_token.clone(),
            },
            metrics_log_interval: config.metrics_log_interval,
            trim_memory: config.trim_memory,
            interceptors: Interceptors::default(),
        }
    }
}

/// A server being assembled: options plus the services it will publish.
pub struct Server {
    options: ServerOptions,
    services: ServiceTable,
    /// The config file's keys as read, for `/status`.
    config_keys: Vec<(String, String)>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("options", &self.options)
            .field("services", &self.services.describe())
            .finish()
    }
}

impl Server {
    /// A server configured from the seed-style config file.
    pub fn new(config: &Config) -> Server {
        let mut server = Server::with_options(ServerOptions::from_config(config));
        server.config_keys = config.raw.clone().into_iter().collect();
        server
    }

    /// A server with explicit options (no config file).
    pub fn with_options(options: ServerOptions) -> Server {
        Server {
            options,
            services: ServiceTable::default(),
            config_keys: Vec::new(),
        }
    }

    /// The options, to adjust before [`Server::start`].
    pub fn options_mut(&mut self) -> &mut ServerOptions {
        &mut self.options
    }

    /// Publishes a service whose handlers are quick: they run on the reactor
    /// thread that read the request (no hand-off, lowest latency).
    pub fn add_service(&mut self, service: impl Service) -> &mut Self {
        self.services.insert(Arc::new(service), false);
        self
    }

    /// Adds an interceptor at the end of the chain every call passes
    /// (see [`crate::call::interceptor`]).
    pub fn add_interceptor(&mut self, interceptor: impl Interceptor) -> &mut Self {
        self.options.interceptors.push(Arc::new(interceptor));
        self
    }

    /// Publishes a service whose handlers may block (disk, locks, other
    /// RPCs): they run on the worker pool, and the reply is handed back to
    /// the connection's reactor.
    pub fn add_blocking_service(&mut self, service: impl Service) -> &mut Self {
        self.services.insert(Arc::new(service), true);
        self
    }

    /// Raises the open-files limit and lowers `max_connections` to what it
    /// allows, saying so when it does.
    fn fit_connections_to_open_files(&mut self) {
        let open_files = fd_limit::raise_open_files();
        let requested = self.options.max_connections;
        let fitted = fd_limit::connection_limit(requested, open_files);
        if fitted < requested {
            tracing::info!(
                requested,
                max_connections = fitted,
                open_files,
                "max_connections lowered to fit the open-files limit (RLIMIT_NOFILE); \
                 connections beyond it are refused"
            );
            self.options.max_connections = fitted;
        }
    }

    /// Binds, starts the acceptor, reactors and workers, and returns at once.
    pub fn start(mut self) -> io::Result<ServerHandle> {
        self.fit_connections_to_open_files();
        let addr = resolve(&self.options.addr)?;
        let listener = StdListener::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        listener.set_nonblocking(true)?;
        set_backlog(&listener, self.options.listen_backlog)?;
        let local_addr = listener.local_addr()?;
        // Every thread started below runs in this span: its lines name the server.
        let span = tracing::info_span!("server", addr = %local_addr);
        let _entered = span.enter();
        let limits = Limits::new(
            &self.services,
            self.options.concurrency_limiter,
            &self.options.max_concurrency,
            // A burst may queue one handler time deep before anything is
            // refused: the adaptive limit never falls below twice the pool.
            2 * self.options.worker_threads.max(1) as u32,
        );
        let shared = Arc::new(ServerShared::new(limits, self.options.max_buffered_bytes));

        // Reflection is built in: served, but not listed (nor registered).
        let published = self.services.describe();
        let mut services = self.services;
        services.add_reflection();
        let metrics = Arc::new(MetricsRegistry::new(services.method_names()));
        let table = Arc::new(services);
        let settings = settings_in_effect(&self.options, &self.config_keys);
        let (admin, admin_listener) =
            start_admin(&self.options.admin, local_addr, &metrics, settings)?;
        let admin_addr = match &admin_listener {
            Some(listener) => Some(listener.local_addr()?),
            None => admin.as_ref().map(|_| local_addr),
        };
        let reactor_count = self.options.reactor_threads.max(1);
        let mut reactors = Vec::with_capacity(reactor_count);
        let mut threads = Vec::new();
        let pool = if table.has_blocking() {
            Some(WorkerPool::start(
                self.options.worker_threads.max(1),
                self.options.max_queued_calls.max(1),
                &metrics,
            )?)
        } else {
            None
        };
        for index in 0..reactor_count {
            let (handle, thread) = reactor::spawn(
                index,
                table.clone(),
                pool.as_ref().map(WorkerPool::sender),
                self.options.clone(),
                shared.clone(),
                metrics.register_thread(),
                admin.clone(),
            )?;
            reactors.push(handle);
            threads.push(thread);
        }
        if let Some(admin) = &admin {
            admin.set_reactors(reactors.clone());
        }
        if let Some(interval) = self.options.metrics_log_interval {
            threads.push(metrics_log::spawn(
                metrics.clone(),
                interval,
                shared.clone(),
            )?);
        }
        let (acceptor_waker, thread) = acceptor::spawn(
            mio::net::TcpListener::from_std(listener),
            admin_listener.map(mio::net::TcpListener::from_std),
            reactors.clone(),
            self.options.max_connections,
            shared.clone(),
        )?;
        threads.push(thread);
        let tls = self
            .options
            .tls
            .as_ref()
            .map_or(TlsMode::Off, ServerTls::mode);
        let auth = !self.options.auth_tokens.is_empty();
        tracing::info!(%local_addr, reactors = reactor_count, %tls, auth, "server started");
        if let Some(addr) = admin_addr {
            tracing::info!("admin pages on http://{addr}/ (/metrics, /status, /connections)");
        }
        Ok(ServerHandle {
            inner: Arc::new(HandleInner {
                local_addr,
                admin_addr,
                admin,
                services: published,
                metrics,
                shared,
                reactors,
                acceptor_waker,
                pool: Mutex::new(pool),
                threads: Mutex::new(threads),
            }),
        })
    }

    /// The seed's `Run()`: start and block until the server is shut down.
    pub fn run(self) -> io::Result<()> {
        self.start()?.wait();
        Ok(())
    }
}

/// The admin pages' state, and their own listener when `admin_port` is
/// set; `(None, None)` when they are off.
fn start_admin(
    options: &AdminOptions,
    local_addr: SocketAddr,
    metrics: &Arc<MetricsRegistry>,
    settings: Vec<(String, String)>,
) -> io::Result<(Option<Arc<Admin>>, Option<StdListener>)> {
    if !options.is_enabled_for(local_addr) {
        return Ok((None, None));
    }
    let listener = match options.port {
        Some(port) => {
            let addr = SocketAddr::new(local_addr.ip(), port);
            let listener = StdListener::bind(addr).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot listen on admin_port {addr}: {e}"))
            })?;
            listener.set_nonblocking(true)?;
            Some(listener)
        }
        None => None,
    };
    let admin = Admin::new(options, local_addr, metrics.clone(), settings);
    Ok((Some(Arc::new(admin)), listener))
}

/// The config file's keys overlaid with the options in effect, for
/// `/status` (secrets are redacted there).
fn settings_in_effect(
    o: &ServerOptions,
    config_keys: &[(String, String)],
) -> Vec<(String, String)> {
    let ms = |d: Option<Duration>| d.map_or(0, |d| d.as_millis()).to_string();
    let effective = [
        ("listen", o.addr.clone()),
        ("reactor_threads", o.reactor_threads.max(1).to_string()),
        ("worker_threads", o.worker_threads.to_string()),
        ("max_frame_size", o.max_frame_size.to_string()),
        ("max_connections", o.max_connections.to_string()),
        (
            "max_inflight_per_connection",
            o.max_inflight_per_connection.to_string(),
        ),
        ("write_high_water_bytes", o.write_high_water.to_string()),
        ("idle_timeout_ms", ms(o.idle_timeout)),
        ("frame_timeout_ms", ms(o.frame_timeout)),
        ("auth_timeout_ms", ms(o.auth_timeout)),
        ("write_stall_timeout_ms", ms(o.write_stall_timeout)),
        ("max_queued_calls", o.max_queued_calls.to_string()),
        ("max_buffered_bytes", o.max_buffered_bytes.to_string()),
        ("listen_backlog", o.listen_backlog.to_string()),
        (
            "admin_port",
            o.admin.port.map_or("-".into(), |p| p.to_string()),
        ),
        (
            "metrics_log_interval_s",
            o.metrics_log_interval
                .map_or(0, |d| d.as_secs())
                .to_string(),
        ),
    ];
    let mut settings: std::collections::BTreeMap<String, String> =
        config_keys.iter().cloned().collect();
    for (key, value) in effective {
        settings.insert(key.into(), value);
    }
    settings.into_iter().collect()
}

/// What a reactor does with one decoded request of an inline service:
/// run the handler and append the reply frame to `out`; returns whether
/// the call succeeded. For benchmarks and tests of the dispatch path; not a
/// stable API.
#[doc(hidden)]
pub fn serve_request(
    service: &dyn Service,
    request: crate::protocol::mprpc::Request,
    ctx: &crate::service::CallContext,
    out: &mut bytes::BytesMut,
) -> bool {
    let format = crate::protocol::WireFormat::Mprpc;
    handler::reply_with_handler(service, request, ctx, format, out) == crate::call::status::Code::Ok
}

/// std listens with a backlog of 128, too few for a burst of connects (each
/// dropped SYN costs the client a one-second retry). Linux lets `listen(2)`
/// be called again to raise it; the kernel caps it at `net.core.somaxconn`.
fn set_backlog(listener: &StdListener, backlog: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let backlog = backlog.min(i32::MAX as u32) as i32;
    // SAFETY: a plain syscall on a socket we own.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn resolve(addr: &str) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{addr}' resolves to no address"),
        )
    })
}

/// How often backpressure acted, since the server started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackpressureStats {
    /// Times a connection stopped reading because its unsent output or its
    /// calls in flight reached the limit.
    pub read_pauses: u64,
    /// The most reply bytes any connection held unsent after a flush the
    /// socket could not take whole (bounded by `write_high_water` plus the
    /// replies of the requests read in the same turn).
    pub peak_unsent_bytes: usize,
}

/// The counters behind [`BackpressureStats`]; touched only when
/// backpressure acts, never on the fast path.
#[derive(Debug, Default)]
pub(crate) struct BackpressureCounters {
    read_pauses: AtomicU64,
    peak_unsent: AtomicUsize,
}

impl BackpressureCounters {
    pub(crate) fn read_paused(&self) {
        self.read_pauses.fetch_add(1, Ordering::Relaxed);
    }

    /// A flush left `unsent` bytes behind.
    pub(crate) fn output_blocked(&self, unsent: usize) {
        self.peak_unsent.fetch_max(unsent, Ordering::Relaxed);
    }

    fn snapshot(&self) -> BackpressureStats {
        BackpressureStats {
            read_pauses: self.read_pauses.load(Ordering::Relaxed),
            peak_unsent_bytes: self.peak_unsent.load(Ordering::Relaxed),
        }
    }
}

/// State every server thread can see.
pub(crate) struct ServerShared {
    shutting_down: AtomicBool,
    connections: AtomicUsize,
    backpressure: BackpressureCounters,
    limits: Arc<Limits>,
    /// Input bytes buffered over all connections (`max_buffered_bytes`).
    buffers: budget::BufferBudget,
    running_threads: Mutex<usize>,
    stopped: Condvar,
}

impl ServerShared {
    fn new(limits: Limits, max_buffered_bytes: usize) -> ServerShared {
        ServerShared {
            shutting_down: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            backpressure: BackpressureCounters::default(),
            limits: Arc::new(limits),
            buffers: budget::BufferBudget::new(max_buffered_bytes),
            running_threads: Mutex::new(0),
            stopped: Condvar::new(),
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub(crate) fn connections(&self) -> &AtomicUsize {
        &self.connections
    }

    pub(crate) fn backpressure(&self) -> &BackpressureCounters {
        &self.backpressure
    }

    pub(crate) fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    pub(crate) fn buffers(&self) -> &budget::BufferBudget {
        &self.buffers
    }

    /// Counts a server thread as running until the guard drops (even by a
    /// panic), so `wait()` knows when everything has stopped.
    pub(crate) fn thread_guard(self: &Arc<Self>) -> ThreadGuard {
        *self.running_threads.lock() += 1;
        ThreadGuard(self.clone())
    }
}

pub(crate) struct ThreadGuard(Arc<ServerShared>);

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        let mut running = self.0.running_threads.lock();
        *running -= 1;
        if *running == 0 {
            self.0.stopped.notify_all();
        }
    }
}

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

struct HandleInner {
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    #[cfg_attr(not(feature = "zookeeper"), allow(dead_code))]
    admin: Option<Arc<Admin>>,
    services: Vec<ServiceInfo>,
    metrics: Arc<MetricsRegistry>,
    shared: Arc<ServerShared>,
    reactors: Vec<Arc<ReactorShared>>,
    acceptor_waker: Arc<mio::Waker>,
    pool: Mutex<Option<WorkerPool>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
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
        self.inner.shared.backpressure.snapshot()
    }

    /// The concurrency limit of every limited method: its current limit,
    /// calls in flight and calls refused with `Overloaded`.
    pub fn concurrency(&self) -> Vec<MethodConcurrency> {
        self.inner.shared.limits.snapshot()
    }

    /// Input bytes connections hold beyond their allowance, charged
    /// against `max_buffered_bytes` (large partial frames).
    pub fn buffered_bytes(&self) -> usize {
        self.inner.shared.buffers.charged()
    }

    /// Connections currently open.
    pub fn connection_count(&self) -> usize {
        self.inner.shared.connections.load(Ordering::Relaxed)
    }

    /// Stops accepting, answers what is in flight (new requests get
    /// `ShuttingDown`), closes every connection and stops all threads.
    /// Returns at once; `wait()` blocks until it is done. Idempotent.
    pub fn shutdown(&self) {
        if self.inner.shared.shutting_down.swap(true, Ordering::AcqRel) {
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
        {
            let mut running = self.inner.shared.running_threads.lock();
            while *running > 0 {
                self.inner.shared.stopped.wait(&mut running);
            }
        }
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
    use super::*;

    #[test]
    fn wait_reports_a_server_thread_that_panicked() {
        let handle = Server::with_options(ServerOptions {
            addr: "127.0.0.1:0".into(),
            ..ServerOptions::default()
        })
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
