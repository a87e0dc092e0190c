//! The seed's `RpcProvider`: publish services, register them in ZooKeeper,
//! serve until told to stop, and stop without losing a call.
//!
//! ```no_run
//! # use mprpc::{Application, RpcProvider};
//! # struct UserService;
//! # impl mprpc::Service for UserService {
//! #     fn name(&self) -> &'static str { "UserServiceRpc" }
//! #     fn methods(&self) -> &'static [&'static str] { &[] }
//! #     fn call(&self, m: &str, _: &mprpc::CallContext, _: bytes::Bytes, _: &mut bytes::BytesMut)
//! #         -> Result<(), mprpc::Status> { Err(mprpc::Status::unknown_method("UserServiceRpc", m)) }
//! # }
//! # fn user_service() -> UserService { UserService }
//! let app = Application::init();                 // -i test.conf
//! let mut provider = RpcProvider::new(&app.config);
//! provider.notify_service(user_service());       // as many as you like
//! provider.run().unwrap();                       // blocks until SIGINT/SIGTERM
//! ```
//!
//! `run()` prints what the seed's provider prints on stdout once it listens
//! (the address is the one actually bound, so `rpcserverport=0` shows the
//! port it got):
//!
//! ```text
//! service_name:UserServiceRpc
//! method_name:Login
//! method_name:Register
//! RpcProvider start service at ip:127.0.0.1 port:8000
//! ```
//!
//! `start()` prints nothing (for embedding); [`ProviderHandle::announce`]
//! prints the same lines.
//!
//! Graceful shutdown order (what Dubbo and brpc do too):
//! 1. delete our ZooKeeper nodes, so consumers stop picking us;
//! 2. keep serving for the drain period (`drain_ms`) while their watches fire;
//! 3. stop the server: it answers what is in flight, then closes.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
#[cfg(feature = "zookeeper")]
use std::time::Duration;

use crate::app::config::{Config, RegistryKind};
#[cfg(feature = "zookeeper")]
use crate::registry::{Registrar, RegistryError};
use crate::server::{Server, ServerHandle};
use crate::service::Service;

/// Why a provider could not start.
#[non_exhaustive]
pub enum ProviderError {
    /// The server could not listen (address in use, bad address...).
    Listen(io::Error),
    /// ZooKeeper could not be reached or written.
    #[cfg(feature = "zookeeper")]
    Registry(RegistryError),
    /// Registration was asked for, but this build has no `zookeeper`
    /// feature (use `without_registry` or `registry=none`).
    #[cfg(not(feature = "zookeeper"))]
    NoZooKeeper,
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProviderError::Listen(e) => write!(f, "cannot start the RPC server: {e}"),
            #[cfg(feature = "zookeeper")]
            ProviderError::Registry(e) => write!(f, "cannot register the services: {e}"),
            #[cfg(not(feature = "zookeeper"))]
            ProviderError::NoZooKeeper => {
                f.write_str("registry=zookeeper, but mprpc was built without its zookeeper feature")
            }
        }
    }
}

impl std::error::Error for ProviderError {}

/// A provider being assembled.
pub struct RpcProvider {
    config: Config,
    server: Server,
    register: bool,
}

impl std::fmt::Debug for RpcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcProvider")
            .field("server", &self.server)
            .field("register", &self.register)
            .finish_non_exhaustive()
    }
}

impl RpcProvider {
    /// A provider configured from `config`; it registers in ZooKeeper
    /// unless the config says `registry=none`.
    pub fn new(config: &Config) -> RpcProvider {
        RpcProvider {
            config: config.clone(),
            server: Server::new(config),
            register: config.registry.kind == RegistryKind::ZooKeeper,
        }
    }

    /// Publishes a service whose handlers run on the reactor threads
    /// (the seed's `NotifyService`).
    pub fn notify_service(&mut self, service: impl Service) -> &mut Self {
        self.server.add_service(service);
        self
    }

    /// Publishes a service whose handlers may block; they run on the
    /// worker pool.
    pub fn notify_blocking_service(&mut self, service: impl Service) -> &mut Self {
        self.server.add_blocking_service(service);
        self
    }

    /// Serve without registering in ZooKeeper (consumers need the address);
    /// the config's `registry=none` does the same.
    pub fn without_registry(&mut self) -> &mut Self {
        self.register = false;
        self
    }

