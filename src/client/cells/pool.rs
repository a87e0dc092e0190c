//! Where the cells live and how free ones are found: chunks allocated once
//! and never freed while the driver lives, a lock-free shared free list
//! (ABA-tagged head), and the driver thread's own list, which needs no
//! atomics. The completion protocol that uses them is in the parent module.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::{Callback, Cell, BASE, CHUNKS};

/// A free cell on its driver thread's own list, with its callback's
/// storage (taken out of the cell, put back when it is armed again).
pub(super) struct Spare {
    pub(super) index: u32,
    pub(super) callback: Option<Box<dyn Callback>>,
}

/// A driver thread's free cells: the address of its `Cells` (0: none) and
/// the list, last freed first.
type LocalFree = (usize, Vec<Spare>);

thread_local! {
    static LOCAL_FREE: RefCell<LocalFree> = const { RefCell::new((0, Vec::new())) };
}

/// The cells of one driver.
pub(crate) struct Cells {
    chunks: [OnceLock<Box<[Cell]>>; CHUNKS],
    /// Cells handed out so far (the next never-used index).
    fresh: AtomicU32,
    /// Free list head: `tag << 32 | (index + 1)`; the tag defeats ABA.
    pub(super) free: AtomicU64,
    /// The core the driver thread last ran on (`u32::MAX`: not known).
    pub(super) driver_cpu: AtomicU32,
    /// Callers parked in a blocking wait on the driver's core (see
    /// `Cells::wait`), and how many times one has parked there.
    pub(super) parked_on_driver_core: AtomicUsize,
    pub(super) parks_on_driver_core: AtomicU64,
}

impl Default for Cells {
    fn default() -> Cells {
        Cells {
            chunks: std::array::from_fn(|_| OnceLock::new()),
            fresh: AtomicU32::new(0),
            free: AtomicU64::new(0),
            driver_cpu: AtomicU32::new(u32::MAX),
            parked_on_driver_core: AtomicUsize::new(0),
            parks_on_driver_core: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Cells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cells")
            .field("allocated", &self.fresh.load(Ordering::Relaxed))
            .finish()
    }
}

impl Cells {
    /// Cells ever handed out (the pool's high-water mark).
    #[cfg(test)]
    pub(super) fn allocated(&self) -> usize {
        self.fresh.load(Ordering::Relaxed) as usize
    }

    /// The chunk holding cell `index`, and the cell's offset in it.
    #[inline]
    pub(super) fn locate(index: u32) -> (usize, usize) {
        let n = index / BASE + 1;
        let k = 31 - n.leading_zeros();
        let offset = index - BASE * ((1 << k) - 1);
        (k as usize, offset as usize)
    }

    /// Cell `index`, which was handed out before (its chunk exists).
    #[inline]
    pub(super) fn cell(&self, index: u32) -> &Cell {
        let (k, offset) = Cells::locate(index);
        match self.chunks[k].get() {
            Some(chunk) => &chunk[offset],
            None => self.fresh_cell(index),
        }
    }

    /// Cell `index`, its chunk allocated if this is the chunk's first use.
    #[cold]
    pub(super) fn fresh_cell(&self, index: u32) -> &Cell {
        let (k, offset) = Cells::locate(index);
        let chunk = self.chunks[k].get_or_init(|| {
            (0..BASE << k)
                .map(|_| Cell::default())
                .collect::<Vec<_>>()
                .into_boxed_slice()
        });
        &chunk[offset]
    }

    /// Makes this thread (the driver's) keep the cells it frees.
    pub(crate) fn install_local(&self) {
        let _ = LOCAL_FREE.try_with(|local| {
            *local.borrow_mut() = (self.addr(), Vec::with_capacity(BASE as usize));
        });
    }

    /// The driver's thread is stopping: its free cells go onto the shared
    /// list, their callbacks' storage back into them.
    pub(crate) fn uninstall_local(&self) {
        let spares = LOCAL_FREE
            .try_with(|local| {
                let mut local = local.borrow_mut();
                if local.0 != self.addr() {
                    return Vec::new();
                }
                std::mem::take(&mut *local).1
            })
            .unwrap_or_default();
        for spare in spares {
            self.recycle(spare.index, self.cell(spare.index), false, spare.callback);
        }
    }

    pub(super) fn addr(&self) -> usize {
        self as *const Cells as usize
    }

    /// `None` off this driver's thread; else a free cell of its own, if any.
    pub(super) fn pop_local(&self) -> Option<Option<Spare>> {
        LOCAL_FREE
            .try_with(|local| {
                let mut local = local.borrow_mut();
                (local.0 == self.addr()).then(|| local.1.pop())
            })
            .ok()
            .flatten()
    }

    /// Keeps `spare` on this driver thread's list; gives it back off it.
    pub(super) fn push_local(&self, spare: Spare) -> Result<(), Spare> {
        let mut spare = Some(spare);
        let _ = LOCAL_FREE.try_with(|local| {
            let mut local = local.borrow_mut();
            if local.0 == self.addr() {
                local.1.extend(spare.take());
            }
        });
        spare.map_or(Ok(()), Err)
    }

    /// Cell `index` (which is `cell`, freed, on no list) goes onto a free
    /// list: this thread's if it is local and this is its driver's thread,
    /// else the shared one. `callback` is its callback's storage if that
    /// was taken out of it.
    pub(super) fn recycle(
        &self,
        index: u32,
        cell: &Cell,
        local: bool,
        callback: Option<Box<dyn Callback>>,
    ) {
        let callback = if local {
            match self.push_local(Spare { index, callback }) {
                Ok(()) => return,
                Err(spare) => spare.callback,
            }
        } else {
            callback
        };
        if callback.is_some() {
            // Nobody else can reach a freed cell off the lists.
            cell.state.lock().callback = callback;
        }
        self.push_free(index, cell);
    }

    /// A free cell off the shared list or a fresh one, with its index.
    pub(super) fn pop_shared(&self) -> (u32, &Cell) {
        self.pop_free().unwrap_or_else(|| {
            let index = self.fresh.fetch_add(1, Ordering::Relaxed);
            assert!(
                u64::from(index) < u64::from(BASE) * ((1 << CHUNKS) - 1),
                "client: completion cells exhausted"
            );
            (index, self.fresh_cell(index))
        })
    }

    /// A free cell off the list, with its index (one look-up for both).
    pub(super) fn pop_free(&self) -> Option<(u32, &Cell)> {
        let mut head = self.free.load(Ordering::Acquire);
        loop {
            let top = head as u32;
            if top == 0 {
                return None;
            }
            let cell = self.cell(top - 1);
            let next = cell.next_free.load(Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(next);
            match self
                .free
                .compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some((top - 1, cell)),
                Err(now) => head = now,
            }
        }
    }

    /// Puts cell `index` (which is `cell`) back on the free list.
    pub(super) fn push_free(&self, index: u32, cell: &Cell) {
        let mut head = self.free.load(Ordering::Acquire);
        loop {
            cell.next_free.store(head as u32, Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(index + 1);
            match self
                .free
                .compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }
}
