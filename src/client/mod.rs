//! The consumer side: a [`Channel`] that calls services on providers.
//!
//! A channel (the seed's `MprpcChannel`) owns `io_threads` I/O driver
//! threads (one by default), each running a mio event loop over its own
//! persistent, multiplexed TCP connections — one per provider address by
//! default. Calls from other threads are handed to the driver through a
//! shared queue; a call started in a callback, on the driver's own thread,
//! is packed straight into its connection's output. Either way the
//! provider's wire format packs the request once. Replies are matched by
//! request id, in any order. Three ways to call:
//!
//! * [`Channel::call`] blocks (parks) the calling thread, as the seed's stub;
//! * [`Channel::call_with`] runs a callback on completion — one thread can
//!   keep thousands of calls in flight this way;
//! * [`Channel::call_async`] returns a [`PendingCall`], a std `Future` for
//!   any executor that can also be waited on.
//!
//! Every call has a deadline (its own timeout or the channel's), enforced
//! locally and sent to the server. Providers come from a [`Discover`] on
//! every call (kept per thread while the `Discover` reports no change, see
//! `providers`) and are chosen by a [`LoadBalance`] policy; providers that
//! refuse or drop connections are backed off, and calls that never left
//! this process, or that a provider refused `Overloaded` (once), are
//! retried on another provider. See `driver` for the failure rules.
//!
//! ```no_run
//! use mprpc::client::Channel;
//! use mprpc::CallOptions;
//!
//! let channel = Channel::direct("127.0.0.1:8000")?;
//! let reply = channel.call("UserServiceRpc", "Login", bytes::Bytes::new(), &CallOptions::default(), None);
//! # Ok::<(), std::io::Error>(())
//! ```

mod balance;
mod call;
mod cells;
mod conn;
mod driver;
mod health;
mod observe;
mod open_stream;
mod providers;
mod queue;
mod request;
mod short;
pub mod stream;

use std::borrow::Cow;
use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;

pub use crate::options::ChannelOptions;
pub use balance::LoadBalance;
pub use call::{decode_response, CallHandle, PendingCall, TypedCall};

use cells::CellRef;
use queue::{Endpoints, Shared, Submit, Target};
use request::Parts;

use crate::call::controller::{CallOptions, CancelHandle};
use crate::call::interceptor::ClientCall;
use crate::call::status::Status;
use crate::call::trace::TRACE_ID_KEY;
use crate::discovery::{Discover, Endpoint, StaticDiscover};
use crate::protocol::mprpc::{check_names, RequestMeta, REQUEST_FIXED_LEN};
use observe::Watch;

/// A client of one or more services. Cheap to clone: clones share the I/O
/// driver and its connections. The driver stops once the last clone is
/// dropped and the calls still in flight have finished.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

struct Inner {
    /// One queue per I/O driver thread.
    drivers: Box<[Arc<Shared>]>,
    /// Round-robin cursor over `drivers` for calls from other threads.
    next_driver: AtomicUsize,
    /// Calls in flight on this channel (shared with every driver).
    inflight: Arc<AtomicUsize>,
    discover: Arc<dyn Discover>,
    /// This channel's number among the providers remembered per thread
    /// (`providers`); `None` when its `Discover` numbers no changes (then
    /// it is asked on every call).
    memo: Option<u64>,
    /// The providers of every call and their frame limit, taken once when
    /// the `Discover` has one list for all (`Discover::fixed`, non-empty):
    /// no question per call.
    fixed: Option<(Arc<[Endpoint]>, usize)>,
    options: ChannelOptions,
    /// `options.call_timeout` in whole milliseconds, as sent.
    call_timeout_ms: u32,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for shared in self.drivers.iter() {
            shared.shutdown.store(true, Ordering::Release);
            shared.wake();
        }
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("options", &self.inner.options)
            .field("inflight", &self.inflight())
            .finish()
    }
}

