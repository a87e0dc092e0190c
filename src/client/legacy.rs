//! Calls to providers that speak only the seed's wire format.
//!
//! Such endpoints come from the seed's ZooKeeper layout (`/<Service>/<Method>`
//! holding `ip:port`). The seed's protocol is one call per TCP connection:
//! connect, send `header_size | RpcHeader | args`, read the bare reply until
//! the provider closes. It cannot be multiplexed, so these calls do not go
//! through the driver's event loop: a small pool of threads runs them with
//! blocking sockets whose timeouts enforce the call's deadline. Unlike the
//! seed's client there is no 1024-byte limit on the reply; the channel's max
//! frame size bounds it instead.
//!
//! The driver hands a call over by giving up its pending entry; from then on
//! the pool owns the call's completion and its in-flight slot.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::{Condvar, Mutex};

use super::call::CallResult;
use super::cells::CellRef;
use super::queue::Shared;
use crate::call::status::Status;
use crate::codec::{request_parts, seed};

/// Seed-format calls that may run at once (per process).
const THREADS: usize = 8;

/// One seed-format call, ready to run.
pub(crate) struct LegacyCall {
    pub addr: SocketAddr,
    /// Our encoded request frame (service, method and payload are read from it).
    pub frame: Vec<u8>,
    pub deadline: Option<Instant>,
    pub connect_timeout: Duration,
    pub max_reply: usize,
    pub cell: CellRef,
    pub shared: Arc<Shared>,
}

#[derive(Default)]
struct Pool {
    queue: Mutex<VecDeque<LegacyCall>>,
    ready: Condvar,
}

/// Queues a call for the legacy pool (started on first use).
pub(crate) fn start(call: LegacyCall) {
    static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let pool = Arc::new(Pool::default());
        for i in 0..THREADS {
            let pool = pool.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("mprpc-legacy-{i}"))
                .spawn(move || serve(&pool));
            if let Err(e) = spawned {
                tracing::error!("client: cannot start a seed-format worker: {e}");
            }
        }
        pool
    });
    pool.queue.lock().push_back(call);
    pool.ready.notify_one();
}

fn serve(pool: &Pool) {
    loop {
        let call = {
            let mut queue = pool.queue.lock();
            loop {
                if let Some(call) = queue.pop_front() {
                    break call;
                }
                pool.ready.wait(&mut queue);
            }
        };
        if call.shared.cells.is_done(call.cell) {
            call.shared.cells.driver_done(call.cell);
        } else {
            let result = run(&call);
            call.shared.cells.finish(call.cell, result);
        }
        call.shared.retire();
    }
}

/// Runs one call in the seed's format.
fn run(call: &LegacyCall) -> CallResult {
    let Some((service, method, payload)) = request_parts(&call.frame) else {
        return Err(Status::internal(
            "seed-format call: not a request frame of ours",
        ));
    };
    let mut out = BytesMut::new();
    seed::encode_request(service, method, payload, &mut out);
    let addr = call.addr;
    let io_err = |what: &str, e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Status::deadline_exceeded(
            format!("seed-format provider {addr}: deadline passed while {what}"),
        ),
        _ => Status::unavailable(format!("seed-format provider {addr}: {what} failed: {e}")),
    };
    let connect_budget = remaining(call.deadline)?.min(call.connect_timeout);
    let mut stream =
        TcpStream::connect_timeout(&addr, connect_budget).map_err(|e| io_err("connecting", e))?;
    let _ = stream.set_nodelay(true);
    stream
        .set_write_timeout(Some(remaining(call.deadline)?))
        .and_then(|_| stream.write_all(&out))
        .map_err(|e| io_err("sending", e))?;
    let too_big =
        |e| Status::resource_exhausted(format!("seed-format provider {addr}: reply: {e}"));
    let mut reply = BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        stream
            .set_read_timeout(Some(remaining(call.deadline)?))
            .map_err(|e| io_err("reading", e))?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                reply.extend_from_slice(&chunk[..n]);
                seed::decode_reply(&reply, call.max_reply).map_err(too_big)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("reading the reply", e)),
        }
    }
    // The seed closes without a reply when it cannot serve the call.
    seed::decode_reply_eof(&mut reply, call.max_reply)
        .map_err(too_big)?
        .ok_or_else(|| {
            Status::unavailable(format!(
                "seed-format provider {addr} closed without a reply \
                 (unknown service/method or a failed handler)"
            ))
        })
}

/// Time left before `deadline`, as a socket timeout (which must not be 0).
fn remaining(deadline: Option<Instant>) -> Result<Duration, Status> {
    match deadline {
        None => Ok(Duration::from_secs(3600)),
        Some(d) => match d.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(Status::deadline_exceeded(
                "deadline passed before the seed-format call finished",
            )),
        },
    }
}
