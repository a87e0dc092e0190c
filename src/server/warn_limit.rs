//! Rate limits for warnings a peer can cause at will (a garbage connection,
//! a refused one, a closed one): 139,101 garbage connections in 10 s once
//! wrote 27.5 MB of log. Each thread that logs such warnings keeps one
//! [`WarnLimit`]: per cause, the first [`BURST`] warnings of each
//! [`WINDOW`] are logged, the rest only counted, and the count is logged
//! with the first warning of that cause once a new window opens.

use std::time::{Duration, Instant};

/// Warnings per cause logged in each window.
pub(crate) const BURST: u32 = 10;
/// How long a window lasts.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

/// One cause's window.
#[derive(Debug)]
struct Window {
    cause: &'static str,
    opened: Instant,
    logged: u32,
    suppressed: u64,
}

/// Whether to log a warning now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Log it, saying that this many of its cause were left out before.
    Log { suppressed: u64 },
    /// Leave it out (counted).
    Suppress,
}

/// Per-cause windows of one thread (a handful of causes: a linear scan).
#[derive(Debug, Default)]
pub(crate) struct WarnLimit {
    windows: Vec<Window>,
}

impl WarnLimit {
    /// A warning of `cause` at `now`: log it or leave it out.
    pub(crate) fn check(&mut self, cause: &'static str, now: Instant) -> Verdict {
        let window = match self.windows.iter_mut().position(|w| w.cause == cause) {
            Some(i) => &mut self.windows[i],
            None => {
                self.windows.push(Window {
                    cause,
                    opened: now,
                    logged: 0,
                    suppressed: 0,
                });
                self.windows.last_mut().expect("just pushed")
            }
        };
        if now.duration_since(window.opened) >= WINDOW {
            window.opened = now;
            window.logged = 0;
        }
        if window.logged >= BURST {
            window.suppressed += 1;
            return Verdict::Suppress;
        }
        window.logged += 1;
        Verdict::Log {
            suppressed: std::mem::take(&mut window.suppressed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_cause_and_window_then_the_count_of_what_was_left_out() {
        let t0 = Instant::now();
        let mut limit = WarnLimit::default();
        for _ in 0..BURST {
            assert_eq!(limit.check("garbage", t0), Verdict::Log { suppressed: 0 });
        }
        assert_eq!(limit.check("garbage", t0), Verdict::Suppress);
        assert_eq!(limit.check("garbage", t0), Verdict::Suppress);
        assert_eq!(
            limit.check("idle", t0),
            Verdict::Log { suppressed: 0 },
            "another cause has its own window"
        );
        assert_eq!(
            limit.check("garbage", t0 + WINDOW),
            Verdict::Log { suppressed: 2 },
            "a new window logs again, with the count left out"
        );
        assert_eq!(
            limit.check("garbage", t0 + WINDOW),
            Verdict::Log { suppressed: 0 }
        );
    }
}
