//! A ledger of call completions kept outside the callbacks, so that
//! "every call completes exactly once" is checked where it can fail.
//!
//! The channel runs `call_with` callbacks under `catch_unwind` (a panicking
//! callback must not take its I/O driver down), so an assertion made inside
//! a callback is swallowed and the test passes anyway. A callback records
//! its completion here instead, and runs any check through
//! [`CompletionLedger::check`], which notes a failure (a panic included)
//! rather than raising it; the test thread then asserts on the ledger once
//! the run is over.

use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

/// Completions counted per call id, and failures noted by callbacks.
#[derive(Default)]
pub struct CompletionLedger {
    counts: Mutex<HashMap<u64, u32>>,
    failures: Mutex<Vec<String>>,
}

impl CompletionLedger {
    pub fn new() -> CompletionLedger {
        CompletionLedger::default()
    }

    /// Counts one completion of call `id` (never panics).
    pub fn complete(&self, id: u64) {
        *lock(&self.counts).entry(id).or_insert(0) += 1;
    }

    /// Runs `check` for call `id`; a panic in it is noted as a failure
    /// instead of unwinding into the channel (which would swallow it).
    pub fn check(&self, id: u64, check: impl FnOnce()) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(check)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            lock(&self.failures).push(format!("call {id}: {message}"));
        }
    }

    /// Completions counted so far, duplicates included.
    pub fn completions(&self) -> u64 {
        lock(&self.counts).values().map(|&n| u64::from(n)).sum()
    }

    /// Asserts that exactly the calls `expected` completed, each once, and
    /// that no check failed.
    pub fn assert_each_exactly_once(&self, expected: impl IntoIterator<Item = u64>) {
        let failures = lock(&self.failures);
        assert!(
            failures.is_empty(),
            "checks failed in callbacks: {failures:#?}"
        );
        let counts = lock(&self.counts);
        let twice: BTreeSet<_> = counts.iter().filter(|(_, &n)| n > 1).collect();
        assert!(
            twice.is_empty(),
            "calls completed more than once (id, count): {twice:?}"
        );
        let expected: BTreeSet<u64> = expected.into_iter().collect();
        let missing: Vec<_> = expected
            .iter()
            .filter(|id| !counts.contains_key(id))
            .collect();
        assert!(
            missing.is_empty(),
            "{} calls never completed: {missing:?}",
            missing.len()
        );
        let unknown: Vec<_> = counts.keys().filter(|id| !expected.contains(id)).collect();
        assert!(
            unknown.is_empty(),
            "completions of calls never made: {unknown:?}"
        );
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
