//! Completion cells: where a call's outcome waits for its caller, pooled per
//! driver so that a call in steady state allocates nothing.
//!
//! A cell holds what one call needs on the receiving side — the user's
//! callback (`call_with`) or a result slot with a waker and a condvar
//! (`call_async`, `call`). Cells live in chunks that are allocated once and
//! never freed while the driver lives, and are recycled through a lock-free
//! free list. A call names its cell by a [`CellRef`]: index plus generation.
//! The generation changes each time a cell is freed, so a stale reference
//! (the driver's after a cancel, a `CallHandle` kept past completion) finds
//! a mismatch and does nothing: exactly one completion wins, as before.
//!
//! A cell has two holders: the caller's side (the callback until it has
//! run, or the `PendingCall` until it is dropped) and the driver (until it
//! has forgotten the call: replied, expired, failed, or cancelled — it
//! learns of a cancel through its queue). It is freed when both let go, so
//! while the driver knows a call, no other call has its cell: the driver
//! files its calls by cell index (see `CellRef::call_id`). The callback's
//! storage (`Box<Option<F>>`) stays in the cell and is reused by the next
//! callback of the same closure type, so a loop that starts calls from one
//! call site allocates nothing; a different closure type costs one box.
//!
//! On the driver's own thread (callbacks starting calls) a cell goes
//! round without atomics on the free list: a cell taken there is marked
//! local, and when the driver's thread frees it, it goes onto a free list
//! kept in that thread (with its callback's storage beside it) instead of
//! the shared one. A callback's completion on the driver frees its cell in
//! the same lock round that takes the callback out (the generation moves
//! on before the callback runs, so a late cancel finds a stale reference),
//! so a call costs two rounds of its cell's lock: arming and completing.
//! A detached call started there needs no cell at all: the driver holds
//! its callback (`held`).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use parking_lot::{Condvar, Mutex};

use super::call::CallResult;
use crate::call::status::Status;

mod held;
mod pool;

pub(crate) use held::{Held, HeldSpares};
pub(crate) use pool::Cells;

/// Cells in the first chunk; chunk `k` holds `BASE << k`.
const BASE: u32 = 64;
/// Chunks: room for `BASE * (2^CHUNKS - 1)` cells (about 4 billion).
const CHUNKS: usize = 26;

/// A call's cell: which one, and which use of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CellRef {
    index: u32,
    generation: u32,
}

impl CellRef {
    /// The request id of the call using this cell, never 0: the low half
    /// is the cell's index (the driver files its calls by it, see
    /// `driver::pending`), the high half this use of the cell, so a late
    /// reply or cancel for an earlier call in the same cell is told apart.
    /// Both are known to the caller, so no counter is shared to number
    /// calls. Bit 62 stays clear: it marks the ids of calls with no cell
    /// (see `driver::pending`).
    pub(crate) fn call_id(self) -> u64 {
        (1 << 63) | (u64::from(self.generation & 0x3FFF_FFFF) << 32) | u64::from(self.index)
    }
}

/// What a cell is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Free = 0,
    Pending = 1,
    Done = 2,
}

/// How the outcome is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Callback,
    Future,
}

/// A type-erased `Option<F>` for a callback `F`, kept for reuse.
trait Callback: Send {
    /// Runs the callback if it is still there.
    fn run(&mut self, result: CallResult);
    fn as_any(&mut self) -> &mut dyn Any;
}

