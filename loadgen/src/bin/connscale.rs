//! `connscale`: the client half of `scripts/scale.sh`. Holds N concurrent
//! connections to one echo provider and proves that every one is served.
//!
//! Two parts, each stopping at phase boundaries so the script can sample the
//! provider's memory while the connections are held:
//!
//! 1. Raw sockets (our own framing, through `mprpc::protocol::mprpc`): open N idle
//!    connections and say nothing (phase `idle`: the server's per-connection
//!    cost before any buffer exists), then send one Echo call on every one of
//!    them and check each reply on the connection it was sent on
//!    (`raw_used`), then close them all (`raw_closed`). The framework's
//!    client cannot open a connection without a call on it, hence the raw
//!    sockets for the idle measurement.
//! 2. The framework's own client: one `Channel` with
//!    `connections_per_endpoint = N`. Its pool opens a new connection per
//!    call until it holds N, so the first N calls open N connections, one
//!    call each (`channel_open`); later calls go round robin over the pool,
//!    so `--rounds` more rounds of N calls, sent at `--rate`, put `--rounds`
//!    more calls on every connection (`channel_rounds`).
//!
//! After each phase it prints one line `PHASE {json}` and waits for a line
//! on stdin (EOF also continues), so the script decides when to go on. Every
//! reply is checked: the right id, status Ok, and the request's own payload
//! back (payloads are unique per call, so a reply delivered to the wrong
//! call is caught).

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use clap::Parser;
use mprpc::client::{Channel, ChannelOptions};
use mprpc::protocol::mprpc::{encode_request, Decoder, Frame, RequestHead, DEFAULT_MAX_FRAME};
use mprpc::{CallOptions, Code, Discover, StaticDiscover};
use mprpc_examples::bench::EchoRequest;
use serde_json::json;

/// Holds N connections to one mprpc echo provider and serves calls on all.
#[derive(Debug, Parser)]
#[command(name = "connscale", version)]
struct Args {
    /// The provider's address.
    #[arg(long, value_name = "HOST:PORT")]
    addr: String,
    /// Connections to hold at once.
    #[arg(long, short = 'c', default_value_t = 10_000)]
    connections: usize,
    /// Rounds of N calls over the channel's connections after the first.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Rate of the extra rounds, calls per second.
    #[arg(long, default_value_t = 5_000.0)]
    rate: f64,
    /// Calls outstanding at once while the channel opens its connections
    /// (each of them opens one): bounds the burst of connects.
    #[arg(long, default_value_t = 1_000)]
    open_batch: usize,
    /// Echo payload bytes per call.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Per-call timeout, and the connect timeout, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_s: u64,
    /// Skip the raw-socket part (idle / raw_used / raw_closed).
    #[arg(long)]
    no_raw: bool,
}

const SERVICE: &str = "EchoService";
const METHOD: &str = "Echo";

