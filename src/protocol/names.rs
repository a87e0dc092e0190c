//! A call's service and method names, checked to be UTF-8 as they are
//! decoded, cheaply: names are almost always ASCII, so one word-at-a-time
//! ASCII test over both names decides most calls, and only names with a
//! byte over 0x7f go through the full UTF-8 check, each on its own (a
//! character split across the two names is not valid in either). The full
//! check on every call cost ~180 instructions of the server's ~1,900 per
//! call (callgrind, results/PROFILE.md; issue 25).

/// Whether `names[..service_len]` and `names[service_len..]` are both UTF-8.
#[inline]
pub(crate) fn names_are_utf8(names: &[u8], service_len: usize) -> bool {
    if names.is_ascii() {
        return true;
    }
    let (service, method) = names.split_at(service_len.min(names.len()));
    std::str::from_utf8(service).is_ok() && std::str::from_utf8(method).is_ok()
}

#[cfg(test)]
mod tests {
    use super::names_are_utf8;

    #[test]
    fn ascii_and_utf8_names_pass_and_broken_ones_fail() {
        assert!(names_are_utf8(b"EchoServiceEcho", 11));
        assert!(names_are_utf8(b"", 0));
        assert!(names_are_utf8("Dienst\u{e9}M\u{e9}thode".as_bytes(), 8));
        assert!(!names_are_utf8(b"S\xffM", 1), "a stray byte");
        assert!(!names_are_utf8(b"\xffSM", 0), "in the method");
        // "é" is 0xc3 0xa9: valid as a whole, not when the names split it.
        assert!(!names_are_utf8("S\u{e9}".as_bytes(), 2));
        assert!(!names_are_utf8(b"0123456789abcdef0123456789\x80", 3));
    }
}
