//! mprpc: protobuf services over a hand-rolled mio multi-reactor, discovered
//! through ZooKeeper.
//!
//! Where things are:
//!
//! * [`codec`] — the wire protocol (framing, zero-copy decoding).
//! * [`service`] — the contract generated service code implements.
//! * [`server`] — the provider: acceptor + N reactor threads (one mio `Poll`
//!   and one `slab` of connections each) + an optional worker pool.
//! * [`provider`] — the seed's `RpcProvider`: server + ZooKeeper
//!   registration + graceful shutdown on signals.
//! * [`client`] — the consumer: persistent multiplexed connections driven by
//!   a mio event loop, blocking and non-blocking calls, load balancing,
//!   failover, and calls to seed-format providers.
//! * [`discovery`], [`registry`] — where providers are found: a fixed list,
//!   or ZooKeeper (registrar for providers, watched cache for consumers).
//! * [`controller`], [`status`] — per-call options and outcomes.
//! * [`config`], [`app`], [`logging`] — the seed's config file, `Init`, logger.
//! * `net` — the one socket-read routine server and client share.
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

#[cfg(feature = "app")]
pub mod app;
pub mod balance;
pub mod client;
pub mod codec;
pub mod config;
pub mod controller;
pub mod discovery;
mod endpoint;
#[cfg(feature = "app")]
pub mod logging;
mod net;
pub mod provider;
#[cfg(feature = "zookeeper")]
pub mod registry;
pub mod server;
pub mod service;
pub mod status;

#[cfg(feature = "app")]
pub use app::{AppArgs, Application};
pub use balance::LoadBalance;
pub use client::{Channel, ChannelOptions};
pub use config::{Config, ConfigError};
pub use controller::{CallOptions, CancelHandle, Controller};
pub use discovery::{Discover, Endpoint, StaticDiscover, WireFormat};
pub use provider::{ProviderHandle, RpcProvider};
pub use service::{CallContext, Service};
pub use status::{Code, Status};

/// Everything a provider or consumer `main` uses, in one `use`:
/// `use mprpc::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "app")]
    pub use crate::app::{AppArgs, Application};
    pub use crate::client::{CallHandle, Channel, ChannelOptions, TypedCall};
    pub use crate::config::Config;
    pub use crate::controller::{CallOptions, CancelHandle, Controller};
    pub use crate::discovery::{Discover, Endpoint, StaticDiscover};
    pub use crate::provider::{ProviderHandle, RpcProvider};
    pub use crate::service::{CallContext, Service};
    pub use crate::status::{Code, Status};
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
