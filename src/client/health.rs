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
//! Only endpoints with failures have an entry, so the common all-healthy
//! case costs one `is_empty` check per call. Lives on the driver thread.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Failure record of one endpoint.
#[derive(Debug)]
struct Record {
    failures: u32,
    down_until: Instant,
    last_error: String,
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
        self.records.is_empty() || self.records.get(&addr).is_none_or(|r| r.down_until <= now)
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
        });
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
}
