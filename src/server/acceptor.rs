//! The acceptor thread: takes new connections off the listening socket and
//! deals them to the reactors round robin.
//!
//! It owns its own mio `Poll` with up to three tokens: the listener, the
//! admin listener (`admin_port`, if set), and a `Waker` through which
//! `shutdown()` tells it to close the ports. Over the
//! connection limit a new connection is accepted and closed at once (the
//! peer sees a clean close, the backlog does not fill up).

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use super::mailbox::ReactorShared;
use super::warn_limit::{Verdict, WarnLimit};
use super::ServerShared;
use crate::sys::TcpLiveness;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const ADMIN: Token = Token(2);
/// How soon to try accepting again after running out of file descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

pub(crate) fn spawn(
    mut listener: TcpListener,
    mut admin: Option<TcpListener>,
    reactors: Vec<Arc<ReactorShared>>,
    max_connections: usize,
    liveness: TcpLiveness,
    shared: Arc<ServerShared>,
) -> io::Result<(Arc<Waker>, JoinHandle<()>)> {
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    if let Some(admin) = &mut admin {
        poll.registry().register(admin, ADMIN, Interest::READABLE)?;
    }
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let guard = shared.thread_guard();
    let thread = super::thread::spawn("mprpc-acceptor".into(), move || {
        let _guard = guard;
        let mut acceptor = Acceptor {
            poll,
            listener,
            admin,
            reactors,
            next: 0,
            max_connections,
            liveness,
            shared,
            warnings: WarnLimit::default(),
        };
        if let Err(e) = acceptor.run() {
            tracing::error!(error = %e, "acceptor stopped on an error");
        }
    })?;
    Ok((waker, thread))
}

struct Acceptor {
    poll: Poll,
    listener: TcpListener,
    admin: Option<TcpListener>,
    reactors: Vec<Arc<ReactorShared>>,
    next: usize,
    max_connections: usize,
    /// Keepalive and user timeout set on each accepted connection.
    liveness: TcpLiveness,
    shared: Arc<ServerShared>,
    /// Refusals and accept failures a flood repeats: logged in bursts.
    warnings: WarnLimit,
}

impl Acceptor {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        // Set while accept(2) fails for lack of resources (EMFILE, ENFILE,
        // ENOBUFS): connections already queued raise no new event, so we
        // retry on a timer until accepting works again.
        let mut retrying = false;
        loop {
            let timeout = retrying.then_some(ACCEPT_RETRY);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if self.shared.is_shutting_down() {
                // Dropping the listener closes the port: no new connections.
                return Ok(());
            }
            let ready = |token| events.iter().any(|e| e.token() == token);
            let (rpc, admin) = (ready(LISTENER), ready(ADMIN));
            if rpc || admin || retrying {
                retrying = !(self.accept_all(false) & self.accept_all(true));
            }
        }
    }

    /// Accepts from the RPC or the admin listener until its queue is empty
    /// (true) or accept fails for lack of resources (false: retry later
    /// rather than spin).
    fn accept_all(&mut self, admin: bool) -> bool {
        loop {
            let accepted = match (admin, &self.admin) {
                (false, _) => self.listener.accept(),
                (true, Some(listener)) => listener.accept(),
                (true, None) => return true,
            };
            match accepted {
                Ok((stream, peer)) => self.hand_off(stream, peer, admin),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if let Verdict::Log { suppressed } =
                        self.warnings.check("accept", Instant::now())
                    {
                        tracing::warn!(error = %e, retry_in = ?ACCEPT_RETRY, suppressed, "accept failed");
                    }
                    return false;
                }
            }
        }
    }

    fn hand_off(&mut self, stream: mio::net::TcpStream, peer: std::net::SocketAddr, admin: bool) {
        let open = self.shared.connections().fetch_add(1, Ordering::AcqRel);
        if open >= self.max_connections {
            self.shared.connections().fetch_sub(1, Ordering::AcqRel);
            if let Verdict::Log { suppressed } = self.warnings.check("limit", Instant::now()) {
                tracing::warn!(%peer, limit = self.max_connections, suppressed, "connection limit reached; closing new connection");
            }
            return; // dropping `stream` closes it
        }
        let _ = stream.set_nodelay(true);
        if let Err(e) = self.liveness.apply(&stream) {
            if let Verdict::Log { suppressed } = self.warnings.check("liveness", Instant::now()) {
                tracing::warn!(%peer, error = %e, suppressed, "could not set TCP keepalive options");
            }
        }
        let reactor = &self.reactors[self.next % self.reactors.len()];
        self.next = self.next.wrapping_add(1);
        reactor.add_connection(stream, peer, admin);
    }
}
