//! Open-file limits. A provider raises its soft `RLIMIT_NOFILE` to the hard
//! limit when it starts, and keeps `max_connections` below the files it
//! can then open: connections beyond it are refused cleanly by the
//! acceptor (accepted and closed at once) instead of `accept` failing with
//! "Too many open files", which locks every new client out while the
//! process sits at its limit.

/// Files kept for everything but accepted connections: listeners, each
/// reactor's epoll and waker, log files, ZooKeeper, channels handlers open,
/// and the one the acceptor needs to refuse a connection.
const RESERVED_FILES: u64 = 128;

/// Raises the soft open-files limit to the hard one; the soft limit in
/// effect afterwards (`None` if it cannot be read).
pub(crate) fn raise_open_files() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write a struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            ..limit
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Some(limit.rlim_cur)
}

/// The connections a server may hold: `requested`, lowered to what
/// `open_files` leaves once [`RESERVED_FILES`] are kept aside.
pub(crate) fn connection_limit(requested: usize, open_files: Option<u64>) -> usize {
    let Some(files) = open_files else {
        return requested;
    };
    let usable = files.saturating_sub(RESERVED_FILES).max(1);
    requested.min(usize::try_from(usable).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_connections_stays_below_the_open_files_limit() {
        assert_eq!(connection_limit(100_000, Some(1024)), 1024 - 128);
        assert_eq!(connection_limit(500, Some(1 << 20)), 500);
        assert_eq!(connection_limit(500, Some(64)), 1, "never zero");
        assert_eq!(connection_limit(500, None), 500);
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let soft = raise_open_files().expect("RLIMIT_NOFILE readable");
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes a struct we own.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!(soft, limit.rlim_max);
    }
}
