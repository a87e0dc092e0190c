//! Calls on short connections: one TCP connection per call, for wire
//! formats that cannot multiplex ([`Connections::OnePerCall`]: the seed's).
//!
//! Such endpoints come from the seed's ZooKeeper layout (`/<Service>/<Method>`
//! holding `ip:port`). A call connects, sends its request packed by its
//! format, and reads the reply until the provider closes. It cannot share a
//! connection, so these calls do not go through the driver's event loop: a
//! small pool of threads runs them with blocking sockets whose timeouts
//! enforce the call's deadline. Unlike the seed's client there is no
//! 1024-byte limit on the reply; the channel's max frame size bounds it
//! instead.
//!
//! The driver hands a call over by giving up its pending entry; from then on
//! the pool owns the call's completion and its in-flight slot.
//!
//! [`Connections::OnePerCall`]: crate::protocol::Connections::OnePerCall

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
use crate::protocol::{ReadState, WireFormat};
use crate::Status;

/// Short-connection calls that may run at once (per process).
const THREADS: usize = 8;

/// One call on a short connection, ready to run.
pub(crate) struct ShortCall {
    pub addr: SocketAddr,
    /// The provider's wire format.
    pub format: WireFormat,
    /// The request, packed in the provider's format.
    pub request: BytesMut,
    pub deadline: Option<Instant>,
    pub connect_timeout: Duration,
    pub max_reply: usize,
    pub cell: CellRef,
    pub shared: Arc<Shared>,
}

#[derive(Default)]
struct Pool {
    queue: Mutex<VecDeque<ShortCall>>,
    ready: Condvar,
}

/// Queues a call for the pool (started on first use).
pub(crate) fn start(call: ShortCall) {
    static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let pool = Arc::new(Pool::default());
        for i in 0..THREADS {
            let pool = pool.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("mprpc-short-{i}"))
                .spawn(move || serve(&pool));
            if let Err(e) = spawned {
                tracing::error!("client: cannot start a short-connection worker: {e}");
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
        call.shared.retire(1);
    }
}

/// Runs one call: connect, send, read the reply until the provider closes.
fn run(call: &ShortCall) -> CallResult {
    let protocol = call.format.protocol();
    let addr = call.addr;
    let whose = format!("{}-format provider {addr}", protocol.name());
    let request = &call.request;
    let io_err = |what: &str, e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            Status::deadline_exceeded(format!("{whose}: deadline passed while {what}"))
        }
        _ => Status::unavailable(format!("{whose}: {what} failed: {e}")),
    };
    let connect_budget = remaining(call.deadline)?.min(call.connect_timeout);
    let mut stream =
        TcpStream::connect_timeout(&addr, connect_budget).map_err(|e| io_err("connecting", e))?;
    let _ = stream.set_nodelay(true);
    stream
        .set_write_timeout(Some(remaining(call.deadline)?))
        .and_then(|_| stream.write_all(request))
        .map_err(|e| io_err("sending", e))?;
    let too_big = |e| Status::resource_exhausted(format!("{whose}: reply: {e}"));
    let (mut input, mut state) = (BytesMut::new(), ReadState::default());
    let mut chunk = [0u8; 16 * 1024];
    loop {
        stream
            .set_read_timeout(Some(remaining(call.deadline)?))
            .map_err(|e| io_err("reading", e))?;
        let eof = match stream.read(&mut chunk) {
            Ok(0) => true,
            Ok(n) => {
                input.extend_from_slice(&chunk[..n]);
                false
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("reading the reply", e)),
        };
        let parsed = protocol.parse_reply(&mut input, &mut state, call.max_reply, eof);
        if let Some(reply) = parsed.map_err(too_big)? {
            return reply.result.map_err(|status| {
                Status::new(status.code(), format!("{whose}: {}", status.message()))
            });
        }
        if eof {
            return Err(Status::unavailable(format!("{whose}: closed mid-reply")));
        }
    }
}

/// The call's request in its provider's format, from our encoded frame.
/// Time left before `deadline`, as a socket timeout (which must not be 0).
fn remaining(deadline: Option<Instant>) -> Result<Duration, Status> {
    match deadline {
        None => Ok(Duration::from_secs(3600)),
        Some(d) => match d.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(Status::deadline_exceeded(
                "deadline passed before the short-connection call finished",
            )),
        },
    }
}