impl Channel {
    /// A channel whose providers come from `discover`. Starts the I/O
    /// driver threads; fails if one cannot be started (no threads or file
    /// descriptors left), stopping those already started.
    pub fn new(discover: Arc<dyn Discover>, options: ChannelOptions) -> std::io::Result<Channel> {
        let inflight = Arc::new(AtomicUsize::new(0));
        let mut drivers = Vec::new();
        for index in 0..options.io_threads.max(1) {
            match driver::spawn(index, options.clone(), inflight.clone()) {
                Ok(shared) => drivers.push(shared),
                Err(e) => {
                    for shared in &drivers {
                        shared.shutdown.store(true, Ordering::Release);
                        shared.wake();
                    }
                    let why = format!("client I/O driver {index} failed to start: {e}");
                    return Err(std::io::Error::new(e.kind(), why));
                }
            }
        }
        Ok(Channel {
            inner: Arc::new(Inner {
                drivers: drivers.into(),
                next_driver: AtomicUsize::new(0),
                inflight,
                memo: discover.generation().map(|_| providers::channel_id()),
                fixed: discover
                    .fixed()
                    .filter(|endpoints| !endpoints.is_empty())
                    .map(|endpoints| {
                        let limit = providers::frame_limit(&endpoints);
                        (endpoints, limit)
                    }),
                discover,
                call_timeout_ms: conn::whole_ms(options.call_timeout),
                options,
            }),
        })
    }

    /// A channel to one provider address, with default options.
    pub fn direct(addr: impl ToSocketAddrs) -> std::io::Result<Channel> {
        let discover = StaticDiscover::single(addr)?;
        Channel::new(Arc::new(discover), ChannelOptions::default())
    }

    /// The options this channel was made with.
    pub fn options(&self) -> &ChannelOptions {
        &self.inner.options
    }

    /// Calls submitted on this channel and not yet finished.
    pub fn inflight(&self) -> usize {
        self.inner.inflight.load(Ordering::Relaxed)
    }

    /// The driver a new call goes to: the current one inside a callback
    /// (no cross-thread hand-off), otherwise the next in turn.
    fn driver(&self) -> &Arc<Shared> {
        let drivers = &self.inner.drivers;
        if drivers.len() == 1 {
            return &drivers[0];
        }
        if let Some(current) = call::current_driver() {
            if let Some(own) = drivers
                .iter()
                .find(|d| std::ptr::eq(Arc::as_ptr(d), current))
            {
                return own;
            }
        }
        let i = self.inner.next_driver.fetch_add(1, Ordering::Relaxed);
        &drivers[i % drivers.len()]
    }

    /// Calls `service.method` and parks this thread until the reply, the
    /// deadline (`options.timeout`, else the channel's) or a cancellation
    /// through `cancel` from another thread.
    pub fn call(
        &self,
        service: &str,
        method: &str,
        request: Bytes,
        options: &CallOptions,
        cancel: Option<&CancelHandle>,
    ) -> Result<Bytes, Status> {
        call::refuse_blocking_on_io_thread()?;
        let Some(cancel) = cancel else {
            return self.call_async(service, method, request, options).wait();
        };
        if cancel.is_cancelled() {
            return Err(Status::cancelled("call cancelled before it started"));
        }
        let pending = self.call_async(service, method, request, options);
        let handle = pending.handle();
        cancel.arm(Box::new(move || handle.cancel()));
        let result = pending.wait();
        cancel.disarm();
        result
    }

    /// Starts a call; `done` runs exactly once with its outcome — on the
    /// I/O thread for replies, timeouts and lost connections, on the
    /// cancelling thread for a cancel, and on this thread if the call fails
    /// before it is queued (no provider, too many calls in flight, bad names).
    ///
    /// While `done` runs on the I/O thread no other reply of this channel is
    /// read, so keep it short. It may start more calls with `call_with` or
    /// `call_async`, but a *blocking* call (`call`, `.wait()`) made there
    /// fails at once with `Code::FailedPrecondition`: it would wait for a
    /// reply that only this very thread could read.
    pub fn call_with<F>(
        &self,
        service: &str,
        method: &str,
        request: Bytes,
        options: &CallOptions,
        done: F,
    ) -> CallHandle
    where
        F: FnOnce(Result<Bytes, Status>) + Send + 'static,
    {
        let (driver, cell, id) = self.start_with(service, method, &request, options, done);
        CallHandle::new(cell, id, driver.clone())
    }

