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
mod running;
mod serve;
mod settings;
mod shared;
mod speaks;
mod stats;
pub(crate) mod stream;
pub(crate) mod stream_pool;
mod table;
mod thread;
mod timer;
mod warn_limit;
mod workers;

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::app::config::Config;
use crate::call::interceptor::Interceptor;
use crate::net::tls::{ServerTls, TlsMode};
use crate::service::Service;
use admin::Admin;
use limit::Limits;
use metrics::MetricsRegistry;
use running::HandleInner;
use table::ServiceTable;
use workers::WorkerPool;

pub use crate::options::{AdminOptions, ConcurrencyLimiter, MaxConcurrency, ServerOptions};
pub use limit::MethodConcurrency;
pub use metrics::{MethodMetrics, Metrics};
pub use running::ServerHandle;
pub use shared::BackpressureStats;
pub(crate) use shared::ServerShared;

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
        let open_files = crate::sys::raise_open_files();
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
        self.options.reactor_threads = self.options.effective_reactor_threads();
        let addr = resolve(&self.options.addr)?;
        let listener = StdListener::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        listener.set_nonblocking(true)?;
        crate::sys::set_listen_backlog(&listener, self.options.listen_backlog)?;
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
        let settings = settings::settings_in_effect(&self.options, &self.config_keys);
        let (admin, admin_listener) =
            start_admin(&self.options.admin, local_addr, &metrics, settings)?;
        let admin_addr = match &admin_listener {
            Some(listener) => Some(listener.local_addr()?),
            None => admin.as_ref().map(|_| local_addr),
        };
        let reactor_count = self.options.reactor_threads;
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
            crate::sys::TcpLiveness {
                keepalive: self.options.tcp_keepalive,
                user_timeout: self.options.tcp_user_timeout,
            },
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
        Ok(ServerHandle::new(HandleInner {
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
        }))
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

/// What a reactor does with one decoded request of an inline service:
/// run the handler and append the reply frame to `out`; returns whether
/// the call succeeded. For benchmarks and tests of the dispatch path; not a
/// stable API.
#[doc(hidden)]
pub fn serve_request(
    service: &dyn Service,
    mut request: crate::protocol::mprpc::Request,
    ctx: &crate::service::CallContext,
    out: &mut bytes::BytesMut,
) -> bool {
    let format = crate::protocol::WireFormat::Mprpc;
    handler::reply_with_handler(service, &mut request, ctx, format, out)
        == crate::call::status::Code::Ok
}

fn resolve(addr: &str) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{addr}' resolves to no address"),
        )
    })
}
