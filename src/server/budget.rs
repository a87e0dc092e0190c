//! The process-wide budget for bytes connections buffer (`max_buffered_bytes`).
//!
//! A frame header may announce up to `max_frame_size` bytes; each connection
//! buffers only what has arrived (its read buffer grows as bytes come), but
//! many connections each holding a large partial frame add up. Every
//! connection may hold [`ALLOWANCE`] bytes of input buffer free of charge;
//! what it holds beyond that is charged here, and a connection whose charge
//! would pass the budget is closed instead. Ordinary traffic (frames far
//! below the allowance) never touches the shared counter, so the hot path
//! pays one comparison per read.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Input buffer bytes a connection holds without being charged; buffers
/// over it are also given back once they are empty (after a large frame).
pub(crate) const ALLOWANCE: usize = 256 * 1024;

/// Bytes charged to connections, and the most that may be.
#[derive(Debug)]
pub(crate) struct BufferBudget {
    charged: AtomicUsize,
    limit: usize,
}

/// The budget would be passed: what is held and the limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverBudget {
    pub(crate) held: usize,
    pub(crate) limit: usize,
}

impl BufferBudget {
    pub(crate) fn new(limit: usize) -> BufferBudget {
        BufferBudget {
            charged: AtomicUsize::new(0),
            limit,
        }
    }

    /// Bytes charged right now, over all connections.
    pub(crate) fn charged(&self) -> usize {
        self.charged.load(Ordering::Relaxed)
    }

    /// Moves a connection's charge from `*charge` to what a buffer of
    /// `capacity` bytes costs; refused (and the charge left as it was) when
    /// that would pass the limit.
    pub(crate) fn recharge(&self, charge: &mut usize, capacity: usize) -> Result<(), OverBudget> {
        let wanted = capacity.saturating_sub(ALLOWANCE);
        if wanted == *charge {
            return Ok(());
        }
        if wanted < *charge {
            self.charged.fetch_sub(*charge - wanted, Ordering::Relaxed);
            *charge = wanted;
            return Ok(());
        }
        let more = wanted - *charge;
        let before = self.charged.fetch_add(more, Ordering::Relaxed);
        if before + more > self.limit {
            self.charged.fetch_sub(more, Ordering::Relaxed);
            return Err(OverBudget {
                held: before,
                limit: self.limit,
            });
        }
        *charge = wanted;
        Ok(())
    }

    /// A connection closed: its charge is freed.
    pub(crate) fn release(&self, charge: &mut usize) {
        self.charged
            .fetch_sub(std::mem::take(charge), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_buffers_are_free_and_large_ones_are_charged_up_to_the_limit() {
        let budget = BufferBudget::new(1 << 20);
        let (mut a, mut b) = (0, 0);
        budget.recharge(&mut a, ALLOWANCE).unwrap();
        assert_eq!(budget.charged(), 0, "within the allowance");
        budget.recharge(&mut a, ALLOWANCE + (768 << 10)).unwrap();
        assert_eq!(budget.charged(), 768 << 10);
        let refused = budget.recharge(&mut b, ALLOWANCE + (512 << 10));
        assert!(refused.is_err(), "768 KiB + 512 KiB passes 1 MiB");
        assert_eq!((b, budget.charged()), (0, 768 << 10), "nothing charged");
        budget.recharge(&mut a, 4096).unwrap();
        assert_eq!(budget.charged(), 0, "a buffer given back frees its charge");
        budget.recharge(&mut b, ALLOWANCE + (512 << 10)).unwrap();
        budget.release(&mut b);
        assert_eq!((b, budget.charged()), (0, 0));
    }
}
