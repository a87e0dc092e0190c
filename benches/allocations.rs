//! Heap allocations per call, counted by a global allocator wrapper:
//!
//! * server path, in process: decode a request frame from the read buffer
//!   and dispatch it through the generated echo dispatcher into the output
//!   buffer (no sockets);
//! * server process, end to end: the same plus the reactor's reads and
//!   writes, counted inside a child process serving the echo service;
//! * client path: one blocking `call`, `call_with` at depth 16 and
//!   `call_async` futures at depth 16 (polled as a `Future`, the thread
//!   parked between polls), counted in the calling process (caller thread +
//!   the client's I/O thread).
//!
//! `cargo bench --bench allocations` prints the table and writes it to
//! `results/allocations.md`; `cargo test --bench allocations` runs a short
//! smoke version and writes nothing.

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
use mprpc::codec::{encode_request, Decoder, Frame, RequestHead, DEFAULT_MAX_FRAME};
use mprpc::server::{Server, ServerOptions};
use mprpc::{CallContext, CallOptions, Service};

mod common;
use common::{echo_request_bytes, CountingAlloc, EchoServer};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const SERVE_ENV: &str = "MPRPC_ALLOC_BENCH_SERVE";
const SERVICE: &str = EchoServer::SERVICE_NAME;
const DEPTH: u64 = 16;

