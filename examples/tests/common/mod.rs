//! Helpers shared by the examples' integration tests (and, by `#[path]`,
//! the CLI's).

pub mod seed_provider;
