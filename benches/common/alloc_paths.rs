//! The call paths the allocation bench and the allocation gate
//! (`tests/allocations.rs`) count: the server's decode + dispatch in
//! process, a child process serving echo that reports its own counters, and
//! the client's blocking, callback and future calls. One copy, so the gate
//! tests exactly what the bench reports.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use bytes::{Bytes, BytesMut};
use mprpc::client::{Channel, PendingCall};
use mprpc::protocol::mprpc::{encode_request, Decoder, Frame, RequestHead};
use mprpc::server::{Server, ServerOptions};
use mprpc::{CallContext, CallOptions, Service};

use super::{echo_request_bytes, CountingAlloc, EchoServer};

/// Set in the child process: it serves instead of measuring.
pub const SERVE_ENV: &str = "MPRPC_ALLOC_BENCH_SERVE";
pub const SERVICE: &str = EchoServer::SERVICE_NAME;
/// Calls kept in flight by the pipelined paths.
pub const DEPTH: u64 = 16;

/// (allocations, bytes) per call over `n` runs of `f`, after a warm-up.
pub fn per_call(n: u64, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..n.min(1000) {
        f();
    }
    let (a0, b0) = CountingAlloc::snapshot();
    for _ in 0..n {
        f();
    }
    let (a1, b1) = CountingAlloc::snapshot();
    ((a1 - a0) as f64 / n as f64, (b1 - b0) as f64 / n as f64)
}

pub fn request_frame(size: usize) -> BytesMut {
    let mut buf = BytesMut::new();
    let head = RequestHead {
        id: 1,
        timeout_ms: 0,
        service: SERVICE,
        method: "Echo",
    };
    encode_request(head, &echo_request_bytes(size), &mut buf);
    buf
}

/// Decode + dispatch into `out`, as the reactor does for one frame.
pub fn server_step(decoder: &Decoder, read_buf: &mut BytesMut, frame: &[u8], out: &mut BytesMut) {
    let service: &dyn Service = &EchoServer;
    read_buf.extend_from_slice(frame);
    let Ok(Some(Frame::Request(req))) = decoder.decode(read_buf) else {
        panic!("request frame expected");
    };
    let ctx = CallContext::new(req.id, None, SocketAddr::from((Ipv4Addr::LOCALHOST, 1)));
    mprpc::server::serve_request(service, req, &ctx, out);
    out.clear();
}

/// The child process: serve echo, answer "count" on stdin with the
/// allocation counters, exit on EOF.
pub fn serve() {
    let mut server = Server::with_options(ServerOptions::default());
    server.add_service(EchoServer);
    let handle = server.start().expect("server starts");
    println!("port {}", handle.local_addr().port());
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        match line.as_deref().map(str::trim) {
            Ok("count") => {
                let (a, b) = CountingAlloc::snapshot();
                println!("{a} {b}");
            }
            _ => break,
        }
    }
    handle.shutdown();
    handle.wait();
}

pub struct ChildServer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub port: u16,
}

impl ChildServer {
    pub fn spawn() -> ChildServer {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .env(SERVE_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the server child");
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("port line");
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("bad port line {line:?}"));
        ChildServer {
            child,
            stdin,
            stdout,
            port,
        }
    }

    pub fn count(&mut self) -> (u64, u64) {
        writeln!(self.stdin, "count").expect("child alive");
        self.stdin.flush().expect("child alive");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("count line");
        let mut it = line
            .split_whitespace()
            .map(|x| x.parse::<u64>().expect("number"));
        (it.next().expect("a"), it.next().expect("b"))
    }

