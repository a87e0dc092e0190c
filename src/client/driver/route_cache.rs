//! The route of a service's calls, remembered: which connections a
//! one-provider endpoint list leads to, so a new call skips the balancer's
//! pick and the pool look-up (hashing the provider's address) while
//! nothing about that route has changed.
//!
//! An entry is found by its endpoint list's identity (`Arc::ptr_eq`): a
//! `Discover` answers a service with the same list until its providers
//! change, so a discovery update brings a new list, which misses, and the
//! call takes the full route (which remembers the new one). The entry holds
//! its list, so that list's address cannot be reused for another while it
//! is cached. Entries are made only for a list of one endpoint whose pool
//! is full (the balancer has nothing to choose and no connection is left
//! to open), and the driver forgets them all whenever a pool changes (a
//! connection opened, closed or drained) and skips them while any endpoint
//! has a failure record (`Health::all_up`): then the full route decides.

use std::sync::Arc;

use crate::discovery::Endpoint;

/// Entries kept: one per service a driver calls in turn (more are rare).
const ENTRIES: usize = 8;

/// A one-endpoint list and the connections of its (full) pool.
struct Entry {
    endpoints: Arc<[Endpoint]>,
    conns: Box<[usize]>,
    next: usize,
}

/// The remembered routes of one driver.
#[derive(Default)]
pub(super) struct RouteCache {
    entries: Vec<Entry>,
}

impl RouteCache {
    /// The connection a new call on `endpoints` goes to, if that route is
    /// remembered: `preferred` (a connection of its pool the caller
    /// names), else round robin over its pool, as the pool itself does.
    #[inline]
    pub(super) fn conn_for(
        &mut self,
        endpoints: &Arc<[Endpoint]>,
        preferred: Option<usize>,
    ) -> Option<usize> {
        let entry = self
            .entries
            .iter_mut()
            .find(|e| Arc::ptr_eq(&e.endpoints, endpoints))?;
        if preferred.is_some() {
            return preferred;
        }
        // `next` stays below the (never empty) pool's length: no division.
        let key = entry.conns[entry.next];
        entry.next += 1;
        if entry.next == entry.conns.len() {
            entry.next = 0;
        }
        Some(key)
    }

    /// Remembers that calls on `endpoints` (one endpoint) go to `conns`,
    /// its full pool.
    pub(super) fn remember(&mut self, endpoints: &Arc<[Endpoint]>, conns: &[usize]) {
        if endpoints.len() != 1 || conns.is_empty() {
            return;
        }
        if self.entries.len() >= ENTRIES {
            self.entries.remove(0);
        }
        self.entries.push(Entry {
            endpoints: endpoints.clone(),
            conns: conns.into(),
            next: 0,
        });
    }

    /// A pool changed: every remembered route is forgotten.
    pub(super) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::Endpoint;

    fn list(port: u16) -> Arc<[Endpoint]> {
        vec![Endpoint::new(([127, 0, 0, 1], port).into())].into()
    }

    #[test]
    fn a_remembered_list_is_found_by_identity_and_round_robins() {
        let mut cache = RouteCache::default();
        let a = list(1);
        cache.remember(&a, &[4, 7]);
        assert_eq!(cache.conn_for(&a, None), Some(4));
        assert_eq!(cache.conn_for(&a, None), Some(7));
        assert_eq!(cache.conn_for(&a, None), Some(4));
        assert_eq!(
            cache.conn_for(&a, Some(9)),
            Some(9),
            "the caller's pick wins"
        );
        assert_eq!(
            cache.conn_for(&a, None),
            Some(7),
            "and leaves the turn as it was"
        );
        let same_content = list(1);
        assert_eq!(
            cache.conn_for(&same_content, None),
            None,
            "a new list misses"
        );
        cache.clear();
        assert_eq!(cache.conn_for(&a, None), None);
    }

    #[test]
    fn only_one_endpoint_lists_are_remembered_and_old_entries_go() {
        let mut cache = RouteCache::default();
        let two: Arc<[Endpoint]> = vec![
            Endpoint::new(([127, 0, 0, 1], 1).into()),
            Endpoint::new(([127, 0, 0, 1], 2).into()),
        ]
        .into();
        cache.remember(&two, &[1]);
        assert_eq!(cache.conn_for(&two, None), None);
        let lists: Vec<_> = (0..=ENTRIES as u16).map(list).collect();
        for (i, l) in lists.iter().enumerate() {
            cache.remember(l, &[i]);
        }
        assert_eq!(cache.conn_for(&lists[0], None), None, "the oldest went");
        assert_eq!(cache.conn_for(&lists[ENTRIES], None), Some(ENTRIES));
    }
}
