//! Load-balancing policies: which provider gets the next call.
//!
//! The I/O driver asks a [`Balancer`] once per call (and again per retry)
//! with the service's current endpoint list, a predicate saying which
//! endpoints are usable (not backed off after a failure) and each endpoint's
//! outstanding call count. Everything here runs on the driver thread, so
//! the policy state needs no locks.
//!
//! Consistent hashing places [`VNODES`] virtual nodes per endpoint on a
//! 64-bit ring (ketama style). The ring is built from the endpoint
//! addresses alone, with a hash that is the same in every process, so all
//! clients send a key to the same provider and adding or removing one
//! provider only moves the keys on its own arcs. Rings are cached per
//! endpoint list, so a call does not rebuild one.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub use crate::discovery::balance::LoadBalance;
use crate::discovery::Endpoint;

/// Virtual nodes per endpoint on the consistent-hash ring.
pub(crate) const VNODES: usize = 160;

/// Rings kept for recently seen endpoint lists.
const RING_CACHE: usize = 8;

/// A policy plus its state (round-robin cursor, random generator, rings).
pub(crate) struct Balancer {
    policy: LoadBalance,
    next: usize,
    rng: u64,
    rings: Vec<(Arc<[Endpoint]>, Ring)>,
}

impl Balancer {
    pub(crate) fn new(policy: LoadBalance, seed: u64) -> Balancer {
        Balancer {
            policy,
            next: 0,
            rng: seed | 1,
            rings: Vec::new(),
        }
    }

    /// Index of the endpoint the next call should use, or `None` when no
    /// endpoint is usable. `up` filters out backed-off endpoints; `load`
    /// is an endpoint's outstanding call count (least-outstanding only).
    pub(crate) fn pick(
        &mut self,
        endpoints: &Arc<[Endpoint]>,
        hash_key: Option<u64>,
        up: impl Fn(&Endpoint) -> bool,
        load: impl Fn(&Endpoint) -> usize,
    ) -> Option<usize> {
        let n = endpoints.len();
        if n == 0 {
            return None;
        }
        match (self.policy, hash_key) {
            (LoadBalance::ConsistentHash, Some(key)) => {
                self.ring(endpoints).lookup(key, |i| up(&endpoints[i]))
            }
            (LoadBalance::Random, _) => {
                let start = self.weighted(endpoints);
                first_up(endpoints, start, &up)
            }
            (LoadBalance::LeastOutstanding, _) if n > 1 => {
                let a = (self.random() % n as u64) as usize;
                let mut b = (self.random() % (n as u64 - 1)) as usize;
                if b >= a {
                    b += 1;
                }
                match (up(&endpoints[a]), up(&endpoints[b])) {
                    (true, true) if load(&endpoints[b]) < load(&endpoints[a]) => Some(b),
                    (true, _) => Some(a),
                    (false, true) => Some(b),
                    (false, false) => first_up(endpoints, a, &up),
                }
            }
            _ if n == 1 => first_up(endpoints, 0, &up),
            _ => {
                let start = self.next % n;
                self.next = self.next.wrapping_add(1);
                first_up(endpoints, start, &up)
            }
        }
    }

    /// A random index, each endpoint drawn in proportion to its `weight`
    /// (all weights 0 count as equal).
    fn weighted(&mut self, endpoints: &[Endpoint]) -> usize {
        let total: u64 = endpoints.iter().map(|e| u64::from(e.weight)).sum();
        if total == 0 {
            return (self.random() % endpoints.len() as u64) as usize;
        }
        let mut ticket = self.random() % total;
        for (i, e) in endpoints.iter().enumerate() {
            match ticket.checked_sub(u64::from(e.weight)) {
                Some(rest) => ticket = rest,
                None => return i,
            }
        }
        endpoints.len() - 1
    }

    /// xorshift64*: fast, good enough to spread load, no dependency.
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The ring for `endpoints`, built once per distinct list.
    fn ring(&mut self, endpoints: &Arc<[Endpoint]>) -> &Ring {
        let found = self
            .rings
            .iter()
            .position(|(list, _)| Arc::ptr_eq(list, endpoints))
            .or_else(|| {
                // A discoverer may hand out an equal list in a new Arc.
                let i = self
                    .rings
                    .iter()
                    .position(|(list, _)| **list == **endpoints)?;
                self.rings[i].0 = endpoints.clone();
                Some(i)
            });
        let index = match found {
            Some(i) => i,
            None => {
                if self.rings.len() >= RING_CACHE {
                    self.rings.remove(0);
                }
                self.rings.push((endpoints.clone(), Ring::build(endpoints)));
                self.rings.len() - 1
            }
        };
        &self.rings[index].1
    }
}