    pub fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

/// Completions of `call_with` calls, shared with their callbacks; made
/// once and reused, so counting them allocates nothing per batch.
#[derive(Default)]
pub struct Completions {
    done: AtomicU64,
    failed: AtomicU64,
}

/// Runs `n` `call_with` calls keeping `DEPTH` in flight. A failed call is
/// counted, and reported here once all are done (a panic in the callback
/// would be swallowed by the channel).
pub fn pipelined(channel: &Channel, request: &Bytes, n: u64, completions: &Arc<Completions>) {
    let options = CallOptions::default();
    completions.done.store(0, Ordering::Release);
    let mut started = 0;
    while started < n {
        while started < n && started - completions.done.load(Ordering::Acquire) < DEPTH {
            let completions = completions.clone();
            channel.call_with(SERVICE, "Echo", request.clone(), &options, move |r| {
                if r.is_err() {
                    completions.failed.fetch_add(1, Ordering::Relaxed);
                }
                completions.done.fetch_add(1, Ordering::Release);
            });
            started += 1;
        }
        std::thread::yield_now();
    }
    while completions.done.load(Ordering::Acquire) < n {
        std::thread::yield_now();
    }
    assert_eq!(
        completions.failed.load(Ordering::Relaxed),
        0,
        "echo calls failed"
    );
}

/// `DEPTH` chains of `call_detached` calls: each callback, on the client's
/// I/O thread, starts the next call there (the driver holds those calls'
/// callbacks itself: no completion cell), until the calls asked of
/// [`chained_detached`] are all started.
pub struct Chains {
    channel: Channel,
    request: Bytes,
    options: CallOptions,
    /// Calls still to start.
    left: AtomicU64,
    completions: Arc<Completions>,
}

impl Chains {
    pub fn new(channel: &Channel, request: &Bytes) -> Arc<Chains> {
        Arc::new(Chains {
            channel: channel.clone(),
            request: request.clone(),
            options: CallOptions::default(),
            left: AtomicU64::new(0),
            completions: Arc::default(),
        })
    }

    /// Starts the next call of a chain, if any is left.
    fn link(self: &Arc<Chains>) {
        let took = self
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| l.checked_sub(1));
        if took.is_err() {
            return;
        }
        let next = self.clone();
        let options = &self.options;
        self.channel
            .call_detached(SERVICE, "Echo", &self.request, options, move |r| {
                if r.is_err() {
                    next.completions.failed.fetch_add(1, Ordering::Relaxed);
                }
                next.completions.done.fetch_add(1, Ordering::Release);
                next.link();
            });
    }
}

/// Runs `n` calls as `DEPTH` chains of `call_detached` calls, each started
/// by the previous one's callback (see [`Chains`]).
pub fn chained_detached(chains: &Arc<Chains>, n: u64) {
    let completions = &chains.completions;
    completions.done.store(0, Ordering::Release);
    chains.left.store(n, Ordering::Release);
    for _ in 0..DEPTH.min(n) {
        chains.link();
    }
    while completions.done.load(Ordering::Acquire) < n {
        std::thread::yield_now();
    }
    assert_eq!(
        completions.failed.load(Ordering::Relaxed),
        0,
        "echo calls failed"
    );
}

/// Wakes a parked thread.
pub struct Unpark(pub Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `call` as a `Future` until it is ready, parking between polls.
pub fn block_on(mut call: PendingCall, cx: &mut Context<'_>) -> Result<Bytes, mprpc::Status> {
    loop {
        match std::pin::Pin::new(&mut call).poll(cx) {
            Poll::Ready(r) => return r,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// Runs `n` `call_async` calls keeping `DEPTH` futures in flight, awaiting
/// the oldest before starting the next.
pub fn pipelined_futures(
    channel: &Channel,
    request: &Bytes,
    n: u64,
    window: &mut VecDeque<PendingCall>,
    cx: &mut Context<'_>,
) {
    let options = CallOptions::default();
    for _ in 0..n {
        if window.len() as u64 >= DEPTH {
            let oldest = window.pop_front().expect("window is full");
            block_on(oldest, cx).expect("echo call");
        }
        window.push_back(channel.call_async(SERVICE, "Echo", request.clone(), &options));
    }
    while let Some(call) = window.pop_front() {
        block_on(call, cx).expect("echo call");
    }
}

/// A waker that unparks the current thread, for [`block_on`].
pub fn unpark_current() -> Waker {
    Waker::from(Arc::new(Unpark(std::thread::current())))
}

/// Runs the child process's part when this process is that child; call
/// first in `main`. Returns whether it served (then `main` returns).
pub fn serve_if_child() -> bool {
    let child = std::env::var_os(SERVE_ENV).is_some();
    if child {
        serve();
    }
    child
}

/// Spawns the child server and a channel to it.
pub fn child_and_channel() -> (ChildServer, Channel) {
    let child = ChildServer::spawn();
    let channel = Channel::direct(("127.0.0.1", child.port)).expect("channel");
    (child, channel)
}
