//! Per-call controller, the seed's `MprpcController`, grown up.
//!
//! A `Controller` travels with one call on the client side: the caller sets a
//! timeout and (for consistent hashing) a routing key before the call, and
//! reads `failed()` / `error_text()` / `status()` after it. Its
//! [`CancelHandle`] can be handed to another thread to cancel the call while
//! it is pending.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::call::metadata::{Metadata, MetadataTooLong};
use crate::call::status::{Code, Status};

/// Options that shape one call; the controller carries them, and the
/// non-blocking API takes them directly. Build them as one chain:
///
/// ```
/// use std::time::Duration;
/// use mprpc::CallOptions;
///
/// let options = CallOptions::new()
///     .timeout(Duration::from_millis(300))
///     .metadata("account", "alice")
///     .hash_key(42);
/// assert_eq!(options.metadata.get("account"), Some("alice"));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// Give up after this long; `None` uses the channel's default timeout.
    pub timeout: Option<Duration>,
    /// Routing key for consistent-hash load balancing.
    pub hash_key: Option<u64>,
    /// Metadata sent with the request (empty: none, and the request frame
    /// is the same as without metadata). A call made while serving one
    /// also carries that call's trace id, unless this sets `trace-id`.
    pub metadata: Metadata,
    /// Where the reply's metadata goes (`None`: not wanted). See
    /// [`CallOptions::capture_reply_metadata`].
    pub reply_metadata: Option<ReplyMetadata>,
    /// An entry [`metadata`](Self::metadata) could not add (too long for
    /// the wire): calls made with these options fail `BadRequest` with it,
    /// before anything is sent. `None` normally.
    pub invalid_metadata: Option<MetadataTooLong>,
}

impl CallOptions {
    /// No options set: the channel's timeout, no metadata, no hash key.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// These options with the call's timeout set.
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        self.timeout = Some(timeout);
        self
    }

    /// These options with the consistent-hash routing key set.
    pub fn hash_key(mut self, key: u64) -> CallOptions {
        self.hash_key = Some(key);
        self
    }

    /// These options with `key` set to `value` in the request metadata.
    /// An entry too long for the wire makes the calls fail `BadRequest`
    /// (see [`invalid_metadata`](Self::invalid_metadata)); use
    /// [`with_metadata`](Self::with_metadata) to get that error here.
    pub fn metadata(mut self, key: &str, value: &str) -> CallOptions {
        if let Err(e) = self.metadata.insert(key, value) {
            self.invalid_metadata.get_or_insert(e);
        }
        self
    }

    /// Options with only a timeout set: `CallOptions::new().timeout(timeout)`.
    pub fn with_timeout(timeout: Duration) -> CallOptions {
        CallOptions::new().timeout(timeout)
    }

    /// Like [`metadata`](Self::metadata), but an entry too long for the
    /// wire is an error here.
    pub fn with_metadata(mut self, key: &str, value: &str) -> Result<CallOptions, MetadataTooLong> {
        self.metadata.insert(key, value)?;
        Ok(self)
    }

    /// Asks for the reply's metadata: calls made with these options store
    /// it in the returned [`ReplyMetadata`] before they complete, whichever
    /// way they are made (blocking, callback, future, generated stubs).
    ///
    /// Streams opened with these options store their server's reply
    /// metadata likewise: what its handler set before its first message
    /// (gRPC's headers) before that message is read, then that and what
    /// it set later (its trailers, which win on a key set twice) before
    /// the stream's end is read. A stream ended by this side (a cancel,
    /// its deadline, a lost connection) keeps what had come.
    pub fn capture_reply_metadata(&mut self) -> ReplyMetadata {
        self.reply_metadata
            .get_or_insert_with(ReplyMetadata::default)
            .clone()
    }
}

/// Holds the metadata of the last reply to a call made with the
/// [`CallOptions`] that hold it; cheap to clone (clones share it).
#[derive(Debug, Clone, Default)]
pub struct ReplyMetadata {
    slot: Arc<Mutex<Metadata>>,
}

impl ReplyMetadata {
    /// The metadata of the last reply (empty before one arrived, or if the
    /// server sent none).
    pub fn get(&self) -> Metadata {
        self.slot.lock().clone()
    }

    /// Stores a reply's metadata (before its call completes).
    pub(crate) fn set(&self, metadata: Metadata) {
        *self.slot.lock() = metadata;
    }

    /// Adds a stream's trailers to its headers, a trailer replacing a
    /// header of the same key.
    pub(crate) fn merge(&self, trailers: &Metadata) {
        let mut slot = self.slot.lock();
        for (key, value) in trailers.iter() {
            // Entries read off the wire fit it: insert cannot refuse them.
            let _ = slot.insert(key, value);
        }
    }
}

type CancelHook = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct CancelState {
    cancelled: AtomicBool,
    hook: Mutex<Option<CancelHook>>,
}

/// Cancels the call its controller is running, from any thread.
///
/// Cancelling before the call starts makes the call fail with `Cancelled` at
/// once; cancelling during it fails it with `Cancelled` immediately and tells
/// the server to drop its reply.
#[derive(Clone, Default)]
pub struct CancelHandle {
    state: Arc<CancelState>,
}

