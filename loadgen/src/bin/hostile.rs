//! `hostile`: both halves of `scripts/hostile.sh`.
//!
//! * `hostile serve -i FILE`: a provider (a release build of the library,
//!   configured by FILE) publishing the three kinds of handler a hostile
//!   peer can pin: `Echo.Echo` inline on the reactors, `Pool.Sleep` on the
//!   worker pool (sleeps the milliseconds its payload names, then echoes),
//!   and `Park.Wait`, answering later and never (its future waits until the
//!   server drops it).
//! * `hostile attack NAME --addr HOST:PORT`: runs one attack for
//!   `--seconds` while a well-behaved client calls beside it (and for
//!   `--after` seconds more), then prints one line `RESULT {json}`: the
//!   good client's calls, errors, first error and latency percentiles.
//!
//! The attacks are those of issue 22, each a way a peer once made the
//! provider hold work, memory or CPU for nobody; the script measures the
//! provider's RSS and CPU around each.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use clap::{Parser, Subcommand, ValueEnum};
use mprpc::client::Channel;
use mprpc::prelude::*;
use mprpc::protocol::mprpc::{encode_request, RequestHead};
use mprpc::service::ReplyFuture;
use serde_json::json;

/// Attacks a provider the ways issue 22 found, beside a well-behaved client.
#[derive(Debug, Parser)]
#[command(name = "hostile", version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the target provider (Echo inline, Pool blocking, Park async).
    Serve {
        #[command(flatten)]
        app: mprpc::AppArgs,
    },
    /// Run one attack beside a good client; prints `RESULT {json}`.
    Attack {
        /// Which attack.
        #[arg(value_enum)]
        attack: Attack,
        /// The provider's address.
        #[arg(long, value_name = "HOST:PORT")]
        addr: String,
        /// How long the attack lasts.
        #[arg(long, default_value_t = 8)]
        seconds: u64,
        /// How long the good client goes on calling after it.
        #[arg(long, default_value_t = 3)]
        after: u64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Attack {
    /// 50 connections pipeline 1,000 10 ms pool calls each, then reset.
    PoolReset,
    /// Two seed-format requests with a 1 MiB header, their args trickled a
    /// byte every 2 ms.
    SeedTrickle,
    /// 20 connections fill their in-flight limit with async calls, then
    /// reset while reading is paused.
    PausedReset,
    /// 20 connections send 1,000 async calls each, all with id 7, then reset.
    DuplicateIds,
    /// 200 headers announcing 16 MiB, then 40 frames of 16 MiB less a byte.
    BigFrames,
    /// 50 connections pipeline 64 KiB echoes and never read a reply.
    NeverRead,
    /// 4 threads open connections that send 512 garbage bytes, over and over.
    Garbage,
}

fn main() {
    let args = Args::parse();
    match args.command {
        Command::Serve { app } => serve(&app),
        Command::Attack {
            attack,
            addr,
            seconds,
            after,
        } => {
            let addr = match addr.to_socket_addrs().map(|mut a| a.next()) {
                Ok(Some(addr)) => addr,
                _ => {
                    eprintln!("hostile: --addr {addr}: not an address");
                    std::process::exit(2);
                }
            };
            let attack_for = Duration::from_secs(seconds);
            let result = run_attack(attack, addr, attack_for, Duration::from_secs(after));
            println!("RESULT {result}");
        }
    }
}

// --- the provider ----------------------------------------------------------

fn serve(app: &mprpc::AppArgs) {
    let app = Application::init_with(app);
    let mut provider = RpcProvider::new(&app.config);
    provider.notify_service(Echo);
    provider.notify_blocking_service(Pool);
    provider.notify_service(Park);
    let handle = match provider.start() {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("hostile serve: {e}");
            std::process::exit(1);
        }
    };
    handle.announce();
    if let Err(e) = handle.stop_on_signals() {
        eprintln!("hostile serve: cannot install signal handlers: {e}");
    }
    handle.wait();
}

/// `Echo.Echo`: the payload back, on the reactor.
struct Echo;

impl Service for Echo {
    fn name(&self) -> &'static str {
        "Echo"
    }
    fn methods(&self) -> &'static [&'static str] {
        &["Echo"]
    }
    fn call(&self, _: &str, _: &CallContext, req: Bytes, out: &mut BytesMut) -> Result<(), Status> {
        out.extend_from_slice(&req);
        Ok(())
    }
}

/// `Pool.Sleep`: sleeps the milliseconds its payload names, on the pool.
struct Pool;

