//! The provider's server options: limits, sizes, timeouts, admin pages.

use std::net::SocketAddr;
use std::time::Duration;

use super::kinds::{
    Number, OnOffAuto, OptionalMillis, OptionalNumber, OptionalSecs, Parsed, Positive, Token,
    Tokens,
};
use super::{kinds::Bool, ConcurrencyLimiter, MaxConcurrency};
use crate::call::interceptor::Interceptors;
use crate::net::auth::AuthToken;
use crate::net::tls::ServerTls;

options! {
    /// How a [`Server`](crate::server::Server) behaves. `Default` listens
    /// on a free loopback port with the config file's defaults;
    /// `ServerOptions::from_config` takes them from a config file. Change
    /// one with its setter: `ServerOptions::default().reactor_threads(2)`.
    pub struct ServerOptions("provider") {
        /// Address to listen on (`ip:port`; port 0 picks a free one). A
        /// config file sets it with `rpcserverip` and `rpcserverport`.
        addr: String = "127.0.0.1:0".into(),
        /// Event loops, each owning the connections it was handed
        /// (0: one per core).
        ["reactor_threads", Number]
        reactor_threads: usize = 0,
        /// Threads of the pool that runs blocking services' handlers.
        ["worker_threads", Positive]
        worker_threads: usize = 4,
        /// The largest frame body accepted or sent, in bytes, on both
        /// sides; a larger call fails alone, with `ResourceExhausted`.
        ["max_frame_size", Positive]
        max_frame_size: usize = crate::protocol::mprpc::DEFAULT_MAX_FRAME,
        /// Messages a stream's peer may send before this side grants more
        /// (flow control, per stream and direction): a reader that stops
        /// holds about this many messages of its sender's.
        ["stream_window", Positive]
        stream_window: usize = 1024,
        /// Bytes of a stream's message frames this side sends ahead of its
        /// client's reading (a cap beside the client's window in
        /// messages): a handler's send waits while what the client has
        /// not read yet adds up to this, so a stream of large messages
        /// holds about this much, not a whole window of them.
        ["stream_window_bytes", Positive]
        stream_window_bytes: usize = 1 << 20,
        /// Open connections above which new ones are refused cleanly. At
        /// start a provider raises its open-files limit (`RLIMIT_NOFILE`)
        /// to the hard limit and lowers this to that limit minus 128
        /// (logged), so connections beyond it are refused instead of
        /// `accept` failing.
        ["max_connections", Positive]
        max_connections: usize = 100_000,
        /// Calls a connection may have in flight before the server stops
        /// reading from it.
        ["max_inflight_per_connection", Positive]
        max_inflight_per_connection: usize = 1024,
        /// Blocking calls waiting for a worker, over all connections, beyond
        /// which a new one is answered `Overloaded` without running: a bound
        /// on the queue's memory (`concurrency_limiter=auto` bounds its
        /// latency). A closed connection's queued calls never run.
        ["max_queued_calls", Positive]
        max_queued_calls: usize = 16 * 1024,
        /// Input bytes the connections may buffer at once beyond 256 KiB
        /// each (large partial frames); a connection whose frame would pass
        /// it is closed. Buffers grow as bytes arrive and are given back
        /// once a large frame is done.
        ["max_buffered_bytes", Positive]
        max_buffered_bytes: usize = 1 << 30,
        /// Unsent reply bytes on a connection above which it is no longer
        /// read (a peer that never reads costs bounded memory).
        ["write_high_water_bytes", Positive]
        write_high_water: usize = 4 * 1024 * 1024,
        /// Close a connection idle this long (0: never).
        ["idle_timeout_ms", OptionalMillis]
        idle_timeout: Option<Duration> = Some(Duration::from_secs(300)),
        /// Close a connection whose frame stays incomplete this long, so a
        /// slow peer (slow loris) cannot pin buffers (0: never).
        ["frame_timeout_ms", OptionalMillis]
        frame_timeout: Option<Duration> = Some(Duration::from_secs(10)),
        /// With `auth_token` set: close an RPC connection that has not sent
        /// a token this long after it opened (0: never).
        ["auth_timeout_ms", OptionalMillis]
        auth_timeout: Option<Duration> = Some(Duration::from_secs(10)),
        /// Close a connection whose unsent replies have not moved this long:
        /// a peer that never reads (its reading already paused at
        /// `write_high_water_bytes`) cannot hold memory longer (0: never).
        ["write_stall_timeout_ms", OptionalMillis]
        write_stall_timeout: Option<Duration> = Some(Duration::from_secs(30)),
        /// TCP keepalive on every connection (a provider's accepted ones, a
        /// consumer's own), with this idle time before the first probe
        /// (then three probes a third of it apart), so a peer gone without
        /// a word (its machine down, the link cut) does not hold an idle
        /// connection (0: the kernel's default, off).
        ["tcp_keepalive_ms", OptionalMillis]
        tcp_keepalive: Option<Duration> = Some(Duration::from_secs(30)),
        /// `TCP_USER_TIMEOUT` on every connection (both sides): the kernel
        /// drops one whose sent data or keepalive probes stay
        /// unacknowledged this long; a consumer's calls on it fail
        /// `Unavailable` (0: the kernel's default, about 15 minutes).
        ["tcp_user_timeout_ms", OptionalMillis]
        tcp_user_timeout: Option<Duration> = Some(Duration::from_secs(30)),
        /// Connections the kernel queues before the server accepts them
        /// (capped by `net.core.somaxconn`).
        ["listen_backlog", Number]
        listen_backlog: u32 = 4096,
        /// On shutdown, the longest the server waits for in-flight calls.
        shutdown_grace: Duration = Duration::from_secs(5),
        /// `auto`: every method of a blocking service without a fixed limit
        /// gets an adaptive concurrency limit (brpc's auto limiter: about
        /// its lowest latency times its peak throughput); `off`: none.
        ["concurrency_limiter", Parsed]
        concurrency_limiter: ConcurrencyLimiter = ConcurrencyLimiter::Off,
        /// Fixed limits on a method's calls running or queued at once: `100`
        /// (every method) or `EchoService.Echo:50, *:100` (per method, `*`
        /// for the rest; 0: none). A call over its limit is answered
        /// `Overloaded` at once, without running; a method's own limit wins
        /// over the adaptive one.
        ["max_concurrency", Parsed]
        max_concurrency: MaxConcurrency = MaxConcurrency::default(),
        /// TLS on the port (`None`: plain only). A config file sets it with
        /// `tls`, `tls_cert`, `tls_key` and `tls_client_ca`.
        tls: Option<ServerTls> = None,
        /// Tokens (comma-separated) a connection must send one of before its
        /// calls run (none: no authentication); consumers send the first.
        /// Never logged.
        ["auth_token", Tokens]
        auth_tokens: Vec<AuthToken> = Vec::new(),
        /// The admin pages (HTTP): whether, where, and the token they require.
        admin: AdminOptions = AdminOptions::default(),
        /// Log one metrics line per called method this often (0: off).
        ["metrics_log_interval_s", OptionalSecs]
        metrics_log_interval: Option<Duration> = Some(Duration::from_secs(60)),
        /// After a storm of connection closes (1024 on a reactor), give the
        /// memory the allocator kept back to the kernel once closes stop for
        /// a second (glibc's `malloc_trim`).
        ["trim_memory", Bool]
        trim_memory: bool = true,
        /// Interceptors every call passes, in order (none by default; see
        /// [`crate::call::interceptor`]).
        interceptors: Interceptors = Interceptors::default(),
    }
}

