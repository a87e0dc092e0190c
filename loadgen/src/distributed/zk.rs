//! The ZooKeeper side of the distributed mode: the worker and the
//! coordinator each hold one [`mprpc::registry::BlockingSession`] (the
//! library's registry session runtime, nodes created with the registry's
//! ACL when `--zk-digest` is given); here is what they add to it: how to
//! explain a refusal and reading ZooKeeper's clock.

use std::time::{SystemTime, UNIX_EPOCH};

pub use mprpc::registry::zk::Error;
pub use mprpc::registry::BlockingSession;

/// `e`, with what to do when it is a refusal by a digest ACL.
pub fn explain(e: &Error) -> String {
    match e {
        Error::NoAuth => format!("{e} (these nodes are protected: give --zk-digest user:password)"),
        _ => e.to_string(),
    }
}

/// Unix time now, in milliseconds.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// ZooKeeper's clock minus ours, in ms, from the `ctime` of a node created
/// between our `before` and `after` (Unix ms): ZooKeeper stamps it between
/// the two, so the error is at most half the round trip plus 1 ms.
pub fn clock_offset_ms(ctime: i64, before: i64, after: i64) -> i64 {
    ctime - (before + after) / 2
}
