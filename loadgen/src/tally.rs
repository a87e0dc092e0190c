//! Closed-loop completions of `--client channel`, recorded in batches, as
//! the engine records its replies.
//!
//! The engine counts a loop turn's replies under one lock
//! ([`Recorder::on_done_batch`]) and a flush's sends together
//! ([`Recorder::on_sent`]). The `Channel` runs each completion's callback on
//! its I/O thread, one at a time; recording each there on its own (two
//! locks, a clock read for the send and one for the reply, eight atomics)
//! made loadgen's own bookkeeping cost more per call in Channel mode than in
//! engine mode, a measuring-tool cost charged to the Channel. So a callback
//! files its completion, and the send of the call it chains, in its
//! thread's [`Tally`], recorded together every [`BATCH`] calls and whenever
//! a chain ends (the window is over), or when the thread exits.
//!
//! A chained call is counted in flight with its batch, before the batch's
//! completions are taken off (no atomic operation per call): each chained
//! call follows a completion filed in the same tally, so `in_flight`
//! never reads below the calls really in flight, and the sender's drain,
//! which waits for it to reach 0, sees 0 only once every batch has been
//! recorded.

use std::cell::RefCell;
use std::time::Instant;

use crate::recorder::{Done, Outcome, Recorder};

/// Completions recorded together (at most; a chain's end records sooner).
pub const BATCH: usize = 64;

/// One thread's completions and chained sends not recorded yet, all for
/// one recorder.
#[derive(Default)]
pub struct Tally {
    rec: Option<&'static Recorder>,
    done: Vec<Done>,
    sent: Vec<Instant>,
}

thread_local! {
    static TALLY: RefCell<Tally> = RefCell::new(Tally::default());
}

impl Tally {
    /// Records what is pending.
    fn flush(&mut self) {
        let Some(rec) = self.rec else {
            return;
        };
        if !self.sent.is_empty() {
            rec.on_sent_closed(&self.sent);
            self.sent.clear();
        }
        if !self.done.is_empty() {
            rec.on_done_batch(&self.done);
            self.done.clear();
        }
    }

    fn add(&mut self, rec: &'static Recorder, done: Done, next: Option<Instant>) {
        if !self.rec.is_some_and(|r| std::ptr::eq(r, rec)) {
            self.flush();
            self.rec = Some(rec);
        }
        self.done.push(done);
        if let Some(sent) = next {
            self.sent.push(sent);
        }
        if next.is_none() || self.done.len() >= BATCH {
            self.flush();
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Files a closed-loop call's completion on this thread: it was sent at
/// `sent` on `conn` and ended at `at` with `outcome`; `next` is the send
/// time of the call its chain starts next (`None`: the chain ends).
pub fn completed(
    rec: &'static Recorder,
    conn: usize,
    sent: Instant,
    at: Instant,
    outcome: Outcome,
    next: Option<Instant>,
) {
    let done = Done {
        conn,
        intended: sent,
        sent,
        at,
        error: match outcome {
            Outcome::Ok => None,
            Outcome::Err(code) => Some(code),
        },
    };
    let filed = TALLY.try_with(|t| t.borrow_mut().add(rec, done.clone(), next));
    if filed.is_err() {
        // This thread is exiting (its tally is gone): recorded alone.
        if let Some(sent) = next {
            rec.on_sent_closed(&[sent]);
        }
        rec.on_done_batch(&[done]);
    }
}