/// The first usable endpoint at or after `start`, wrapping around.
fn first_up(
    endpoints: &[Endpoint],
    start: usize,
    up: &impl Fn(&Endpoint) -> bool,
) -> Option<usize> {
    let n = endpoints.len();
    (0..n).map(|k| (start + k) % n).find(|&i| up(&endpoints[i]))
}

/// A consistent-hash ring: sorted (point, endpoint index) pairs.
pub(crate) struct Ring {
    points: Vec<(u64, u32)>,
}

impl Ring {
    pub(crate) fn build(endpoints: &[Endpoint]) -> Ring {
        let mut points = Vec::with_capacity(endpoints.len() * VNODES);
        for (index, endpoint) in endpoints.iter().enumerate() {
            for vnode in 0..VNODES {
                points.push((point_hash(endpoint.addr, vnode as u32), index as u32));
            }
        }
        // Ties (astronomically rare) are broken by index so every client
        // builds the same ring.
        points.sort_unstable();
        Ring { points }
    }

    /// The owner of `key`: the first usable endpoint clockwise from it.
    pub(crate) fn lookup(&self, key: u64, up: impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let h = mix64(key);
        let start = self.points.partition_point(|&(p, _)| p < h);
        let n = self.points.len();
        (0..n)
            .map(|k| self.points[(start + k) % n].1 as usize)
            .find(|&i| up(i))
    }
}

/// FNV-1a over the address and vnode number, then a 64-bit finalizer:
/// stable across processes and builds (unlike `DefaultHasher`).
fn point_hash(addr: SocketAddr, vnode: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    match addr.ip() {
        IpAddr::V4(ip) => feed(&ip.octets()),
        IpAddr::V6(ip) => feed(&ip.octets()),
    }
    feed(&addr.port().to_be_bytes());
    feed(&vnode.to_be_bytes());
    mix64(h)
}

