//! Endpoint health: which providers are backed off after failures.
//!
//! A provider whose connect fails, or which drops a connection before it
//! has answered anything on it, collects a failure. Each failure puts it
//! out of rotation for an exponential back-off (`base * 2^(n-1)`, capped);
//! when that expires the next call may try it again (the probe), and the
//! first reply it sends clears its record. A provider that merely lost an
//! established, working connection is not backed off: the next call
//! reconnects at once, and only if that fails does back-off begin.
//!
//! A provider can also be *ejected* without any connection failing: its
//! link went silent (packets dropped, no reset), so calls on an open
//! connection pass their deadline one after another with nothing read
//! (see `driver::eject`). An ejected endpoint gets no calls while another
//! is usable, and no real call probes it: when its back-off expires the
//! driver opens a fresh connection and sends a probe request; the first
//! answer puts it back in rotation (`readmit`), a probe that fails or
//! goes unanswered doubles the back-off. Its failure count is kept until
//! a real call is answered, so an endpoint that keeps being ejected waits
//! longer each time.
//!
//! Only endpoints with failures have an entry, so the common all-healthy
//! case costs one `is_empty` check per call. Lives on the driver thread.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Failure record of one endpoint.
#[derive(Debug)]
struct Record {
    failures: u32,
    /// Out of rotation until then; for an ejected endpoint, when the
    /// next probe may start.
    down_until: Instant,
    last_error: String,
    /// Ejected: out of rotation until a probe is answered.
    ejected: bool,
    /// A probe of this (ejected) endpoint is under way.
    probing: bool,
}

/// The failure records of every endpoint this channel has used.
#[derive(Debug)]
pub(crate) struct Health {
    records: HashMap<SocketAddr, Record>,
    base: Duration,
    max: Duration,
}

impl Health {
    pub(crate) fn new(base: Duration, max: Duration) -> Health {
        Health {
            records: HashMap::new(),
            base,
            max: max.max(base),
        }
    }

    /// May a call be sent to `addr` now?
    #[inline]
    pub(crate) fn is_up(&self, addr: SocketAddr, now: Instant) -> bool {
        self.records.is_empty()
            || self
                .records
                .get(&addr)
                .is_none_or(|r| !r.ejected && r.down_until <= now)
    }

    /// No endpoint has a failure record: every one is up.
    #[inline]
    pub(crate) fn all_up(&self) -> bool {
        self.records.is_empty()
    }

    /// May a call be sent to `addr` when no endpoint `is_up`? An ejected
    /// endpoint may (it may merely be slow), one backed off after a
    /// failed connect may not.
    pub(crate) fn is_up_as_last_resort(&self, addr: SocketAddr, now: Instant) -> bool {
        self.records
            .get(&addr)
            .is_none_or(|r| r.ejected || r.down_until <= now)
    }

    /// Is any endpoint ejected?
    #[inline]
    pub(crate) fn any_ejected(&self) -> bool {
        !self.records.is_empty() && self.records.values().any(|r| r.ejected)
    }

    pub(crate) fn is_ejected(&self, addr: SocketAddr) -> bool {
        self.records.get(&addr).is_some_and(|r| r.ejected)
    }

    /// Takes `addr` out of rotation until a probe is answered; the first
    /// probe may start after the returned back-off.
    pub(crate) fn eject(&mut self, addr: SocketAddr, reason: &str, now: Instant) -> Duration {
        let backoff = self.failed(addr, reason, false, now);
        if let Some(record) = self.records.get_mut(&addr) {
            record.ejected = true;
        }
        backoff
    }

    /// Ejected endpoints whose back-off is over and that no probe is
    /// testing yet, appended to `due`; each is marked as being probed.
    pub(crate) fn probes_due(&mut self, now: Instant, due: &mut Vec<SocketAddr>) {
        for (addr, r) in &mut self.records {
            if r.ejected && !r.probing && r.down_until <= now {
                r.probing = true;
                due.push(*addr);
            }
        }
    }

    /// When the next probe is due, if an ejected endpoint waits for one.
    pub(crate) fn next_probe(&self) -> Option<Instant> {
        self.records
            .values()
            .filter(|r| r.ejected && !r.probing)
            .map(|r| r.down_until)
            .min()
    }

    /// A probe of `addr` was answered: back in rotation. Its failure count
    /// stays until a real call is answered (`succeeded`).
    pub(crate) fn readmit(&mut self, addr: SocketAddr, now: Instant) {
        if let Some(r) = self.records.get_mut(&addr) {
            r.ejected = false;
            r.probing = false;
            r.down_until = now;
        }
    }

