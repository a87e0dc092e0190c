//! The server's threads: each is named and runs inside the span of the
//! server that started it (`server{addr=127.0.0.1:8000}`), so every line a
//! server logs says which server it is. Several servers may share a process
//! (a gateway's own server beside the providers it calls, a test binary).

use std::io;
use std::thread::JoinHandle;

/// Spawns `body` on a thread called `name`, inside the current span (the
/// server's, entered by `Server::start`).
pub(crate) fn spawn(
    name: String,
    body: impl FnOnce() + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    let span = tracing::Span::current();
    std::thread::Builder::new().name(name).spawn(move || {
        let _entered = span.enter();
        body()
    })
}
