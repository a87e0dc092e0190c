//! What the decoder hands out: one decoded frame of any kind, or the head
//! of one too large to accept. Its own module so that the frame encoders
//! (`frame`) and the stream frames (`stream`) need not know of each other.

use bytes::Bytes;

use super::frame::{FrameKind, Request, Response};
use super::stream::StreamFrame;
use crate::call::status::Status;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A call (server side).
    Request(Request),
    /// A reply (client side).
    Response(Response),
    /// The client gave up on call `id`; its reply may be dropped.
    Cancel {
        /// The id of the cancelled request.
        id: u64,
    },
    /// The client's auth token (server side; compared in constant time,
    /// never logged).
    Auth {
        /// The token's bytes, a slice of the read buffer.
        token: Bytes,
    },
    /// A stream frame (protocol version 3).
    Stream(StreamFrame),
    /// A request, response, stream open or stream message whose body is
    /// larger than the decoder's limit. Only that one call or stream
    /// fails: its body is skipped, never buffered.
    Oversized(Oversized),
}

/// The head of a request or response too large to accept. The decoder has
/// consumed the header, the id and whatever part of the body was buffered;
/// the caller must pass the next `unread` bytes of the stream to
/// [`skip_body`](super::skip_body) and answer (or fail) call `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversized {
    /// Whether the frame was a request or a response.
    pub kind: FrameKind,
    /// The id of the call it carried.
    pub id: u64,
    /// The announced body length, in bytes.
    pub len: usize,
    /// The limit it exceeds, in bytes.
    pub max: usize,
    /// Body bytes still to come that belong to this frame.
    pub unread: usize,
}

impl Oversized {
    /// The status for the call this frame carried.
    pub fn status(&self, what: &str, whose: &str) -> Status {
        Status::resource_exhausted(format!(
            "{what} of {} bytes exceeds {whose} max_frame_size of {} bytes",
            self.len, self.max
        ))
    }
}
