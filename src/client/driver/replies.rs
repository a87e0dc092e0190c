//! Socket events on the driver's connections: connects completing, replies
//! read and matched to their calls by request id, EOFs and resets.

use mio::event::Event;

use super::Driver;
use crate::call::metadata::Metadata;
use crate::call::status::Code;
use crate::client::call::CallResult;
use crate::client::conn::{ConnectState, PROBE_ID};
use crate::protocol::Reply;

impl Driver {
    pub(super) fn conn_event(&mut self, key: usize, event: &Event) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.tcp_up() {
            match conn.check_connect() {
                ConnectState::InProgress => return,
                // A TLS handshake starts with the next flush.
                ConnectState::Connected => conn.schedule_flush(key, &mut self.flush),
                ConnectState::Failed(e) => {
                    let reason = format!("connect to {} failed: {e}", conn.addr());
                    return self.close(key, reason);
                }
            }
        }
        if event.is_read_closed() || event.is_error() {
            // Read on to the EOF: no later event will say so.
            self.read(key, false);
        } else if event.is_readable() {
            self.read(key, true);
        }
        if event.is_writable() {
            self.schedule_flush(key);
        }
        if self
            .conns
            .get(key)
            .is_some_and(|c| !c.is_open() && c.ready())
        {
            self.connected(key);
        }
    }

    /// TCP is connected and any TLS handshake done: the requests that
    /// waited go out.
    fn connected(&mut self, key: usize) {
        self.connecting -= 1;
        let conn = &mut self.conns[key];
        conn.opened(self.now);
        conn.schedule_flush(key, &mut self.flush);
        self.ping_busy(key);
    }

    fn read(&mut self, key: usize, short_read_drains: bool) {
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let addr = conn.addr();
            let turn = match conn.read_turn(short_read_drains) {
                Ok(turn) => turn,
                Err(e) => return self.close(key, format!("connection to {addr} lost: {e}")),
            };
            if turn.bytes > 0 {
                conn.heard_at(self.now);
            }
            if turn.needs_flush {
                conn.schedule_flush(key, &mut self.flush);
            }
            if let Err(why) = self.decode_replies(key) {
                tracing::warn!("client: protocol error from {addr}: {why}; closing the connection");
                return self.close(key, format!("protocol error from {addr}: {why}"));
            }
            if turn.eof {
                let reason = match self.conns.get(key).map(|c| c.check_eof()) {
                    Some(Err(e)) => format!("connection to {addr} closed by the server: {e}"),
                    _ => format!("connection to {addr} closed by the server"),
                };
                return self.close(key, reason);
            }
            if turn.drained {
                return;
            }
        }
    }

    /// Completes the calls whose replies connection `key` has read (its
    /// format parses them).
    fn decode_replies(&mut self, key: usize) -> Result<(), String> {
        let max = self.options.max_frame_size;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return Ok(());
            };
            // A server stream's runs of message frames go straight onto
            // their streams, no `Reply` each (looked for only while a
            // stream is open: unary replies skip the check).
            if !self.streams.is_empty() && self.streams.read_messages(conn, max) {
                // Anything read shows the link is not silent (see `eject`).
                conn.heard_from();
            }
            // The common reply, a plain success, with no `Reply` built.
            if let Some((id, payload)) = conn.next_ok_reply(max) {
                self.on_call_reply(key, id, Ok(payload), Metadata::new());
                continue;
            }
            match conn.next_reply(max) {
                Ok(Some(reply)) => self.on_reply(key, reply),
                Ok(None) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn on_reply(&mut self, key: usize, mut reply: Reply) {
        if let Some(event) = reply.stream.take() {
            // Anything read shows the link is not silent (see `eject`).
            self.conns[key].heard_from();
            return self.on_stream_frame(reply.id, event, reply.result, reply.metadata);
        }
        self.on_call_reply(key, reply.id, reply.result, reply.metadata);
    }

    /// The reply to call (or probe) `id`, read on connection `key`.
    fn on_call_reply(&mut self, key: usize, id: u64, result: CallResult, metadata: Metadata) {
        let conn = &mut self.conns[key];
        let addr = conn.addr();
        // Anything read shows the link is not silent (see `eject`).
        conn.heard_from();
        if conn.probe_until().is_some() {
            self.probe_answered(key);
        }
        if id == PROBE_ID {
            return;
        }
        let conn = &mut self.conns[key];
        if conn.note_answer() {
            self.health.succeeded(addr);
        }
        let overloaded = matches!(&result, Err(s) if s.code() == Code::Overloaded);
        if overloaded && self.retry_overloaded(id, addr) {
            return;
        }
        if let Err(status) = &result {
            if status.code() == Code::ResourceExhausted {
                // An oversized reply fails its call alone; say so.
                tracing::warn!(id, "client: {}", status.message());
            }
        }
        // Unknown ids are replies to calls cancelled or expired: dropped.
        self.replying = key;
        self.finish_reply(id, result, metadata);
        self.replying = super::NO_CONN;
    }
}
