//! Streams on the driver: opened on a connection of a provider the
//! balancer picks (packed straight into its output, beside the calls),
//! their callers' messages, half-closes, resets and credit packed as they
//! are queued, the server's frames handed to their [`ClientCore`], and
//! their end: the server's end or reset, the caller's reset, the
//! stream's deadline (`DeadlineExceeded`, and the server is told with a
//! reset) or the loss of their connection (`Unavailable`; a stream is
//! never resumed or retried elsewhere: its messages may have been seen).
//!
//! Streams are few next to calls, so their deadlines are found by a scan
//! per loop turn instead of a queue.
//!
//! A message read is queued on its stream's core without a wake-up; the
//! readers waiting for one are woken once each at the end of the loop
//! turn's reads (`wake_readers`), so a turn that reads a hundred messages
//! of a stream costs its reader one wake-up, not a hundred.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::route::Route;
use super::{Driver, FastMap};
use crate::call::status::{Code, Status};
use crate::client::stream::{ClientCore, NewStream, StreamCmd};
use crate::net::tls::TlsMode;
use crate::protocol::mprpc::{
    encode_stream_credit, encode_stream_end, encode_stream_message, encode_stream_open,
    encode_stream_reset, RequestHead, RequestMeta,
};
use crate::protocol::{Connections, StreamEvent};

/// An open stream, by id.
#[derive(Default)]
pub(super) struct Streams {
    open: FastMap<u64, OpenStream>,
    /// Cores whose waiting readers got messages this turn.
    to_wake: Vec<Arc<ClientCore>>,
}

struct OpenStream {
    conn: usize,
    core: Arc<ClientCore>,
    deadline: Option<Instant>,
}

impl Streams {
    pub(super) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// The earliest deadline of an open stream.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.open.values().filter_map(|s| s.deadline).min()
    }

    /// Wakes the readers that got messages since they waited.
    pub(super) fn wake_readers(&mut self) {
        for core in self.to_wake.drain(..) {
            core.wake_reader();
        }
    }
}

impl Driver {
    /// Opens `new` on a connection to a provider the balancer picks; it
    /// ends at once when none is usable or its format has no streams.
    pub(super) fn open_stream(&mut self, new: NewStream) {
        let route = Route {
            endpoints: new.endpoints.clone(),
            hash_key: new.hash_key,
            failures: 0,
            last_error: None,
            avoid: None,
        };
        let Some(index) = self.pick(&route) else {
            return new
                .core
                .end(self.all_down(&new.service, &route.endpoints, None));
        };
        let endpoint = &route.endpoints[index];
        let (addr, protocol) = (endpoint.addr, endpoint.format.protocol());
        if protocol.connections() == Connections::OnePerCall {
            return new.core.end(Status::unimplemented(format!(
                "{}.{}: the provider at {addr} speaks the {} format, which has no streams",
                new.service,
                new.method,
                protocol.name()
            )));
        }
        let opened = if endpoint.tls == TlsMode::Required && self.options.tls.is_none() {
            Err(io::Error::other(
                "the provider requires TLS and this channel has none (set tls_ca)",
            ))
        } else {
            self.connection_to(addr, protocol)
        };
        let key = match opened {
            Ok(key) => key,
            Err(e) => {
                let reason = format!("connect to {addr} failed: {e}");
                self.health.failed(addr, &reason, false, self.now);
                return new.core.end(Status::unavailable(reason));
            }
        };
        let head = RequestHead {
            id: new.core.id,
            timeout_ms: new.timeout_ms,
            service: &new.service,
            method: &new.method,
        };
        let meta = RequestMeta {
            metadata: &new.metadata,
            trace: new.trace,
            reply_metadata: false,
        };
        let conn = &mut self.conns[key];
        let out = conn.output();
        encode_stream_open(head, new.shape, new.window, meta, &new.payload, out);
        if conn.is_open() {
            conn.schedule_flush(key, &mut self.flush);
            self.ping_busy(key);
        }
        let stream = OpenStream {
            conn: key,
            core: new.core,
            deadline: new.deadline,
        };
        self.streams.open.insert(stream.core.id, stream);
    }

    /// Packs what stream `id`'s caller asked for (dropped once the stream
    /// is over).
    pub(super) fn stream_command(&mut self, id: u64, cmd: StreamCmd) {
        let Some(stream) = self.streams.open.get(&id) else {
            return;
        };
        let key = stream.conn;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let out = conn.output();
        match cmd {
            StreamCmd::Message(message) => encode_stream_message(id, &message, out),
            StreamCmd::End => encode_stream_end(id, Code::Ok, "", out),
            StreamCmd::Credit(credit) => encode_stream_credit(id, credit, out),
            StreamCmd::Reset => {
                encode_stream_reset(id, Code::Cancelled, "the caller cancelled the stream", out);
                if let Some(stream) = self.streams.open.remove(&id) {
                    stream
                        .core
                        .end(Status::cancelled("the stream was cancelled by its caller"));
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.is_open() {
                conn.schedule_flush(key, &mut self.flush);
            }
        }
    }

    /// A frame the server sent on stream `id` (`message`: a message's
    /// bytes), dropped when the stream is over here: it may cross the
    /// caller's reset.
    pub(super) fn on_stream_frame(
        &mut self,
        id: u64,
        event: StreamEvent,
        message: Result<Bytes, Status>,
    ) {
        let Some(stream) = self.streams.open.get(&id) else {
            return;
        };
        match event {
            StreamEvent::Message => {
                let Ok(message) = message else { return };
                if stream.core.push(message) {
                    self.streams.to_wake.push(stream.core.clone());
                }
            }
            StreamEvent::Credit(credit) => stream.core.grant(credit),
            StreamEvent::End(status) => {
                if let Some(stream) = self.streams.open.remove(&id) {
                    stream.core.end(status);
                }
            }
        }
    }

    /// Ends the streams whose deadline passed, telling their servers.
    pub(super) fn expire_streams(&mut self) {
        let now = self.now;
        let late: Vec<u64> = self
            .streams
            .open
            .iter()
            .filter(|(_, s)| s.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            let Some(stream) = self.streams.open.remove(&id) else {
                continue;
            };
            let why = "the stream's deadline passed";
            if let Some(conn) = self.conns.get_mut(stream.conn) {
                encode_stream_reset(id, Code::DeadlineExceeded, why, conn.output());
                if conn.is_open() {
                    conn.schedule_flush(stream.conn, &mut self.flush);
                }
            }
            stream.core.end(Status::deadline_exceeded(why));
        }
    }

    /// Connection `key` closed: its streams end `Unavailable`.
    pub(super) fn end_streams_on(&mut self, key: usize, reason: &str) {
        if self.streams.open.is_empty() {
            return;
        }
        let on: Vec<u64> = self
            .streams
            .open
            .iter()
            .filter(|(_, s)| s.conn == key)
            .map(|(id, _)| *id)
            .collect();
        for id in on {
            if let Some(stream) = self.streams.open.remove(&id) {
                stream.core.end(Status::unavailable(reason.to_owned()));
            }
        }
    }
}
