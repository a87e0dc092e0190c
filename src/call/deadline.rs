//! Deadlines that follow a call down the chain: while a handler runs (a
//! sync handler, or one poll of an async handler's future), this thread
//! knows the deadline of the call it serves, and a channel call started
//! then is capped at what remains of it, minus a margin
//! (`ChannelOptions::deadline_margin`), so a middle tier never waits for a
//! downstream answer its own caller will no longer read.
//!
//! The same cell carries the served call's trace id ([`crate::call::trace`]),
//! which calls started then send on.
//!
//! A thread-local cell: setting it costs no allocation, so the sync inline
//! path stays allocation-free.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::call::trace::TraceId;

/// What a call started now inherits from the call this thread serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Serving {
    /// When that call's caller gives up (`None`: never).
    pub(crate) deadline: Option<Instant>,
    /// Its trace id.
    pub(crate) trace: TraceId,
}

thread_local! {
    /// The call this thread is serving right now.
    static SERVING: Cell<Option<Serving>> = const { Cell::new(None) };
}

/// Runs `f` as serving `call`.
pub(crate) fn serving<R>(call: Serving, f: impl FnOnce() -> R) -> R {
    /// Restores the outer value even if `f` panics.
    struct Restore(Option<Serving>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SERVING.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SERVING.with(|s| s.replace(Some(call))));
    f()
}

/// The timeout of a call started now: `timeout`, capped by what remains of
/// the served call's deadline minus `margin`. `Err(())` when nothing
/// remains (the upstream caller has given up or is about to).
pub(crate) fn inherit(timeout: Duration, margin: Duration, now: Instant) -> Result<Duration, ()> {
    match SERVING.with(Cell::get).and_then(|call| call.deadline) {
        None => Ok(timeout),
        Some(deadline) => {
            let left = deadline
                .saturating_duration_since(now)
                .saturating_sub(margin);
            if left.is_zero() {
                Err(())
            } else {
                Ok(timeout.min(left))
            }
        }
    }
}

/// The trace id of the call this thread serves, if it serves one.
pub(crate) fn current_trace() -> Option<TraceId> {
    SERVING.with(Cell::get).map(|call| call.trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_started_while_serving_gets_what_remains_minus_the_margin() {
        let now = Instant::now();
        let (five, ms) = (Duration::from_secs(5), Duration::from_millis(1));
        assert_eq!(inherit(five, ms, now), Ok(five), "not serving: unchanged");
        let call = |deadline| Serving {
            deadline,
            trace: TraceId(7),
        };
        assert_eq!(current_trace(), None);
        serving(call(Some(now + Duration::from_secs(1))), || {
            assert_eq!(current_trace(), Some(TraceId(7)));
            assert_eq!(inherit(five, ms * 10, now), Ok(Duration::from_millis(990)));
            assert_eq!(
                inherit(ms, ms * 10, now),
                Ok(ms),
                "a shorter own timeout wins"
            );
            assert_eq!(inherit(five, five, now), Err(()), "nothing left");
            serving(call(None), || assert_eq!(inherit(five, ms, now), Ok(five)));
        });
        assert_eq!(inherit(five, ms, now), Ok(five), "restored after");
        assert_eq!(current_trace(), None);
    }
}
