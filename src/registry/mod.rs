//! The ZooKeeper registry: providers register, consumers discover.
//!
//! Providers run a [`Registrar`]; consumers hand a [`ZkDiscover`] to their
//! channel; tools read the whole registry once with [`browse`], or keep
//! nodes of their own through a [`BlockingSession`]. Each keeps one
//! ZooKeeper session on its own thread (a current-thread tokio runtime
//! drives the `zookeeper-client` tasks), so no RPC thread ever waits on
//! ZooKeeper except a consumer's first lookup of a service.
//!
//! # Layout
//!
//! ```text
//! <root>                                   persistent  (zk_root, default /mprpc)
//! <root>/services/<Service>                persistent
//! <root>/services/<Service>/providers      persistent
//! <root>/services/<Service>/providers/<ip:port>   ephemeral, one per provider
//! ```
//!
//! A provider node's data is `key=value` lines, e.g.
//!
//! ```text
//! protocol=mprpc
//! addr=127.0.0.1:8000
//! methods=Login,Register
//! weight=100
//! version=0.1.0
//! start_time_ms=1700000000000
//! pid=4242
//! tls=required
//! max_frame=16777216
//! ```
//!
//! Persistent parents are created idempotently (an existing node is fine),
//! so any number of providers serve one service. The node name is the
//! address consumers connect to; `weight` feeds weighted balancing (unknown
//! keys are ignored, a bad weight counts as 100); `tls` (off, optional or
//! required; absent means off) tells consumers whether a plain connection
//! would be refused; `max_frame` is the largest frame body it accepts.
//!
//! With `zk_seed_layout` (the default) a provider also writes the seed's
//! layout so the seed's C++ consumers find it: `/<Service>` persistent and
//! `/<Service>/<Method>` ephemeral holding `ip:port`, then a NUL and
//! `protocol=mprpc`. The seed's consumer reads the data as a C string, so it
//! sees exactly `ip:port`; our consumers see the mark and never call one of
//! our providers in the seed's format (its native node under `<root>` is
//! what they use). Our consumers fall back to the seed's layout only for a
//! service with no provider of ours, and look up `/<Service>/<Method>` per
//! call as the seed does: a missing method node fails the call
//! `Unavailable` before anything is sent. That layout has room
//! for one provider per method, so a provider writes a method node only where
//! it is free; when the holder's node vanishes, a waiting provider takes it
//! over (it watches the node).
//!
//! # Security
//!
//! With `zk_digest = user:password` every session authenticates with the
//! digest scheme and creates its nodes with the ACL "creator (same secret)
//! all, world read": anyone may discover, only holders of the secret may
//! register or remove providers.
//!
//! # Sessions and failures
//!
//! Sessions are kept alive by the client's pings. A lost connection is not a
//! lost session: ephemeral nodes stay while the session lives, and the client
//! reconnects on its own. An expired or closed session is final: the registry
//! opens a new one (retrying with back-off while ZooKeeper is unreachable),
//! re-creates its ephemeral nodes and re-arms its watches. Consumers keep
//! serving their cached provider lists through all of this and log the
//! failure.

mod blocking;
mod browse;
mod discover;
mod error;
mod layout;
mod node_cache;
mod registrar;
mod session;

pub use blocking::BlockingSession;
pub use browse::{browse, SeedMethod, ServiceListing};
pub use discover::ZkDiscover;
pub use error::RegistryError;
pub use layout::ProviderInfo;
pub use registrar::Registrar;
/// The ZooKeeper client crate whose types a [`BlockingSession`]'s requests
/// take and return (`zk::Error`, `zk::Stat`).
pub use zookeeper_client as zk;
