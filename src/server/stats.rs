//! Live counters of connections and reactors, for the admin pages
//! (`/metrics`, `/status`, `/connections`).
//!
//! A connection's figures are written only by its reactor thread, so every
//! update is a plain load and store of a relaxed atomic (no locked
//! read-modify-write on the hot path); the admin pages read them from any
//! thread. Each reactor keeps its live connections' stats in a map the
//! admin pages lock to list them; only opening and closing a connection
//! touch that lock on the reactor's side.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::speaks::Speaks;
use crate::protocol::WireFormat;

/// Adds `n` to a counter only one thread writes.
pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

/// Reads a counter.
pub(crate) fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// One connection's figures.
#[derive(Debug)]
pub(crate) struct ConnStats {
    pub(crate) peer: SocketAddr,
    pub(crate) reactor: usize,
    pub(crate) opened: Instant,
    /// What it speaks ([`Speaks::code`]; 0: not known yet).
    speaks: AtomicU8,
    pub(crate) calls: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    /// Calls handed to the worker pool and not answered yet.
    pub(crate) in_flight: AtomicU64,
}

impl ConnStats {
    pub(crate) fn new(peer: SocketAddr, reactor: usize, opened: Instant) -> ConnStats {
        ConnStats {
            peer,
            reactor,
            opened,
            speaks: AtomicU8::new(0),
            calls: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
        }
    }

    /// Notes what the connection turned out to speak.
    pub(crate) fn set_speaks(&self, speaks: Speaks) {
        self.speaks.store(speaks.code(), Ordering::Relaxed);
    }

    /// What it speaks, as `/connections` shows it ("-" until known).
    pub(crate) fn protocol(&self) -> &'static str {
        Speaks::from_code(self.speaks.load(Ordering::Relaxed)).map_or("-", Speaks::name)
    }
}

/// Slots for stream outcomes by code byte: every [`crate::Code`] has one.
pub(crate) const STREAM_CODES: usize = 16;

/// One reactor's figures: its live connections and its totals since start.
#[derive(Debug, Default)]
pub(crate) struct ReactorStats {
    live: Mutex<HashMap<u64, Arc<ConnStats>>>,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    /// Connections closed for bad input (protocol errors, bad HTTP) plus
    /// oversized frames refused.
    pub(crate) frames_rejected: AtomicU64,
    pub(crate) accepted: AtomicU64,
    /// Connections by the wire format they spoke ([`WireFormat::index`]).
    speaking: [AtomicU64; WireFormat::COUNT],
    pub(crate) admin_requests: AtomicU64,
    /// Streams opened and ended (open now: the difference).
    pub(crate) streams_opened: AtomicU64,
    pub(crate) streams_ended: AtomicU64,
    /// Streams ended, by their outcome's code byte (`Code as u8`).
    pub(crate) streams_ended_by_code: [AtomicU64; STREAM_CODES],
    /// Stream messages the handlers sent, and the clients sent them.
    pub(crate) stream_messages_sent: AtomicU64,
    pub(crate) stream_messages_received: AtomicU64,
}

impl ReactorStats {
    pub(crate) fn opened(&self, id: u64, conn: Arc<ConnStats>) {
        bump(&self.accepted, 1);
        self.live.lock().insert(id, conn);
    }

    /// A connection turned out to speak `format`.
    pub(crate) fn opened_speaking(&self, format: WireFormat) {
        bump(&self.speaking[format.index()], 1);
    }

    /// Connections that spoke `format` since the start.
    pub(crate) fn connections_speaking(&self, format: WireFormat) -> u64 {
        read(&self.speaking[format.index()])
    }

    /// A stream ended with `code`.
    pub(crate) fn stream_ended(&self, code: crate::Code) {
        bump(&self.streams_ended, 1);
        if let Some(slot) = self.streams_ended_by_code.get(code as usize) {
            bump(slot, 1);
        }
    }

    /// Streams ended since the start, by code byte.
    pub(crate) fn streams_ended_by_code(&self) -> [u64; STREAM_CODES] {
        std::array::from_fn(|i| read(&self.streams_ended_by_code[i]))
    }

    pub(crate) fn closed(&self, id: u64) {
        self.live.lock().remove(&id);
    }

    /// Gives back the memory of the live-connection map after a storm.
    pub(crate) fn shrink(&self) {
        self.live.lock().shrink_to_fit();
    }

    /// Open connections now.
    pub(crate) fn connections(&self) -> usize {
        self.live.lock().len()
    }

    /// The live connections' stats, oldest first.
    pub(crate) fn live(&self) -> Vec<Arc<ConnStats>> {
        let mut conns: Vec<Arc<ConnStats>> = self.live.lock().values().cloned().collect();
        conns.sort_by_key(|c| c.opened);
        conns
    }
}
