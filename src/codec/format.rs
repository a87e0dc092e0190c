//! Which wire format a provider speaks, and how a stream tells which.
//!
//! One enum for both sides: a consumer's [`Endpoint`](crate::Endpoint) says
//! how to call a provider, and a server decides per connection from the
//! first bytes it receives.

use super::MAGIC;

/// How to talk to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WireFormat {
    /// Our framed, multiplexed protocol.
    #[default]
    Mprpc,
    /// The seed's format: one call per short connection (see
    /// [`seed`](super::seed)).
    Legacy,
}

impl WireFormat {
    /// The format a stream speaks, from its first bytes; `None` until two
    /// have arrived. Ours start with "MP"; a seed header size would have to
    /// be 20557 bytes to look like that.
    pub fn detect(first: &[u8]) -> Option<WireFormat> {
        if first.len() < MAGIC.len() {
            return None;
        }
        Some(if first.starts_with(&MAGIC) {
            WireFormat::Mprpc
        } else {
            WireFormat::Legacy
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_bytes_decide() {
        assert_eq!(WireFormat::detect(b""), None);
        assert_eq!(WireFormat::detect(b"M"), None);
        assert_eq!(WireFormat::detect(b"MP\x01"), Some(WireFormat::Mprpc));
        assert_eq!(
            WireFormat::detect(b"M\x00\x00\x00"),
            Some(WireFormat::Legacy),
            "a 77-byte seed header starts with 'M'"
        );
    }
}