    /// Records a failure. `after_success` is true when `addr` had been
    /// answering on the connection that just broke: a first such failure
    /// allows an immediate reconnect. Returns the back-off applied.
    pub(crate) fn failed(
        &mut self,
        addr: SocketAddr,
        reason: &str,
        after_success: bool,
        now: Instant,
    ) -> Duration {
        let record = self.records.entry(addr).or_insert(Record {
            failures: 0,
            down_until: now,
            last_error: String::new(),
            ejected: false,
            probing: false,
        });
        record.probing = false;
        record.failures = record.failures.saturating_add(1);
        record.last_error.clear();
        record.last_error.push_str(reason);
        let backoff = if after_success && record.failures == 1 {
            Duration::ZERO
        } else {
            let shift = (record.failures - 1).min(16);
            self.base.saturating_mul(1 << shift).min(self.max)
        };
        record.down_until = super::driver::far_or(now, backoff);
        backoff
    }

    /// `addr` answered a call: forget its failures.
    pub(crate) fn succeeded(&mut self, addr: SocketAddr) {
        if !self.records.is_empty() {
            self.records.remove(&addr);
        }
    }

    /// Why `addr` was last marked down, for error messages.
    pub(crate) fn last_error(&self, addr: SocketAddr) -> Option<&str> {
        self.records.get(&addr).map(|r| r.last_error.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap_and_success_clears_it() {
        let base = Duration::from_millis(100);
        let mut h = Health::new(base, Duration::from_millis(350));
        let a = SocketAddr::from(([127, 0, 0, 1], 1));
        let b = SocketAddr::from(([127, 0, 0, 1], 2));
        let now = Instant::now();
        assert!(h.is_up(a, now));
        assert_eq!(h.failed(a, "refused", false, now), base);
        assert!(!h.is_up(a, now));
        assert!(h.is_up(b, now), "only the failing endpoint is down");
        assert!(h.is_up(a, now + base));
        assert_eq!(h.failed(a, "refused", false, now), base * 2);
        assert_eq!(
            h.failed(a, "refused", false, now),
            Duration::from_millis(350)
        );
        assert_eq!(h.last_error(a), Some("refused"));
        h.succeeded(a);
        assert!(h.is_up(a, now));
        assert_eq!(h.last_error(a), None);
    }

    #[test]
    fn a_first_drop_after_success_allows_an_immediate_reconnect() {
        let mut h = Health::new(Duration::from_millis(100), Duration::from_secs(2));
        let a = SocketAddr::from(([127, 0, 0, 1], 1));
        let now = Instant::now();
        assert_eq!(h.failed(a, "reset", true, now), Duration::ZERO);
        assert!(h.is_up(a, now));
        assert_eq!(
            h.failed(a, "refused", false, now),
            Duration::from_millis(200)
        );
        assert!(!h.is_up(a, now));
    }

    #[test]
    fn an_ejected_endpoint_waits_for_its_probe_and_a_failed_probe_doubles_the_wait() {
        let base = Duration::from_millis(100);
        let mut h = Health::new(base, Duration::from_secs(2));
        let a = SocketAddr::from(([127, 0, 0, 1], 1));
        let b = SocketAddr::from(([127, 0, 0, 1], 2));
        let now = Instant::now();
        assert!(!h.any_ejected());
        assert_eq!(h.eject(a, "silent", now), base);
        assert!(h.any_ejected() && h.is_ejected(a) && !h.is_ejected(b));
        // Out of rotation past its back-off: only a probe brings it back.
        assert!(!h.is_up(a, now + base * 10));
        assert!(h.is_up_as_last_resort(a, now), "usable if nothing else is");
        assert_eq!(h.next_probe(), Some(now + base));
        let mut due = Vec::new();
        h.probes_due(now, &mut due);
        assert!(due.is_empty(), "not before its back-off");
        h.probes_due(now + base, &mut due);
        assert_eq!(due, vec![a]);
        h.probes_due(now + base, &mut due);
        assert_eq!(due.len(), 1, "one probe at a time");
        assert_eq!(h.next_probe(), None);
        // The probe fails: twice the wait, still ejected.
        assert_eq!(h.failed(a, "probe: no answer", false, now), base * 2);
        assert!(h.is_ejected(a) && !h.is_up(a, now + base * 10));
        due.clear();
        h.probes_due(now + base * 2, &mut due);
        assert_eq!(due, vec![a]);
        // Answered: back in rotation, its failures remembered...
        h.readmit(a, now);
        assert!(h.is_up(a, now) && !h.any_ejected());
        assert_eq!(h.eject(a, "silent again", now), base * 4);
        // ...until a real call is answered.
        h.succeeded(a);
        assert!(h.is_up(a, now) && !h.any_ejected());
        // A connect that failed is not a last resort.
        h.failed(b, "refused", false, now);
        assert!(!h.is_up_as_last_resort(b, now));
    }
}