options! {
    /// Where and whether the admin pages (`/metrics`, `/status`, `/`,
    /// `/connections`) are served.
    pub struct AdminOptions("provider") {
        /// Serve the admin pages over HTTP on the RPC port: `on`, `off`, or
        /// `auto` (`None`) = on only when listening on a loopback address.
        ["admin", OnOffAuto]
        enabled: Option<bool> = None,
        /// Serve the admin pages on this port (same IP) instead of the RPC
        /// port (0: any free port).
        ["admin_port", OptionalNumber]
        port: Option<u16> = None,
        /// A token every admin request must carry (`Authorization: Bearer
        /// TOKEN` or `?token=TOKEN`).
        ["admin_token", Token]
        token: Option<AuthToken> = None,
    }
}

impl ServerOptions {
    /// Event loops to start: `reactor_threads`, or one per core for 0.
    pub fn effective_reactor_threads(&self) -> usize {
        match self.reactor_threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }

    /// These options with `interceptor` added at the end of the chain.
    #[must_use]
    pub fn with_interceptor(mut self, interceptor: impl crate::Interceptor) -> ServerOptions {
        self.interceptors.push(std::sync::Arc::new(interceptor));
        self
    }
}

impl AdminOptions {
    /// Whether the pages are on for a server listening on `addr`.
    pub fn is_enabled_for(&self, addr: SocketAddr) -> bool {
        self.enabled.unwrap_or_else(|| addr.ip().is_loopback())
    }
}
