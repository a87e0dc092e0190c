//! mprpc: protobuf services over a hand-rolled mio multi-reactor, discovered
//! through ZooKeeper.
//!
//! Unix only (Linux, the BSDs, macOS): the event loops are mio's epoll or
//! kqueue, and the few calls std does not wrap are POSIX (`sys`); other
//! targets fail to build with a message saying so.
//!
//! Where things are (each file's top comment says more):
//!
//! * [`protocol`] — the wire formats behind one interface (`Protocol`,
//!   brpc's): [`WireFormat`] names them and tells them apart by a stream's
//!   first two bytes; [`protocol::mprpc`] is ours ([documented
//!   there](protocol::mprpc): `frame` types and encoders, `decoder`
//!   (incremental, zero-copy), its `server` and `client` halves) and
//!   [`protocol::seed`] the seed's (its codec and both halves).
//! * [`net`] — socket plumbing both sides share: `Transport` (one
//!   non-blocking connection: socket, TLS session if any, read and write
//!   buffers, writable interest), `FlushList` (the connections to flush once
//!   per loop turn), [`net::tls`] (TLS settings: [`net::tls::ServerTls`],
//!   [`net::tls::ClientTls`]) and [`net::auth`] (auth tokens, sent once per
//!   connection and compared in constant time).
//! * [`call`] — the call's vocabulary, shared by both sides:
//!   [`call::status`] (outcomes), [`call::metadata`] (key/value pairs
//!   carried with requests and replies), [`call::trace`] (trace ids and the
//!   span each served call runs in), `deadline` (calls started while
//!   serving one inherit its deadline), [`call::controller`] (per-call
//!   options and cancellation), [`call::interceptor`] (middleware chains on
//!   both sides).
//! * [`service`] — the contract generated service code implements (sync
//!   handlers, or futures for services that answer later);
//!   [`service::responder`] — a [`Responder`] completes such a call from
//!   any thread; [`service::reflection`] — the built-in `mprpc.Reflection`
//!   service every server adds, listing its services and serving their
//!   schemas.
//! * [`server`] — the provider's TCP server. `acceptor` deals connections to
//!   the reactors; `reactor/` is one event loop (`mod`), reading under
//!   backpressure (`read`), idle and slow-frame deadlines (`deadlines`) and
//!   shutdown (`drain`), and `mailbox` is the part of it other threads post
//!   to; `speaks` tells what a connection speaks by its first bytes and
//!   `serve/` hands its input to admin HTTP (`http`) or to its wire
//!   format's server half as a `Session` (`session`); `dispatch` runs a
//!   handler inline, on the pool or, for services that answer later, as a
//!   future on the reactor's executor (`pending`), found through `table`
//!   (service name → service), once `limit/` (per-method concurrency
//!   limits, fixed or adaptive) admits it; `handler` is how every handler
//!   runs (span, deadline, panics caught) and its reply is packed;
//!   `connection` is a transport plus the server's per-connection
//!   bookkeeping, `close` the reasons for closing one;
//!   `workers` is the pool for blocking services, `timer` the hashed timer
//!   wheel, `metrics` per-method counts and latency (`metrics_log` logs
//!   them periodically), `stats` per-connection and per-reactor counters;
//!   `admin/` serves the admin pages (`/metrics` in `prometheus`, `/status`
//!   and `/connections` in `status`, the page `/`, the HTTP subset in
//!   `http`, the recent-latency window in `recent`).
//! * [`client`] — the consumer. `mod` is the [`Channel`] API and `options`
//!   its settings; `call` delivers an outcome (callback, future or blocking
//!   wait); `queue` carries calls from other threads to the I/O driver;
//!   `request` holds a request as parts until the provider's format packs
//!   it; `conn` is `ProviderConn`, one multiplexed connection; `driver/` is
//!   the I/O loop (`mod`), calls onto connections (`route`), calls started
//!   on the driver's thread (`local`), replies matched by id (`replies`),
//!   deadlines and connect timeouts (`timers`); `balance` picks
//!   a provider, `health` backs off failing ones, `short` makes calls on a
//!   connection each, for formats that cannot multiplex (the seed's).
//! * [`discovery`] — where providers come from: [`Endpoint`], [`Discover`]
//!   and [`StaticDiscover`] (a fixed list), or the registry, chosen by the
//!   config; [`discovery::balance`] names the load-balancing policies
//!   ([`LoadBalance`]).
//! * `registry` (feature `zookeeper`) — ZooKeeper: the registrar that keeps
//!   a provider registered, and the watched cache consumers discover from.
//! * [`options`] — every setting, each declared once (name, type, default,
//!   doc, config key): [`ServerOptions`](options::ServerOptions),
//!   [`ChannelOptions`], and the registry's, the provider's, the log's;
//!   the config parser, `/status` and `docs/configuration.md` read them.
//! * `sys` — every call into the OS that std does not wrap (`read(2)` into
//!   a buffer, `listen(2)` backlog, open-files limit, `malloc_trim`,
//!   `/proc`).
//! * [`app`] — the application shell: [`app::config`] (the seed's config
//!   file, read into the options structs), [`app::provider`] (the seed's
//!   `RpcProvider`: server + ZooKeeper registration + graceful shutdown on
//!   signals), and with feature `app` the seed's `Init` with a command line
//!   ([`AppArgs`], [`Application`]) and `logging` (the daily log file).
//!
//! Features `zookeeper`, `app` and `tls` (TLS and mutual TLS through
//! rustls and ring) are on by default; `certs` (development
//! certificates) is off. Without them (`default-features = false`) the
//! library is the core — protocols, server, client, static discovery —
//! without ZooKeeper, tokio, clap, tracing-subscriber or any crypto; a
//! config file that asks for TLS is then an error naming the feature.
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
//!
//! # A service end to end
//!
//! The code `mprpc-build` generates for a `.proto` service implements
//! [`Service`] and wraps [`Channel`] in a typed stub (the README and
//! docs/guide.md show that way). Written by hand, a service names its
//! methods and answers encoded requests; here the messages are plain bytes.
//! A server on a free loopback port serves it, and a channel calls it:
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use mprpc::prelude::*;
//! use mprpc::server::{Server, ServerOptions};
//!
//! /// `Shout.Upper`: answers its request in capitals.
//! struct Shout;
//!
//! impl Service for Shout {
//!     fn name(&self) -> &'static str {
//!         "Shout"
//!     }
//!
//!     fn methods(&self) -> &'static [&'static str] {
//!         &["Upper"]
//!     }
//!
//!     fn call(
//!         &self,
//!         method: &str,
//!         _ctx: &CallContext,
//!         request: Bytes,
//!         response: &mut BytesMut,
//!     ) -> Result<(), Status> {
//!         match method {
//!             "Upper" => {
//!                 response.extend_from_slice(&request.to_ascii_uppercase());
//!                 Ok(())
//!             }
//!             other => Err(Status::unknown_method(self.name(), other)),
//!         }
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut server = Server::with_options(ServerOptions::default()); // 127.0.0.1, a free port
//! server.add_service(Shout);
//! let handle = server.start()?;
//!
//! let channel = Channel::direct(handle.local_addr())?;
//! let options = CallOptions::default();
//! let reply = channel.call("Shout", "Upper", Bytes::from_static(b"hello"), &options, None)?;
//! assert_eq!(&reply[..], b"HELLO");
//!
//! let refused = channel.call("Shout", "Whisper", Bytes::new(), &options, None);
//! assert_eq!(refused.unwrap_err().code(), Code::UnknownMethod);
//! handle.shutdown();
//! # Ok(())
//! # }
//! ```

