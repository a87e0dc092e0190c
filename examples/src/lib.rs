//! The seed's example services, generated from `../proto` and implemented
//! here so the `provider` binary and the tests share them.
//!
//! * [`fixbug`] — messages, traits and stubs from `user.proto`,
//!   `friend.proto` and `common.proto` (package `fixbug`, as in the seed),
//!   and `gateway.proto`'s `GatewayServiceRpc` (handlers answering later).
//! * [`mod@bench`] — the echo service from `bench.proto` (package `mprpc.bench`),
//!   and its streaming twin served by [`EchoStreams`].
//! * [`later`] — `LaterService` from `later.proto`, generated with
//!   handlers that return futures (`async_service`), for the tests.
//! * [`UserService`], [`FriendService`], [`Echo`] — the handlers,
//!   printing and answering what the seed's callee does.
//! * [`FriendWatch`] — `friend_watch.proto`'s `FriendWatchRpc`: a server
//!   stream, a client stream and a bidirectional stream.
//! * [`mod@blocking`] and [`Ticker`] — `ticker.proto`'s `TickerRpc`, whose
//!   stream handlers block on the worker pool (`blocking_stream`).
//! * [`Gateway`] — the middle tier over those two, and [`OnWorkerPool`] to
//!   run it the blocking way instead.

pub mod fixbug {
    //! Generated from `proto/common.proto`, `proto/user.proto`,
    //! `proto/friend.proto`, `proto/friend_watch.proto` and
    //! `proto/gateway.proto`.
    mprpc::include_proto!("fixbug");
}

pub mod bench {
    //! Generated from `proto/bench.proto`.
    mprpc::include_proto!("mprpc.bench");
}

pub mod later {
    //! Generated from `proto/later.proto`, handlers answering later.
    mprpc::include_proto!("mprpc.later");
}

pub mod blocking {
    //! Generated from `proto/ticker.proto`, stream handlers that block.
    mprpc::include_proto!("mprpc.blocking");
}

mod echo;
mod echo_stream;
mod friend;
mod friend_watch;
pub mod gateway;
mod ticker;
mod user;
pub mod worker_pool;

pub use echo::{Echo, LedgeredEcho, SlowEcho};
pub use echo_stream::{EchoStreams, MAX_PUMP_SIZE};
pub use friend::FriendService;
pub use friend_watch::FriendWatch;
pub use gateway::Gateway;
pub use ticker::{Ticker, TickerStats};
pub use user::UserService;
pub use worker_pool::OnWorkerPool;
