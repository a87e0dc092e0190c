//! The part of a reactor other threads talk to: the acceptor hands it
//! connections, the worker pool finished replies, wakers of calls that
//! answer later the slots to poll, streams the frames their handlers
//! sent; each push wakes the reactor's mio
//! `Waker` (once per batch). The admin pages read its counters here.
//!
//! A push made on the reactor's own thread (a stream handler polled there
//! sending, a credit grant waking a handler) rings no `Waker`: it raises
//! `self_posted`, which the loop checks before it polls again, saving an
//! eventfd write and an empty loop turn per batch.
//!
//! It is apart from the reactor's loop so that what posts to a reactor
//! (acceptor, workers, pending calls, admin pages) does not depend on the
//! loop that reads them.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use mio::net::TcpStream;
use mio::{Registry, Token, Waker};
use parking_lot::Mutex;

use super::stats::ReactorStats;
use super::stream::{Core, StreamHome};

/// A finished pool call on its way back to its connection.
pub(crate) struct PoolReply {
    pub(crate) token: usize,
    pub(crate) conn_id: u64,
    pub(crate) id: u64,
    pub(crate) frame: BytesMut,
}

/// A connection the acceptor handed over, not yet adopted.
pub(crate) struct Incoming {
    pub(crate) stream: TcpStream,
    pub(crate) peer: SocketAddr,
    /// Accepted on the admin port.
    pub(crate) admin_port: bool,
}

/// One reactor's mailbox.
pub(crate) struct ReactorShared {
    waker: Waker,
    incoming: Mutex<Vec<Incoming>>,
    replies: Mutex<Vec<PoolReply>>,
    /// Slab slots of calls answering later whose futures were woken.
    woken: Mutex<Vec<usize>>,
    /// Streams with frames to move into their connections' output.
    streams: Mutex<Vec<Arc<Core>>>,
    /// Something was pushed from the reactor's own thread (no wake-up).
    self_posted: AtomicBool,
    stats: ReactorStats,
}

thread_local! {
    /// The mailbox of the reactor running on this thread (its address; 0
    /// on other threads).
    static ON_REACTOR: Cell<usize> = const { Cell::new(0) };
}

impl ReactorShared {
    /// A mailbox whose pushes wake the poll of `registry` with `token`.
    pub(crate) fn new(registry: &Registry, token: Token) -> io::Result<ReactorShared> {
        Ok(ReactorShared {
            waker: Waker::new(registry, token)?,
            incoming: Mutex::new(Vec::new()),
            replies: Mutex::new(Vec::new()),
            woken: Mutex::new(Vec::new()),
            streams: Mutex::new(Vec::new()),
            self_posted: AtomicBool::new(false),
            stats: ReactorStats::default(),
        })
    }

    /// Queues a newly accepted connection (from the admin port or not) for
    /// this reactor.
    pub(crate) fn add_connection(&self, stream: TcpStream, peer: SocketAddr, admin_port: bool) {
        let incoming = Incoming {
            stream,
            peer,
            admin_port,
        };
        if push(&self.incoming, incoming) {
            self.wake();
        }
    }

    /// Its connections and counters, for the admin pages.
    pub(crate) fn stats(&self) -> &ReactorStats {
        &self.stats
    }

    /// Queues a finished pool call's reply.
    pub(crate) fn complete(&self, reply: PoolReply) {
        if push(&self.replies, reply) {
            self.wake();
        }
    }

    /// The future of the call in `slot` (of `pending`) can make progress.
    pub(crate) fn task_woken(&self, slot: usize) {
        if push(&self.woken, slot) {
            self.wake();
        }
    }

    /// Swaps the streams with frames into `ready` (empty), likewise.
    pub(crate) fn take_streams(&self, ready: &mut Vec<Arc<Core>>) {
        std::mem::swap(&mut *self.streams.lock(), ready);
    }

    /// Marks the calling thread as this mailbox's reactor.
    pub(crate) fn enter(&self) {
        ON_REACTOR.with(|on| on.set(self as *const ReactorShared as usize));
    }

    /// Whether a push was made from the reactor's own thread since the
    /// last call (then the loop serves the mailbox before it polls).
    pub(crate) fn take_self_posted(&self) -> bool {
        self.self_posted.swap(false, Ordering::Relaxed)
    }

    /// Like [`take_self_posted`](Self::take_self_posted), without clearing it.
    pub(crate) fn self_posted(&self) -> bool {
        self.self_posted.load(Ordering::Relaxed)
    }

    pub(crate) fn wake(&self) {
        if ON_REACTOR.with(Cell::get) == self as *const ReactorShared as usize {
            self.self_posted.store(true, Ordering::Relaxed);
            return;
        }
        if let Err(e) = self.waker.wake() {
            tracing::error!(error = %e, "cannot wake reactor");
        }
    }

    /// The connections queued since the last call.
    pub(crate) fn take_incoming(&self) -> Vec<Incoming> {
        std::mem::take(&mut *self.incoming.lock())
    }

    /// Swaps the queued pool replies into `replies` (empty), keeping both
    /// vectors' memory.
    pub(crate) fn take_replies(&self, replies: &mut Vec<PoolReply>) {
        std::mem::swap(&mut *self.replies.lock(), replies);
    }

    /// Swaps the woken slots into `woken` (empty), likewise.
    pub(crate) fn take_woken(&self, woken: &mut Vec<usize>) {
        std::mem::swap(&mut *self.woken.lock(), woken);
    }
}

impl StreamHome for ReactorShared {
    fn stream_ready(&self, core: Arc<Core>) {
        if push(&self.streams, core) {
            self.wake();
        }
    }

    fn stats(&self) -> &ReactorStats {
        ReactorShared::stats(self)
    }
}

/// Pushes and reports whether the queue was empty: only the first push after
/// the reactor drained the queue needs to wake it (one syscall per batch).
fn push<T>(queue: &Mutex<Vec<T>>, item: T) -> bool {
    let mut q = queue.lock();
    q.push(item);
    q.len() == 1
}