    /// Starts serving, then registers every service. Returns at once.
    pub fn start(self) -> Result<ProviderHandle, ProviderError> {
        let server = self.server.start().map_err(ProviderError::Listen)?;
        let addr = published_addr(&self.config, server.local_addr());
        #[cfg(not(feature = "zookeeper"))]
        if self.register {
            server.shutdown();
            server.wait();
            return Err(ProviderError::NoZooKeeper);
        }
        #[cfg(feature = "zookeeper")]
        let registrar = if self.register {
            match Registrar::start(&self.config, addr, server.services()) {
                Ok(r) => {
                    server.set_registry(r.admin_probe());
                    Some(r)
                }
                Err(e) => {
                    server.shutdown();
                    server.wait();
                    return Err(ProviderError::Registry(e));
                }
            }
        } else {
            None
        };
        Ok(ProviderHandle {
            inner: Arc::new(HandleInner {
                server,
                #[cfg(feature = "zookeeper")]
                registrar,
                addr,
                #[cfg(feature = "zookeeper")]
                drain: self.config.provider.drain,
                stopping: AtomicBool::new(false),
            }),
        })
    }

    /// The seed's `Run()`: start, print the services, methods and address
    /// on stdout, then block until SIGINT or SIGTERM, then shut down
    /// gracefully.
    pub fn run(self) -> Result<(), ProviderError> {
        let handle = self.start()?;
        handle.announce();
        #[cfg(feature = "app")]
        handle.stop_on_signals().map_err(ProviderError::Listen)?;
        handle.wait();
        Ok(())
    }
}

/// The address consumers should dial: the configured IP (a wildcard listen
/// address is useless to them) with the real port.
fn published_addr(config: &Config, bound: SocketAddr) -> SocketAddr {
    match config.provider.rpc_server_ip.parse::<std::net::IpAddr>() {
        Ok(ip) if !ip.is_unspecified() => SocketAddr::new(ip, bound.port()),
        _ => bound,
    }
}

/// The seed's start line for `addr` (scripts wait for it and read the port).
pub(crate) fn start_line(addr: SocketAddr) -> String {
    format!(
        "RpcProvider start service at ip:{} port:{}",
        addr.ip(),
        addr.port()
    )
}

struct HandleInner {
    server: ServerHandle,
    #[cfg(feature = "zookeeper")]
    registrar: Option<Registrar>,
    addr: SocketAddr,
    #[cfg(feature = "zookeeper")]
    drain: Duration,
    stopping: AtomicBool,
}

/// Controls a running provider from any thread.
#[derive(Clone)]
pub struct ProviderHandle {
    inner: Arc<HandleInner>,
}

impl std::fmt::Debug for ProviderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderHandle")
            .field("addr", &self.inner.addr)
            .field("server", &self.inner.server)
            .field("stopping", &self.inner.stopping.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ProviderHandle {
    /// The address registered in ZooKeeper.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Prints the seed's start-up lines on stdout: `service_name:` and
    /// `method_name:` for every service, then `RpcProvider start service at
    /// ip:IP port:PORT` with the address consumers dial.
    pub fn announce(&self) {
        let mut out = String::new();
        for service in self.inner.server.services() {
            out.push_str(&format!("service_name:{}\n", service.name));
            for method in service.methods {
                out.push_str(&format!("method_name:{method}\n"));
            }
        }
        out.push_str(&start_line(self.inner.addr));
        // One write, so the lines stay together beside other output.
        println!("{out}");
    }

    /// The running server, for metrics and connection counts.
    pub fn server(&self) -> &ServerHandle {
        &self.inner.server
    }

    /// The ZooKeeper registration, `None` when serving without a registry.
    #[cfg(feature = "zookeeper")]
    pub fn registrar(&self) -> Option<&Registrar> {
        self.inner.registrar.as_ref()
    }

    /// Deregisters, keeps serving for the drain period, then stops the
    /// server after it has answered every call in flight. Blocks until done.
    pub fn shutdown_gracefully(&self) {
        if self.inner.stopping.swap(true, Ordering::AcqRel) {
            self.wait();
            return;
        }
        #[cfg(feature = "zookeeper")]
        if let Some(registrar) = &self.inner.registrar {
            tracing::info!(addr = %self.inner.addr, "deregistering from ZooKeeper");
            registrar.deregister();
            tracing::info!(drain = ?self.inner.drain, "draining before shutdown");
            std::thread::sleep(self.inner.drain);
        }
        self.inner.server.shutdown();
        self.inner.server.wait();
    }

    /// Blocks until the server has stopped.
    pub fn wait(&self) {
        self.inner.server.wait();
    }

    /// Shuts down gracefully on the first SIGINT or SIGTERM (on a thread of
    /// its own); a second signal while draining exits at once.
    #[cfg(feature = "app")]
    pub fn stop_on_signals(&self) -> io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let handle = self.clone();
        std::thread::Builder::new()
            .name("mprpc-signals".into())
            .spawn(move || {
                let mut seen = 0;
                for signal in signals.forever() {
                    seen += 1;
                    if seen > 1 {
                        eprintln!("second signal {signal}: exiting now");
                        std::process::exit(130);
                    }
                    eprintln!("signal {signal}: shutting down gracefully (again to force)");
                    let h = handle.clone();
                    std::thread::spawn(move || h.shutdown_gracefully());
                }
            })?;
        Ok(())
    }
}