impl Service for Pool {
    fn name(&self) -> &'static str {
        "Pool"
    }
    fn methods(&self) -> &'static [&'static str] {
        &["Sleep"]
    }
    fn call(&self, _: &str, _: &CallContext, req: Bytes, out: &mut BytesMut) -> Result<(), Status> {
        let ms: u64 = std::str::from_utf8(&req)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Status::bad_request("Pool.Sleep takes a number of milliseconds"))?;
        std::thread::sleep(Duration::from_millis(ms.min(1000)));
        out.extend_from_slice(&req);
        Ok(())
    }
}

/// `Park.Wait`: answers later, never.
struct Park;

impl Service for Park {
    fn name(&self) -> &'static str {
        "Park"
    }
    fn methods(&self) -> &'static [&'static str] {
        &["Wait"]
    }
    fn call(&self, _: &str, _: &CallContext, _: Bytes, _: &mut BytesMut) -> Result<(), Status> {
        Err(Status::internal("Park.Wait only answers later"))
    }
    fn answers_later(&self) -> bool {
        true
    }
    fn call_later(&self, _: &str, _: CallContext, _: Bytes) -> Result<ReplyFuture, Status> {
        Ok(Box::pin(std::future::pending()))
    }
}

// --- attacks -----------------------------------------------------------------