/// The encoded request for call `index` of `round`: unique per call. An
/// `EchoResponse` has the same layout, so an echo's reply bytes equal the
/// request bytes.
fn request(index: usize, round: usize, size: usize) -> Bytes {
    let mut payload = format!("conn{index:06}-round{round:03}-").into_bytes();
    payload.resize(size.max(payload.len()), b'x');
    prost::Message::encode_to_vec(&EchoRequest {
        payload: payload.into(),
    })
    .into()
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("connscale: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let addr = args
        .addr
        .to_socket_addrs()
        .map_err(|e| format!("--addr {}: {e}", args.addr))?
        .next()
        .ok_or_else(|| format!("--addr {}: no address", args.addr))?;
    if args.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    let timeout = Duration::from_secs(args.timeout_s);
    if !args.no_raw {
        raw_part(args, addr, timeout)?;
    }
    channel_part(args, addr, timeout)
}

/// Prints a phase report and waits for the script's go-ahead.
fn phase(name: &str, mut fields: serde_json::Value) {
    fields["phase"] = json!(name);
    fields["client_rss_kib"] = json!(rss_kib());
    println!("PHASE {fields}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

/// This process's resident set size (VmRSS), in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Keeps the first few failure reasons for the report.
#[derive(Default)]
struct Failures {
    count: AtomicU64,
    first: Mutex<Vec<String>>,
}

impl Failures {
    fn add(&self, why: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        if first.len() < 5 {
            first.push(why);
        }
    }

    fn report(&self) -> serde_json::Value {
        let first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        json!({ "failed": self.count.load(Ordering::Relaxed), "first_failures": *first })
    }
}

// ------------------------------------------------------------ raw sockets

fn raw_part(args: &Args, addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let n = args.connections;
    let started = Instant::now();
    let mut streams = Vec::with_capacity(n);
    let mut connect_us = Vec::with_capacity(n);
    for i in 0..n {
        let at = Instant::now();
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| format!("raw connection {i} of {n} to {addr}: {e}"))?;
        connect_us.push(at.elapsed().as_micros() as u64);
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| format!("raw connection {i}: {e}"))?;
        streams.push(stream);
    }
    let open_s = started.elapsed().as_secs_f64();
    connect_us.sort_unstable();
    let at = |q: f64| connect_us[((n as f64 - 1.0) * q) as usize];
    phase(
        "idle",
        json!({
            "connections": n,
            "open_s": open_s,
            "connect_us": { "p50": at(0.5), "p99": at(0.99), "max": at(1.0) },
            // A connect that waited for a SYN retransmission (1 s, then 3 s).
            "connects_over_500ms": connect_us.iter().filter(|&&us| us > 500_000).count(),
        }),
    );

    let started = Instant::now();
    let failures = Failures::default();
    let mut frame = BytesMut::new();
    let mut written = vec![false; n];
    for (i, stream) in streams.iter_mut().enumerate() {
        frame.clear();
        let head = RequestHead {
            id: i as u64 + 1,
            timeout_ms: timeout.as_millis() as u32,
            service: SERVICE,
            method: METHOD,
        };
        encode_request(head, &request(i, 0, args.payload), &mut frame);
        match stream.write_all(&frame) {
            Ok(()) => written[i] = true,
            Err(e) => failures.add(format!("raw connection {i}: write: {e}")),
        }
    }
    let decoder = Decoder::new(DEFAULT_MAX_FRAME);
    let mut ok = 0u64;
    for (i, stream) in streams.iter_mut().enumerate() {
        if written[i] {
            match read_reply(stream, &decoder, i as u64 + 1, &request(i, 0, args.payload)) {
                Ok(()) => ok += 1,
                Err(why) => failures.add(format!("raw connection {i}: {why}")),
            }
        }
    }
    let mut fields = failures.report();
    fields["ok"] = json!(ok);
    fields["calls_s"] = json!(started.elapsed().as_secs_f64());
    fields["connections"] = json!(n);
    phase("raw_used", fields);

    drop(streams);
    phase("raw_closed", json!({}));
    Ok(())
}

/// Reads one response frame off `stream` and checks it answers call `id`
/// with `expect` as its payload.
fn read_reply(
    stream: &mut TcpStream,
    decoder: &Decoder,
    id: u64,
    expect: &[u8],
) -> Result<(), String> {
    let mut buf = BytesMut::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(Frame::Response(r))) => {
                return if r.id != id {
                    Err(format!("reply for id {} instead of {id}", r.id))
                } else if r.code != Code::Ok {
                    Err(format!("status {:?}: {}", r.code, r.error_str()))
                } else if r.payload != expect {
                    Err("reply payload differs from the request".into())
                } else {
                    Ok(())
                };
            }
            Ok(Some(other)) => return Err(format!("unexpected frame {other:?}")),
            Ok(None) => {}
            Err(e) => return Err(format!("protocol error: {e}")),
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err("closed by the server before the reply".into()),
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

// ------------------------------------------------------ the real client

/// Counts finished calls of the channel part.
#[derive(Default)]
struct Tally {
    done: AtomicU64,
    ok: AtomicU64,
    failures: Failures,
}

impl Tally {
    /// Starts call `index` of `round`; its callback checks and counts it.
    fn call(self: &Arc<Self>, channel: &Channel, options: &CallOptions, request: Bytes) {
        let tally = self.clone();
        let expect = request.clone();
        channel.call_with(SERVICE, METHOD, request, options, move |result| {
            match result {
                Ok(reply) if reply == expect => {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => tally
                    .failures
                    .add("reply payload differs from the request".into()),
                Err(status) => tally.failures.add(status.to_string()),
            }
            tally.done.fetch_add(1, Ordering::Release);
        });
    }

    /// Waits until `count` calls have finished (they all have a deadline).
    fn wait_for(&self, count: u64) {
        while self.done.load(Ordering::Acquire) < count {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn report(&self, calls: u64, seconds: f64) -> serde_json::Value {
        let mut fields = self.failures.report();
        fields["calls"] = json!(calls);
        fields["ok"] = json!(self.ok.load(Ordering::Relaxed));
        fields["seconds"] = json!(seconds);
        fields
    }
}

fn channel_part(args: &Args, addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let n = args.connections;
    let discover: Arc<dyn Discover> =
        Arc::new(StaticDiscover::new(vec![mprpc::Endpoint::new(addr)]));
    let options = ChannelOptions::default()
        .call_timeout(timeout)
        .connect_timeout(timeout)
        .connections_per_endpoint(n)
        .max_inflight(n.max(args.open_batch) * 2);
    let channel = Channel::new(discover, options).expect("client I/O thread starts");
    let call_options = CallOptions::with_timeout(timeout);

    // Round 0: one call per new connection, at most `open_batch` at a time.
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let batch = args.open_batch.max(1);
    for i in 0..n {
        if i >= batch {
            tally.wait_for((i - batch + 1) as u64);
        }
        tally.call(&channel, &call_options, request(i, 0, args.payload));
    }
    tally.wait_for(n as u64);
    let mut fields = tally.report(n as u64, started.elapsed().as_secs_f64());
    fields["connections"] = json!(n);
    phase("channel_open", fields);

    // Further rounds: round robin over the pool, paced at `rate`.
    let tally = Arc::new(Tally::default());
    let total = n * args.rounds;
    let started = Instant::now();
    let per_call = Duration::from_secs_f64(1.0 / args.rate.max(1.0));
    for k in 0..total {
        let due = started + per_call * k as u32;
        let now = Instant::now();
        if due > now + Duration::from_millis(1) {
            std::thread::sleep(due - now);
        }
        tally.call(
            &channel,
            &call_options,
            request(k % n, 1 + k / n, args.payload),
        );
    }
    tally.wait_for(total as u64);
    let mut fields = tally.report(total as u64, started.elapsed().as_secs_f64());
    fields["rounds"] = json!(args.rounds);
    fields["rate"] = json!(args.rate);
    fields["connections"] = json!(n);
    phase("channel_rounds", fields);
    drop(channel);
    Ok(())
}
