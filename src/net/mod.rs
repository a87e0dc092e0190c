//! Socket plumbing shared by the server's reactors and the client's drivers.
//!
//! * [`Transport`] — one non-blocking TCP connection with its read and write
//!   buffers, writable-interest state and frame decoding (including skipping
//!   the body of an oversized frame). Event loops keep their own per-call
//!   bookkeeping beside it and never touch its buffers directly.
//! * `read_into` — the one `read(2)` routine both sides use.

mod read;
// Adopted by the server and the client in the commits that follow.
#[allow(dead_code)]
mod transport;

pub(crate) use read::read_into;
#[allow(unused_imports)]
pub(crate) use transport::{FlushList, ReadTurn, Transport};
