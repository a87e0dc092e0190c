//! How a channel behaves: timeouts, limits, balancing, connections, threads.

use std::time::Duration;

use super::LoadBalance;
use crate::app::config::Config;
use crate::call::interceptor::{ClientInterceptor, ClientInterceptors};
use crate::net::auth::AuthToken;
use crate::net::tls::ClientTls;
use crate::protocol::mprpc::DEFAULT_MAX_FRAME;

/// How a channel behaves. `Default` suits most uses; `from_config` takes
/// the timeouts, limits and threads from the seed-format config file.
#[derive(Debug, Clone)]
pub struct ChannelOptions {
    /// Timeout of a call that does not set its own (`Duration::MAX`: none).
    pub call_timeout: Duration,
    /// A call started while serving one (inside a handler) times out at
    /// what remains of that call's deadline minus this margin, if sooner.
    pub deadline_margin: Duration,
    /// How long a TCP connect (and, with TLS, the handshake) may take
    /// before the attempt counts as failed.
    pub connect_timeout: Duration,
    /// Largest frame body sent or accepted: a larger request fails locally,
    /// a larger reply fails its call (the connection carries on); both with
    /// `ResourceExhausted`.
    pub max_frame_size: usize,
    /// Calls in flight on this channel beyond which new calls fail at once
    /// with `ResourceExhausted`.
    pub max_inflight: usize,
    /// How calls are spread over a service's providers.
    pub load_balance: LoadBalance,
    /// Extra connection attempts (on other providers) for a call whose
    /// request could not be sent because connecting failed.
    pub max_retries: u32,
    /// First back-off of a failing provider; doubles per failure...
    pub backoff_base: Duration,
    /// ...up to this.
    pub backoff_max: Duration,
    /// Persistent connections per provider address, per I/O thread.
    pub connections_per_endpoint: usize,
    /// I/O driver threads (event loops). Each owns its own connections;
    /// calls from other threads are spread over them in turn, and calls
    /// started inside a callback stay on the callback's thread. More than
    /// one helps only when one client thread is the bottleneck and cores
    /// are free.
    pub io_threads: usize,
    /// Speak TLS to every provider (of our format), verifying its
    /// certificate; `None`: plain, and providers that publish
    /// `tls=required` are not called.
    pub tls: Option<ClientTls>,
    /// Sent once on each new connection, before its first request, to
    /// providers that require a token.
    pub auth_token: Option<AuthToken>,
    /// Interceptors every call of this channel passes, in order (none by
    /// default; see [`crate::call::interceptor`]).
    pub interceptors: ClientInterceptors,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            call_timeout: Duration::from_secs(5),
            deadline_margin: Duration::from_millis(5),
            connect_timeout: Duration::from_secs(2),
            max_frame_size: DEFAULT_MAX_FRAME,
            max_inflight: 100_000,
            load_balance: LoadBalance::RoundRobin,
            max_retries: 2,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            connections_per_endpoint: 1,
            io_threads: 1,
            tls: None,
            auth_token: None,
            interceptors: ClientInterceptors::default(),
        }
    }
}

impl ChannelOptions {
    /// These options with `interceptor` added at the end of the chain.
    pub fn with_interceptor(mut self, interceptor: impl ClientInterceptor) -> ChannelOptions {
        self.interceptors.push(std::sync::Arc::new(interceptor));
        self
    }

    /// Defaults, with `call_timeout_ms`, `deadline_margin_ms`, `connect_timeout_ms`,
    /// `max_frame_size`, `load_balance`, `client_io_threads`, the TLS keys
    /// (`tls_ca` and the rest) and `auth_token` (its first token) from the
    /// config.
    pub fn from_config(config: &Config) -> ChannelOptions {
        ChannelOptions {
            call_timeout: config.call_timeout,
            deadline_margin: config.deadline_margin,
            connect_timeout: config.connect_timeout,
            max_frame_size: config.max_frame_size,
            load_balance: config.load_balance,
            io_threads: config.client_io_threads,
            tls: config.client_tls.clone(),
            auth_token: config.auth_tokens.first().cloned(),
            ..ChannelOptions::default()
        }
    }
}