impl<F: FnOnce(CallResult) + Send + 'static> Callback for Option<F> {
    fn run(&mut self, result: CallResult) {
        if let Some(done) = self.take() {
            done(result);
        }
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

struct State {
    generation: u32,
    /// Holders left (caller's side, driver); freed at 0.
    holders: u8,
    phase: Phase,
    kind: Kind,
    /// The callback's storage; `None` inside while no callback is armed.
    callback: Option<Box<dyn Callback>>,
    result: Option<CallResult>,
    waker: Option<Waker>,
    /// Taken on the driver's own thread: freed there, it goes onto that
    /// thread's free list.
    local: bool,
}

struct Cell {
    state: Mutex<State>,
    /// `generation << 2 | phase`, written under `state`'s lock, read
    /// without it (is the call done? — asked on every spin and start).
    stamp: AtomicU64,
    ready: Condvar,
    /// The next free cell + 1 (0: none), while this one is free.
    next_free: AtomicU32,
}

impl Default for Cell {
    fn default() -> Cell {
        Cell {
            state: Mutex::new(State {
                generation: 0,
                holders: 0,
                phase: Phase::Free,
                kind: Kind::Future,
                callback: None,
                result: None,
                waker: None,
                local: false,
            }),
            stamp: AtomicU64::new(Phase::Free as u64),
            ready: Condvar::new(),
            next_free: AtomicU32::new(0),
        }
    }
}

fn stamp(generation: u32, phase: Phase) -> u64 {
    (u64::from(generation) << 2) | phase as u64
}

impl State {
    fn set(&mut self, stamp_of: &AtomicU64, phase: Phase) {
        self.phase = phase;
        stamp_of.store(stamp(self.generation, phase), Ordering::Release);
    }
}

fn already_taken() -> Status {
    Status::internal("call result already taken (future polled after completion)")
}

impl Cells {
    /// A free cell, now pending, of `kind`, held by the caller's side and
    /// by the driver; `arm` runs under its lock.
    fn acquire(&self, kind: Kind, arm: impl FnOnce(&mut State)) -> CellRef {
        let (index, cell, local, spare) = match self.pop_local() {
            Some(Some(spare)) => (spare.index, self.cell(spare.index), true, Some(spare)),
            Some(None) => {
                let (index, cell) = self.pop_shared();
                (index, cell, true, None)
            }
            None => {
                let (index, cell) = self.pop_shared();
                (index, cell, false, None)
            }
        };
        let mut state = cell.state.lock();
        if let Some(spare) = spare {
            state.callback = spare.callback;
        }
        state.local = local;
        state.kind = kind;
        state.holders = 2;
        arm(&mut state);
        state.set(&cell.stamp, Phase::Pending);
        CellRef {
            index,
            generation: state.generation,
        }
    }

    /// A cell for a call whose outcome goes to `done`.
    pub(crate) fn callback<F>(&self, done: F) -> CellRef
    where
        F: FnOnce(CallResult) + Send + 'static,
    {
        self.acquire(Kind::Callback, |state| {
            let kept = state
                .callback
                .as_mut()
                .and_then(|b| b.as_any().downcast_mut::<Option<F>>());
            match kept {
                Some(slot) => *slot = Some(done),
                None => state.callback = Some(Box::new(Some(done))),
            }
        })
    }

    /// A cell for a call whose outcome a `PendingCall` takes.
    pub(crate) fn future(&self) -> CellRef {
        self.acquire(Kind::Future, |_| {})
    }

    /// True once the call is no longer pending (completed, or its cell
    /// already reused).
    pub(crate) fn is_done(&self, r: CellRef) -> bool {
        self.cell(r.index).stamp.load(Ordering::Acquire) != stamp(r.generation, Phase::Pending)
    }

    /// Delivers `result` unless the call already completed; true if it did.
    /// A callback runs here, on this thread, outside the cell's lock; then
    /// the caller's side lets go of the cell.
    pub(crate) fn complete(&self, r: CellRef, result: CallResult) -> bool {
        self.deliver(r, result, 0)
    }

    /// The driver completes a call and lets go of its cell, in one go.
    pub(crate) fn finish(&self, r: CellRef, result: CallResult) {
        self.deliver(r, result, 1);
    }

    /// `complete`, with `driver` (0 or 1) holders letting go as well.
    fn deliver(&self, r: CellRef, result: CallResult, driver: u8) -> bool {
        let cell = self.cell(r.index);
        let mut state = cell.state.lock();
        if state.generation != r.generation {
            return false;
        }
        if state.phase != Phase::Pending {
            if driver > 0 && state.phase != Phase::Free {
                self.let_go(r.index, cell, state, driver);
            }
            return false;
        }
        state.set(&cell.stamp, Phase::Done);
        match state.kind {
            Kind::Future => {
                // The `PendingCall` still holds the cell: not freed here.
                state.holders -= driver;
                state.result = Some(result);
                let waker = state.waker.take();
                drop(state);
                cell.ready.notify_one();
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            Kind::Callback if state.holders == 1 + driver => {
                // Nobody holds the cell once the callback has run: it is
                // freed now, in this lock round, and recycled after it.
                state.holders = 0;
                state.generation = state.generation.wrapping_add(1);
                state.set(&cell.stamp, Phase::Free);
                let local = state.local;
                let mut callback = state.callback.take();
                drop(state);
                run_callback(callback.as_mut(), result);
                self.recycle(r.index, cell, local, callback);
            }
            Kind::Callback => {
                let mut callback = state.callback.take();
                drop(state);
                run_callback(callback.as_mut(), result);
                let mut state = cell.state.lock();
                state.callback = callback;
                self.let_go(r.index, cell, state, 1 + driver);
            }
        }
        true
    }

    /// `holders` let go (its lock held); the last frees the cell, and
    /// its next use gets a new generation.
    fn let_go(
        &self,
        index: u32,
        cell: &Cell,
        mut state: parking_lot::MutexGuard<'_, State>,
        holders: u8,
    ) {
        state.holders = state.holders.saturating_sub(holders);
        if state.holders > 0 {
            return;
        }
        state.generation = state.generation.wrapping_add(1);
        state.set(&cell.stamp, Phase::Free);
        let result = state.result.take();
        let waker = state.waker.take();
        let local = state.local;
        let callback = if local { state.callback.take() } else { None };
        drop(state);
        drop((result, waker));
        self.recycle(index, cell, local, callback);
    }

    /// The owner of a future cell is done with it; true if the call was
    /// still pending (the caller should tell the driver to cancel it).
    pub(crate) fn release(&self, r: CellRef) -> bool {
        let cell = self.cell(r.index);
        let mut state = cell.state.lock();
        if state.generation != r.generation || state.phase == Phase::Free {
            return false;
        }
        let was_pending = state.phase == Phase::Pending;
        if was_pending {
            // Nobody will take a result now; a late one is not stored.
            state.set(&cell.stamp, Phase::Done);
        }
        self.let_go(r.index, cell, state, 1);
        was_pending
    }

    /// The driver has forgotten the call (or never got it).
    pub(crate) fn driver_done(&self, r: CellRef) {
        let cell = self.cell(r.index);
        let state = cell.state.lock();
        if state.generation == r.generation && state.phase != Phase::Free {
            self.let_go(r.index, cell, state, 1);
        }
    }

    /// Blocks until a future cell's call completes; takes its result.
    /// `before_park` may refuse to block (its error is returned);
    /// `rouse_driver` runs when this caller parks on the driver's core,
    /// after saying so (a sleeping driver must wake to poll for it).
    pub(crate) fn wait(
        &self,
        r: CellRef,
        before_park: impl FnOnce() -> Result<(), Status>,
        rouse_driver: impl Fn(),
    ) -> CallResult {
        let cell = self.cell(r.index);
        // Spinning on the driver's own core would only keep the driver
        // from running: a caller there parks at once, and says so (the
        // driver then polls for the reply instead of sleeping).
        let on_driver_core = self.on_driver_core();
        if !self.is_done(r) {
            before_park()?;
            if !on_driver_core {
                spin_until(|| self.is_done(r));
            }
        }
        let mut state = cell.state.lock();
        loop {
            if state.generation != r.generation {
                return Err(already_taken());
            }
            if let Some(result) = state.result.take() {
                return result;
            }
            if state.phase != Phase::Pending {
                return Err(already_taken());
            }
            if on_driver_core {
                self.parked_on_driver_core.fetch_add(1, Ordering::SeqCst);
                self.parks_on_driver_core.fetch_add(1, Ordering::Relaxed);
                rouse_driver();
            }
            cell.ready.wait(&mut state);
            if on_driver_core {
                self.parked_on_driver_core.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Notes the core the driver thread runs on (once per loop turn).
    pub(crate) fn note_driver_cpu(&self) {
        let cpu = crate::sys::current_cpu().unwrap_or(u32::MAX);
        self.driver_cpu.store(cpu, Ordering::Relaxed);
    }

    /// This thread runs where the driver last did.
    fn on_driver_core(&self) -> bool {
        let driver = self.driver_cpu.load(Ordering::Relaxed);
        driver != u32::MAX && crate::sys::current_cpu() == Some(driver)
    }

    /// A caller is parked, on the driver's core, in a blocking wait for
    /// one of these cells' calls: how many times one has parked there so
    /// far (a new number: a new wait), else `None`.
    pub(crate) fn parked_on_driver_core(&self) -> Option<u64> {
        (self.parked_on_driver_core.load(Ordering::SeqCst) != 0)
            .then(|| self.parks_on_driver_core.load(Ordering::Relaxed))
    }

    /// Polls a future cell: its result once, then "already taken".
    pub(crate) fn poll(&self, r: CellRef, cx: &mut Context<'_>) -> Poll<CallResult> {
        let cell = self.cell(r.index);
        let mut state = cell.state.lock();
        if state.generation != r.generation {
            return Poll::Ready(Err(already_taken()));
        }
        if let Some(result) = state.result.take() {
            return Poll::Ready(result);
        }
        if state.phase != Phase::Pending {
            return Poll::Ready(Err(already_taken()));
        }
        match &mut state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Runs a callback (if armed) with `result`; a panicking callback must not
/// take the I/O driver down.
fn run_callback(callback: Option<&mut Box<dyn Callback>>, result: CallResult) {
    if let Some(callback) = callback {
        if catch_unwind(AssertUnwindSafe(|| callback.run(result))).is_err() {
            tracing::error!("client: a call_with callback panicked");
        }
    }
}

/// How long a blocking wait spins before it parks.
const SPIN_FOR: std::time::Duration = std::time::Duration::from_micros(100);

/// Loopback replies often come back within tens of microseconds: a short
/// spin (then yielding the core, which the I/O and server threads may
/// need) catches them without the futex sleep and wake-up that parking
/// costs on both sides. Gives up after [`SPIN_FOR`]. Not on the driver's
/// own core (see `Cells::wait`).
fn spin_until(done: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    let mut spins = 0u32;
    while !done() {
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
        spins += 1;
        if spins.is_multiple_of(16) && started.elapsed() >= SPIN_FOR {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn indices_map_to_distinct_cells_across_chunks() {
        let cells = Cells::default();
        let mut seen = std::collections::HashSet::new();
        for i in 0..(BASE * 7) {
            assert!(
                seen.insert(cells.cell(i) as *const Cell as usize),
                "index {i}"
            );
        }
    }

    #[test]
    fn callback_runs_once_and_its_cell_is_reused_once_both_let_go() {
        let cells = Cells::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut first = None;
        for _ in 0..3 {
            let runs2 = runs.clone();
            let r = cells.callback(move |res: CallResult| {
                assert!(res.is_ok());
                runs2.fetch_add(1, Ordering::Relaxed);
            });
            first.get_or_insert(r.index);
            assert_eq!(Some(r.index), first, "the freed cell is reused");
            assert!(!cells.is_done(r));
            assert!(cells.complete(r, Ok(Bytes::new())));
            assert!(cells.is_done(r));
            assert!(!cells.complete(r, Ok(Bytes::new())), "completes once");
            cells.driver_done(r);
            assert!(
                !cells.complete(r, Ok(Bytes::new())),
                "a stale ref does nothing"
            );
        }
        assert_eq!(runs.load(Ordering::Relaxed), 3);
        assert_eq!(cells.allocated(), 1);
    }

    #[test]
    fn future_result_is_taken_once_and_release_reports_pending() {
        let cells = Cells::default();
        let r = cells.future();
        assert!(cells.complete(r, Ok(Bytes::from_static(b"x"))));
        cells.driver_done(r);
        assert_eq!(
            cells.wait(r, || Ok(()), || {}).unwrap(),
            Bytes::from_static(b"x")
        );
        let again = cells.wait(r, || Ok(()), || {}).unwrap_err();
        assert_eq!(again.code(), crate::Code::Internal);
        assert!(!cells.release(r), "completed: nothing to cancel");
        let r2 = cells.future();
        assert_eq!(r2.index, r.index);
        assert_ne!(r2.generation, r.generation);
        assert!(!cells.complete(r, Ok(Bytes::new())), "old generation");
        assert!(cells.release(r2), "still pending: cancel it");
        let r3 = cells.future();
        assert_ne!(
            r3.index, r2.index,
            "the driver still holds the cancelled call's cell"
        );
        assert!(
            !cells.complete(r2, Ok(Bytes::new())),
            "a late reply is dropped"
        );
        cells.driver_done(r2);
        assert_eq!(
            cells.future().index,
            r2.index,
            "freed once the driver lets go"
        );
    }

    /// Polls `probe` until it gives a value (10 s at most).
    fn eventually<T>(probe: impl Fn() -> Option<T>) -> T {
        let started = std::time::Instant::now();
        loop {
            if let Some(value) = probe() {
                return value;
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(10));
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Waits for `r` on a thread of its own, `on_driver_core` saying
    /// whether that thread is where the driver last ran.
    fn waiter(
        cells: &Arc<Cells>,
        r: CellRef,
        on_driver_core: bool,
    ) -> std::thread::JoinHandle<CallResult> {
        let cells = cells.clone();
        std::thread::spawn(move || {
            if on_driver_core {
                cells.note_driver_cpu();
            } else {
                cells.driver_cpu.store(u32::MAX - 1, Ordering::Relaxed);
            }
            cells.wait(r, || Ok(()), || {})
        })
    }

    #[test]
    fn a_wait_on_the_drivers_core_is_seen_by_the_driver_while_it_is_parked() {
        let cells = Arc::new(Cells::default());
        let mut parks = Vec::new();
        for reply in [&b"x"[..], b"y"] {
            let r = cells.future();
            let waiting = waiter(&cells, r, true);
            // The driver sees a wait parked on its core until the reply.
            parks.push(eventually(|| cells.parked_on_driver_core()));
            assert!(cells.complete(r, Ok(Bytes::copy_from_slice(reply))));
            cells.driver_done(r);
            assert_eq!(waiting.join().unwrap().unwrap(), reply);
            assert_eq!(cells.parked_on_driver_core(), None);
        }
        assert_ne!(parks[0], parks[1], "each wait has a number of its own");
        // A wait on another core spins, then parks unseen by the driver.
        let r = cells.future();
        let waiting = waiter(&cells, r, false);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(cells.parked_on_driver_core(), None);
        assert!(cells.complete(r, Ok(Bytes::new())));
        cells.driver_done(r);
        assert!(waiting.join().unwrap().is_ok());
    }

    #[test]
    fn concurrent_acquire_and_free_hand_out_each_cell_once() {
        let cells = Arc::new(Cells::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let cells = cells.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let r = cells.future();
                        assert!(!cells.is_done(r), "a live cell was handed out twice");
                        assert!(cells.complete(r, Ok(Bytes::new())));
                        cells.driver_done(r);
                        cells.release(r);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(cells.allocated() <= 4);
    }

    #[test]
    fn cells_freed_on_the_driver_thread_are_reused_there_and_returned_on_uninstall() {
        let cells = Cells::default();
        cells.install_local();
        let runs = Arc::new(AtomicUsize::new(0));
        let start = |runs: &Arc<AtomicUsize>| {
            let runs = runs.clone();
            cells.callback(move |_| {
                runs.fetch_add(1, Ordering::Relaxed);
            })
        };
        let first = start(&runs);
        cells.finish(first, Ok(Bytes::new()));
        assert!(cells.is_done(first));
        assert!(
            !cells.complete(first, Ok(Bytes::new())),
            "stale after the free"
        );
        let second = start(&runs);
        assert_eq!(second.index, first.index, "reused off this thread's list");
        assert_ne!(second.generation, first.generation);
        assert_eq!(
            cells.free.load(Ordering::Relaxed) as u32,
            0,
            "shared list unused"
        );
        // Cancelled first (another thread), then let go by the driver.
        let cancelled = std::thread::scope(|s| {
            s.spawn(|| cells.complete(second, Err(cancelled_status())))
                .join()
                .unwrap()
        });
        assert!(cancelled);
        cells.driver_done(second);
        assert_eq!(start(&runs).index, first.index, "local again");
        assert_eq!(runs.load(Ordering::Relaxed), 2);
        cells.uninstall_local();
        std::thread::scope(|s| {
            s.spawn(|| {
                let r = cells.future();
                assert_eq!(r.index, first.index + 1, "a fresh one: the first is live");
            });
        });
        assert_eq!(cells.allocated(), 2);
    }

    #[test]
    fn local_callbacks_complete_once_under_racing_cancels() {
        let cells = Cells::default();
        cells.install_local();
        let runs = Arc::new(AtomicUsize::new(0));
        let calls = 2_000;
        let (tx, rx) = std::sync::mpsc::channel::<CellRef>();
        let shared = &cells;
        std::thread::scope(|s| {
            s.spawn(move || {
                for r in rx {
                    shared.complete(r, Err(cancelled_status()));
                }
            });
            for _ in 0..calls {
                let runs = runs.clone();
                let r = cells.callback(move |_| {
                    runs.fetch_add(1, Ordering::Relaxed);
                });
                tx.send(r).unwrap();
                std::thread::yield_now();
                cells.finish(r, Ok(Bytes::new()));
            }
            drop(tx);
        });
        assert_eq!(runs.load(Ordering::Relaxed), calls);
        cells.uninstall_local();
        assert!(cells.allocated() <= 3, "cells were recycled");
    }

    fn cancelled_status() -> Status {
        Status::cancelled("test")
    }
}
