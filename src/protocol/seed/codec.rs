//! The seed's bytes: requests encoded ([`encode_request`]) and decoded
//! ([`decode_request`], [`decode_request_incremental`]); replies are the
//! bare message, bounded by a maximum while they arrive ([`decode_reply`])
//! and taken whole at the provider's close ([`decode_reply_eof`]). The
//! layout is documented in the module above.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;

use crate::protocol::ProtocolError;

/// The seed's `mprpc.RpcHeader`.
#[derive(Clone, PartialEq, Message)]
pub struct RpcHeader {
    /// The service's name (field 1).
    #[prost(bytes = "bytes", tag = "1")]
    pub service_name: Bytes,
    /// The method's name (field 2).
    #[prost(bytes = "bytes", tag = "2")]
    pub method_name: Bytes,
    /// Length of the request message after the header, in bytes (field 3).
    #[prost(uint32, tag = "3")]
    pub args_size: u32,
}

/// A decoded seed-format request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedRequest {
    /// The service's name (UTF-8).
    pub service: Bytes,
    /// The method's name (UTF-8).
    pub method: Bytes,
    /// The encoded protobuf request message.
    pub args: Bytes,
}

impl SeedRequest {
    /// The service name (checked to be UTF-8 when decoded).
    pub fn service_str(&self) -> &str {
        std::str::from_utf8(&self.service).unwrap_or("<non-utf8>")
    }
    /// The method name (checked to be UTF-8 when decoded).
    pub fn method_str(&self) -> &str {
        std::str::from_utf8(&self.method).unwrap_or("<non-utf8>")
    }
}

/// Seed headers this process has decoded: the work a request trickling in
/// costs is read here (tests and `scripts/hostile.sh` check it grows with
/// requests, not with reads).
static HEADERS_DECODED: AtomicU64 = AtomicU64::new(0);

/// How many seed-format request headers this process has decoded so far.
pub fn headers_decoded() -> u64 {
    HEADERS_DECODED.load(Ordering::Relaxed)
}

/// Appends a seed-format request to `dst`.
pub fn encode_request(service: &str, method: &str, args: &[u8], dst: &mut BytesMut) {
    let header = RpcHeader {
        service_name: Bytes::copy_from_slice(service.as_bytes()),
        method_name: Bytes::copy_from_slice(method.as_bytes()),
        args_size: args.len() as u32,
    };
    dst.reserve(4 + header.encoded_len() + args.len());
    dst.put_u32_le(header.encoded_len() as u32);
    header
        .encode(dst)
        .expect("BytesMut grows, so encoding cannot run out of space");
    dst.put_slice(args);
}

