//! mprpc: protobuf services over a hand-rolled mio multi-reactor, discovered
//! through ZooKeeper.
//!
//! Where things are (each file's top comment says more):
//!
//! * [`codec`] — our wire format, [documented there](codec): `frame` (frame
//!   types and encoders), `decoder` (incremental, zero-copy decoding),
//!   `format` ([`WireFormat`]: ours or the seed's, told apart by a stream's
//!   first two bytes) and [`codec::seed`] (the seed's format, all of it).
//! * `net` — socket plumbing both sides share: `Transport` (one
//!   non-blocking connection: socket, TLS session if any, read and write
//!   buffers, writable interest), `FlushList` (the connections to flush once
//!   per loop turn) and [`tls`] (TLS settings: [`tls::ServerTls`],
//!   [`tls::ClientTls`]); [`auth`] — auth tokens, sent once per connection
//!   and compared in constant time.
//! * [`service`] — the contract generated service code implements (sync
//!   handlers, or futures for services that answer later);
//!   [`responder`] — a [`Responder`] completes such a call from any thread;
//!   `deadline` — calls started while serving one inherit its deadline;
//!   [`reflection`] — the built-in `mprpc.Reflection` service every server
//!   adds, listing its services and serving their schemas.
//! * [`server`] — the provider's TCP server. `acceptor` deals connections to
//!   the reactors; `reactor/` is one event loop (`mod`), reading under
//!   backpressure (`read`), idle and slow-frame deadlines (`deadlines`) and
//!   shutdown (`drain`); `protocol/` holds the interface every wire format
//!   implements (`mod`, which also tells them apart by the first bytes), the
//!   two RPC formats (`mprpc`, `seed`) and admin HTTP (`http`); `dispatch`
//!   runs a handler inline, on the pool or, for services that answer later,
//!   as a future on the reactor's executor (`pending`), found through `table` (service
//!   name → service), once `limit/` (per-method concurrency limits, fixed
//!   or adaptive) admits it; `connection` is a transport plus the server's
//!   per-connection bookkeeping, `close` the reasons for closing one;
//!   `workers` is the pool for blocking services, `timer` the hashed timer
//!   wheel, `metrics` per-method counts and latency (`metrics_log` logs
//!   them periodically), `stats` per-connection and per-reactor counters;
//!   `admin/` serves the admin pages (`/metrics` in `prometheus`, `/status`
//!   and `/connections` in `status`, the page `/`, the HTTP subset in
//!   `http`, the recent-latency window in `recent`).
//! * [`provider`] — the seed's `RpcProvider`: server + ZooKeeper
//!   registration + graceful shutdown on signals.
//! * [`client`] — the consumer. `mod` is the [`Channel`] API and `options`
//!   its settings; `call` delivers an outcome (callback, future or blocking
//!   wait); `queue` carries calls to the I/O driver; `conn` is
//!   `ProviderConn`, one multiplexed connection; `driver/` is the I/O loop
//!   (`mod`), calls onto connections (`route`), replies matched by id
//!   (`replies`), deadlines and connect timeouts (`timers`); `balance` picks
//!   a provider, `health` backs off failing ones, `legacy` makes calls in
//!   the seed's format.
//! * [`discovery`] — where providers come from: the `endpoint` module's
//!   [`Endpoint`], [`Discover`] and [`StaticDiscover`] (a fixed list), or the
//!   registry, chosen by the config.
//! * `registry` (feature `zookeeper`) — ZooKeeper: the registrar that keeps
//!   a provider registered, and the watched cache consumers discover from.
//! * [`balance`] — the load-balancing policy names ([`LoadBalance`]), apart
//!   from the client so that [`config`] does not depend on it.
//! * [`controller`], [`status`] — per-call options and outcomes;
//!   [`metadata`] — key/value pairs carried with requests and replies;
//!   [`trace`] — trace ids and the span each served call runs in;
//!   [`interceptor`] — middleware chains on both sides.
//! * [`config`] — the seed's config file and every key the framework reads;
//!   `app` and `logging` (feature `app`) — the seed's `Init` with a command
//!   line, and the daily log file.
//!
//! Both features are on by default. Without them (`default-features =
//! false`) the library is the core — codec, server, client, static
//! discovery — without ZooKeeper, tokio, clap or tracing-subscriber.
//!
//! A user crate depends on `mprpc` (and `mprpc-build` as a build
//! dependency) and nothing else: generated code reaches prost and bytes
//! through this crate. The names a provider or consumer needs are in
//! [`prelude`], and [`include_proto!`] pulls the generated code in:
//!
//! ```ignore
//! pub mod fixbug {
//!     mprpc::include_proto!("fixbug"); // $OUT_DIR/fixbug.rs, named after the package
//! }
//! use mprpc::prelude::*;
//! ```

