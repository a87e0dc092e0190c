//! Trace ids: one id per request chain, so a request can be followed
//! through the logs of every process it passes.
//!
//! The first server a request reaches without a `trace-id` entry in its
//! metadata makes one up; every call a handler starts while serving it
//! (sync, pool or async — the "current call" of `deadline`) carries it on
//! downstream in its request metadata. Each served call runs inside a
//! `tracing` span named `rpc` (level DEBUG, target `mprpc::call`) with its
//! service, method, peer and trace id, so log lines written while serving
//! it carry them: turn it on with `RUST_LOG=info,mprpc::call=debug` (or
//! `log_level=debug`). The span is made only when it is enabled: off, the
//! hot path pays one callsite check and allocates nothing. (DEBUG, not
//! INFO: a span per call costs a subscriber allocations and formatting,
//! which a provider logging at INFO should not pay unasked.)
//!
//! An id is a random `u64`, shown and sent as 16 lower-case hex digits.

use std::cell::Cell;
use std::fmt;

/// The metadata key a trace id travels under.
pub const TRACE_ID_KEY: &str = "trace-id";

/// One request chain's id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub u64);

impl TraceId {
    /// A new random id (never 0), from a per-thread generator: no lock, no
    /// system call after the thread's first.
    pub fn random() -> TraceId {
        thread_local! {
            static STATE: Cell<u64> = Cell::new(seed());
        }
        STATE.with(|state| loop {
            // xorshift64*: quick, and plenty for ids that only must not collide.
            let mut x = state.get();
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            state.set(x);
            let id = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
            if id != 0 {
                return TraceId(id);
            }
        })
    }

    /// Reads an id sent as hex digits (1 to 16 of them); `None` otherwise.
    pub fn parse(text: &str) -> Option<TraceId> {
        if text.is_empty() || text.len() > 16 {
            return None;
        }
        u64::from_str_radix(text, 16).ok().map(TraceId)
    }

    /// The 16 hex digits it is sent as, without allocating.
    pub(crate) fn to_hex(self) -> [u8; 16] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = DIGITS[((self.0 >> (60 - 4 * i)) & 0xf) as usize];
        }
        out
    }

    /// The id of a served call: the one its metadata carries, else a new one.
    pub(crate) fn of_request(metadata: &crate::Metadata) -> TraceId {
        // Most calls carry no metadata: no entries to scan.
        if metadata.is_empty() {
            return TraceId::random();
        }
        metadata
            .get(TRACE_ID_KEY)
            .and_then(TraceId::parse)
            .unwrap_or_else(TraceId::random)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

/// A different seed per thread and process (std's random hasher keys).
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(std::process::id() as u64);
    hasher.finish() | 1
}

/// The span a served call runs in (`Span::none()`, free, when DEBUG is
/// off for target `mprpc::call`).
pub(crate) fn call_span(
    service: &str,
    method: &str,
    peer: std::net::SocketAddr,
    trace: TraceId,
) -> tracing::Span {
    tracing::debug_span!(target: "mprpc::call", "rpc", service, method, %peer, trace_id = %trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_hex() {
        let id = TraceId::random();
        let hex = id.to_hex();
        let text = std::str::from_utf8(&hex).unwrap();
        assert_eq!(text, id.to_string());
        assert_eq!(TraceId::parse(text), Some(id));
        assert_eq!(TraceId::parse("x"), None);
        assert_eq!(TraceId::parse(""), None);
        assert_eq!(TraceId::parse("00000000000000001"), None);
        assert_ne!(TraceId::random(), TraceId::random());
    }
}