    /// `call_with` for a caller that will not cancel the call: no
    /// `CallHandle` is made, which spares a reference count increment and
    /// decrement on the driver per call. `done` runs exactly once, as with
    /// `call_with`; the deadline still applies. The request is only
    /// borrowed (packed or copied before this returns), so a caller that
    /// sends the same bytes again passes a reference: no `Bytes` clone
    /// and drop (two atomic operations) per call. Started from a callback
    /// on the I/O thread (a closed loop chaining its calls), the call is
    /// the I/O thread's alone from start to outcome, so its callback is
    /// kept with the I/O thread's record of the call: no completion cell,
    /// lock or atomic operation per call.
    pub fn call_detached<F>(
        &self,
        service: &str,
        method: &str,
        request: impl AsRef<[u8]>,
        options: &CallOptions,
        done: F,
    ) where
        F: FnOnce(Result<Bytes, Status>) + Send + 'static,
    {
        let request = request.as_ref();
        match Watch::new(&self.inner.options.interceptors, service, method) {
            None => self.start_detached(service, method, request, options, done),
            Some(watch) => self.start_detached(service, method, request, options, move |result| {
                watch.ended(&result);
                done(result)
            }),
        }
    }

    /// Starts a call whose outcome goes to `done`: its driver, cell and
    /// request id (0 if it was not queued).
    fn start_with<F>(
        &self,
        service: &str,
        method: &str,
        request: &[u8],
        options: &CallOptions,
        done: F,
    ) -> (&Arc<Shared>, CellRef, u64)
    where
        F: FnOnce(Result<Bytes, Status>) + Send + 'static,
    {
        let driver = self.driver();
        let cell = match Watch::new(&self.inner.options.interceptors, service, method) {
            None => driver.cells.callback(done),
            Some(watch) => driver.cells.callback(move |result: Result<Bytes, Status>| {
                watch.ended(&result);
                done(result)
            }),
        };
        let id = self.start(driver, service, method, request, options, cell);
        (driver, cell, id)
    }

    /// Starts a call and returns it as a future (that can also be waited
    /// on). Dropping the `PendingCall` before it completes cancels the call.
    pub fn call_async(
        &self,
        service: &str,
        method: &str,
        request: Bytes,
        options: &CallOptions,
    ) -> PendingCall {
        let driver = self.driver();
        let cell = driver.cells.future();
        let watch = Watch::new(&self.inner.options.interceptors, service, method);
        let id = self.start(driver, service, method, &request, options, cell);
        PendingCall::new(cell, id, driver.clone(), watch)
    }

    /// Queues a call for the driver, or completes it at once with why it
    /// cannot be made. Returns its request id (0 if it was not queued).
    fn start(
        &self,
        driver: &Shared,
        service: &str,
        method: &str,
        payload: &[u8],
        options: &CallOptions,
        cell: CellRef,
    ) -> u64 {
        match self.admit(service, method, payload.len(), options) {
            // On the driver's own thread (a callback) the call goes
            // straight onto its connection; from elsewhere, through the
            // queue. Its parts are assembled here once, then borrowed.
            Ok(call) => {
                let id = cell.call_id();
                with_parts(call, id, service, method, payload, |parts, target| {
                    driver::start(driver, parts, target, cell)
                });
                id
            }
            Err(status) => {
                // Never queued: this thread lets go for the driver too.
                driver.cells.finish(cell, Err(status));
                0
            }
        }
    }

    /// `start` for a detached call: on the driver's own thread its
    /// callback is held by the driver (no completion cell: see
    /// `cells::held`), else it takes a cell as any call.
    #[inline(never)] // a step of its own in profiles (scripts/profile_steps.py)
    fn start_detached<F>(
        &self,
        service: &str,
        method: &str,
        payload: &[u8],
        options: &CallOptions,
        done: F,
    ) where
        F: FnOnce(Result<Bytes, Status>) + Send + 'static,
    {
        let driver = self.driver();
        let call = match self.admit(service, method, payload.len(), options) {
            Ok(call) => call,
            // Run here as any call's that was never queued.
            Err(status) => {
                return driver
                    .cells
                    .finish(driver.cells.callback(done), Err(status))
            }
        };
        with_parts(call, 0, service, method, payload, |parts, target| {
            if let Err((done, target)) = driver::start_held(driver, parts, target, done) {
                let cell = driver.cells.callback(done);
                parts.id = cell.call_id();
                driver::start(driver, parts, target, cell);
            }
        });
    }

