//! Socket plumbing shared by the server's reactors and the client's drivers.
//!
//! * `Transport` — one non-blocking TCP connection with its read and write
//!   buffers, writable-interest state and frame decoding (including skipping
//!   the body of an oversized frame). Event loops keep their own per-call
//!   bookkeeping beside it and never touch its buffers directly.
//! * `FlushList` — the connections a loop flushes once per turn, each
//!   listed once.
//! * [`read_into`] — the one `read(2)` routine both sides use (in `sys`;
//!   loadgen's engine uses it too).
//! * [`tls`] — TLS settings of both sides ([`ServerTls`](tls::ServerTls),
//!   [`ClientTls`](tls::ClientTls)); the transport drives the sessions.
//! * [`auth`] — auth tokens, sent once per connection and compared in
//!   constant time.
//! * `certs` (feature `certs`) — self-signed certificates for tests and
//!   `loadgen certs`.

pub mod auth;
#[cfg(feature = "certs")]
pub mod certs;
pub mod tls;
mod transport;

pub use crate::sys::read_into;
pub(crate) use transport::{FlushList, ReadTurn, Transport};
