//! Provider nodes a consumer has already read, so that re-reading a changed
//! provider list fetches only the nodes that are new.
//!
//! Without it, every watch event made every consumer read every provider
//! node again: one provider leaving a service of N providers cost each of
//! M consumers 1 + N requests, M × (1 + N) in all, at the same instant — the
//! herd `scripts/registry_scale.sh` measures. Provider nodes are written
//! once and never updated in place (a provider that changes re-creates its
//! node), so a node still listed under the same name is the node read
//! before — unless it was deleted and re-created between two listings.
//! The parent's `cversion` says whether that can have happened: ZooKeeper
//! bumps it by exactly one per child created or deleted, so when it moved
//! by no more than the names that came and went, no name was replaced
//! unseen. Otherwise (or with no earlier listing) every node is read again.

use std::collections::HashMap;

use crate::discovery::Endpoint;

/// Read provider nodes, per provider-list path.
#[derive(Debug, Default)]
pub(crate) struct NodeCache {
    lists: HashMap<String, Known>,
}

/// One provider list as last read.
#[derive(Debug)]
struct Known {
    cversion: i32,
    /// Per child name: its endpoint, or `None` for a node that did not parse.
    nodes: HashMap<String, Option<Endpoint>>,
}

/// What a fresh listing of a provider-list path still needs.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    /// Nodes known from the last read (`None`: it did not parse).
    pub reuse: Vec<(String, Option<Endpoint>)>,
    /// Nodes to read.
    pub read: Vec<String>,
}

impl NodeCache {
    /// Splits `names`, listed at `path` with the parent's `cversion`, into
    /// nodes whose data is known and nodes to read.
    pub(crate) fn plan(&self, path: &str, names: &[String], cversion: i32) -> Plan {
        let Some(known) = self
            .lists
            .get(path)
            .filter(|k| k.still_valid(names, cversion))
        else {
            return Plan {
                reuse: Vec::new(),
                read: names.to_vec(),
            };
        };
        let mut plan = Plan::default();
        for name in names {
            match known.nodes.get(name) {
                Some(endpoint) => plan.reuse.push((name.clone(), endpoint.clone())),
                None => plan.read.push(name.clone()),
            }
        }
        plan
    }

    /// Records the nodes under `path` as read at `cversion`.
    pub(crate) fn store(
        &mut self,
        path: &str,
        cversion: i32,
        nodes: impl IntoIterator<Item = (String, Option<Endpoint>)>,
    ) {
        let nodes = nodes.into_iter().collect();
        self.lists
            .insert(path.to_owned(), Known { cversion, nodes });
    }

    /// Forgets everything (a new session: nothing watched is trusted).
    pub(crate) fn clear(&mut self) {
        self.lists.clear();
    }
}

impl Known {
    /// True if the children changed by no more than the names that came
    /// and went since this listing, so no listed name was replaced unseen.
    fn still_valid(&self, names: &[String], cversion: i32) -> bool {
        let came = names
            .iter()
            .filter(|n| !self.nodes.contains_key(*n))
            .count();
        let stayed = names.len() - came;
        let went = self.nodes.len().saturating_sub(stayed);
        let moved = i64::from(cversion) - i64::from(self.cversion);
        moved >= 0 && moved <= (came + went) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::WireFormat;
    use crate::net::tls::TlsMode;

    fn endpoint(port: u16) -> Option<Endpoint> {
        Some(Endpoint {
            addr: ([10, 0, 0, 1], port).into(),
            weight: 100,
            format: WireFormat::Mprpc,
            max_frame: None,
            tls: TlsMode::Off,
        })
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn cache_with_a_b(cversion: i32) -> NodeCache {
        let mut cache = NodeCache::default();
        cache.store(
            "/p",
            cversion,
            [("a".to_owned(), endpoint(1)), ("b".to_owned(), None)],
        );
        cache
    }

    #[test]
    fn an_unknown_path_reads_everything() {
        let plan = NodeCache::default().plan("/p", &names(&["a", "b"]), 7);
        assert_eq!(plan.read, names(&["a", "b"]));
        assert!(plan.reuse.is_empty());
    }

    #[test]
    fn a_departure_reads_nothing_and_an_arrival_reads_only_the_newcomer() {
        let cache = cache_with_a_b(4);
        let gone = cache.plan("/p", &names(&["a"]), 5);
        assert!(gone.read.is_empty());
        assert_eq!(gone.reuse, vec![("a".to_owned(), endpoint(1))]);

        let came = cache.plan("/p", &names(&["a", "b", "c"]), 5);
        assert_eq!(came.read, names(&["c"]));
        assert_eq!(
            came.reuse.len(),
            2,
            "a and b (which did not parse) are reused"
        );
    }

    #[test]
    fn a_node_replaced_unseen_makes_everything_read_again() {
        // b deleted and re-created between two listings: same names, cversion +2.
        let cache = cache_with_a_b(4);
        let plan = cache.plan("/p", &names(&["a", "b"]), 6);
        assert_eq!(plan.read, names(&["a", "b"]));
        // One left and another replaced: one name went, cversion moved by 3.
        let plan = cache.plan("/p", &names(&["a"]), 7);
        assert_eq!(plan.read, names(&["a"]));
    }

    #[test]
    fn an_older_listing_or_a_cleared_cache_reads_everything() {
        let mut cache = cache_with_a_b(4);
        assert_eq!(cache.plan("/p", &names(&["a", "b"]), 3).read.len(), 2);
        assert!(cache.plan("/p", &names(&["a", "b"]), 4).read.is_empty());
        cache.clear();
        assert_eq!(cache.plan("/p", &names(&["a", "b"]), 4).read.len(), 2);
    }
}
