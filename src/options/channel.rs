//! The consumer's channel options: timeouts, limits, balancing, threads.

use std::time::Duration;

use super::kinds::{FirstToken, Millis, Number, OptionalMillis, Parsed, Positive};
use crate::call::interceptor::{ClientInterceptor, ClientInterceptors};
use crate::discovery::balance::LoadBalance;
use crate::net::auth::AuthToken;
use crate::net::tls::ClientTls;

options! {
    /// How a [`Channel`](crate::Channel) behaves. `Default` suits most
    /// uses; `ChannelOptions::from_config` takes the timeouts, limits and
    /// threads from a config file. Change one with its setter:
    /// `ChannelOptions::default().io_threads(2)`.
    pub struct ChannelOptions("consumer") {
        /// Timeout of a call that does not set its own (`Duration::MAX`:
        /// none).
        ["call_timeout_ms", Millis]
        call_timeout: Duration = Duration::from_secs(5),
        /// A call started while serving one (inside a handler) times out at
        /// what remains of that call's deadline minus this, or at its own
        /// timeout if sooner.
        ["deadline_margin_ms", Millis]
        deadline_margin: Duration = Duration::from_millis(5),
        /// How long a TCP connect (and, with TLS, the handshake) may take
        /// before the attempt counts as failed.
        ["connect_timeout_ms", Millis]
        connect_timeout: Duration = Duration::from_secs(2),
        /// Eject a provider when this many calls in a row on one of its
        /// connections pass their deadline with no reply read there (a
        /// silent link: packets dropped, no reset): it gets no calls while
        /// another provider is usable, until a probe on a fresh connection
        /// (after the back-off, answered within `connect_timeout_ms`) finds
        /// it answering again (0: never).
        ["eject_after_timeouts", Number]
        eject_after_timeouts: u32 = 3,
        /// Ping a connection with calls or streams in flight that has read
        /// nothing this long: a request for a service no provider has,
        /// which every provider, of any version, answers at once from its
        /// event loop. It finds a peer that stopped answering (a one-way
        /// cut, a hung process, a relay that stopped forwarding) sooner
        /// than TCP, or where TCP cannot (0: never).
        ["ping_interval_ms", OptionalMillis]
        ping_interval: Option<Duration> = Some(Duration::from_secs(10)),
        /// A pinged connection that reads nothing within this is declared
        /// dead: closed, its calls in flight fail `Unavailable` (they may
        /// have run), its provider backed off. A dead peer is thus found
        /// within `ping_interval_ms` plus this.
        ["ping_timeout_ms", Millis]
        ping_timeout: Duration = Duration::from_secs(5),
        /// TCP keepalive on every connection, with this idle time before
        /// the first probe (then three probes a third of it apart), so the
        /// kernel finds a dead peer of an idle connection (0: the kernel's
        /// default, off).
        ["tcp_keepalive_ms", OptionalMillis]
        tcp_keepalive: Option<Duration> = Some(Duration::from_secs(30)),
        /// `TCP_USER_TIMEOUT`: the kernel drops a connection whose sent
        /// data or keepalive probes stay unacknowledged this long (calls on
        /// it fail `Unavailable`) (0: the kernel's default, about 15
        /// minutes of retransmissions).
        ["tcp_user_timeout_ms", OptionalMillis]
        tcp_user_timeout: Option<Duration> = Some(Duration::from_secs(30)),
        /// The largest frame body sent or accepted, in bytes: a larger
        /// request fails locally, a larger reply fails its call (the
        /// connection carries on); both with `ResourceExhausted`.
        ["max_frame_size", Positive]
        max_frame_size: usize = crate::protocol::mprpc::DEFAULT_MAX_FRAME,
        /// Messages a stream's peer may send before this side grants more
        /// (flow control, per stream and direction): a reader that stops
        /// holds about this many messages of its sender's.
        ["stream_window", Positive]
        stream_window: usize = 1024,
        /// Bytes of a stream's message frames this side sends ahead of the
        /// server's reading (a cap beside the server's window in
        /// messages): a send waits while what the server has not read
        /// yet adds up to this.
        ["stream_window_bytes", Positive]
        stream_window_bytes: usize = 1 << 20,
        /// Calls in flight on this channel beyond which new calls fail at
        /// once with `ResourceExhausted`.
        max_inflight: usize = 100_000,
        /// How calls are spread over a service's providers: round_robin,
        /// random, least_outstanding or consistent_hash (by
        /// `CallOptions::hash_key`).
        ["load_balance", Parsed]
        load_balance: LoadBalance = LoadBalance::RoundRobin,
        /// Extra connection attempts (on other providers) for a call whose
        /// request could not be sent because connecting failed.
        max_retries: u32 = 2,
        /// First back-off of a failing provider; doubles per failure...
        backoff_base: Duration = Duration::from_millis(100),
        /// ...up to this.
        backoff_max: Duration = Duration::from_secs(2),
        /// Persistent connections per provider address, per I/O thread.
        /// New calls go round robin over them; a call started in a reply's
        /// callback goes back to the connection that reply came on.
        connections_per_endpoint: usize = 1,
        /// I/O threads (event loops) per channel, each with its own
        /// connections; calls from other threads are spread over them in
        /// turn, calls started inside a callback stay on its thread. More
        /// help only when one client thread is the bottleneck and cores
        /// are free.
        ["client_io_threads", Positive]
        io_threads: usize = 1,
        /// Speak TLS to every provider (of our format), verifying its
        /// certificate; `None`: plain, and providers that publish
        /// `tls=required` are not called. A config file sets it with
        /// `tls_ca`, `tls_server_name`, `tls_client_cert` and
        /// `tls_client_key`.
        tls: Option<ClientTls> = None,
        /// Sent once on each new connection, before its first request, to
        /// providers that require a token (a config file's `auth_token`:
        /// its first token).
        ["auth_token", FirstToken]
        auth_token: Option<AuthToken> = None,
        /// Interceptors every call of this channel passes, in order (none
        /// by default; see [`crate::call::interceptor`]).
        interceptors: ClientInterceptors = ClientInterceptors::default(),
    }
}

impl ChannelOptions {
    /// These options with `interceptor` added at the end of the chain.
    #[must_use]
    pub fn with_interceptor(mut self, interceptor: impl ClientInterceptor) -> ChannelOptions {
        self.interceptors.push(std::sync::Arc::new(interceptor));
        self
    }
}
