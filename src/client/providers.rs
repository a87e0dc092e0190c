//! The providers of a call's service, remembered per thread while the
//! channel's discovery reports no change.
//!
//! Every call needs its service's provider list and the smallest frame
//! limit those providers publish. Asking the `Discover` each time costs a
//! virtual call and whatever the source does (for ZooKeeper a read lock, a
//! hash of the name and clones of its listing), and the limit a scan of
//! the list. A source that numbers its changes ([`Discover::generation`])
//! lets a thread keep the answer for a (channel, service, method) until
//! that number moves: a discovery update makes the next call ask again, so
//! failover and new providers are seen as before. A source that does not
//! number its changes (among them a fixed list, whose answer is a field
//! read: cheaper than comparing the names here) is asked on every call.
//! Failures are never kept.
//!
//! The table is per thread (no lock, no shared cache line: callbacks on a
//! driver thread and each blocking caller hit their own), small, and
//! reuses its names' storage, so calls in steady state allocate nothing.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::call::status::Status;
use crate::discovery::{Discover, Endpoint};

/// Entries per thread: the (channel, service, method) triples a thread
/// calls in turn; more are rare (then the oldest entry is reused).
const ENTRIES: usize = 16;

/// A service's providers as a call needs them.
pub(crate) struct Providers {
    /// Never empty.
    pub endpoints: Arc<[Endpoint]>,
    /// The smallest frame body limit the providers publish (`usize::MAX`:
    /// none).
    pub limit: usize,
}

struct Entry {
    channel: u64,
    generation: u64,
    service: String,
    method: String,
    endpoints: Arc<[Endpoint]>,
    limit: usize,
}

#[derive(Default)]
struct Table {
    entries: Vec<Entry>,
    /// The entry replaced next once the table is full.
    next: usize,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table::default());
}

/// Numbers channels for the table (an address could be reused by a later
/// channel; a number is not).
static CHANNELS: AtomicU64 = AtomicU64::new(1);

/// A number for a new channel, never given before.
pub(crate) fn channel_id() -> u64 {
    CHANNELS.fetch_add(1, Ordering::Relaxed)
}

/// The providers of `service`.`method` for channel `channel`, whose
/// providers come from `discover`: as remembered while its generation
/// stays put, else asked for (and remembered). Not inlined: the call
/// path of sources that number no changes stays as short as before.
#[inline(never)]
pub(crate) fn remembered(
    channel: u64,
    discover: &dyn Discover,
    service: &str,
    method: &str,
) -> Result<Providers, Status> {
    let Some(generation) = discover.generation() else {
        return ask(discover, service, method);
    };
    let kept = TABLE
        .try_with(|t| t.borrow().find(channel, generation, service, method))
        .ok()
        .flatten();
    if let Some(kept) = kept {
        return Ok(kept);
    }
    // Asked outside the table's borrow: the source may take its time.
    let found = ask(discover, service, method)?;
    let _ = TABLE.try_with(|t| {
        t.borrow_mut()
            .keep(channel, generation, service, method, &found)
    });
    Ok(found)
}

/// The source's answer, checked and with its frame limit.
fn ask(discover: &dyn Discover, service: &str, method: &str) -> Result<Providers, Status> {
    let endpoints = discover.method_providers(service, method)?;
    if endpoints.is_empty() {
        return Err(none_known(service));
    }
    let limit = frame_limit(&endpoints);
    Ok(Providers { endpoints, limit })
}

/// "No provider" for `service` (an empty list).
#[cold]
pub(crate) fn none_known(service: &str) -> Status {
    Status::unavailable(format!("no provider known for service '{service}'"))
}

/// The smallest frame body limit `endpoints` publish (providers found
/// through ZooKeeper do; `usize::MAX`: none). A plain loop: it runs on
/// every call, mostly over one endpoint.
#[inline]
pub(crate) fn frame_limit(endpoints: &[Endpoint]) -> usize {
    let mut limit = usize::MAX;
    for endpoint in endpoints {
        if let Some(max) = endpoint.max_frame {
            limit = limit.min(max);
        }
    }
    limit
}

impl Table {
    #[inline]
    fn find(
        &self,
        channel: u64,
        generation: u64,
        service: &str,
        method: &str,
    ) -> Option<Providers> {
        let entry = self.entries.iter().find(|e| {
            e.channel == channel
                && e.generation == generation
                && e.service == service
                && e.method == method
        })?;
        Some(Providers {
            endpoints: entry.endpoints.clone(),
            limit: entry.limit,
        })
    }

