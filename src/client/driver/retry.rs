//! A call refused with `Overloaded` is retried once, on another provider,
//! within its deadline. The provider refused it before running anything,
//! so sending it again is safe; one retry spreads a burst over the other
//! providers without multiplying the load when all are overloaded.
//!
//! Sent requests are not kept by the connection, so a call that may be
//! retried (its service has more than one provider, and its request is
//! small) keeps a copy of its request's parts, packed again for whichever
//! provider takes the retry. The copies live in boxes (with their
//! buffers) the driver recycles, so in steady state keeping them costs a
//! `memcpy` and no allocation.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;

use super::route::Route;
use super::{Driver, NO_CONN};
use crate::client::request::{Parts, Staged};
use crate::discovery::Endpoint;

/// Requests larger than this are not kept, so such calls are not retried.
const RETRY_FRAME_MAX: usize = 64 * 1024;
/// Spare frame buffers kept for reuse.
const SPARE_MAX: usize = 4096;

/// What a call needs to be sent again elsewhere.
pub(super) struct Retry {
    request: Staged,
    endpoints: Arc<[Endpoint]>,
    hash_key: Option<u64>,
}

/// Recycled retry copies: a spare keeps its buffer and, until it is
/// reused, the last call's endpoint list and metadata (bounded by
/// `SPARE_MAX`).
#[derive(Default)]
#[allow(clippy::vec_box)] // the boxes are what is recycled: `Pending` holds one
pub(super) struct SpareFrames(Vec<Box<Retry>>);

impl SpareFrames {
    /// Takes a copy back for the next call.
    pub(super) fn recycle(&mut self, retry: Option<Box<Retry>>) {
        if let Some(retry) = retry {
            if self.0.len() < SPARE_MAX {
                self.0.push(retry);
            }
        }
    }
}

impl Driver {
    /// A copy of the request's parts for one retry, if the call may be
    /// retried.
    pub(super) fn keep_for_retry(
        &mut self,
        parts: &Parts<'_>,
        endpoints: &Arc<[Endpoint]>,
        hash_key: Option<u64>,
    ) -> Option<Box<Retry>> {
        if endpoints.len() < 2 || parts.payload.len() > RETRY_FRAME_MAX {
            return None;
        }
        let retry = match self.spare_frames.0.pop() {
            Some(mut spare) => {
                spare.request.refill(parts);
                spare.endpoints = endpoints.clone();
                spare.hash_key = hash_key;
                spare
            }
            None => Box::new(Retry {
                request: parts.stage(BytesMut::new()),
                endpoints: endpoints.clone(),
                hash_key,
            }),
        };
        if retry.request.len() > RETRY_FRAME_MAX {
            self.spare_frames.recycle(Some(retry));
            return None;
        }
        Some(retry)
    }

    /// Call `id` was refused `Overloaded` by `refused_by`: routes it to
    /// another provider that is up, once. False when it is not retried
    /// (retried already, not retriable, past its deadline, or no other
    /// provider is up): the caller then gets the `Overloaded` status.
    pub(super) fn retry_overloaded(&mut self, id: u64, refused_by: SocketAddr) -> bool {
        let now = self.now;
        let Some(pending) = self.pending.get_mut(id) else {
            return false;
        };
        if pending.deadline.is_some_and(|d| d <= now) {
            return false;
        }
        let Some(retry) = pending.retry.take() else {
            return false;
        };
        let health = &self.health;
        let elsewhere = retry
            .endpoints
            .iter()
            .any(|e| e.addr != refused_by && health.is_up(e.addr, now));
        if !elsewhere {
            self.spare_frames.recycle(Some(retry));
            return false;
        }
        let old = std::mem::replace(&mut pending.conn, NO_CONN);
        if let Some(conn) = self.conns.get_mut(old) {
            conn.retire_call();
        }
        tracing::debug!(id, %refused_by, "client: call refused Overloaded; retrying on another provider");
        let route = Route {
            endpoints: retry.endpoints.clone(),
            hash_key: retry.hash_key,
            failures: 0,
            last_error: None,
            avoid: Some(refused_by),
        };
        self.route(&retry.request.parts(), route);
        self.spare_frames.recycle(Some(retry));
        true
    }
}