/// Implements `Debug` as the `Display` sentence for public errors: a
/// `main() -> Result<(), Box<dyn Error>>` prints its error with `{:?}`, so
/// this is what a user sees when such a `main` fails.
macro_rules! debug_as_display {
    ($($error:ty),* $(,)?) => {
        $(impl std::fmt::Debug for $error {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(self, f)
            }
        })*
    };
}

#[cfg(feature = "app")]
pub mod app;
pub mod auth;
pub mod balance;
#[cfg(feature = "certs")]
pub mod certs;
pub mod client;
pub mod codec;
pub mod config;
pub mod controller;
mod deadline;
pub mod discovery;
mod endpoint;
pub mod interceptor;
#[cfg(feature = "app")]
pub mod logging;
pub mod metadata;
mod net;
/// TLS settings: [`tls::ServerTls`] for providers, [`tls::ClientTls`] for consumers.
pub use net::tls;
pub mod provider;
pub mod reflection;
#[cfg(feature = "zookeeper")]
pub mod registry;
pub mod responder;
pub mod server;
pub mod service;
pub mod status;
pub mod trace;

#[cfg(feature = "app")]
pub use app::{AppArgs, Application};
pub use balance::LoadBalance;
pub use client::{Channel, ChannelOptions};
pub use config::{Config, ConfigError};
pub use controller::{CallOptions, CancelHandle, Controller};
pub use discovery::{Discover, Endpoint, StaticDiscover, WireFormat};
pub use interceptor::{CallInfo, ClientCall, ClientInterceptor, Interceptor, Outcome};
pub use metadata::Metadata;
pub use provider::{ProviderHandle, RpcProvider};
pub use responder::{Reply, Responder};
pub use service::{CallContext, Schema, Service};
pub use status::{Code, Status};
pub use trace::TraceId;
/// The `tracing` crate, so a handler logs without a dependency of its own:
/// `mprpc::tracing::info!(account = %name, "transfer refused")`. What it
/// logs goes to mprpc's log (and names the call's trace id: see the README).
pub use tracing;

debug_as_display!(
    codec::ProtocolError,
    config::ConfigError,
    discovery::DiscoverError,
    metadata::MetadataTooLong,
    provider::ProviderError,
    status::Status,
    tls::TlsError,
);
#[cfg(feature = "zookeeper")]
debug_as_display!(registry::RegistryError);

/// Everything a provider or consumer `main` uses, in one `use`:
/// `use mprpc::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "app")]
    pub use crate::app::{AppArgs, Application};
    pub use crate::client::{CallHandle, Channel, ChannelOptions, TypedCall};
    pub use crate::config::Config;
    pub use crate::controller::{CallOptions, CancelHandle, Controller};
    pub use crate::discovery::{Discover, Endpoint, StaticDiscover};
    pub use crate::interceptor::{CallInfo, ClientCall, ClientInterceptor, Interceptor, Outcome};
    pub use crate::metadata::Metadata;
    pub use crate::provider::{ProviderHandle, RpcProvider};
    pub use crate::responder::{Reply, Responder};
    pub use crate::service::{CallContext, Service};
    pub use crate::status::{Code, Status};
    pub use crate::trace::TraceId;
}

/// Includes the code `mprpc-build` generated for a protobuf package
/// (`$OUT_DIR/<package>.rs`), as `tonic::include_proto!` does:
/// `pub mod fixbug { mprpc::include_proto!("fixbug"); }`.
#[macro_export]
macro_rules! include_proto {
    ($package:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
    };
}

/// Re-exports used by generated code, so user crates need no extra deps
/// (`mprpc-build` points prost-build's `prost_path` here).
#[doc(hidden)]
pub mod __private {
    pub use bytes;
    pub use prost;
}
