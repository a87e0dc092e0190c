//! Open-file limits. A provider raises (through `sys`) its soft `RLIMIT_NOFILE` to the hard
//! limit when it starts, and keeps `max_connections` below the files it
//! can then open: connections beyond it are refused cleanly by the
//! acceptor (accepted and closed at once) instead of `accept` failing with
//! "Too many open files", which locks every new client out while the
//! process sits at its limit.

/// Files kept for everything but accepted connections: listeners, each
/// reactor's epoll and waker, log files, ZooKeeper, channels handlers open,
/// and the one the acceptor needs to refuse a connection.
const RESERVED_FILES: u64 = 128;

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
}
