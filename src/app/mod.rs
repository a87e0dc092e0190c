//! The application shell around the library: what a provider or consumer
//! process needs besides the RPC machinery.
//!
//! * [`config`] — the seed's config file and every key the framework reads.
//! * [`provider`] — the seed's `RpcProvider`: server + ZooKeeper
//!   registration + graceful shutdown on signals.
//! * `args` and [`logging`] (feature `app`) — the seed's `Init` with a
//!   command line ([`AppArgs`], [`Application`]), and the daily log file.

#[cfg(feature = "app")]
mod args;
pub mod config;
#[cfg(feature = "app")]
pub mod logging;
pub mod provider;

#[cfg(feature = "app")]
pub use args::{AppArgs, Application};
