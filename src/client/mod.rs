//! The consumer side: a [`Channel`] that calls services on providers.
//!
//! A channel (the seed's `MprpcChannel`) owns one I/O driver thread running
//! a mio event loop over persistent, multiplexed TCP connections — one per
//! provider address by default. Calls from any thread are encoded on the
//! calling thread into a shared queue and handed to the driver; replies are
//! matched by request id, in any order. Three ways to call:
//!
//! * [`Channel::call`] blocks (parks) the calling thread, as the seed's stub;
//! * [`Channel::call_with`] runs a callback on completion — one thread can
//!   keep thousands of calls in flight this way;
//! * [`Channel::call_future`] returns a [`PendingCall`], a std `Future` for
//!   any executor that can also be waited on.
//!
//! Every call has a deadline (its own timeout or the channel's), enforced
//! locally and sent to the server. Providers come from a [`Discover`] on
//! every call and are chosen by a [`LoadBalance`] policy; providers that
//! refuse or drop connections are backed off, and calls that never left
//! this process are retried on another provider. See `driver` for the
//! failure rules.
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
mod conn;
mod driver;
mod health;
mod legacy;
mod queue;

use std::net::ToSocketAddrs;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use balance::LoadBalance;
pub use call::{decode_response, CallHandle, PendingCall, TypedCall};

use call::{CallbackCell, Completion, FutureCell};
use queue::{Shared, Submit};

use crate::codec::{DEFAULT_MAX_FRAME, REQUEST_FIXED_LEN};
use crate::config::Config;
use crate::controller::{CallOptions, CancelHandle};
use crate::discovery::{Discover, StaticDiscover};
use crate::status::Status;

/// How a channel behaves. `Default` suits most uses; `from_config` takes
/// the timeouts and frame limit from the seed-format config file.
#[derive(Debug, Clone)]
pub struct ChannelOptions {
    /// Timeout of a call that does not set its own (`Duration::MAX`: none).
    pub call_timeout: Duration,
    /// How long a TCP connect may take before the attempt counts as failed.
    pub connect_timeout: Duration,
    /// Largest frame body sent or accepted; larger replies close the
    /// connection, larger requests fail with `ResourceExhausted`.
    pub max_frame_size: usize,
    /// Calls in flight on this channel beyond which new calls fail at once
    /// with `ResourceExhausted`.
    pub max_inflight: usize,
    pub load_balance: LoadBalance,
    /// Extra connection attempts (on other providers) for a call whose
    /// request could not be sent because connecting failed.
    pub max_retries: u32,
    /// First back-off of a failing provider; doubles per failure...
    pub backoff_base: Duration,
    /// ...up to this.
    pub backoff_max: Duration,
    /// Persistent connections per provider address.
    pub connections_per_endpoint: usize,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            call_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            max_frame_size: DEFAULT_MAX_FRAME,
            max_inflight: 100_000,
            load_balance: LoadBalance::RoundRobin,
            max_retries: 2,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            connections_per_endpoint: 1,
        }
    }
}

impl ChannelOptions {
    /// Defaults, with `call_timeout_ms`, `connect_timeout_ms`,
    /// `max_frame_size` and `load_balance` from the config.
    pub fn from_config(config: &Config) -> ChannelOptions {
        ChannelOptions {
            call_timeout: config.call_timeout,
            connect_timeout: config.connect_timeout,
            max_frame_size: config.max_frame_size,
            load_balance: config.load_balance,
            ..ChannelOptions::default()
        }
    }
}

