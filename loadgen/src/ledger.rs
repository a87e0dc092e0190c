//! The per-call outcome ledger (`--ledger FILE`), for fault runs.
//!
//! Jepsen's rule: every operation issued gets exactly one recorded
//! outcome. The histograms cannot show that (they count calls in the
//! measured window and fold the rest into totals), so with `--ledger` each
//! call issued gets a number, stamped into the first 8 bytes of its Echo
//! payload (little endian) so that the providers' handler ledgers
//! (`echo-provider --handler-ledger`) can be joined with this one, and
//! each outcome delivered for it is recorded against that number. The file
//! is written when the run ends: a call still without an outcome then, or
//! with more than one, is there for the checker to see.
//!
//! Number 0 is never issued: the probe calls before the load carry it.

use std::io::Write;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;

use crate::recorder::Outcome;

/// The number the probe calls carry (not a ledger entry).
pub const PROBE_ID: u64 = 0;

/// What is known of one issued call.
#[derive(Debug, Clone)]
struct Entry {
    /// Microseconds since the ledger's origin.
    sent_us: u64,
    /// When the first outcome arrived, and what it was.
    first: Option<(u64, Outcome)>,
    /// Outcomes delivered (exactly one is right).
    outcomes: u32,
}

/// Every call issued in this run, by number (entry `i` is call `i + 1`).
#[derive(Debug)]
pub struct Ledger {
    origin: Instant,
    origin_epoch_us: u64,
    entries: Mutex<Vec<Entry>>,
}

impl Ledger {
    pub fn new() -> Ledger {
        let origin_epoch_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        Ledger {
            origin: Instant::now(),
            origin_epoch_us,
            entries: Mutex::new(Vec::with_capacity(1 << 16)),
        }
    }

    fn since_origin_us(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_micros() as u64
    }

    /// A call is about to be sent now: returns its number.
    pub fn issue(&self) -> u64 {
        let sent_us = self.since_origin_us(Instant::now());
        let mut entries = self.entries.lock();
        entries.push(Entry {
            sent_us,
            first: None,
            outcomes: 0,
        });
        entries.len() as u64
    }

    /// Call `id` ended with `outcome` (now). A second outcome for one call
    /// is counted, not recorded over the first.
    pub fn settle(&self, id: u64, outcome: &Outcome) {
        let at_us = self.since_origin_us(Instant::now());
        let mut entries = self.entries.lock();
        let Some(entry) = id.checked_sub(1).and_then(|i| entries.get_mut(i as usize)) else {
            return;
        };
        entry.outcomes = entry.outcomes.saturating_add(1);
        if entry.first.is_none() {
            entry.first = Some((at_us, outcome.clone()));
        }
    }

    /// Writes the ledger as CSV: `id,sent_ms,done_ms,outcome,outcomes`,
    /// times in milliseconds since the Unix epoch (so they line up with the
    /// fault events a harness logs), `done_ms` and `outcome` empty for a
    /// call without an outcome.
    pub fn write(&self, path: &Path) -> std::io::Result<usize> {
        let entries = self.entries.lock().clone();
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(out, "id,sent_ms,done_ms,outcome,outcomes")?;
        let ms = |us: u64| (self.origin_epoch_us + us) as f64 / 1e3;
        for (i, e) in entries.iter().enumerate() {
            let (done, outcome) = match &e.first {
                Some((at, Outcome::Ok)) => (format!("{:.3}", ms(*at)), "ok"),
                Some((at, Outcome::Err(code))) => (format!("{:.3}", ms(*at)), code.as_str()),
                None => (String::new(), ""),
            };
            writeln!(
                out,
                "{},{:.3},{done},{outcome},{}",
                i + 1,
                ms(e.sent_us),
                e.outcomes
            )?;
        }
        out.flush()?;
        Ok(entries.len())
    }
}

/// `request` (an encoded `EchoRequest`) with call number `id` in the
/// first 8 bytes of its payload; the payload's length is kept.
pub fn stamp(payload: &[u8], id: u64) -> Bytes {
    let mut stamped = BytesMut::with_capacity(payload.len().max(8));
    stamped.put_u64_le(id);
    stamped.extend_from_slice(payload.get(8..).unwrap_or_default());
    let message = mprpc_examples::bench::EchoRequest {
        payload: stamped.freeze(),
    };
    prost::Message::encode_to_vec(&message).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_has_one_row_and_extra_outcomes_are_counted() {
        let ledger = Ledger::new();
        let (a, b, c) = (ledger.issue(), ledger.issue(), ledger.issue());
        assert_eq!((a, b, c), (1, 2, 3), "numbers start after the probe's 0");
        ledger.settle(a, &Outcome::Ok);
        ledger.settle(b, &Outcome::Err("DeadlineExceeded".into()));
        ledger.settle(b, &Outcome::Ok);
        ledger.settle(99, &Outcome::Ok);
        let path = std::env::temp_dir().join(format!("ledger-test-{}.csv", std::process::id()));
        assert_eq!(ledger.write(&path).unwrap(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        assert_eq!(rows[0][3..], ["ok", "1"]);
        assert_eq!(
            rows[1][3..],
            ["DeadlineExceeded", "2"],
            "the first outcome stays"
        );
        assert_eq!(rows[2][2..], ["", "", "0"], "no outcome yet");
    }

    #[test]
    fn a_stamp_keeps_the_payload_length_and_leads_with_the_number() {
        let payload = vec![b'a'; 64];
        let stamped = stamp(&payload, 0x0102_0304_0506_0708);
        let plain = prost::Message::encode_to_vec(&mprpc_examples::bench::EchoRequest {
            payload: payload.into(),
        });
        assert_eq!(stamped.len(), plain.len());
        let decoded: mprpc_examples::bench::EchoRequest = prost::Message::decode(stamped).unwrap();
        assert_eq!(decoded.payload[..8], 0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(decoded.payload[8..], [b'a'; 56]);
    }
}
