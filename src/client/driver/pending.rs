//! The driver's calls in flight, filed by request id without hashing.
//!
//! A request id is `use of the cell << 32 | cell index` (see
//! `CellRef::call_id`): the low half is the index of the call's completion
//! cell, which no other call has while the driver holds this one (see
//! `cells`), so it indexes a plain vector; the high half tells a late reply
//! or cancel for an earlier call in the same slot from the current one.

use super::Pending;

#[derive(Default)]
pub(super) struct Calls {
    slots: Vec<Option<Pending>>,
    len: usize,
}

fn slot(id: u64) -> usize {
    id as u32 as usize
}

impl Calls {
    /// Files `pending` in its slot (once per call: inlined, written in
    /// place, the slot's growth out of line).
    #[inline]
    pub(super) fn insert(&mut self, pending: Pending) {
        let at = slot(pending.id);
        if at >= self.slots.len() {
            self.grow(at);
        }
        let entry = &mut self.slots[at];
        if entry.is_none() {
            self.len += 1;
        }
        *entry = Some(pending);
    }

    #[cold]
    fn grow(&mut self, at: usize) {
        self.slots.resize_with(at + 1, || None);
    }

    pub(super) fn get(&self, id: u64) -> Option<&Pending> {
        self.slots
            .get(slot(id))
            .and_then(Option::as_ref)
            .filter(|p| p.id == id)
    }

    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut Pending> {
        self.slots
            .get_mut(slot(id))
            .and_then(Option::as_mut)
            .filter(|p| p.id == id)
    }

    pub(super) fn contains(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    pub(super) fn remove(&mut self, id: u64) -> Option<Pending> {
        let entry = self.slots.get_mut(slot(id))?;
        if entry.as_ref().is_some_and(|p| p.id == id) {
            self.len -= 1;
            return entry.take();
        }
        None
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ids of the calls routed to connection `conn`.
    pub(super) fn ids_on(&self, conn: usize) -> Vec<u64> {
        self.slots
            .iter()
            .flatten()
            .filter(|p| p.conn == conn)
            .map(|p| p.id)
            .collect()
    }
}