    /// Checks a call against the channel's limits and finds its providers;
    /// on success it holds one of the `max_inflight` slots.
    fn admit<'a>(
        &'a self,
        service: &'a str,
        method: &'a str,
        payload_len: usize,
        options: &'a CallOptions,
    ) -> Result<Submit<'a>, Status> {
        let inner = &*self.inner;
        check_names(service, method).map_err(|e| Status::bad_request(e.to_string()))?;
        if let Some(e) = &options.invalid_metadata {
            return Err(Status::bad_request(e.to_string()));
        }
        // Copied only for interceptors, which may change it.
        let mut metadata = Cow::Borrowed(&options.metadata);
        if !inner.options.interceptors.is_empty() {
            let mut call = ClientCall {
                service,
                method,
                metadata: metadata.to_mut(),
            };
            inner.options.interceptors.before(&mut call)?;
        }
        // Started while serving a call: its trace id goes on.
        let trace =
            crate::call::deadline::current_trace().filter(|_| metadata.get(TRACE_ID_KEY).is_none());
        let meta = RequestMeta {
            metadata: &metadata,
            trace,
            reply_metadata: options.reply_metadata.is_some(),
        };
        let body =
            REQUEST_FIXED_LEN + service.len() + method.len() + payload_len + meta.extra_len();
        if body > inner.options.max_frame_size {
            return Err(Status::resource_exhausted(format!(
                "request frame of {body} bytes exceeds the max frame size of {} bytes",
                inner.options.max_frame_size
            )));
        }
        // Asked of the `Discover` only when it may have changed (if it
        // says), else on every call, as the call path's own code.
        let (endpoints, limit) = match (&inner.fixed, inner.memo) {
            (Some((endpoints, limit)), _) => (Endpoints::Fixed(endpoints), *limit),
            (None, Some(channel)) => {
                let kept = providers::remembered(channel, &*inner.discover, service, method)?;
                (Endpoints::Found(kept.endpoints), kept.limit)
            }
            (None, None) => {
                let endpoints = inner.discover.method_providers(service, method)?;
                if endpoints.is_empty() {
                    return Err(providers::none_known(service));
                }
                let limit = providers::frame_limit(&endpoints);
                (Endpoints::Found(endpoints), limit)
            }
        };
        // Providers found through ZooKeeper publish their frame limit.
        if body > limit {
            return Err(Status::resource_exhausted(format!(
                "request frame of {body} bytes exceeds the max_frame_size of {limit} bytes \
                 that the providers of '{service}' accept"
            )));
        }
        // Started while serving a call: capped at what remains of its deadline.
        let now = call::call_start_time();
        let asked = options.timeout.unwrap_or(inner.options.call_timeout);
        let timeout = crate::call::deadline::inherit(asked, inner.options.deadline_margin, now)
            .map_err(|()| {
                Status::deadline_exceeded(
                    "the call being served has (almost) reached its deadline; not started",
                )
            })?;
        if inner.inflight.fetch_add(1, Ordering::Relaxed) >= inner.options.max_inflight {
            inner.inflight.fetch_sub(1, Ordering::Relaxed);
            return Err(Status::resource_exhausted(format!(
                "{} calls already in flight on this channel",
                inner.options.max_inflight
            )));
        }
        let deadline = now.checked_add(timeout);
        // The channel's own timeout in milliseconds is worked out once.
        let timeout_ms = match deadline {
            None => 0,
            Some(_) if timeout == inner.options.call_timeout => inner.call_timeout_ms,
            Some(_) => conn::whole_ms(timeout),
        };
        Ok(Submit {
            timeout_ms,
            deadline,
            endpoints,
            hash_key: options.hash_key,
            metadata,
            trace,
            reply_metadata: options.reply_metadata.clone(),
        })
    }
}

/// Hands an admitted call's parts, numbered `id` and borrowing `call`, and
/// its target to `go`: built once, whichever way the call then starts.
fn with_parts<R>(
    call: Submit<'_>,
    id: u64,
    service: &str,
    method: &str,
    payload: &[u8],
    go: impl FnOnce(&mut Parts<'_>, Target<'_>) -> R,
) -> R {
    let target = Target {
        endpoints: call.endpoints,
        hash_key: call.hash_key,
        reply_metadata: call.reply_metadata,
    };
    let mut parts = Parts {
        id,
        deadline: call.deadline,
        // Its deadline was set from this turn's start when on the
        // driver's thread: the whole timeout is left (the queue does not
        // use this).
        timeout_ms: Some(call.timeout_ms),
        service,
        method,
        payload,
        metadata: &call.metadata,
        trace: call.trace,
        reply_metadata: target.reply_metadata.is_some(),
    };
    go(&mut parts, target)
}
