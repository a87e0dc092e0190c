//! A randomized live stream against the real server: 8 reactors, 50
//! connections, each pipelining a mix of inline and pool calls written in
//! random chunk sizes (down to single bytes), read back with random slow
//! reads, with cancel frames and 1 ms deadlines sprinkled in.
//!
//! Checked: exactly one correct reply per call that was not cancelled (at
//! most one for a cancelled call); a pool call answered `DeadlineExceeded`
//! never ran its handler; unsent output stayed bounded; every connection is
//! gone afterwards. The seed is printed (rerun with `MPRPC_STRESS_SEED`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mprpc::protocol::mprpc::{
    encode_cancel, encode_request, Decoder, Frame, RequestHead, Response,
};
use mprpc::server::{Server, ServerOptions};
use mprpc::Code;

mod common;
use common::services::{BlockingTest, TestService, Tracked};

const REACTORS: usize = 8;
const CONNECTIONS: usize = 50;
const CALLS_PER_CONNECTION: u64 = 120;
const HIGH_WATER: usize = 32 * 1024;
const MAX_INFLIGHT: usize = 32;
const MAX_PAYLOAD: usize = 2048;
/// Every tenth connection also asks for big replies and stalls its reads,
/// so unsent output piles up on the server and backpressure must hold it.
const GROW_REPLY: usize = 64 * 1024;
const GROW_CALLS: u64 = 150;

/// xorshift64*: small, seeded, good enough to shuffle a test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One planned call and what a correct reply to it looks like.
struct Call {
    service: &'static str,
    payload: Bytes,
    /// The payload of an `Ok` reply.
    reply: Bytes,
    /// A 1 ms budget on a pool call: `DeadlineExceeded` is a correct reply.
    may_expire: bool,
    cancelled: bool,
}

/// The calls of one connection and the bytes that carry them.
fn plan(rng: &mut Rng, conn: usize) -> (HashMap<u64, Call>, Vec<u8>) {
    let mut calls = HashMap::new();
    let mut stream = BytesMut::new();
    let mut pending_cancels = Vec::new();
    let grows = if conn.is_multiple_of(10) {
        GROW_CALLS
    } else {
        0
    };
    for id in 0..CALLS_PER_CONNECTION + grows {
        let (service, method) = match rng.below(10) {
            _ if id >= CALLS_PER_CONNECTION => ("Test", "Grow"),
            0..=4 => ("Test", "Echo"),
            5..=8 => ("Tracked", "Run"),
            _ => ("BlockingTest", "Slow"),
        };
        let payload: Bytes = if method == "Slow" {
            rng.below(3).to_string().into_bytes().into()
        } else if method == "Grow" {
            GROW_REPLY.to_string().into_bytes().into()
        } else {
            let mut p = format!("c{conn}-{id}-").into_bytes();
            let extra = rng.below(MAX_PAYLOAD as u64) as usize;
            p.extend((0..extra).map(|i| b'a' + (i % 26) as u8));
            p.into()
        };
        let pool = service != "Test";
        let may_expire = pool && rng.chance(15);
        let cancelled = pool && !may_expire && rng.chance(15);
        let head = RequestHead {
            id,
            timeout_ms: if may_expire { 1 } else { 0 },
            service,
            method,
        };
        encode_request(head, &payload, &mut stream);
        if cancelled {
            pending_cancels.push(id);
        }
        // Cancels go out right away or a few requests later.
        while !pending_cancels.is_empty() && rng.chance(60) {
            encode_cancel(pending_cancels.remove(0), &mut stream);
        }
        calls.insert(
            id,
            Call {
                service,
                reply: match method {
                    "Grow" => vec![b'g'; GROW_REPLY].into(),
                    _ => payload.clone(),
                },
                payload,
                may_expire,
                cancelled,
            },
        );
    }
    for id in pending_cancels {
        encode_cancel(id, &mut stream);
    }
    (calls, stream.to_vec())
}

/// Writes `bytes` in random chunks: single bytes, a few bytes, or pages.
fn write_in_chunks(mut stream: TcpStream, bytes: Vec<u8>, mut rng: Rng) {
    let mut at = 0;
    while at < bytes.len() {
        let size = match rng.below(4) {
            0 => 1,
            1 => 1 + rng.below(16) as usize,
            _ => 1 + rng.below(4096) as usize,
        };
        let end = (at + size).min(bytes.len());
        stream.write_all(&bytes[at..end]).expect("write");
        at = end;
        if rng.chance(2) {
            std::thread::sleep(Duration::from_micros(rng.below(1500)));
        }
    }
}

