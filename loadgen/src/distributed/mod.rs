//! Distributed runs: `loadgen worker` processes on several machines,
//! driven by one coordinator (`loadgen --zk HOST:PORT --workers K ...`)
//! through ZooKeeper, their histograms merged exactly.
//!
//! One machine's load generator saturates before a set of providers does;
//! every deployment of ours already has ZooKeeper, so the workers register
//! there and the coordinator hands them the run there. Each worker runs its
//! share with the very engine, recorder and schedule of a single run (in a
//! child process, see [`child`]), so the merged result means what a single
//! run's does.
//!
//! # ZooKeeper layout
//!
//! ```text
//! <root>/loadgen/workers/<NAME>              ephemeral (worker's session): key=value lines
//!                                            state=idle | state=claimed + run=<RUN>; host, pid, version
//! <root>/loadgen/runs/<RUN>                  persistent: the spec (JSON: version, workers in
//!                                            slice order, the coordinator's parsed flags)
//! <root>/loadgen/runs/<RUN>/coordinator      ephemeral (coordinator's session): the heartbeat,
//!                                            rewritten every HEARTBEAT
//! <root>/loadgen/runs/<RUN>/start            persistent: the start instant, in ZooKeeper's
//!                                            clock (Unix ms), written once every worker is ready
//! <root>/loadgen/runs/<RUN>/workers/<NAME>   ephemeral (worker's session): its latest frame:
//!                                            ready, then once a second its cumulative counts
//!                                            and histograms
//! <root>/loadgen/runs/<RUN>/results/<NAME>   persistent: its final frame (or why it failed)
//! ```
//!
//! `<root>` is `--zk-root` (default `/mprpc`). Nodes have the open ACL, or
//! with `--zk-digest` the registry's "holders of the secret all, world
//! read" (the digest itself is never written). Frames are [`wire`]'s: a
//! JSON header and the histograms in HdrHistogram's V2 deflate format; a
//! frame over [`wire::MAX_FRAME`] (ZooKeeper's 1 MB node limit) is refused
//! with an error instead of being written.
//!
//! # A run
//!
//! 1. The coordinator creates the run's nodes, waits (`--wait-workers`) for
//!    K idle workers and claims them by a versioned write of their node (two
//!    coordinators cannot claim the same worker).
//! 2. Each claimed worker reads the spec, creates its run node and starts
//!    its child with its slice: the rate, `--connections` and `--in-flight`
//!    split K ways ([`spec::Slice`]); the child connects, probes the target
//!    and reports ready.
//! 3. When all are ready the coordinator writes the start instant,
//!    [`START_LEAD`] ahead, in ZooKeeper's clock: each side learns its
//!    offset to that clock from the `ctime` of a node it creates (its error
//!    is the round trip), so the machines' clocks need not agree. The
//!    schedules interleave: worker w's thread t is thread w·T+t of K·T of
//!    one open-loop schedule.
//! 4. Once a second workers publish cumulative counts and histograms; the
//!    coordinator prints one merged progress line.
//! 5. At the end each worker writes its result; the coordinator merges the
//!    histograms with `Histogram::add` (never averaging percentiles), sums
//!    the counts and writes the same summary and JSON/.hgrm/.md report as a
//!    single run, plus a per-worker table. The run holds its target only if
//!    every worker held its share.
//!
//! # Failures
//!
//! - A worker whose run node vanishes before its result (its session ended:
//!   killed, crashed, cut off) is reported by name as died; its last
//!   published second is merged and marked partial; the coordinator exits
//!   with an error after writing the report.
//! - Workers stop their load when the coordinator's heartbeat has not
//!   changed for [`HEARTBEAT_LOST`] (the coordinator died, or they lost
//!   ZooKeeper and cannot tell): the child is killed, the worker goes idle.
//! - A worker's child dies with the worker (`PR_SET_PDEATHSIG`), so killing
//!   a worker stops its load too.

use std::time::Duration;

pub mod child;
pub mod coordinator;
pub mod merge;
pub mod spec;
pub mod wire;
pub mod worker;
pub mod zk;

/// How often the coordinator rewrites its heartbeat node.
pub const HEARTBEAT: Duration = Duration::from_millis(200);

/// Workers stop a run whose heartbeat has not changed for this long.
pub const HEARTBEAT_LOST: Duration = Duration::from_millis(800);

/// How far ahead of "all ready" the common start instant is set.
pub const START_LEAD: Duration = Duration::from_secs(1);

/// Session timeout asked of ZooKeeper (it clamps it to 2–20 ticks): how
/// long a killed worker's nodes outlive it.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(2);

/// `<root>/loadgen`.
pub fn base(root: &str) -> String {
    format!("{}/loadgen", root.trim_end_matches('/'))
}
