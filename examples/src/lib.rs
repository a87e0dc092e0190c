//! The seed's example services, generated from `../proto` and implemented
//! here so the `provider` binary and the tests share them.
//!
//! * [`fixbug`] — messages, traits and stubs from `user.proto`,
//!   `friend.proto` and `common.proto` (package `fixbug`, as in the seed).
//! * [`mod@bench`] — the echo service from `bench.proto` (package `mprpc.bench`).
//! * [`UserService`], [`FriendService`], [`Echo`] — the handlers,
//!   printing and answering what the seed's callee does.

pub mod fixbug {
    //! Generated from `proto/common.proto`, `proto/user.proto`, `proto/friend.proto`.
    include!(concat!(env!("OUT_DIR"), "/fixbug.rs"));
}

pub mod bench {
    //! Generated from `proto/bench.proto`.
    include!(concat!(env!("OUT_DIR"), "/mprpc.bench.rs"));
}

mod echo;
mod friend;
mod user;

pub use echo::Echo;
pub use friend::FriendService;
pub use user::UserService;

/// Starts the application from parsed arguments (`-i FILE`), exiting with a
/// clear message when the config is bad, as `MprpcApplication::Init` does.
pub fn init_app(args: &mprpc::AppArgs) -> mprpc::Application {
    mprpc::Application::init_from(args).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2);
    })
}