#[cfg(not(unix))]
compile_error!("mprpc runs on Unix only (Linux, the BSDs, macOS): it drives sockets through mio's epoll/kqueue and calls POSIX directly (see src/sys)");

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

pub mod app;
pub mod call;
pub mod client;
pub mod discovery;
pub mod net;
pub mod options;
pub mod protocol;
#[cfg(feature = "zookeeper")]
pub mod registry;
pub mod server;
pub mod service;
mod sys;

pub use app::config::{Config, ConfigError};
pub use app::provider::{ProviderHandle, RpcProvider};
#[cfg(feature = "app")]
pub use app::{AppArgs, Application};
pub use call::controller::{CallOptions, CancelHandle, Controller};
pub use call::interceptor::{CallInfo, ClientCall, ClientInterceptor, Interceptor, Outcome};
pub use call::metadata::Metadata;
pub use call::status::{Code, Status};
pub use call::trace::TraceId;
pub use client::{Channel, ChannelOptions};
pub use discovery::{Discover, Endpoint, LoadBalance, StaticDiscover, WireFormat};
pub use service::responder::{Reply, Responder};
pub use service::{CallContext, Schema, Service};
/// The `tracing` crate, so a handler logs without a dependency of its own:
/// `mprpc::tracing::info!(account = %name, "transfer refused")`. What it
/// logs goes to mprpc's log (and names the call's trace id: docs/guide.md).
pub use tracing;

debug_as_display!(
    protocol::ProtocolError,
    app::config::ConfigError,
    discovery::DiscoverError,
    call::metadata::MetadataTooLong,
    app::provider::ProviderError,
    call::status::Status,
    net::tls::TlsError,
);
#[cfg(feature = "zookeeper")]
debug_as_display!(registry::RegistryError);

/// Everything a provider or consumer `main` uses, in one `use`:
/// `use mprpc::prelude::*;`.
pub mod prelude {
    pub use crate::app::config::Config;
    pub use crate::app::provider::{ProviderHandle, RpcProvider};
    #[cfg(feature = "app")]
    pub use crate::app::{AppArgs, Application};
    pub use crate::call::controller::{CallOptions, CancelHandle, Controller};
    pub use crate::call::interceptor::{
        CallInfo, ClientCall, ClientInterceptor, Interceptor, Outcome,
    };
    pub use crate::call::metadata::Metadata;
    pub use crate::call::status::{Code, Status};
    pub use crate::call::trace::TraceId;
    pub use crate::client::{CallHandle, Channel, ChannelOptions, TypedCall};
    pub use crate::discovery::{Discover, Endpoint, StaticDiscover};
    pub use crate::service::responder::{Reply, Responder};
    pub use crate::service::{CallContext, Service};
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