/// Decodes one seed-format request from the front of `buf`, tokio-util
/// style: `Ok(None)` means more bytes are needed. Header and args are each
/// bounded by `max` bytes, so a hostile size cannot make us buffer without
/// bound.
pub fn decode_request(
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<SeedRequest>, ProtocolError> {
    decode_request_incremental(buf, max, &mut 0)
}

/// [`decode_request`] for a request arriving over many reads. `needed` is
/// the input length below which the request cannot be complete (0 at
/// first); it is raised as the size prefix and then the header arrive, so
/// the header is decoded once when it is whole and once more when the args
/// are: the work a request trickling in byte by byte costs grows with its
/// bytes, not with its bytes times its reads. Nothing is reserved ahead of
/// the bytes themselves.
pub fn decode_request_incremental(
    buf: &mut BytesMut,
    max: usize,
    needed: &mut usize,
) -> Result<Option<SeedRequest>, ProtocolError> {
    if buf.len() < (*needed).max(4) {
        return Ok(None);
    }
    let (header, header_len) = match parse_header(buf, max)? {
        Header::Incomplete { needed: more } => {
            *needed = more;
            return Ok(None);
        }
        Header::Complete { header, len } => (header, len),
    };
    let total = 4 + header_len + header.args_size as usize;
    if buf.len() < total {
        *needed = total;
        return Ok(None);
    }
    *needed = 0;
    buf.advance(4 + header_len);
    let args = buf.split_to(header.args_size as usize).freeze();
    Ok(Some(SeedRequest {
        service: header.service_name,
        method: header.method_name,
        args,
    }))
}

/// How far a request's header has arrived.
enum Header {
    /// The input must reach `needed` bytes before the header is whole.
    Incomplete { needed: usize },
    /// The header, checked, and its length in bytes.
    Complete { header: RpcHeader, len: usize },
}

/// Reads the size prefix and, once it has all arrived, decodes and checks
/// the header: sizes within `max`, names in UTF-8.
fn parse_header(buf: &[u8], max: usize) -> Result<Header, ProtocolError> {
    let header_len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if header_len > max {
        return Err(ProtocolError::FrameTooLarge {
            len: header_len,
            max,
        });
    }
    if buf.len() < 4 + header_len {
        return Ok(Header::Incomplete {
            needed: 4 + header_len,
        });
    }
    HEADERS_DECODED.fetch_add(1, Ordering::Relaxed);
    let header = RpcHeader::decode(&buf[4..4 + header_len])
        .map_err(|_| ProtocolError::Malformed("seed RpcHeader does not parse"))?;
    let args_len = header.args_size as usize;
    if args_len > max {
        return Err(ProtocolError::FrameTooLarge { len: args_len, max });
    }
    if std::str::from_utf8(&header.service_name).is_err()
        || std::str::from_utf8(&header.method_name).is_err()
    {
        return Err(ProtocolError::Malformed(
            "seed service/method name is not UTF-8",
        ));
    }
    Ok(Header::Complete {
        header,
        len: header_len,
    })
}

/// Checks a reply still arriving: the seed ends its reply by closing, so
/// there is never a complete reply before EOF, only one that grew too big.
pub fn decode_reply(buf: &BytesMut, max: usize) -> Result<(), ProtocolError> {
    match buf.len() {
        len if len > max => Err(ProtocolError::FrameTooLarge { len, max }),
        _ => Ok(()),
    }
}

/// The reply once the provider has closed: the whole buffer (bounded by
/// `max`), or `None` when it closed without a byte, the seed's only way of
/// saying it could not serve the call (unknown method, failed handler).
pub fn decode_reply_eof(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, ProtocolError> {
    decode_reply(buf, max)?;
    Ok((!buf.is_empty()).then(|| buf.split().freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from a real C++ mprpc consumer: GetFriendList, userid 1000.
    const SEED_BYTES: &[u8] =
        b"\x23\x00\x00\x00\x0a\x10FriendServiceRpc\x12\x0dGetFriendList\x18\x03\x08\xe8\x07";

    #[test]
    fn decodes_bytes_captured_from_the_seed() {
        let mut buf = BytesMut::from(SEED_BYTES);
        let req = decode_request(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(req.service_str(), "FriendServiceRpc");
        assert_eq!(req.method_str(), "GetFriendList");
        assert_eq!(&req.args[..], b"\x08\xe8\x07");
        assert!(buf.is_empty());
    }

    #[test]
    fn encodes_byte_for_byte_like_the_seed() {
        let mut buf = BytesMut::new();
        encode_request(
            "FriendServiceRpc",
            "GetFriendList",
            b"\x08\xe8\x07",
            &mut buf,
        );
        assert_eq!(&buf[..], SEED_BYTES);
    }

    #[test]
    fn every_split_waits_then_decodes() {
        for split in 0..SEED_BYTES.len() {
            let mut buf = BytesMut::from(&SEED_BYTES[..split]);
            assert_eq!(
                decode_request(&mut buf, 1024).unwrap(),
                None,
                "split {split}"
            );
            buf.extend_from_slice(&SEED_BYTES[split..]);
            assert!(decode_request(&mut buf, 1024).unwrap().is_some());
        }
    }

    #[test]
    fn a_request_trickled_byte_by_byte_decodes_its_header_twice() {
        let mut frame = BytesMut::new();
        encode_request("S", "M", &[7u8; 64], &mut frame);
        let (mut buf, mut needed, mut decoded) = (BytesMut::new(), 0, None);
        let before = headers_decoded();
        for byte in frame.iter() {
            buf.extend_from_slice(&[*byte]);
            decoded = decode_request_incremental(&mut buf, 1024, &mut needed).unwrap();
        }
        assert_eq!(&decoded.unwrap().args[..], &[7u8; 64]);
        // Other tests decode in parallel: at most a few of theirs.
        assert!(headers_decoded() - before < 10, "decoded per byte");
        assert_eq!(needed, 0, "ready for the next request");
    }

    #[test]
    fn empty_args_omit_args_size() {
        let mut buf = BytesMut::new();
        encode_request("S", "M", b"", &mut buf);
        let req = decode_request(&mut buf, 1024).unwrap().unwrap();
        assert!(req.args.is_empty());
    }

    #[test]
    fn hostile_sizes_and_garbage_are_errors() {
        let mut buf = BytesMut::from(&b"\xff\xff\xff\x7f"[..]);
        assert!(decode_request(&mut buf, 1 << 20).is_err());
        let mut buf = BytesMut::from(&b"\x03\x00\x00\x00\xff\xff\xff"[..]);
        assert!(decode_request(&mut buf, 1 << 20).is_err());
        let mut buf = BytesMut::from(&b"\x06\x00\x00\x00\x0a\x01S\x18\xff\x7f"[..]);
        assert!(
            decode_request(&mut buf, 1024).is_err(),
            "args_size over the limit"
        );
    }

    #[test]
    fn replies_are_bounded_and_taken_at_eof() {
        let mut buf = BytesMut::from(&b"\x08\x01"[..]);
        assert_eq!(decode_reply(&buf, 2), Ok(()));
        assert_eq!(
            decode_reply_eof(&mut buf, 2),
            Ok(Some(Bytes::from_static(b"\x08\x01")))
        );
        assert_eq!(
            decode_reply_eof(&mut buf, 2),
            Ok(None),
            "closed without a reply"
        );
        let buf = BytesMut::from(&b"abc"[..]);
        assert_eq!(
            decode_reply(&buf, 2),
            Err(ProtocolError::FrameTooLarge { len: 3, max: 2 })
        );
    }
}
