//! Why a byte stream is not valid in its wire format: one error type for
//! both formats and both sides, so the server's close reasons and the
//! client's failures name bad input the same way.

use std::fmt;

/// Why a byte stream is not a valid stream of its format. Any of these
/// closes the connection it came from, and only that one.
#[derive(Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The stream does not start a frame with "MP".
    BadMagic([u8; 2]),
    /// The header's version byte is not one this build reads: 1
    /// ([`VERSION_NO_METADATA`](super::mprpc::VERSION_NO_METADATA)), 2
    /// ([`VERSION`](super::mprpc::VERSION)) or 3
    /// ([`VERSION_STREAMS`](super::mprpc::VERSION_STREAMS)).
    UnsupportedVersion(u8),
    /// The header's kind byte is not a known
    /// [`FrameKind`](super::mprpc::FrameKind).
    UnknownKind(u8),
    /// The announced body is larger than the configured limit.
    FrameTooLarge {
        /// The announced body length, in bytes.
        len: usize,
        /// The decoder's limit, in bytes.
        max: usize,
    },
    /// The body's fields do not add up (lengths, UTF-8 names, short body).
    Malformed(&'static str),
    /// The stream ended in the middle of a frame: `pending` bytes of it had
    /// arrived (tokio-util's "bytes remaining on stream").
    TruncatedAtEof {
        /// Bytes of the incomplete frame that were buffered.
        pending: usize,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::BadMagic(m) => {
                write!(
                    f,
                    "bad magic {:02x} {:02x} (not an mprpc peer?)",
                    m[0], m[1]
                )
            }
            ProtocolError::UnsupportedVersion(v) => write!(f, "unsupported protocol version {v}"),
            ProtocolError::UnknownKind(k) => write!(f, "unknown frame kind {k}"),
            ProtocolError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max} bytes")
            }
            ProtocolError::Malformed(what) => write!(f, "malformed frame: {what}"),
            ProtocolError::TruncatedAtEof { pending } => write!(
                f,
                "the peer closed mid-frame ({pending} bytes of an incomplete frame dropped)"
            ),
        }
    }
}

impl std::error::Error for ProtocolError {}
