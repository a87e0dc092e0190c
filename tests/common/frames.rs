//! Request frames encoded back to back, for tests that write raw bytes to
//! a server (pipelining in one write, peers that never read).

use bytes::BytesMut;
use mprpc::protocol::mprpc::{encode_request, RequestHead};

/// One request to `service.method` per `(id, payload)`, without deadlines,
/// in one buffer.
pub fn request_batch<'a>(
    service: &str,
    method: &str,
    calls: impl IntoIterator<Item = (u64, &'a [u8])>,
) -> BytesMut {
    let mut out = BytesMut::new();
    for (id, payload) in calls {
        let head = RequestHead {
            id,
            timeout_ms: 0,
            service,
            method,
        };
        encode_request(head, payload, &mut out);
    }
    out
}
