//! The call's vocabulary, shared by both sides: what a call carries and how
//! it ends.
//!
//! * [`status`] — a call's outcome ([`Status`](status::Status), [`Code`](status::Code)).
//! * [`metadata`] — key/value pairs carried with requests and replies.
//! * [`trace`] — trace ids and the span each served call runs in.
//! * `deadline` — calls started while serving one inherit its deadline.
//! * [`controller`] — per-call options ([`CallOptions`](controller::CallOptions)),
//!   cancellation and the seed's `RpcController`.
//! * [`interceptor`] — middleware chains on both sides.

pub mod controller;
pub(crate) mod deadline;
pub mod interceptor;
pub mod metadata;
pub mod status;
pub mod trace;
