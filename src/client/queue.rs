//! The submission queue between calling threads and the channel's I/O driver.
//!
//! Calls started on the driver's own thread skip it (see `driver::local`).
//! Other callers copy their request's parts into a shared staging buffer
//! (the driver packs them once it knows the provider, see `request`) and
//! push a small command, under one short parking_lot lock; the driver
//! swaps the whole queue out for an empty one each loop turn (double
//! buffering, so neither side allocates in steady state). The mio `Waker`
//! is rung only when the queue goes from empty to non-empty while the
//! driver is asleep in `poll`, and never by the driver's own thread (which
//! queues only as a fallback). A busy driver drains its queue every
//! loop turn and checks it again before it sleeps, so under load calls
//! cost no wake-up syscall at all. (The driver announces `sleeping`, then
//! re-checks the queue; a caller publishes `has_work`, then checks
//! `sleeping`: with sequentially consistent order on both sides, at least
//! one of them sees the other, so no call is left unseen.)

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use mio::Waker;
use parking_lot::Mutex;

use super::cells::{CellRef, Cells};
use super::request::{stage_into, Names, Parts};
pub(crate) use super::stream::NewStream;
use super::stream::StreamCmd;
use crate::call::controller::ReplyMetadata;
use crate::call::metadata::Metadata;
use crate::call::trace::TraceId;
use crate::discovery::Endpoint;

/// A call handed to the driver.
pub(crate) struct NewCall {
    pub id: u64,
    /// Where its names and payload sit in the staging buffer.
    pub names: Names,
    pub deadline: Option<Instant>,
    /// What the request carries besides its payload.
    pub metadata: Metadata,
    pub trace: Option<TraceId>,
    pub endpoints: Arc<[Endpoint]>,
    pub hash_key: Option<u64>,
    pub cell: CellRef,
    /// Where its reply's metadata goes, if the caller asked for it.
    pub reply_metadata: Option<ReplyMetadata>,
}

/// Work for the driver.
pub(crate) enum Command {
    Call(NewCall),
    /// The caller gave up on this call (it is already completed).
    Cancel(u64),
    /// A stream to open (see `client::stream`).
    OpenStream(Box<NewStream>),
    /// What a stream's caller asks for.
    Stream(u64, StreamCmd),
}

/// What callers fill and the driver drains.
#[derive(Default)]
pub(crate) struct Batch {
    pub commands: Vec<Command>,
    /// The calls' names and payloads (see `request`).
    pub frames: BytesMut,
}

/// State shared by a channel's handles and one of its driver threads.
pub(crate) struct Shared {
    queue: Mutex<Batch>,
    /// True while `queue` holds commands (read without the lock).
    has_work: AtomicBool,
    /// The driver is (about to be) blocked in `poll`: a new command must
    /// wake it.
    sleeping: AtomicBool,
    /// Rouses the driver from `poll`.
    waker: Waker,
    /// Calls submitted and not yet retired, channel-wide (every driver of
    /// a channel shares this counter).
    pub inflight: Arc<AtomicUsize>,
    /// Set when the last `Channel` clone is dropped.
    pub shutdown: AtomicBool,
    /// The completion cells of this driver's calls.
    pub cells: Cells,
}

/// What admitting a call settled: its budget, providers and what its
/// request carries besides names and payload (which the caller has).
pub(crate) struct Submit<'a> {
    pub deadline: Option<Instant>,
    /// The call's timeout in whole milliseconds (0: none), as sent when
    /// it is packed at once.
    pub timeout_ms: u32,
    pub endpoints: Endpoints<'a>,
    pub hash_key: Option<u64>,
    /// What the request carries besides its payload (version 2 when any).
    pub metadata: Cow<'a, Metadata>,
    pub trace: Option<TraceId>,
    pub reply_metadata: Option<ReplyMetadata>,
}

/// A call's providers: the channel's fixed list, borrowed (no reference
/// count taken and dropped per call), or a list found for this call.
pub(crate) enum Endpoints<'a> {
    Fixed(&'a Arc<[Endpoint]>),
    Found(Arc<[Endpoint]>),
}

impl Endpoints<'_> {
    pub(crate) fn get(&self) -> &Arc<[Endpoint]> {
        match self {
            Endpoints::Fixed(endpoints) => endpoints,
            Endpoints::Found(endpoints) => endpoints,
        }
    }

    /// The list to keep (a call queued, or routed where it may be routed
    /// again).
    pub(crate) fn into_owned(self) -> Arc<[Endpoint]> {
        match self {
            Endpoints::Fixed(endpoints) => endpoints.clone(),
            Endpoints::Found(endpoints) => endpoints,
        }
    }
}

