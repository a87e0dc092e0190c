//! Helpers shared by integration tests (each test crate uses only a part).
#![allow(dead_code)]

pub mod helper_process;
pub mod services;
pub mod zk;
