//! The driver's calls in flight, filed by request id without hashing.
//!
//! Request ids come in two spaces, told apart by bit 62:
//!
//! - a call with a completion cell has id `1 << 63 | use of the cell << 32
//!   | cell index` (see `CellRef::call_id`): the low half is the index of
//!   its cell, which no other call has while the driver holds this one
//!   (see `cells`), so it indexes a plain vector;
//! - a call whose callback the driver holds itself (`Notify::Held`: no
//!   cell) has id `1 << 63 | 1 << 62 | use of the slot << 32 | slot`, its
//!   slot handed out here.
//!
//! In both, the high half tells a late reply or cancel for an earlier call
//! in the same slot from the current one.

use super::Pending;

/// Bit 62 of a request id: the call's callback is held by the driver.
const HELD: u64 = 1 << 62;
/// The bits of a slot's use that go into an id (30: bits 62 and 63 are
/// the markers above).
const USE_BITS: u32 = 0x3FFF_FFFF;

#[derive(Default)]
pub(super) struct Calls {
    /// Calls with a cell, by cell index.
    slots: Vec<Option<Pending>>,
    /// Calls whose callback the driver holds, by slot.
    held: Vec<HeldSlot>,
    /// Free slots of `held`, last freed first.
    held_free: Vec<u32>,
    len: usize,
}

/// A slot for a call whose callback the driver holds.
#[derive(Default)]
struct HeldSlot {
    /// Uses of this slot so far (the next call's id carries it).
    uses: u32,
    call: Option<Pending>,
}

fn slot(id: u64) -> usize {
    id as u32 as usize
}

/// The entry of `slots` or `held` id `id` is filed in (whichever call is
/// there now).
#[inline]
fn entry<'a>(
    slots: &'a mut [Option<Pending>],
    held: &'a mut [HeldSlot],
    id: u64,
) -> Option<&'a mut Option<Pending>> {
    if id & HELD != 0 {
        held.get_mut(slot(id)).map(|s| &mut s.call)
    } else {
        slots.get_mut(slot(id))
    }
}

impl Calls {
    /// The id of the next call whose callback the driver holds: a free
    /// slot, taken now and filled by the `insert` that must follow.
    #[inline]
    pub(super) fn reserve_held(&mut self) -> u64 {
        let at = self.held_free.pop().unwrap_or_else(|| {
            self.held.push(HeldSlot::default());
            (self.held.len() - 1) as u32
        });
        let uses = self.held[at as usize].uses & USE_BITS;
        (1 << 63) | HELD | (u64::from(uses) << 32) | u64::from(at)
    }

    /// Files `pending` in its slot (once per call: inlined, written in
    /// place, the slot's growth out of line).
    #[inline]
    pub(super) fn insert(&mut self, pending: Pending) {
        let at = slot(pending.id);
        if pending.id & HELD == 0 && at >= self.slots.len() {
            self.grow(at);
        }
        let entry =
            entry(&mut self.slots, &mut self.held, pending.id).expect("a reserved or grown slot");
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
        let entry = if id & HELD != 0 {
            self.held.get(slot(id)).map(|s| &s.call)
        } else {
            self.slots.get(slot(id))
        };
        entry.and_then(Option::as_ref).filter(|p| p.id == id)
    }

    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut Pending> {
        entry(&mut self.slots, &mut self.held, id)
            .and_then(Option::as_mut)
            .filter(|p| p.id == id)
    }

    pub(super) fn contains(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    /// Takes call `id` out; a held call's slot is free for the next one,
    /// whose id will differ in its use.
    #[inline]
    pub(super) fn remove(&mut self, id: u64) -> Option<Pending> {
        let entry = entry(&mut self.slots, &mut self.held, id)?;
        if entry.as_ref().is_none_or(|p| p.id != id) {
            return None;
        }
        let taken = entry.take();
        self.len -= 1;
        if id & HELD != 0 {
            let at = slot(id);
            let held = &mut self.held[at];
            held.uses = held.uses.wrapping_add(1);
            self.held_free.push(at as u32);
        }
        taken
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ids of the calls routed to connection `conn`.
    pub(super) fn ids_on(&self, conn: usize) -> Vec<u64> {
        let held = self.held.iter().map(|s| &s.call);
        self.slots
            .iter()
            .chain(held)
            .flatten()
            .filter(|p| p.conn == conn)
            .map(|p| p.id)
            .collect()
    }
}
