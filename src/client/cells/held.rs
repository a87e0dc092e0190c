//! Callbacks the driver holds itself, with no completion cell.
//!
//! A cell is shared between the caller's side and the driver, so it is
//! locked twice per call (arming, completing) and found through a free
//! list kept per thread. A call started with `Channel::call_detached` on
//! the driver's own thread (a callback chaining the next call) needs none
//! of that: no handle can cancel it and nothing but the driver's thread
//! ever sees it, from start to outcome. Its callback goes straight into
//! the driver's record of the call ([`Held`]) and runs from there when
//! the driver delivers the turn's completions; its boxed storage then
//! goes back to the driver's [`HeldSpares`] for the next such call, so a
//! loop that chains calls from one call site allocates nothing.

use super::{run_callback, CallResult, Callback};

/// A callback that runs once with its call's outcome.
pub(crate) struct Held(Box<dyn Callback>);

impl Held {
    /// Runs the callback on this thread (a panic in it is caught and
    /// logged, as for a cell's callback) and gives back its storage.
    pub(crate) fn run(mut self, result: CallResult) -> Storage {
        run_callback(Some(&mut self.0), result);
        Storage(self.0)
    }

    /// The callback as one a completion cell can hold, for a call the
    /// driver hands on to another thread (a short connection's).
    pub(crate) fn into_fn(self) -> impl FnOnce(CallResult) + Send + 'static {
        move |result| drop(self.run(result))
    }
}

/// A held callback's storage, emptied by its run.
pub(crate) struct Storage(Box<dyn Callback>);

/// The driver's spare callback storage, last freed first.
#[derive(Default)]
pub(crate) struct HeldSpares(Vec<Box<dyn Callback>>);

impl HeldSpares {
    /// Holds `done`, in spare storage of its type if the last one freed
    /// is (a loop's calls from one call site: no allocation), else boxed.
    pub(crate) fn hold<F>(&mut self, done: F) -> Held
    where
        F: FnOnce(CallResult) + Send + 'static,
    {
        if let Some(mut spare) = self.0.pop() {
            if let Some(slot) = spare.as_any().downcast_mut::<Option<F>>() {
                *slot = Some(done);
                return Held(spare);
            }
        }
        Held(Box::new(Some(done)))
    }

    /// Keeps `storage` for the next held callback.
    pub(crate) fn put_back(&mut self, storage: Storage) {
        self.0.push(storage.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_held_callback_runs_once_and_its_storage_is_reused_by_its_type() {
        let runs = Arc::new(AtomicUsize::new(0));
        let mut spares = HeldSpares::default();
        let counter = |runs: &Arc<AtomicUsize>| {
            let runs = runs.clone();
            move |result: CallResult| {
                assert!(result.is_ok());
                runs.fetch_add(1, Ordering::Relaxed);
            }
        };
        let first = spares.hold(counter(&runs));
        let storage = |held: &Held| &*held.0 as *const dyn Callback as *const u8;
        let at = storage(&first);
        spares.put_back(first.run(Ok(Default::default())));
        // The same closure type takes the storage just freed.
        let second = spares.hold(counter(&runs));
        assert_eq!(storage(&second), at);
        spares.put_back(second.run(Ok(Default::default())));
        // Another type gets a box of its own (the spare, of the wrong
        // type, is let go).
        let ran = Arc::new(AtomicUsize::new(0));
        let other = spares.hold({
            let ran = ran.clone();
            move |_: CallResult| {
                ran.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert!(spares.0.is_empty());
        drop(other.run(Ok(Default::default())));
        assert_eq!(ran.load(Ordering::Relaxed), 1);
        assert_eq!(runs.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_panicking_held_callback_is_caught_and_its_storage_comes_back() {
        let held = HeldSpares::default().hold(|_: CallResult| panic!("callback fails"));
        let spare = held.run(Ok(Default::default()));
        let mut spares = HeldSpares::default();
        spares.put_back(spare);
        assert_eq!(spares.0.len(), 1);
    }
}