    /// Remembers `found` under its key, in place of an older answer for
    /// the same key, else in a free entry, else in the oldest one.
    fn keep(
        &mut self,
        channel: u64,
        generation: u64,
        service: &str,
        method: &str,
        found: &Providers,
    ) {
        let same = self
            .entries
            .iter()
            .position(|e| e.channel == channel && e.service == service && e.method == method);
        let at = match same {
            Some(at) => at,
            None if self.entries.len() < ENTRIES => {
                self.entries.push(Entry {
                    channel,
                    generation,
                    service: String::new(),
                    method: String::new(),
                    endpoints: found.endpoints.clone(),
                    limit: found.limit,
                });
                self.entries.len() - 1
            }
            None => {
                let at = self.next;
                self.next = (self.next + 1) % ENTRIES;
                at
            }
        };
        let entry = &mut self.entries[at];
        entry.channel = channel;
        entry.generation = generation;
        // The names' storage is reused (no allocation once it is large enough).
        entry.service.clear();
        entry.service.push_str(service);
        entry.method.clear();
        entry.method.push_str(method);
        entry.endpoints = found.endpoints.clone();
        entry.limit = found.limit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its lookups; its list and generation change on demand.
    struct Counting {
        asked: AtomicUsize,
        generation: Option<AtomicU64>,
        list: parking_lot::Mutex<Arc<[Endpoint]>>,
    }

    impl Counting {
        fn new(generation: Option<u64>, port: u16) -> Counting {
            Counting {
                asked: AtomicUsize::new(0),
                generation: generation.map(AtomicU64::new),
                list: parking_lot::Mutex::new(list(port)),
            }
        }
        fn update(&self, port: u16) {
            *self.list.lock() = list(port);
            if let Some(g) = &self.generation {
                g.fetch_add(1, Ordering::Release);
            }
        }
        fn asked(&self) -> usize {
            self.asked.load(Ordering::Relaxed)
        }
    }

    impl Discover for Counting {
        fn providers(&self, _service: &str) -> Result<Arc<[Endpoint]>, Status> {
            self.asked.fetch_add(1, Ordering::Relaxed);
            Ok(self.list.lock().clone())
        }
        fn generation(&self) -> Option<u64> {
            self.generation.as_ref().map(|g| g.load(Ordering::Acquire))
        }
    }

    fn list(port: u16) -> Arc<[Endpoint]> {
        vec![Endpoint::new(([127, 0, 0, 1], port).into()).max_frame(Some(usize::from(port)))].into()
    }

    fn port(p: &Providers) -> u16 {
        p.endpoints[0].addr.port()
    }

    #[test]
    fn an_answer_is_kept_until_the_generation_moves() {
        let d = Counting::new(Some(0), 1000);
        let ch = channel_id();
        for _ in 0..5 {
            let p = remembered(ch, &d, "S", "m").unwrap();
            assert_eq!((port(&p), p.limit), (1000, 1000));
        }
        assert_eq!(d.asked(), 1, "asked once");
        d.update(2000);
        assert_eq!(port(&remembered(ch, &d, "S", "m").unwrap()), 2000);
        assert_eq!(d.asked(), 2, "the update was seen at the next call");
        remembered(ch, &d, "S", "other").unwrap();
        remembered(ch, &d, "T", "m").unwrap();
        remembered(channel_id(), &d, "S", "m").unwrap();
        assert_eq!(d.asked(), 5, "another method, service or channel asks");
    }

    #[test]
    fn a_source_without_generation_is_asked_every_time() {
        let d = Counting::new(None, 1000);
        let ch = channel_id();
        for _ in 0..3 {
            remembered(ch, &d, "S", "m").unwrap();
        }
        assert_eq!(d.asked(), 3);
        d.update(2000);
        assert_eq!(port(&remembered(ch, &d, "S", "m").unwrap()), 2000);
    }

    #[test]
    fn a_full_table_reuses_its_entries() {
        let d = Counting::new(Some(0), 1000);
        let ch = channel_id();
        let names: Vec<String> = (0..ENTRIES + 3).map(|i| format!("S{i}")).collect();
        for name in &names {
            remembered(ch, &d, name, "m").unwrap();
        }
        let asked = d.asked();
        remembered(ch, &d, &names[ENTRIES + 2], "m").unwrap();
        assert_eq!(d.asked(), asked, "the latest is kept");
        TABLE.with(|t| assert_eq!(t.borrow().entries.len(), ENTRIES));
    }

    #[test]
    fn an_empty_list_is_unavailable_and_not_kept() {
        let d = Counting::new(Some(0), 1000);
        *d.list.lock() = Vec::new().into();
        let ch = channel_id();
        for _ in 0..2 {
            let e = remembered(ch, &d, "S", "m").err().unwrap();
            assert_eq!(e.code(), crate::Code::Unavailable);
        }
        assert_eq!(d.asked(), 2);
    }
}
