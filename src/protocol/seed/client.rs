//! The seed's format on the client side: the reply is the bare response
//! message, ended by the provider's close, so a reply is complete only at
//! EOF; until then it is only bounded. A close without a byte is the seed's
//! only way of saying it could not serve the call.

use bytes::BytesMut;

use super::{decode_reply, decode_reply_eof};
use crate::protocol::{ProtocolError, Reply};
use crate::{Metadata, Status};

/// The reply once the provider has closed (`eof`); before, `Ok(None)` or
/// an error once the bytes pass `max`.
pub(super) fn parse_reply(
    input: &mut BytesMut,
    max: usize,
    eof: bool,
) -> Result<Option<Reply>, ProtocolError> {
    if !eof {
        return decode_reply(input, max).map(|()| None);
    }
    let result = decode_reply_eof(input, max)?.ok_or_else(|| {
        Status::unavailable("closed without a reply (unknown service/method or a failed handler)")
    });
    Ok(Some(Reply {
        id: 0,
        result,
        metadata: Metadata::new(),
        stream: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;

    #[test]
    fn the_reply_is_what_arrived_before_the_close() {
        let mut input = BytesMut::from(&b"\x08\x01"[..]);
        assert_eq!(parse_reply(&mut input, 16, false), Ok(None));
        let reply = parse_reply(&mut input, 16, true).unwrap().unwrap();
        assert_eq!(reply.result.as_deref().ok(), Some(&b"\x08\x01"[..]));
        let empty = parse_reply(&mut input, 16, true).unwrap().unwrap();
        assert_eq!(empty.result.unwrap_err().code(), Code::Unavailable);
        let mut big = BytesMut::from(&b"abc"[..]);
        assert_eq!(
            parse_reply(&mut big, 2, false),
            Err(ProtocolError::FrameTooLarge { len: 3, max: 2 })
        );
    }
}
