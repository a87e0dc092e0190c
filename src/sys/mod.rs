//! Every call into the operating system that std does not wrap, in one
//! place (as mio keeps its own in `sys/`): the rest of the crate calls
//! these safe functions and holds no `unsafe` OS call of its own.
//!
//! mprpc is Unix-only (epoll or kqueue through mio, file descriptors,
//! `/proc` where there is one); each function says what it needs beyond
//! POSIX and what it does elsewhere.

mod cpu;
mod memory;
mod open_files;
mod process;
mod socket;

pub(crate) use cpu::current_cpu;
pub(crate) use memory::release_free_memory;
pub(crate) use open_files::raise_open_files;
pub(crate) use process::{cpu_seconds, rss_bytes};
pub use socket::read_into;
pub(crate) use socket::{set_listen_backlog, TcpLiveness};
