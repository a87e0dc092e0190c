//! A connection as a wire format's server half sees it
//! ([`Session`]): the connection's bytes and standing, the dispatcher for
//! its calls, and this loop turn's facts.

use std::net::SocketAddr;

use bytes::BytesMut;

use crate::protocol::mprpc::{Request, StreamFrame, StreamOpen};
use crate::protocol::{ReadState, Session, WireFormat};
use crate::server::connection::Connection;
use crate::server::dispatch::{Dispatcher, Turn};
use crate::server::stats;
use crate::Status;

/// One connection being served this turn.
pub(super) struct Served<'a> {
    conn: &'a mut Connection,
    dispatcher: &'a Dispatcher,
    turn: Turn,
}

impl<'a> Served<'a> {
    pub(super) fn new(conn: &'a mut Connection, dispatcher: &'a Dispatcher, turn: Turn) -> Self {
        Served {
            conn,
            dispatcher,
            turn,
        }
    }
}

impl Session for Served<'_> {
    fn input(&mut self) -> (&mut BytesMut, &mut ReadState) {
        self.conn.io().input_state()
    }

    fn output(&mut self) -> &mut BytesMut {
        self.conn.io().output()
    }

    fn max_frame(&self) -> usize {
        self.dispatcher.max_frame()
    }

    fn peer(&self) -> SocketAddr {
        self.conn.peer()
    }

    fn needs_auth(&self) -> bool {
        self.dispatcher.needs_auth()
    }

    fn unauthenticated(&self) -> Option<&'static str> {
        self.conn.unauthenticated()
    }

    /// A server that needs no token ignores one.
    fn present_token(&mut self, token: &[u8]) {
        if self.dispatcher.needs_auth() {
            self.conn
                .token_checked(self.dispatcher.accepts_token(token));
        }
    }

    fn shutting_down(&self) -> bool {
        self.turn.shutting_down
    }

    fn has_call(&self, id: u64) -> bool {
        self.conn.has_call(id)
    }

    fn serves(&self, service: &[u8], method: &[u8]) -> bool {
        let entry = self.dispatcher.table().get(service);
        entry.is_some_and(|e| e.has_method(method))
    }

    fn dispatch(&mut self, request: Request, format: WireFormat) -> Result<(), Request> {
        let Some(entry) = self.dispatcher.table().get(request.service_bytes()) else {
            return Err(request);
        };
        self.dispatcher
            .dispatch(self.conn, entry, request, format, self.turn);
        Ok(())
    }

    fn cancel(&mut self, id: u64) {
        self.conn.cancel(id);
        self.dispatcher.cancel_later(self.conn, id);
    }

    fn open_stream(&mut self, open: StreamOpen) -> Result<(), Status> {
        let Some(entry) = self.dispatcher.table().get(open.service().as_bytes()) else {
            return Err(Status::unknown_service(open.service()));
        };
        self.dispatcher
            .open_stream(self.conn, entry, open, self.turn);
        Ok(())
    }

    fn stream_frame(&mut self, frame: StreamFrame) {
        self.dispatcher.stream_frame(self.conn, frame);
    }

    fn close_after_reply(&mut self) {
        self.conn.close_after_reply();
    }

    fn pause_if_over(&mut self) -> bool {
        self.conn.pause_if_over(self.dispatcher.limits())
    }

    fn count_rejected(&mut self) {
        stats::bump(&self.dispatcher.reactor_stats().frames_rejected, 1);
    }
}
