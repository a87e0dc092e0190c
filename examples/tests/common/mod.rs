//! Helpers shared by the examples' integration tests (and, by `#[path]`,
//! the CLI's). Each test crate uses only a part.
#![allow(dead_code)]

pub mod provider_process;
pub mod seed_provider;
