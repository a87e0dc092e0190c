//! Why the server closes a connection, and how loudly it says so.
//!
//! Every close goes through the reactor's `close` with one of these, so the
//! log level follows from the reason (a peer hanging up is routine; a
//! protocol error or a stalled peer is worth a warning) instead of from
//! comparing strings.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::protocol::ProtocolError;

#[derive(Debug)]
pub(crate) enum CloseReason {
    /// The peer closed and everything owed to it was sent.
    PeerClosed,
    /// A seed-format call was answered (one call per connection).
    Answered,
    Read(io::Error),
    Write(io::Error),
    /// The bytes are not a valid stream (including EOF mid-frame).
    Protocol(ProtocolError),
    /// A client sent a response frame.
    UnexpectedResponse,
    /// A request reused the id of a call still in flight.
    DuplicateCallId(u64),
    /// The peer reset or errored while reading from it was paused.
    PeerGone(io::Error),
    /// A frame would have taken the process's buffered input past
    /// `max_buffered_bytes`.
    OverBudget {
        held: usize,
        limit: usize,
    },
    /// A seed-format call to a service or method we do not publish (the
    /// seed's way: close without a reply), or any seed call while draining.
    SeedUnknown {
        service: String,
        method: String,
    },
    /// Calls without a right auth token were answered `Unauthenticated`
    /// (or, in the seed's format, refused): why.
    Unauthenticated(&'static str),
    /// A frame stayed incomplete this long (slow or stalled peer).
    SlowFrame(Duration),
    Idle(Duration),
    /// Unsent replies did not move this long (a peer that never reads).
    WriteStalled(Duration),
    /// HTTP where the admin pages are not served, or other bytes on the
    /// admin port.
    AdminRefused(&'static str),
    /// The server shut down with nothing owed on this connection.
    Shutdown,
    /// The shutdown grace period ran out with this connection still busy.
    ShutdownGraceOver,
}

impl CloseReason {
    /// Routine closes are logged at debug level, the rest as warnings.
    pub(crate) fn is_routine(&self) -> bool {
        matches!(
            self,
            CloseReason::PeerClosed | CloseReason::Answered | CloseReason::Shutdown
        )
    }

    /// What kind of close this is, for rate-limiting its warnings.
    pub(crate) fn cause(&self) -> &'static str {
        match self {
            CloseReason::PeerClosed => "peer closed",
            CloseReason::Answered => "answered",
            CloseReason::Read(_) => "read error",
            CloseReason::Write(_) => "write error",
            CloseReason::Protocol(_) | CloseReason::UnexpectedResponse => "protocol error",
            CloseReason::DuplicateCallId(_) => "duplicate call id",
            CloseReason::PeerGone(_) => "peer gone",
            CloseReason::OverBudget { .. } => "over buffer budget",
            CloseReason::SeedUnknown { .. } => "seed unknown method",
            CloseReason::Unauthenticated(_) => "unauthenticated",
            CloseReason::SlowFrame(_) => "slow frame",
            CloseReason::Idle(_) => "idle",
            CloseReason::WriteStalled(_) => "write stalled",
            CloseReason::AdminRefused(_) => "admin refused",
            CloseReason::Shutdown => "shutdown",
            CloseReason::ShutdownGraceOver => "shutdown grace over",
        }
    }

    /// The peer sent bytes we refuse (counted as rejected frames).
    pub(crate) fn is_bad_input(&self) -> bool {
        matches!(
            self,
            CloseReason::Protocol(_)
                | CloseReason::UnexpectedResponse
                | CloseReason::DuplicateCallId(_)
                | CloseReason::SeedUnknown { .. }
                | CloseReason::AdminRefused(_)
        )
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("peer closed"),
            CloseReason::Answered => f.write_str("seed-format call answered"),
            CloseReason::Read(e) => write!(f, "read error: {e}"),
            CloseReason::Write(e) => write!(f, "write error: {e}"),
            CloseReason::Protocol(e) => write!(f, "protocol error: {e}"),
            CloseReason::UnexpectedResponse => {
                f.write_str("protocol error: a client sent a response frame")
            }
            CloseReason::DuplicateCallId(id) => write!(
                f,
                "protocol error: request id {id} reused while a call with it is in flight"
            ),
            CloseReason::PeerGone(e) => write!(f, "peer gone while reading was paused: {e}"),
            CloseReason::OverBudget { held, limit } => write!(
                f,
                "input buffers would pass max_buffered_bytes ({held} of {limit} bytes held)"
            ),
            CloseReason::SeedUnknown { service, method } => {
                write!(f, "seed-format call to unknown {service}.{method}")
            }
            CloseReason::Unauthenticated(why) => {
                write!(f, "unauthenticated ({why}): calls refused")
            }
            CloseReason::SlowFrame(limit) => {
                write!(
                    f,
                    "frame still incomplete after {limit:?} (slow or stalled peer)"
                )
            }
            CloseReason::Idle(limit) => write!(f, "idle for {limit:?}"),
            CloseReason::WriteStalled(limit) => {
                write!(f, "replies unread for {limit:?} (the peer does not read)")
            }
            CloseReason::AdminRefused(why) => f.write_str(why),
            CloseReason::Shutdown => f.write_str("server shut down"),
            CloseReason::ShutdownGraceOver => f.write_str("shutdown grace period over"),
        }
    }
}
