//! Shutdown on a reactor: new requests are refused (`ShuttingDown`) by the
//! wire formats, calls in flight are answered, and the loop ends once every
//! connection is quiet or the grace period is over; then open streams end
//! `ShuttingDown`, and every connection gets a last flush and is closed.

use std::time::Instant;

use super::Reactor;
use crate::server::close::CloseReason;
use crate::{Code, Status};

impl Reactor {
    /// While shutting down: true once every connection is quiet (or the
    /// grace period is over), at which point the loop exits.
    pub(super) fn drain_finished(&mut self) -> bool {
        let started = *self.drain_started.get_or_insert_with(Instant::now);
        let quiet = self.conns.iter().all(|(_, c)| c.is_quiet());
        if !quiet && started.elapsed() < self.shutdown_grace {
            return false;
        }
        if !quiet {
            tracing::warn!(
                reactor = self.index,
                "shutdown grace period over; closing busy connections"
            );
        }
        true
    }

    /// Flushes what each connection can take and closes it, and releases
    /// connections the acceptor queued but this reactor never adopted.
    pub(super) fn close_all(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        let over = Status::new(
            Code::ShuttingDown,
            "the server shut down and its grace period for open streams is over",
        );
        for key in keys {
            let conn = &mut self.conns[key];
            self.dispatcher.end_streams(conn, &over);
            let _ = conn.io().flush();
            let reason = match conn.is_quiet() {
                true => CloseReason::Shutdown,
                false => CloseReason::ShutdownGraceOver,
            };
            self.close(key, reason);
        }
        for _ in self.shared.take_incoming() {
            self.forget_connection();
        }
    }
}