/// splitmix64's finalizer: spreads nearby keys over the whole ring.
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(n: u16) -> Arc<[Endpoint]> {
        (0..n)
            .map(|i| Endpoint::new(SocketAddr::from(([127, 0, 0, 1], 9000 + i))))
            .collect()
    }

    fn counts(
        b: &mut Balancer,
        eps: &Arc<[Endpoint]>,
        calls: usize,
        up: impl Fn(&Endpoint) -> bool,
    ) -> Vec<usize> {
        let mut counts = vec![0; eps.len()];
        for _ in 0..calls {
            counts[b.pick(eps, None, &up, |_| 0).expect("an endpoint is up")] += 1;
        }
        counts
    }

    #[test]
    fn round_robin_is_even_and_skips_down_endpoints() {
        let eps = endpoints(3);
        let mut b = Balancer::new(LoadBalance::RoundRobin, 1);
        assert_eq!(counts(&mut b, &eps, 300, |_| true), vec![100, 100, 100]);
        let down = eps[1].addr;
        let c = counts(&mut b, &eps, 300, |e| e.addr != down);
        assert_eq!(c[1], 0);
        assert_eq!(c[0] + c[2], 300);
        assert!(c[0] >= 100 && c[2] >= 100, "{c:?}");
    }

    #[test]
    fn random_reaches_every_endpoint() {
        let eps = endpoints(4);
        let mut b = Balancer::new(LoadBalance::Random, 42);
        let c = counts(&mut b, &eps, 4000, |_| true);
        for n in &c {
            assert!(*n > 700 && *n < 1300, "uneven random spread {c:?}");
        }
    }

    #[test]
    fn random_follows_the_weights() {
        let mut eps: Vec<Endpoint> = endpoints(3).iter().cloned().collect();
        eps[0].weight = 300;
        eps[1].weight = 100;
        eps[2].weight = 0;
        let eps: Arc<[Endpoint]> = eps.into();
        let mut b = Balancer::new(LoadBalance::Random, 9);
        let c = counts(&mut b, &eps, 4000, |_| true);
        assert_eq!(c[2], 0, "weight 0 gets nothing while others are up: {c:?}");
        assert!(c[0] > 2700 && c[0] < 3300, "3:1 split expected: {c:?}");
    }

    #[test]
    fn least_outstanding_prefers_the_idle_endpoint() {
        let eps = endpoints(2);
        let busy = eps[0].addr;
        let mut b = Balancer::new(LoadBalance::LeastOutstanding, 7);
        for _ in 0..100 {
            let i = b
                .pick(
                    &eps,
                    None,
                    |_| true,
                    |e| if e.addr == busy { 50 } else { 3 },
                )
                .unwrap();
            assert_eq!(i, 1);
        }
        // Equal load still spreads over both.
        let c = counts(&mut b, &eps, 1000, |_| true);
        assert!(c[0] > 300 && c[1] > 300, "{c:?}");
        // A down endpoint is never chosen, whatever its load.
        for _ in 0..100 {
            let i = b.pick(&eps, None, |e| e.addr == busy, |_| 0).unwrap();
            assert_eq!(i, 0);
        }
    }

    #[test]
    fn nothing_up_gives_none() {
        let eps = endpoints(3);
        for policy in [
            LoadBalance::RoundRobin,
            LoadBalance::Random,
            LoadBalance::LeastOutstanding,
            LoadBalance::ConsistentHash,
        ] {
            let mut b = Balancer::new(policy, 3);
            assert_eq!(b.pick(&eps, Some(5), |_| false, |_| 0), None, "{policy:?}");
            assert_eq!(b.pick(&eps, None, |_| false, |_| 0), None, "{policy:?}");
            let empty: Arc<[Endpoint]> = Arc::from(Vec::new());
            assert_eq!(b.pick(&empty, None, |_| true, |_| 0), None);
        }
    }

    fn owners(eps: &Arc<[Endpoint]>, keys: u64) -> Vec<SocketAddr> {
        let mut b = Balancer::new(LoadBalance::ConsistentHash, 1);
        (0..keys)
            .map(|k| eps[b.pick(eps, Some(k), |_| true, |_| 0).unwrap()].addr)
            .collect()
    }

    #[test]
    fn consistent_hash_is_sticky_and_spreads_keys() {
        let eps = endpoints(4);
        let first = owners(&eps, 10_000);
        assert_eq!(first, owners(&eps, 10_000), "same key, same provider");
        for e in eps.iter() {
            let share = first.iter().filter(|a| **a == e.addr).count();
            assert!(share > 1500 && share < 3500, "{} got {share}", e.addr);
        }
    }

    #[test]
    fn adding_a_node_moves_only_keys_to_it() {
        let before = endpoints(4);
        let after = endpoints(5);
        let added = after[4].addr;
        let (a, b) = (owners(&before, 10_000), owners(&after, 10_000));
        let moved: Vec<_> = a.iter().zip(&b).filter(|(x, y)| x != y).collect();
        assert!(
            moved.iter().all(|(_, to)| **to == added),
            "keys moved between old nodes"
        );
        let share = moved.len() as f64 / 10_000.0;
        assert!(share > 0.1 && share < 0.3, "moved share {share}");
    }

    #[test]
    fn removing_or_downing_a_node_moves_only_its_keys() {
        let before = endpoints(5);
        let gone = before[2].addr;
        let after: Arc<[Endpoint]> = before.iter().filter(|e| e.addr != gone).cloned().collect();
        let (a, b) = (owners(&before, 10_000), owners(&after, 10_000));
        for (x, y) in a.iter().zip(&b) {
            if *x != gone {
                assert_eq!(x, y, "a key not owned by the removed node moved");
            }
        }
        // Marking it down has the same effect as removing it.
        let mut bal = Balancer::new(LoadBalance::ConsistentHash, 1);
        for (k, owner) in b.iter().enumerate() {
            let i = bal
                .pick(&before, Some(k as u64), |e| e.addr != gone, |_| 0)
                .unwrap();
            assert_eq!(before[i].addr, *owner);
        }
    }

    #[test]
    fn consistent_hash_without_key_is_round_robin() {
        let eps = endpoints(3);
        let mut b = Balancer::new(LoadBalance::ConsistentHash, 1);
        assert_eq!(counts(&mut b, &eps, 30, |_| true), vec![10, 10, 10]);
    }

    #[test]
    fn an_equal_list_in_a_new_arc_reuses_the_ring() {
        let mut b = Balancer::new(LoadBalance::ConsistentHash, 1);
        for _ in 0..50 {
            let eps = endpoints(3);
            b.pick(&eps, Some(9), |_| true, |_| 0).unwrap();
        }
        assert_eq!(b.rings.len(), 1);
    }
}
