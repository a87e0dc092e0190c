//! Streams from their open to their handler, and their frames to it: a
//! stream runs as a call that answers later (its handler's future waits on
//! this reactor's executor, `pending`), with a [`Core`] its handler and
//! the reactor share for its messages, credit and end.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use super::{Dispatcher, Turn};
use crate::call::deadline::Serving;
use crate::protocol::mprpc::{encode_stream_credit, encode_stream_reset, StreamFrame, StreamOpen};
use crate::server::connection::Connection;
use crate::server::handler;
use crate::server::pending::{CallAddr, Done, Extra, Observed};
use crate::server::stream::{Core, StreamAt};
use crate::server::stream_pool::OnPool;
use crate::server::table::Entry;
use crate::service::stream::StreamIo;
use crate::service::{CallContext, ReplyFuture};

impl Dispatcher {
    /// Starts stream `open` of `entry`'s service: interceptors first, then
    /// its handler, polled once here; a client that streams is granted
    /// this side's window at once.
    pub(crate) fn open_stream(
        &self,
        conn: &mut Connection,
        entry: &Entry,
        mut open: StreamOpen,
        turn: Turn,
    ) {
        let deadline =
            (open.timeout_ms > 0).then(|| turn.now + Duration::from_millis(open.timeout_ms as u64));
        let metadata = std::mem::take(&mut open.metadata);
        let mut ctx =
            CallContext::with_metadata(open.id, deadline, conn.peer(), metadata, turn.now);
        let method_id = entry.method_id(open.method().as_bytes());
        let method = method_id.map_or("?", |id| {
            entry.service.methods()[id - entry.first_method_id]
        });
        if let Some(chain) = self.chain() {
            let info = crate::call::interceptor::CallInfo::of(entry.service.name(), method, &ctx);
            if let Err(status) = chain.before(&info) {
                if let Some(id) = method_id {
                    self.stats.record(id, status.code(), None);
                }
                handler::observe(chain, entry.service.name(), method, &ctx, status.code());
                let out = conn.io().output();
                return encode_stream_reset(open.id, status.code(), status.message(), out);
            }
        }
        let at = StreamAt {
            key: turn.key,
            conn_id: conn.id(),
            id: open.id,
        };
        let reactor = Arc::downgrade(&self.reply_to);
        let window = (open.window, self.stream_window, self.stream_window_bytes);
        // A version 4 opener reads the handler's reply metadata: headers
        // before its first message, the rest with the end.
        let reply = open
            .replies_with_metadata
            .then(|| ctx.share_reply_metadata());
        let core = Core::new(reactor, at, open.shape, window, reply);
        if open.shape.client_streams() {
            encode_stream_credit(open.id, self.stream_window, conn.io().output());
        }
        let addr = CallAddr {
            key: turn.key,
            conn_id: conn.id(),
            id: open.id,
            format: crate::protocol::WireFormat::Mprpc,
            deadline: ctx.deadline,
            trace: ctx.trace_id,
            replies_with_metadata: false,
            service: entry.service.name(),
            method,
            method_id,
            started: method_id.and_then(|id| self.stats.begin(id)),
        };
        let extra = Extra {
            reply: None,
            span: crate::call::trace::call_span(
                entry.service.name(),
                open.method(),
                ctx.peer,
                ctx.trace_id,
            ),
            observed: self.chain().map(|_| Observed {
                peer: ctx.peer,
                metadata: ctx.metadata.clone(),
                received: ctx.received,
            }),
            stream: Some(core.clone()),
        };
        let payload = std::mem::take(&mut open.payload);
        let pool = self.stream_pool(entry, &extra.span, ctx.serving());
        let io = StreamIo::new(core, pool);
        let serving = ctx.serving();
        let started = handler::guarded(&extra.span, serving, || {
            entry.service.open_stream(open.method(), ctx, payload, io)
        })
        .and_then(|started| started);
        let done = match started {
            Ok(handler) => {
                let future: ReplyFuture =
                    Box::pin(async move { handler.await.map(|()| BytesMut::new()) });
                self.later.borrow_mut().start(future, addr, extra, None)
            }
            Err(status) => Some(Done::failed(addr, extra, status, None)),
        };
        match done {
            Some(done) => self.answer_later(done, Some(conn.io().output())),
            None => conn.start_later_call(open.id),
        }
    }

    /// The worker pool for a service whose stream handlers block, with the
    /// span and call its handler runs in; `None` for the others.
    fn stream_pool(&self, entry: &Entry, span: &tracing::Span, serving: Serving) -> Option<OnPool> {
        if !entry.blocking_streams {
            return None;
        }
        self.pool.as_ref().map(|jobs| OnPool {
            jobs: jobs.clone(),
            span: span.clone(),
            serving,
        })
    }

    /// A frame of an open stream of `conn`: a message or end for its
    /// handler, credit for its sender, or the client's reset (its handler
    /// is dropped). Frames of streams not open are dropped: one may cross
    /// the stream's end on the wire.
    pub(crate) fn stream_frame(&self, conn: &mut Connection, frame: StreamFrame) {
        let id = frame.id();
        let Some(core) = self.later.borrow().stream(conn.id(), id) else {
            return;
        };
        match frame {
            StreamFrame::Message { payload, .. } => {
                if let Err(status) = core.push_inbound(payload) {
                    self.cancel_later(conn, id);
                    let out = conn.io().output();
                    encode_stream_reset(id, status.code(), status.message(), out);
                }
            }
            StreamFrame::End { .. } => core.end_inbound(),
            StreamFrame::Credit { credit, .. } => core.grant(credit),
            StreamFrame::Reset { .. } => {
                conn.cancel(id);
                self.cancel_later(conn, id);
            }
            // A client sends no headers (it has no reply metadata).
            StreamFrame::Open(_) | StreamFrame::Headers { .. } => {}
        }
    }

    /// Moves the frames a stream's handler sent into its connection's
    /// output, if the stream is still open there.
    pub(crate) fn stream_output(&self, conn: &mut Connection, core: &Arc<Core>) {
        let open = self.later.borrow().stream(conn.id(), core.id);
        if open.is_some_and(|open| Arc::ptr_eq(&open, core)) {
            core.take_output(conn.io().output());
        }
    }

    /// Ends every open stream of `conn` with `status` (what it sent goes
    /// out first): the shutdown grace period is over.
    pub(crate) fn end_streams(&self, conn: &mut Connection, status: &crate::Status) {
        let streams = self.later.borrow().streams_of(conn.id());
        for core in streams {
            core.finish(status, Some(conn.io().output()));
        }
    }

    /// The peer closed its side: it grants no more credit and sends no
    /// more messages, so its streams' handlers are dropped (`Cancelled`).
    pub(crate) fn cancel_streams(&self, conn: &mut Connection) {
        let streams = self.later.borrow().streams_of(conn.id());
        for core in streams {
            conn.cancel(core.id);
            self.cancel_later(conn, core.id);
        }
    }
}