/// Runs `attack` for `attack_for` while the good client calls, and for
/// `after` more; the report as JSON.
fn run_attack(
    attack: Attack,
    addr: SocketAddr,
    attack_for: Duration,
    after: Duration,
) -> serde_json::Value {
    let (service, method, payload) = match attack {
        Attack::PoolReset => ("Pool", "Sleep", Bytes::from_static(b"0")),
        _ => ("Echo", "Echo", Bytes::from_static(b"good client")),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let good = {
        let stop = stop.clone();
        std::thread::spawn(move || good_client(addr, service, method, payload, &stop))
    };
    let began = Instant::now();
    let attackers = match attack {
        Attack::PoolReset => pool_reset(addr),
        Attack::SeedTrickle => seed_trickle(addr, attack_for),
        Attack::PausedReset => async_then_reset(addr, 20, 1024, false),
        Attack::DuplicateIds => async_then_reset(addr, 20, 1000, true),
        Attack::BigFrames => big_frames(addr, attack_for),
        Attack::NeverRead => never_read(addr, attack_for),
        Attack::Garbage => garbage(addr, attack_for),
    };
    eprintln!("hostile: {attack:?} under way");
    for attacker in attackers {
        let _ = attacker.join();
    }
    std::thread::sleep(attack_for.saturating_sub(began.elapsed()));
    let attack_s = began.elapsed().as_secs_f64();
    std::thread::sleep(after);
    stop.store(true, Ordering::Relaxed);
    let mut report = good
        .join()
        .unwrap_or_else(|_| json!({"error": "good client panicked"}));
    report["attack"] = json!(format!("{attack:?}"));
    report["attack_s"] = json!(attack_s);
    report
}

/// Calls in a loop until `stop` (2 s timeout each); its calls, errors and
/// latency percentiles.
fn good_client(
    addr: SocketAddr,
    service: &str,
    method: &str,
    payload: Bytes,
    stop: &AtomicBool,
) -> serde_json::Value {
    let channel = match Channel::direct(addr) {
        Ok(channel) => channel,
        Err(e) => return json!({"ok": 0, "errors": 1, "first_error": e.to_string()}),
    };
    let options = CallOptions::with_timeout(Duration::from_secs(2));
    let (mut latencies_us, mut errors, mut first_error) = (Vec::new(), 0u64, None);
    while !stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        match channel.call(service, method, payload.clone(), &options, None) {
            Ok(reply) if reply == payload => latencies_us.push(began.elapsed().as_micros() as u64),
            Ok(_) => {
                errors += 1;
                first_error.get_or_insert_with(|| "a reply with another call's payload".into());
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    latencies_us.sort_unstable();
    let pct = |p: f64| {
        let last = latencies_us.len().saturating_sub(1);
        latencies_us
            .get((last as f64 * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    json!({
        "ok": latencies_us.len(),
        "errors": errors,
        "first_error": first_error,
        "p50_us": pct(0.50),
        "p99_us": pct(0.99),
        "max_us": latencies_us.last().copied().unwrap_or(0),
    })
}

/// Request frames for `service.method`, one per id, back to back.
fn requests(
    service: &str,
    method: &str,
    ids: impl Iterator<Item = u64>,
    payload: &[u8],
) -> BytesMut {
    let mut out = BytesMut::new();
    for id in ids {
        let head = RequestHead {
            id,
            timeout_ms: 0,
            service,
            method,
        };
        encode_request(head, payload, &mut out);
    }
    out
}

/// Closes `stream` with a reset (RST) rather than a FIN.
fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads a linger struct we own, on a socket we own.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

fn connect(addr: SocketAddr) -> Option<TcpStream> {
    let stream = TcpStream::connect(addr).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    Some(stream)
}

fn pool_reset(addr: SocketAddr) -> Vec<JoinHandle<()>> {
    let batch = requests("Pool", "Sleep", 1..=1000, b"10");
    let conns: Vec<TcpStream> = (0..50)
        .filter_map(|_| {
            let mut s = connect(addr)?;
            s.write_all(&batch).ok()?;
            Some(s)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    conns.into_iter().for_each(reset);
    Vec::new()
}

fn seed_trickle(addr: SocketAddr, attack_for: Duration) -> Vec<JoinHandle<()>> {
    let mut frame = BytesMut::new();
    let name = "S".repeat(1 << 20);
    mprpc::protocol::seed::encode_request(&name, "Echo", &vec![0u8; 8 << 20], &mut frame);
    let head = 4 + (frame.len() - (8 << 20) - 4);
    let frame = Arc::new(frame);
    (0..2)
        .map(|_| {
            let frame = frame.clone();
            std::thread::spawn(move || {
                let Some(mut s) = connect(addr) else { return };
                let _ = s.set_nodelay(true);
                let began = Instant::now();
                if s.write_all(&frame[..head]).is_err() {
                    return;
                }
                for byte in &frame[head..] {
                    if began.elapsed() >= attack_for || s.write_all(&[*byte]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect()
}

fn async_then_reset(
    addr: SocketAddr,
    conns: usize,
    calls: u64,
    same_id: bool,
) -> Vec<JoinHandle<()>> {
    let ids: Box<dyn Iterator<Item = u64>> = match same_id {
        true => Box::new(std::iter::repeat_n(7, calls as usize)),
        false => Box::new(1..=calls),
    };
    let batch = requests("Park", "Wait", ids, b"");
    let held: Vec<TcpStream> = (0..conns)
        .filter_map(|_| {
            let mut s = connect(addr)?;
            let _ = s.write_all(&batch);
            Some(s)
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    held.into_iter().for_each(reset);
    Vec::new()
}

fn big_frames(addr: SocketAddr, attack_for: Duration) -> Vec<JoinHandle<()>> {
    const ANNOUNCED: usize = 16 * 1024 * 1024 - 1;
    let mut header = requests("Echo", "Echo", std::iter::once(1), b"");
    header[4..8].copy_from_slice(&(ANNOUNCED as u32).to_be_bytes());
    let headers: Vec<TcpStream> = (0..200)
        .filter_map(|_| {
            let mut s = connect(addr)?;
            s.write_all(&header).ok()?;
            Some(s)
        })
        .collect();
    std::thread::sleep(attack_for / 4);
    drop(headers);
    let body: Arc<[u8]> = vec![b'x'; ANNOUNCED - header.len() + 8].into();
    let header = Arc::new(header);
    (0..40)
        .map(|_| {
            let (header, body) = (header.clone(), body.clone());
            std::thread::spawn(move || {
                let Some(mut s) = connect(addr) else { return };
                if s.write_all(&header).is_ok() && s.write_all(&body[..body.len() - 1]).is_ok() {
                    std::thread::sleep(attack_for / 2);
                }
            })
        })
        .collect()
}

fn never_read(addr: SocketAddr, attack_for: Duration) -> Vec<JoinHandle<()>> {
    let batch = Arc::new(requests("Echo", "Echo", 1..=64, &[7u8; 64 * 1024]));
    (0..50)
        .map(|_| {
            let batch = batch.clone();
            std::thread::spawn(move || {
                let Some(mut s) = connect(addr) else { return };
                let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
                let began = Instant::now();
                while began.elapsed() < attack_for {
                    if let Err(e) = s.write_all(&batch) {
                        if e.kind() != std::io::ErrorKind::WouldBlock
                            && e.kind() != std::io::ErrorKind::TimedOut
                        {
                            return; // closed by the server
                        }
                    }
                }
            })
        })
        .collect()
}

fn garbage(addr: SocketAddr, attack_for: Duration) -> Vec<JoinHandle<()>> {
    (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut seed = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let began = Instant::now();
                while began.elapsed() < attack_for {
                    let bytes: Vec<u8> = (0..512)
                        .map(|_| {
                            seed ^= seed << 13;
                            seed ^= seed >> 7;
                            seed ^= seed << 17;
                            seed as u8
                        })
                        .collect();
                    if let Some(mut s) = connect(addr) {
                        let _ = s.write_all(&bytes);
                    }
                }
            })
        })
        .collect()
}
