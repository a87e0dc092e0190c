//! Reading: from readiness to dispatched requests, under backpressure.
//!
//! When a connection's unsent output passes the high-water mark or it has
//! too many calls in flight, its wire format pauses reading; the kernel's
//! buffers fill and TCP slows the peer down. A flush that drains the output
//! resumes it. At EOF, a frame cut short is an error with a logged reason;
//! otherwise what is in flight is answered before the close.

use super::Reactor;
use crate::protocol::Progress;
use crate::server::close::CloseReason;
use crate::server::dispatch::Turn;
use crate::server::serve;
use crate::server::stats;

/// Bytes we make room for before each `read`, and read per step: input is
/// processed (and backpressure checked) after each step.
const READ_CHUNK: usize = 16 * 1024;

impl Reactor {
    /// Reads until the socket is drained, the peer closed or backpressure
    /// pauses us, dispatching every complete request as it arrives. With
    /// `short_read_drains`, a read that did not fill the buffer counts as
    /// drained (saves the syscall that would only return `WouldBlock`).
    pub(super) fn read_ready(&mut self, key: usize, short_read_drains: bool) {
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            if !conn.is_reading() {
                return;
            }
            let turn = match conn
                .io()
                .read_turn(READ_CHUNK, READ_CHUNK, short_read_drains)
            {
                Ok(turn) => turn,
                Err(e) => return self.close(key, CloseReason::Read(e)),
            };
            if turn.bytes > 0 {
                if let Err(over) = conn.charge_input(self.server.buffers()) {
                    let (held, limit) = (over.held, over.limit);
                    return self.close(key, CloseReason::OverBudget { held, limit });
                }
                conn.touch(self.now);
                stats::bump(&conn.stats().bytes_in, turn.bytes as u64);
                stats::bump(&self.shared.stats().bytes_in, turn.bytes as u64);
                if !self.process_input(key) {
                    return;
                }
            }
            if turn.eof {
                return self.peer_closed(key);
            }
            if turn.drained {
                return;
            }
        }
    }

    /// The socket reported an error or a hang-up (a reset peer): a reader
    /// that is not paused reads on and meets the error itself (after any
    /// requests still buffered); a paused one would never read again, so it
    /// is closed now and its calls in flight are cancelled.
    pub(super) fn peer_gone(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.is_paused() {
            return self.read_ready(key, false);
        }
        let error = match conn.io().stream().take_error() {
            Ok(Some(e)) | Err(e) => e,
            Ok(None) => std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        };
        self.close(key, CloseReason::PeerGone(error));
    }

    /// A paused reader's output drained: data that arrived while paused
    /// raised no new event (edge-triggered), so process and read it now.
    pub(super) fn resume(&mut self, key: usize) {
        if self.process_input(key) {
            self.read_ready(key, false);
        }
    }

    /// Hands the input to the connection's wire format (`serve`); returns whether
    /// reading goes on (false when paused or closed). Output it produced is
    /// queued for this turn's flush.
    fn process_input(&mut self, key: usize) -> bool {
        let turn = Turn {
            key,
            now: self.now,
            shutting_down: self.server.is_shutting_down(),
        };
        let conn = &mut self.conns[key];
        let progress = serve::process(conn, &self.dispatcher, turn);
        conn.track_partial_frame(self.now);
        if conn.give_back_buffers(self.server.buffers()) > 0 {
            self.trim.large_freed(self.now);
        }
        self.flushes.add(key, conn.io());
        match progress {
            Progress::Open => true,
            Progress::Paused => {
                self.server.backpressure().read_paused();
                false
            }
            Progress::Done => false,
            Progress::Close(reason) => {
                self.close(key, reason);
                false
            }
        }
    }

    /// EOF after the input was processed: part of a frame left over is an
    /// error; otherwise answer what is in flight (streams are dropped: the
    /// peer can grant them no credit), then close (the flush closes it
    /// once quiet).
    fn peer_closed(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.peer_closed();
        self.dispatcher.cancel_streams(conn);
        if conn.is_paused() {
            return; // what is buffered is processed on resume, then closed
        }
        if let Err(e) = conn.io().check_eof() {
            return self.close(key, CloseReason::Protocol(e));
        }
        self.flushes.add(key, conn.io());
    }
}
