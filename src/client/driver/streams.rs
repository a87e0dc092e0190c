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
//! A stream whose caller asked for reply metadata is opened in version 4;
//! the server's headers are stored where the caller asked before the
//! message behind them is queued, its trailers added before its end.
//!
//! A message read is queued on its stream's entry here, by the driver
//! alone; at the end of the loop turn's reads (`wake_readers`) each
//! stream's messages move to its core at once, under one lock, and the
//! readers waiting for one are woken once each, so a turn that reads a
//! hundred messages of a stream costs one lock and its reader one
//! wake-up, not a hundred. A stream that ends first gets its messages
//! moved before its end.
//!
//! A stream consumed by a handler (`client::stream::handler`) is listed
//! instead, once per turn that brought it messages, credit its handler
//! waits for, or its end; after the turn's reads, with the driver free,
//! each listed stream's handler is called ([`deliver`]), and what it
//! sends is packed straight into its connection's output.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::route::Route;
use super::{Driver, FastMap};
use crate::call::controller::ReplyMetadata;
use crate::call::metadata::Metadata;
use crate::call::status::{Code, Status};
use crate::client::conn::ProviderConn;
use crate::client::stream::{ClientCore, NewStream, StreamCmd};
use crate::net::tls::TlsMode;
use crate::protocol::mprpc::{
    encode_stream_credit, encode_stream_end, encode_stream_message, encode_stream_open,
    encode_stream_reset, put_stream_message_head, RequestHead, RequestMeta,
};
use crate::protocol::{Connections, StreamEvent};

/// An open stream, by id.
#[derive(Default)]
pub(super) struct Streams {
    open: FastMap<u64, OpenStream>,
    /// Streams with messages read this turn not yet on their core.
    to_move: Vec<u64>,
    /// Cores whose waiting readers got messages this turn.
    to_wake: Vec<Arc<ClientCore>>,
    /// Handled streams with something to deliver.
    to_deliver: Vec<Arc<ClientCore>>,
}

struct OpenStream {
    conn: usize,
    core: Arc<ClientCore>,
    deadline: Option<Instant>,
    /// Where the server's reply metadata goes, if the caller wants it.
    reply_metadata: Option<ReplyMetadata>,
    /// Messages read this turn, moved to the core once its reads are done.
    read: VecDeque<Bytes>,
}

impl OpenStream {
    /// Moves the messages read to the core: true when its reader must be
    /// woken (or, handled, it be delivered).
    fn move_read(&mut self) -> bool {
        !self.read.is_empty() && self.core.push_batch(&mut self.read)
    }
}

impl Streams {
    pub(super) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Lists handled stream `core` for delivery.
    pub(super) fn list_delivery(&mut self, core: Arc<ClientCore>) {
        self.to_deliver.push(core);
    }

    /// Handled streams wait for delivery (a callback after the turn's
    /// last delivery listed one): the next turn must not sleep.
    pub(super) fn has_deliveries(&self) -> bool {
        !self.to_deliver.is_empty() || !self.to_move.is_empty()
    }

    /// Takes the whole stream message frames at the front of `conn`'s
    /// input, each queued on its stream's entry (moved to its core once
    /// the turn's reads are done: `wake_readers`) or dropped when the
    /// stream is over here (it may cross the caller's reset): true when
    /// it took any. A server writes runs of frames for one stream, so the
    /// entry looked up takes the frames of its run that follow it.
    pub(super) fn read_messages(&mut self, conn: &mut ProviderConn, max: usize) -> bool {
        let Some(mut next) = conn.next_stream_message(max) else {
            return false;
        };
        loop {
            let (id, message) = next;
            let Some(stream) = self.open.get_mut(&id) else {
                match conn.next_stream_message(max) {
                    Some(frame) => next = frame,
                    None => return true,
                }
                continue;
            };
            if stream.read.is_empty() {
                self.to_move.push(id);
            }
            stream.read.push_back(message);
            loop {
                match conn.next_stream_message(max) {
                    Some((same, message)) if same == id => stream.read.push_back(message),
                    Some(frame) => {
                        next = frame;
                        break;
                    }
                    None => return true,
                }
            }
        }
    }

    /// The earliest deadline of an open stream.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.open.values().filter_map(|s| s.deadline).min()
    }

    /// Moves the messages read to their streams' cores, lists the
    /// handled streams for delivery and wakes the readers that got
    /// messages since they waited.
    pub(super) fn wake_readers(&mut self) {
        for id in self.to_move.drain(..) {
            let Some(stream) = self.open.get_mut(&id) else {
                continue;
            };
            if stream.move_read() {
                list_moved(stream.core.clone(), &mut self.to_deliver, &mut self.to_wake);
            }
        }
        for core in self.to_wake.drain(..) {
            core.wake_reader();
        }
    }
}

/// Lists `core`, whose messages just moved to it: for delivery when a
/// handler consumes it, else for its reader's wake-up.
fn list_moved(
    core: Arc<ClientCore>,
    to_deliver: &mut Vec<Arc<ClientCore>>,
    to_wake: &mut Vec<Arc<ClientCore>>,
) {
    match core.is_handled() {
        true => to_deliver.push(core),
        false => to_wake.push(core),
    }
}

/// Calls the handlers of the streams listed for delivery, with the
/// driver free, until none is listed (a handler may end a stream, or
/// open one that fails at once). `spare`: an empty list to swap in.
pub(super) fn deliver(driver: &RefCell<Driver>, spare: &mut Vec<Arc<ClientCore>>) {
    loop {
        std::mem::swap(&mut driver.borrow_mut().streams.to_deliver, spare);
        if spare.is_empty() {
            return;
        }
        for core in spare.drain(..) {
            core.deliver();
        }
    }
}

