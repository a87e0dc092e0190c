//! Helpers shared by integration tests (each test crate uses only a part).
#![allow(dead_code)]
// `pub` so every test crate that declares `mod common` can reach them.
#![allow(unreachable_pub)]

pub mod certs;
pub mod closed;
pub mod frames;
pub mod helper_process;
pub mod ledger;
pub mod logs;
pub mod ports;
pub mod raw;
pub mod services;
pub mod streams;
pub mod zk;

pub use zk::temp_dir;
