//! What a connection speaks, decided by its first bytes: an RPC wire
//! format ([`WireFormat::detect`]) or HTTP for the admin pages.

use crate::protocol::WireFormat;

/// What a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Speaks {
    /// An RPC wire format.
    Rpc(WireFormat),
    /// HTTP for the admin pages.
    Http,
}

impl Speaks {
    /// The name `/connections` shows.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Speaks::Rpc(format) => format.name(),
            Speaks::Http => "http",
        }
    }

    /// A number from 1 for each, so a connection's figures can keep it in
    /// an atomic byte (0 stays free for "not known yet").
    pub(crate) fn code(self) -> u8 {
        match self {
            Speaks::Rpc(format) => 1 + format.index() as u8,
            Speaks::Http => 1 + WireFormat::COUNT as u8,
        }
    }

    /// What [`code`](Self::code) gave; `None` for 0 (or any other number).
    pub(crate) fn from_code(code: u8) -> Option<Speaks> {
        match usize::from(code).checked_sub(1)? {
            index if index < WireFormat::COUNT => Some(Speaks::Rpc(WireFormat::ALL[index])),
            index if index == WireFormat::COUNT => Some(Speaks::Http),
            _ => None,
        }
    }
}

/// What a stream speaks, from its first bytes; `None` until enough arrived.
/// HTTP starts with an upper-case method and a space or more letters ("GET
/// ", "HEAD", "POST"); as a seed header size those four bytes would say
/// more than 500 MB, which no seed request is. So a stream whose first two
/// bytes are letters waits for four; every other stream is decided by two
/// bytes as [`WireFormat::detect`] does.
pub(crate) fn detect(first: &[u8]) -> Option<Speaks> {
    let letter = |b: &u8| b.is_ascii_uppercase();
    let rpc = WireFormat::detect(first)?;
    if rpc == WireFormat::Mprpc || !first[..2].iter().all(letter) {
        return Some(Speaks::Rpc(rpc));
    }
    let head = first.get(..4)?;
    let http = head.iter().all(|b| letter(b) || *b == b' ');
    Some(if http { Speaks::Http } else { Speaks::Rpc(rpc) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_decide() {
        assert_eq!(detect(b"M"), None);
        assert_eq!(detect(b"MP\x01"), Some(Speaks::Rpc(WireFormat::Mprpc)));
        // A 77-byte seed header: 'M', then zeros.
        assert_eq!(detect(b"M\x00"), Some(Speaks::Rpc(WireFormat::Seed)));
        assert_eq!(detect(b"GE"), None, "two letters wait for four bytes");
        assert_eq!(detect(b"GET "), Some(Speaks::Http));
        assert_eq!(detect(b"HEAD /"), Some(Speaks::Http));
        assert_eq!(detect(b"AB\x00\x00"), Some(Speaks::Rpc(WireFormat::Seed)));
        assert_eq!(Speaks::Rpc(WireFormat::Seed).name(), "seed");
    }

    #[test]
    fn every_kind_round_trips_through_its_code() {
        let kinds = WireFormat::ALL.map(Speaks::Rpc);
        for speaks in kinds.into_iter().chain([Speaks::Http]) {
            assert_ne!(speaks.code(), 0, "0 means not known yet");
            assert_eq!(Speaks::from_code(speaks.code()), Some(speaks));
        }
        assert_eq!(Speaks::from_code(0), None);
    }
}
