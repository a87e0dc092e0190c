//! Open-loop pacing: a `timerfd` wakes the engine for the next due call
//! with nanosecond resolution (epoll's own timeout has 1 ms).

use std::io;
use std::time::{Duration, Instant};

use mio::{Interest, Poll};

use super::{Engine, TIMER};
use crate::protocol::Protocol;

/// A one-shot `timerfd` registered with the poll (Linux).
pub(super) struct Timer {
    fd: std::os::fd::OwnedFd,
    /// The call the timer is set to wake us for, until it fires.
    pub(super) armed_for: Option<Instant>,
}

impl Timer {
    pub(super) fn new(poll: &Poll) -> Result<Timer, String> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: plain syscall; the fd is owned from here on.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(format!("timerfd_create: {}", io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh fd nobody else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        poll.registry()
            .register(
                &mut mio::unix::SourceFd(&fd.as_raw_fd()),
                TIMER,
                Interest::READABLE,
            )
            .map_err(|e| format!("register timerfd: {e}"))?;
        Ok(Timer {
            fd,
            armed_for: None,
        })
    }

    pub(super) fn set(&self, after: Duration) -> Result<(), String> {
        use std::os::fd::AsRawFd;
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: valid fd and a fully initialised itimerspec.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(format!("timerfd_settime: {}", io::Error::last_os_error()));
        }
        Ok(())
    }

    pub(super) fn clear(&mut self) {
        use std::os::fd::AsRawFd;
        self.armed_for = None;
        let mut n = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a local buffer.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), n.as_mut_ptr().cast(), 8) };
    }
}

impl<'a, P: Protocol> Engine<'a, P> {
    /// Open loop: wake when the next call is due.
    pub(super) fn arm_timer(&mut self, now: Instant) -> Result<(), String> {
        let Some(s) = self.plan.schedule else {
            return Ok(());
        };
        let next = s.at(self.next_k);
        if next <= now || next >= self.plan.end || self.timer.armed_for == Some(next) {
            // Due already (waiting for a slot: replies wake us), past the
            // end, or armed for it already (a reply woke us first).
            return Ok(());
        }
        self.timer.set(next - now)?;
        self.timer.armed_for = Some(next);
        Ok(())
    }
}