/// Where a new call may go, and where its reply's metadata goes.
pub(crate) struct Target<'a> {
    pub endpoints: Endpoints<'a>,
    pub hash_key: Option<u64>,
    pub reply_metadata: Option<ReplyMetadata>,
}

impl Shared {
    pub(crate) fn new(waker: Waker) -> Shared {
        Shared {
            queue: Mutex::new(Batch::default()),
            has_work: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            waker,
            inflight: Arc::new(AtomicUsize::new(0)),
            shutdown: AtomicBool::new(false),
            cells: Cells::default(),
        }
    }

    /// Makes this driver count its calls in `inflight`, the channel's counter.
    pub(crate) fn with_inflight(mut self, inflight: Arc<AtomicUsize>) -> Shared {
        self.inflight = inflight;
        self
    }

    /// Queues a call, its parts copied (its metadata shared: a `Bytes`).
    pub(crate) fn submit(&self, parts: &Parts<'_>, target: Target<'_>, cell: CellRef) {
        let metadata = parts.metadata.clone();
        let mut batch = self.queue.lock();
        let names = stage_into(
            &mut batch.frames,
            parts.service,
            parts.method,
            parts.payload,
        );
        batch.commands.push(Command::Call(NewCall {
            id: parts.id,
            names,
            deadline: parts.deadline,
            metadata,
            trace: parts.trace,
            endpoints: target.endpoints.into_owned(),
            hash_key: target.hash_key,
            cell,
            reply_metadata: target.reply_metadata,
        }));
        self.queued(batch);
    }

    /// Tells the driver to forget call `id` and send the server a cancel.
    pub(crate) fn cancel(&self, id: u64) {
        let mut batch = self.queue.lock();
        batch.commands.push(Command::Cancel(id));
        self.queued(batch);
    }

    /// Queues a stream's open.
    pub(crate) fn open_stream(&self, stream: NewStream) {
        let mut batch = self.queue.lock();
        batch.commands.push(Command::OpenStream(Box::new(stream)));
        self.queued(batch);
    }

    /// Queues what stream `id`'s caller asks for.
    pub(crate) fn stream_command(&self, id: u64, cmd: StreamCmd) {
        let mut batch = self.queue.lock();
        batch.commands.push(Command::Stream(id, cmd));
        self.queued(batch);
    }

    /// After a push: wakes the driver if the queue was empty and the
    /// driver sleeps, unless this is the driver's own thread.
    fn queued(&self, batch: parking_lot::MutexGuard<'_, Batch>) {
        let first = batch.commands.len() == 1;
        if first {
            self.has_work.store(true, Ordering::SeqCst);
        }
        drop(batch);
        if first && self.sleeping.load(Ordering::SeqCst) && !super::call::on_driver_thread(self) {
            self.wake();
        }
    }

    /// The driver is about to block in `poll`: returns false (do not
    /// block) if commands are already waiting.
    pub(crate) fn going_to_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.has_work.load(Ordering::SeqCst) {
            self.sleeping.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// A caller has parked on the driver's core (`Cells::wait`): a
    /// sleeping driver is woken to poll for its reply. (The driver
    /// announces `sleeping`, then looks for such a caller; the caller
    /// counts itself, then looks at `sleeping`: as for `has_work`, one of
    /// them sees the other.)
    pub(crate) fn rouse_to_poll(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    /// The driver is awake again.
    pub(crate) fn awake(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Swaps the pending batch with `spare` (which must be empty).
    pub(crate) fn take(&self, spare: &mut Batch) {
        let mut batch = self.queue.lock();
        std::mem::swap(&mut *batch, spare);
        self.has_work.store(false, Ordering::Release);
    }

    /// Commands are waiting for the driver.
    pub(crate) fn has_work(&self) -> bool {
        self.has_work.load(Ordering::Acquire)
    }

    pub(crate) fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            tracing::warn!("client: cannot wake the I/O driver: {e}");
        }
    }

    /// Releases `n` in-flight slots.
    #[inline]
    pub(crate) fn retire(&self, n: usize) {
        self.inflight.fetch_sub(n, Ordering::Relaxed);
    }
}
