//! Call metadata: string key/value pairs that travel with a request (a
//! trace id, the caller's name, an auth token) and with its reply.
//!
//! A [`Metadata`] is its own wire encoding (entries back to back, see
//! [`protocol::mprpc`](crate::protocol::mprpc) for the layout) held in one [`Bytes`]: decoding
//! a frame slices it out of the read buffer without copying, and an empty
//! one is `Bytes::new()` — no allocation — so a call without metadata
//! costs nothing. Lookups walk the entries; calls carry a handful.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// The longest metadata key, in bytes (one length byte on the wire).
pub const MAX_KEY_LEN: usize = u8::MAX as usize;
/// The longest metadata value, in bytes (two length bytes on the wire).
pub const MAX_VALUE_LEN: usize = u16::MAX as usize;

/// String key/value pairs of one request or reply, in the order they were
/// inserted; [`insert`](Self::insert) keeps a key unique. Cheap to clone
/// (a `Bytes`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The entries, encoded: `key_len u8 | value_len u16 | key | value`
    /// each, checked well-formed and UTF-8 on creation.
    raw: Bytes,
}

/// A key or value too long for the wire (`MAX_KEY_LEN` / `MAX_VALUE_LEN`).
#[derive(Clone, PartialEq, Eq)]
pub struct MetadataTooLong {
    /// The key concerned.
    pub key: String,
    /// The offending length in bytes.
    pub len: usize,
}

impl fmt::Display for MetadataTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "metadata entry '{}' of {} bytes is too long (keys up to {MAX_KEY_LEN} bytes, \
             values up to {MAX_VALUE_LEN})",
            self.key, self.len
        )
    }
}

impl std::error::Error for MetadataTooLong {}

impl Metadata {
    /// No entries (allocates nothing).
    pub const fn new() -> Metadata {
        Metadata { raw: Bytes::new() }
    }

    /// Metadata holding `pairs` (a later duplicate key replaces the earlier).
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Metadata, MetadataTooLong> {
        let mut metadata = Metadata::new();
        for (key, value) in pairs {
            metadata.insert(key, value)?;
        }
        Ok(metadata)
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The entries, in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { rest: &self.raw }
    }

    /// Sets `key` to `value`, replacing an earlier value of `key`.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), MetadataTooLong> {
        check_entry(key, value)?;
        let mut raw = BytesMut::with_capacity(self.raw.len() + entry_len(key, value));
        for (k, v) in self.iter().filter(|(k, _)| *k != key) {
            put_entry(&mut raw, k, v);
        }
        put_entry(&mut raw, key, value);
        self.raw = raw.freeze();
        Ok(())
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        if self.get(key).is_none() {
            return false;
        }
        let mut raw = BytesMut::with_capacity(self.raw.len());
        for (k, v) in self.iter().filter(|(k, _)| *k != key) {
            put_entry(&mut raw, k, v);
        }
        self.raw = raw.freeze();
        true
    }

    /// The encoded entries, as they go on the wire.
    pub(crate) fn as_wire(&self) -> &[u8] {
        &self.raw
    }

    /// Metadata from its wire encoding (a slice of a frame), checked:
    /// lengths add up, keys and values are UTF-8 (a repeated key from a
    /// peer is kept; [`get`](Self::get) finds the first).
    pub(crate) fn from_wire(raw: Bytes) -> Result<Metadata, &'static str> {
        let mut rest = &raw[..];
        while !rest.is_empty() {
            let (key, value, next) =
                split_entry(rest).ok_or("metadata entry overruns its block")?;
            std::str::from_utf8(key).map_err(|_| "metadata key is not UTF-8")?;
            std::str::from_utf8(value).map_err(|_| "metadata value is not UTF-8")?;
            rest = next;
        }
        Ok(Metadata { raw })
    }
}

/// The encoded size of one entry.
pub(crate) fn entry_len(key: &str, value: &str) -> usize {
    3 + key.len() + value.len()
}

/// Checks that an entry fits the wire.
pub(crate) fn check_entry(key: &str, value: &str) -> Result<(), MetadataTooLong> {
    let len = if key.len() > MAX_KEY_LEN {
        key.len()
    } else if value.len() > MAX_VALUE_LEN {
        value.len()
    } else {
        return Ok(());
    };
    Err(MetadataTooLong {
        key: key.chars().take(64).collect(),
        len,
    })
}

/// Appends one entry (checked by [`check_entry`]).
pub(crate) fn put_entry(dst: &mut BytesMut, key: &str, value: &str) {
    dst.put_u8(key.len() as u8);
    dst.put_u16(value.len() as u16);
    dst.put_slice(key.as_bytes());
    dst.put_slice(value.as_bytes());
}

/// The first entry of `raw` and what follows it; `None` if it overruns.
fn split_entry(raw: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let key_len = *raw.first()? as usize;
    let value_len = u16::from_be_bytes([*raw.get(1)?, *raw.get(2)?]) as usize;
    let key = raw.get(3..3 + key_len)?;
    let value = raw.get(3 + key_len..3 + key_len + value_len)?;
    Some((key, value, &raw[3 + key_len + value_len..]))
}

/// The entries of a [`Metadata`].
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let (key, value, rest) = split_entry(self.rest)?;
        self.rest = rest;
        // SAFETY: every constructor checked the entries are UTF-8.
        unsafe {
            Some((
                std::str::from_utf8_unchecked(key),
                std::str::from_utf8_unchecked(value),
            ))
        }
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replaces_and_lookups_find() {
        let mut m = Metadata::from_pairs([("a", "1"), ("caller", "web")]).unwrap();
        m.insert("a", "2").unwrap();
        assert_eq!(m.get("a"), Some("2"));
        assert_eq!(m.get("caller"), Some("web"));
        assert_eq!(m.len(), 2);
        assert!(m.remove("caller"));
        assert!(!m.remove("caller"));
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![("a", "2")]);
        let long = "k".repeat(MAX_KEY_LEN + 1);
        assert_eq!(m.insert(&long, "v").unwrap_err().len, MAX_KEY_LEN + 1);
    }

    #[test]
    fn wire_form_is_checked() {
        let m = Metadata::from_pairs([("trace-id", "00ff"), ("", "")]).unwrap();
        let again = Metadata::from_wire(Bytes::copy_from_slice(m.as_wire())).unwrap();
        assert_eq!(again, m);
        assert!(Metadata::from_wire(Bytes::from_static(b"\x05\x00\x01ab")).is_err());
        assert!(Metadata::from_wire(Bytes::from_static(b"\x01\x00\x00\xff")).is_err());
        assert!(Metadata::new().is_empty());
    }
}