/// Reads replies with random read sizes and pauses until every call that
/// was not cancelled is answered, then half-closes and reads to the end.
fn read_replies(
    stream: &mut TcpStream,
    calls: &HashMap<u64, Call>,
    rng: &mut Rng,
) -> Vec<Response> {
    let must_answer = calls.values().filter(|c| !c.cancelled).count();
    let mut answered = 0;
    let mut replies = Vec::new();
    let mut buf = BytesMut::new();
    let decoder = Decoder::default();
    let mut half_closed = false;
    if calls.len() as u64 > CALLS_PER_CONNECTION {
        std::thread::sleep(Duration::from_millis(300)); // stall: let output pile up
    }
    loop {
        while let Some(frame) = decoder
            .decode(&mut buf)
            .expect("server speaks the protocol")
        {
            let Frame::Response(r) = frame else {
                panic!("unexpected frame {frame:?}");
            };
            if calls.get(&r.id).is_some_and(|c| !c.cancelled) {
                answered += 1;
            }
            replies.push(r);
        }
        if answered >= must_answer && !half_closed {
            stream.shutdown(Shutdown::Write).expect("half-close");
            half_closed = true;
        }
        if rng.chance(5) {
            std::thread::sleep(Duration::from_millis(rng.below(4)));
        }
        let mut chunk = vec![0u8; 1 + rng.below(8192) as usize];
        match stream.read(&mut chunk) {
            Ok(0) => return replies,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("read failed after {answered}/{must_answer} replies: {e}"),
        }
    }
}

/// Every check on one connection's replies; `Err` says what went wrong.
fn check(calls: &HashMap<u64, Call>, replies: &[Response], runs: &[Bytes]) -> Result<(), String> {
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for r in replies {
        let call = calls
            .get(&r.id)
            .ok_or(format!("reply for unknown id {}", r.id))?;
        *seen.entry(r.id).or_default() += 1;
        match r.code {
            Code::Ok if r.payload == call.reply => {}
            Code::DeadlineExceeded if call.may_expire => {
                if call.service == "Tracked" && runs.contains(&call.payload) {
                    return Err(format!("call {} expired yet its handler ran", r.id));
                }
            }
            code => {
                return Err(format!(
                    "call {} to {}: {code:?} '{}' with {} payload bytes (sent {})",
                    r.id,
                    call.service,
                    r.error_str(),
                    r.payload.len(),
                    call.payload.len()
                ))
            }
        }
    }
    for (id, call) in calls {
        let n = seen.get(id).copied().unwrap_or(0);
        let ok = if call.cancelled { n <= 1 } else { n == 1 };
        if !ok {
            return Err(format!(
                "call {id} (cancelled: {}) got {n} replies",
                call.cancelled
            ));
        }
    }
    Ok(())
}

fn seed() -> u64 {
    std::env::var("MPRPC_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            t.map_or(1, |d| d.as_nanos() as u64) | 1
        })
}

fn run_connection(
    addr: SocketAddr,
    conn: usize,
    seed: u64,
    runs: &Mutex<Vec<Bytes>>,
) -> Result<(), String> {
    let mut rng = Rng((seed ^ (conn as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
    let (calls, bytes) = plan(&mut rng, conn);
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let writer = stream.try_clone().unwrap();
    let writer_rng = Rng(rng.next() | 1);
    let writing = std::thread::spawn(move || write_in_chunks(writer, bytes, writer_rng));
    let replies = read_replies(&mut stream, &calls, &mut rng);
    writing.join().map_err(|_| "writer panicked".to_string())?;
    // Every reply is in, so every handler that will run for these calls
    // has run.
    check(&calls, &replies, &runs.lock())
}

#[test]
fn a_randomized_live_stream_gets_exactly_its_replies() {
    mprpc::app::logging::init_for_tests();
    let seed = seed();
    println!("seed {seed} (rerun with MPRPC_STRESS_SEED={seed})");
    let mut server = Server::with_options(
        ServerOptions::default()
            .reactor_threads(REACTORS)
            .worker_threads(2)
            .write_high_water(HIGH_WATER)
            .max_inflight_per_connection(MAX_INFLIGHT),
    );
    let (tracked, runs) = Tracked::new();
    server.add_service(TestService);
    server.add_blocking_service(BlockingTest);
    server.add_blocking_service(tracked);
    let server = server.start().expect("server starts");
    let addr = server.local_addr();
    let began = Instant::now();

    let results: Vec<_> = (0..CONNECTIONS)
        .map(|conn| {
            let runs = Arc::clone(&runs);
            std::thread::spawn(move || run_connection(addr, conn, seed, &runs))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| {
            t.join()
                .unwrap_or_else(|_| Err("connection thread panicked".into()))
        })
        .collect();
    for (conn, result) in results.iter().enumerate() {
        if let Err(e) = result {
            panic!("seed {seed}: connection {conn}: {e}");
        }
    }

    let pressure = server.backpressure();
    println!("{pressure:?}");
    // Reading pauses after the request that crosses the high-water mark;
    // pool replies already under way still land.
    let bound = HIGH_WATER + 2 * GROW_REPLY + MAX_INFLIGHT * (MAX_PAYLOAD + 64);
    assert!(
        pressure.read_pauses > 0,
        "seed {seed}: reading never paused"
    );
    assert!(
        pressure.peak_unsent_bytes <= bound,
        "seed {seed}: unsent output grew to {pressure:?} (bound {bound})"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.connection_count() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        server.connection_count(),
        0,
        "seed {seed}: connections left open"
    );
    server.shutdown();
    server.wait();
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "seed {seed}: took {:?}",
        began.elapsed()
    );
}