/// (allocations, bytes) per call over `n` runs of `f`, after a warm-up.
fn per_call(n: u64, mut f: impl FnMut()) -> (f64, f64) {
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

fn request_frame(size: usize) -> BytesMut {
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
fn server_step(decoder: &Decoder, read_buf: &mut BytesMut, frame: &[u8], out: &mut BytesMut) {
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
fn serve() {
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

struct ChildServer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl ChildServer {
    fn spawn() -> ChildServer {
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

    fn count(&mut self) -> (u64, u64) {
        writeln!(self.stdin, "count").expect("child alive");
        self.stdin.flush().expect("child alive");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("count line");
        let mut it = line
            .split_whitespace()
            .map(|x| x.parse::<u64>().expect("number"));
        (it.next().expect("a"), it.next().expect("b"))
    }

    fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

/// Runs `n` `call_with` calls keeping `DEPTH` in flight.
fn pipelined(channel: &Channel, request: &Bytes, n: u64) {
    let options = CallOptions::default();
    let done = Arc::new(AtomicU64::new(0));
    let mut started = 0;
    while started < n {
        while started < n && started - done.load(Ordering::Acquire) < DEPTH {
            let done = done.clone();
            channel.call_with(SERVICE, "Echo", request.clone(), &options, move |r| {
                assert!(r.is_ok(), "echo call failed");
                done.fetch_add(1, Ordering::Release);
            });
            started += 1;
        }
        std::thread::yield_now();
    }
    while done.load(Ordering::Acquire) < n {
        std::thread::yield_now();
    }
}

/// Wakes a parked thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `call` as a `Future` until it is ready, parking between polls.
fn block_on(mut call: PendingCall, cx: &mut Context<'_>) -> Result<Bytes, mprpc::Status> {
    loop {
        match std::pin::Pin::new(&mut call).poll(cx) {
            Poll::Ready(r) => return r,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// Runs `n` `call_async` calls keeping `DEPTH` futures in flight, awaiting
/// the oldest before starting the next.
fn pipelined_futures(
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

struct Row {
    path: &'static str,
    size: usize,
    allocs: f64,
    bytes: f64,
}

fn main() {
    if std::env::var_os(SERVE_ENV).is_some() {
        return serve();
    }
    let full = std::env::args().any(|a| a == "--bench");
    let n: u64 = if full { 100_000 } else { 2_000 };
    let mut rows = Vec::new();

    let decoder = Decoder::new(DEFAULT_MAX_FRAME);
    for size in [64usize, 4096] {
        let frame = request_frame(size);
        let mut read_buf = BytesMut::with_capacity(64 * 1024);
        let mut out = BytesMut::with_capacity(64 * 1024);
        let (allocs, bytes) =
            per_call(n, || server_step(&decoder, &mut read_buf, &frame, &mut out));
        rows.push(Row {
            path: "server: decode + dispatch into the output buffer (in process)",
            size,
            allocs,
            bytes,
        });
    }

    let mut child = ChildServer::spawn();
    let channel = Channel::direct(("127.0.0.1", child.port)).expect("channel");
    let options = CallOptions::default();
    for size in [64usize, 4096] {
        let request = Bytes::from(echo_request_bytes(size));
        let blocking = || {
            let reply = channel
                .call(SERVICE, "Echo", request.clone(), &options, None)
                .expect("echo call");
            assert_eq!(reply.len(), request.len());
        };
        let (s0, sb0) = child.count();
        let (allocs, bytes) = per_call(n, blocking);
        let (s1, sb1) = child.count();
        rows.push(Row {
            path: "client: blocking `call` (caller + client I/O thread)",
            size,
            allocs,
            bytes,
        });
        // The child also counted the warm-up calls and the `count` lines.
        let calls = n + n.min(1000);
        rows.push(Row {
            path: "server process, end to end (reactor read + dispatch + write)",
            size,
            allocs: (s1 - s0) as f64 / calls as f64,
            bytes: (sb1 - sb0) as f64 / calls as f64,
        });
        let batch = 1000;
        let (allocs, bytes) = per_call(n / batch, || pipelined(&channel, &request, batch));
        rows.push(Row {
            path: "client: `call_with` at depth 16 (caller + client I/O thread)",
            size,
            allocs: allocs / batch as f64,
            bytes: bytes / batch as f64,
        });
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut window = VecDeque::with_capacity(DEPTH as usize);
        let (allocs, bytes) = per_call(n / batch, || {
            pipelined_futures(&channel, &request, batch, &mut window, &mut cx)
        });
        rows.push(Row {
            path: "client: `call_async` futures at depth 16 (caller + client I/O thread)",
            size,
            allocs: allocs / batch as f64,
            bytes: bytes / batch as f64,
        });
    }
    drop(channel);
    child.stop();

    let mut table = String::from(
        "| path | payload | allocations per call | bytes allocated per call |\n|---|---|---|---|\n",
    );
    for r in &rows {
        table.push_str(&format!(
            "| {} | {} B | {:.3} | {:.1} |\n",
            r.path, r.size, r.allocs, r.bytes
        ));
    }
    println!("\nAllocations per call ({n} calls each)\n\n{table}");
    if full {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/results/allocations.md");
        let text = format!(
            "# Allocations per call\n\nWritten by `cargo bench --bench allocations` (benches/allocations.rs) at commit {} on {} cores, {}; {n} calls per row after a warm-up.\nA global allocator wrapper counts every `alloc`/`realloc` in the process. The server-process row is counted inside a child process serving the echo service; the client rows in the calling process (caller thread + the client's I/O thread). Payload sizes are the echo payload (the request message is 2-3 bytes longer). Replies are zero-copy slices of a connection's read buffer: while replies not yet taken keep part of it alive, the next read needs a fresh buffer, which is what the future rows' fractional allocations at 4 KiB are.\n\n{table}",
            git_state(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model(),
        );
        match std::fs::write(path, text) {
            Ok(()) => println!("written to {path}"),
            Err(e) => eprintln!("cannot write {path}: {e}"),
        }
    }
}

/// The commit measured, as scripts/lib.sh's `git_state` reports it.
fn git_state() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let status = [
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        ":(exclude)results",
        ":(exclude)README.md",
    ];
    match git(&status) {
        Some(s) if !s.is_empty() => format!("`{commit}` (with uncommitted changes)"),
        _ => format!("`{commit}`"),
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