/// A client of one or more services. Cheap to clone: clones share the I/O
/// driver and its connections. The driver stops once the last clone is
/// dropped and the calls still in flight have finished.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    discover: Arc<dyn Discover>,
    options: ChannelOptions,
    /// Why the driver is not running, if it could not be started.
    start_error: Option<String>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.wake();
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
    /// A channel whose providers come from `discover`. Starts the driver
    /// thread; if that fails (no file descriptors left), every call fails
    /// with `Unavailable` saying so.
    pub fn new(discover: Arc<dyn Discover>, options: ChannelOptions) -> Channel {
        let (shared, start_error) = match driver::spawn(options.clone()) {
            Ok(shared) => (shared, None),
            Err(e) => {
                let why = format!("client I/O driver failed to start: {e}");
                tracing::error!("{why}");
                (Arc::new(Shared::new(None)), Some(why))
            }
        };
        Channel {
            inner: Arc::new(Inner {
                shared,
                discover,
                options,
                start_error,
            }),
        }
    }

    /// A channel to one provider address, with default options.
    pub fn direct(addr: impl ToSocketAddrs) -> std::io::Result<Channel> {
        let discover = StaticDiscover::single(addr)?;
        Ok(Channel::new(Arc::new(discover), ChannelOptions::default()))
    }

    pub fn options(&self) -> &ChannelOptions {
        &self.inner.options
    }

    /// Calls submitted on this channel and not yet finished.
    pub fn inflight(&self) -> usize {
        self.inner.shared.inflight.load(Ordering::Relaxed)
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
            return self.call_future(service, method, request, options).wait();
        };
        if cancel.is_cancelled() {
            return Err(Status::cancelled("call cancelled before it started"));
        }
        let pending = self.call_future(service, method, request, options);
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
    /// `call_future`, but a *blocking* call (`call`, `.wait()`) made there
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
        let cell: Arc<dyn Completion> = Arc::new(CallbackCell::new(done));
        let id = self.start(service, method, &request, options, &cell);
        CallHandle::new(cell, id, self.inner.shared.clone())
    }

    /// Starts a call and returns it as a future (that can also be waited
    /// on). Dropping the `PendingCall` before it completes cancels the call.
    pub fn call_future(
        &self,
        service: &str,
        method: &str,
        request: Bytes,
        options: &CallOptions,
    ) -> PendingCall {
        let cell = Arc::new(FutureCell::default());
        let completion: Arc<dyn Completion> = cell.clone();
        let id = self.start(service, method, &request, options, &completion);
        PendingCall::new(cell, id, self.inner.shared.clone())
    }

    /// Queues a call for the driver, or completes it at once with why it
    /// cannot be made. Returns its request id (0 if it was not queued).
    fn start(
        &self,
        service: &str,
        method: &str,
        payload: &[u8],
        options: &CallOptions,
        completion: &Arc<dyn Completion>,
    ) -> u64 {
        match self.admit(service, method, payload.len(), options) {
            Ok(submit) => self
                .inner
                .shared
                .submit(submit, payload, completion.clone()),
            Err(status) => {
                completion.complete(Err(status));
                0
            }
        }
    }

    /// Checks a call against the channel's limits and finds its providers;
    /// on success it holds one of the `max_inflight` slots.
    fn admit<'a>(
        &self,
        service: &'a str,
        method: &'a str,
        payload_len: usize,
        options: &CallOptions,
    ) -> Result<Submit<'a>, Status> {
        let inner = &*self.inner;
        if let Some(why) = &inner.start_error {
            return Err(Status::unavailable(why.clone()));
        }
        if service.len() > 255 || method.len() > 255 {
            return Err(Status::bad_request(
                "service and method names are limited to 255 bytes",
            ));
        }
        let body = REQUEST_FIXED_LEN + service.len() + method.len() + payload_len;
        if body > inner.options.max_frame_size {
            return Err(Status::resource_exhausted(format!(
                "request frame of {body} bytes exceeds the max frame size of {} bytes",
                inner.options.max_frame_size
            )));
        }
        let endpoints = inner.discover.providers(service)?;
        if endpoints.is_empty() {
            return Err(Status::unavailable(format!(
                "no provider known for service '{service}'"
            )));
        }
        // Providers found through ZooKeeper publish their frame limit.
        if let Some(limit) = endpoints.iter().filter_map(|e| e.max_frame).min() {
            if body > limit {
                return Err(Status::resource_exhausted(format!(
                    "request frame of {body} bytes exceeds the max_frame_size of {limit} bytes \
                     that the providers of '{service}' accept"
                )));
            }
        }
        let shared = &inner.shared;
        if !shared.is_running() {
            return Err(Status::unavailable("client I/O driver is not running"));
        }
        if shared.inflight.fetch_add(1, Ordering::Relaxed) >= inner.options.max_inflight {
            shared.retire();
            return Err(Status::resource_exhausted(format!(
                "{} calls already in flight on this channel",
                inner.options.max_inflight
            )));
        }
        let timeout = options.timeout.unwrap_or(inner.options.call_timeout);
        let deadline = Instant::now().checked_add(timeout);
        let timeout_ms = match deadline {
            Some(_) => timeout
                .as_nanos()
                .div_ceil(1_000_000)
                .clamp(1, u32::MAX as u128) as u32,
            None => 0,
        };
        Ok(Submit {
            service,
            method,
            timeout_ms,
            deadline,
            endpoints,
            hash_key: options.hash_key,
        })
    }
}