impl Driver {
    /// Takes stream `id` out of the open ones, the messages read for it
    /// moved to its core first (they are read before its end).
    fn remove_stream(&mut self, id: u64) -> Option<OpenStream> {
        let mut stream = self.streams.open.remove(&id)?;
        if stream.move_read() {
            let streams = &mut self.streams;
            list_moved(
                stream.core.clone(),
                &mut streams.to_deliver,
                &mut streams.to_wake,
            );
        }
        Some(stream)
    }

    /// Ends the stream of `core` with `status`, listing a handled one for
    /// delivery.
    fn end_stream(&mut self, core: &Arc<ClientCore>, status: Status) {
        if core.end(status) {
            self.streams.to_deliver.push(core.clone());
        }
    }

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
            let status = self.all_down(&new.service, &route.endpoints, None);
            return self.end_stream(&new.core, status);
        };
        let endpoint = &route.endpoints[index];
        let (addr, protocol) = (endpoint.addr, endpoint.format.protocol());
        if protocol.connections() == Connections::OnePerCall {
            let status = Status::unimplemented(format!(
                "{}.{}: the provider at {addr} speaks the {} format, which has no streams",
                new.service,
                new.method,
                protocol.name()
            ));
            return self.end_stream(&new.core, status);
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
                return self.end_stream(&new.core, Status::unavailable(reason));
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
            reply_metadata: new.reply_metadata.is_some(),
        };
        if let Some(slot) = &new.reply_metadata {
            slot.set(Metadata::new());
        }
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
            reply_metadata: new.reply_metadata,
            read: VecDeque::new(),
        };
        self.streams.open.insert(stream.core.id, stream);
    }

    /// Packs what stream `id`'s caller asked for (dropped once the stream
    /// is over).
    pub(super) fn stream_command(&mut self, id: u64, cmd: StreamCmd) {
        let Some(key) = self.stream_conn(id) else {
            return;
        };
        let out = self.conns[key].output();
        match cmd {
            StreamCmd::Message(message) => encode_stream_message(id, &message, out),
            StreamCmd::End => encode_stream_end(id, Code::Ok, "", out),
            StreamCmd::Credit(credit) => encode_stream_credit(id, credit, out),
            StreamCmd::Reset => {
                encode_stream_reset(id, Code::Cancelled, "the caller cancelled the stream", out);
                if let Some(stream) = self.remove_stream(id) {
                    let status = Status::cancelled("the stream was cancelled by its caller");
                    self.end_stream(&stream.core, status);
                }
            }
        }
        self.flush_stream_conn(key);
    }

    /// Packs a message of `len` bytes for stream `id` (`write` appends
    /// it after its head; dropped once the stream is over).
    pub(super) fn stream_message(
        &mut self,
        id: u64,
        len: usize,
        write: &mut dyn FnMut(&mut bytes::BytesMut),
    ) {
        let Some(key) = self.stream_conn(id) else {
            return;
        };
        let out = self.conns[key].output();
        put_stream_message_head(id, len, out);
        write(out);
        self.flush_stream_conn(key);
    }

    /// The connection open stream `id` is on, while it is there.
    fn stream_conn(&self, id: u64) -> Option<usize> {
        let key = self.streams.open.get(&id)?.conn;
        self.conns.contains(key).then_some(key)
    }

    /// Flushes what a stream packed into connection `key` with the turn's
    /// writes; a connection still opening sends it once it is open.
    fn flush_stream_conn(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.is_open() {
                conn.schedule_flush(key, &mut self.flush);
            }
        }
    }

    /// A frame the server sent on stream `id` (`message`: a message's
    /// bytes; `metadata`: its headers' or its end's), dropped when the
    /// stream is over here: it may cross the caller's reset.
    pub(super) fn on_stream_frame(
        &mut self,
        id: u64,
        event: StreamEvent,
        message: Result<Bytes, Status>,
        metadata: Metadata,
    ) {
        let Some(stream) = self.streams.open.get_mut(&id) else {
            return;
        };
        match event {
            StreamEvent::Message => {
                let Ok(message) = message else { return };
                if stream.read.is_empty() {
                    self.streams.to_move.push(id);
                }
                stream.read.push_back(message);
            }
            StreamEvent::Credit(credit) => {
                if stream.core.grant(credit) {
                    self.streams.to_deliver.push(stream.core.clone());
                }
            }
            StreamEvent::Headers => {
                if let Some(slot) = &stream.reply_metadata {
                    slot.set(metadata);
                }
            }
            StreamEvent::End(status) => {
                if let Some(stream) = self.remove_stream(id) {
                    if let Some(slot) = stream.reply_metadata.as_ref() {
                        slot.merge(&metadata);
                    }
                    self.end_stream(&stream.core, status);
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
            let Some(stream) = self.remove_stream(id) else {
                continue;
            };
            let why = "the stream's deadline passed";
            if let Some(conn) = self.conns.get_mut(stream.conn) {
                encode_stream_reset(id, Code::DeadlineExceeded, why, conn.output());
                if conn.is_open() {
                    conn.schedule_flush(stream.conn, &mut self.flush);
                }
            }
            self.end_stream(&stream.core, Status::deadline_exceeded(why));
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
            if let Some(stream) = self.remove_stream(id) {
                self.end_stream(&stream.core, Status::unavailable(reason.to_owned()));
            }
        }
    }
}
