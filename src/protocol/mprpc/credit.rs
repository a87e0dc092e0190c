//! A stream sender's flow-control credit, the same on both halves: the
//! messages the peer still takes (its window, then its grants) and the
//! sizes of the message frames sent that it has not read yet. A grant of
//! n says the peer read the n oldest, so the bytes held for a reader that
//! stops stay under one byte cap however large its message window is.

use std::collections::VecDeque;

/// What one direction of a stream may still send.
#[derive(Debug, Default)]
pub(crate) struct SendCredit {
    /// Messages the peer still takes.
    messages: u32,
    /// The sizes of the frames sent and not yet read, oldest first, and
    /// their sum.
    unread: VecDeque<u32>,
    unread_bytes: usize,
}

impl SendCredit {
    /// Credit for the peer's first `messages`.
    pub(crate) fn new(messages: u32) -> SendCredit {
        SendCredit {
            messages,
            ..SendCredit::default()
        }
    }

    /// One more message may go out: the peer takes it, and what it has
    /// not read yet is under `bytes_cap`.
    #[inline]
    pub(crate) fn may_send(&self, bytes_cap: usize) -> bool {
        self.messages > 0 && self.unread_bytes < bytes_cap
    }

    /// A message frame of `size` bytes went out, spending one credit.
    #[inline]
    pub(crate) fn spend(&mut self, size: usize) {
        self.messages -= 1;
        self.unread.push_back(size as u32);
        self.unread_bytes += size;
    }

    /// The peer read its `messages` oldest and takes that many more.
    pub(crate) fn grant(&mut self, messages: u32) {
        self.messages = self.messages.saturating_add(messages);
        for _ in 0..messages {
            let Some(size) = self.unread.pop_front() else {
                break;
            };
            self.unread_bytes -= size as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_runs_out_by_messages_and_by_bytes() {
        let mut credit = SendCredit::new(2);
        assert!(credit.may_send(100));
        credit.spend(60);
        assert!(credit.may_send(100), "one message and 40 bytes left");
        credit.spend(60);
        assert!(!credit.may_send(1_000), "no messages left");
        credit.grant(1);
        assert!(credit.may_send(100), "the oldest 60 bytes were read");
        assert!(!credit.may_send(60), "60 bytes still unread");
        credit.grant(5);
        assert!(
            credit.may_send(1),
            "all read; a grant past what was sent only adds credit"
        );
        for _ in 0..6 {
            credit.spend(10);
        }
        assert!(!credit.may_send(1_000), "1 left + 5 granted = 6 spent");
    }
}