impl std::fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelHandle")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelHandle {
    /// Cancels the call: it fails with `Cancelled` and the server is asked
    /// to drop its reply. Idempotent; a call not yet started fails at once.
    pub fn cancel(&self) {
        self.state.cancelled.store(true, Ordering::SeqCst);
        let hook = self.state.hook.lock().take();
        if let Some(hook) = hook {
            hook();
        }
    }

    /// True once [`cancel`](Self::cancel) has been called.
    pub fn is_cancelled(&self) -> bool {
        self.state.cancelled.load(Ordering::SeqCst)
    }

    /// Installs what `cancel()` must do for the call now in progress. If the
    /// handle was already cancelled, the hook runs at once.
    pub(crate) fn arm(&self, hook: CancelHook) {
        let mut slot = self.state.hook.lock();
        if self.is_cancelled() {
            drop(slot);
            hook();
        } else {
            *slot = Some(hook);
        }
    }

    /// Removes the hook once the call has finished.
    pub(crate) fn disarm(&self) {
        self.state.hook.lock().take();
    }
}

/// The seed's `RpcController`: call options in, outcome out.
#[derive(Debug, Default)]
pub struct Controller {
    options: CallOptions,
    status: Option<Status>,
    cancel: CancelHandle,
}

impl Controller {
    /// A controller with default options (the channel's timeout, no hash key).
    pub fn new() -> Controller {
        Controller::default()
    }

    /// Clears the outcome so the controller can be reused for another call.
    pub fn reset(&mut self) {
        self.status = None;
        self.cancel = CancelHandle::default();
    }

    /// Sets this call's timeout, overriding the channel's default.
    pub fn set_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Sets the routing key used by consistent-hash load balancing.
    pub fn set_hash_key(&mut self, key: u64) -> &mut Self {
        self.options.hash_key = Some(key);
        self
    }

    /// Sets `key` to `value` in the metadata of the calls this controller
    /// makes.
    pub fn set_metadata(&mut self, key: &str, value: &str) -> Result<&mut Self, MetadataTooLong> {
        self.options.metadata.insert(key, value)?;
        Ok(self)
    }

    /// Asks for the reply metadata of the calls this controller makes: it
    /// is in the returned [`ReplyMetadata`] once a call has returned.
    pub fn capture_reply_metadata(&mut self) -> ReplyMetadata {
        self.options.capture_reply_metadata()
    }

    /// The options the next call will use.
    pub fn options(&self) -> &CallOptions {
        &self.options
    }

    /// True when the last call failed.
    pub fn failed(&self) -> bool {
        self.status.is_some()
    }

    /// Why the last call failed; empty when it did not.
    pub fn error_text(&self) -> String {
        self.status
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default()
    }

    /// The failure's code, `Ok` when the call succeeded.
    pub fn code(&self) -> Code {
        self.status.as_ref().map_or(Code::Ok, Status::code)
    }

    /// The last call's failure, `None` when it succeeded (or none ran yet).
    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    /// Marks the call failed with an application error (the seed's `SetFailed`).
    pub fn set_failed(&mut self, reason: impl Into<String>) {
        self.status = Some(Status::application(reason));
    }

    /// Records a call's outcome (used by generated stubs).
    pub fn set_status(&mut self, status: Status) {
        self.status = Some(status);
    }

    /// A handle that cancels this controller's call from another thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Cancels the call (the seed's `StartCancel`, which it left unimplemented).
    pub fn start_cancel(&self) {
        self.cancel.cancel();
    }

    /// True once this controller's call has been cancelled (the seed's
    /// `IsCanceled`).
    pub fn is_canceled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn call_options_build_as_one_chain_and_keep_a_too_long_entry_as_an_error() {
        let options = CallOptions::new()
            .timeout(Duration::from_millis(300))
            .metadata("account", "alice")
            .hash_key(7);
        assert_eq!(options.timeout, Some(Duration::from_millis(300)));
        assert_eq!(options.metadata.get("account"), Some("alice"));
        assert_eq!(options.hash_key, Some(7));
        assert!(options.invalid_metadata.is_none());

        let long = "x".repeat(crate::call::metadata::MAX_VALUE_LEN + 1);
        let options = CallOptions::new()
            .metadata("blob", &long)
            .metadata("ok", "1");
        let error = options
            .invalid_metadata
            .as_ref()
            .expect("kept for the call");
        assert_eq!(error.key, "blob");
        assert_eq!(options.metadata.get("ok"), Some("1"));
        assert!(CallOptions::new().with_metadata("blob", &long).is_err());
    }

    #[test]
    fn controller_reports_failure_like_the_seed() {
        let mut c = Controller::new();
        assert!(!c.failed());
        assert_eq!(c.error_text(), "");
        c.set_failed("rpc header serialize error");
        assert!(c.failed());
        assert!(c.error_text().contains("rpc header serialize error"));
        assert_eq!(c.code(), Code::Application);
        c.reset();
        assert!(!c.failed());
    }

    #[test]
    fn cancel_runs_the_armed_hook_once_and_late_arming_fires_at_once() {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = CancelHandle::default();
        let h2 = hits.clone();
        h.arm(Box::new(move || {
            h2.fetch_add(1, Ordering::SeqCst);
        }));
        h.cancel();
        h.cancel();
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let h3 = hits.clone();
        h.arm(Box::new(move || {
            h3.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }
}
