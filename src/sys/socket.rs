//! Socket calls std does not offer: reading into a buffer's spare
//! capacity, and raising a listener's backlog.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;

use bytes::BytesMut;

/// One `read(2)` from `socket` into `buf`'s spare capacity, first making
/// room for at least `chunk / 4` (reserving `chunk` when short of it).
///
/// Both sides read this way, so bytes land where the decoder will split
/// frames off them: no scratch buffer, no copy, no zero-filling.
///
/// Returns the bytes read (`0` is EOF) and whether the read was short, i.e.
/// the socket is drained for now: with edge-triggered readiness, new data
/// raises a new event, so another syscall just to see `WouldBlock` can be
/// skipped.
pub fn read_into(
    socket: &impl AsRawFd,
    buf: &mut BytesMut,
    chunk: usize,
) -> io::Result<(usize, bool)> {
    if buf.capacity() - buf.len() < chunk / 4 {
        buf.reserve(chunk);
    }
    let spare = buf.spare_capacity_mut();
    let offered = spare.len();
    // SAFETY: the kernel writes at most `offered` bytes into memory we own
    // and tells us how many; only those are then marked initialised.
    let n = unsafe {
        libc::read(
            socket.as_raw_fd(),
            spare.as_mut_ptr().cast::<libc::c_void>(),
            offered,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: `n` bytes were just written by read(2).
    unsafe { buf.set_len(buf.len() + n) };
    Ok((n, n < offered))
}

/// std listens with a backlog of 128, too few for a burst of connects (each
/// dropped SYN costs the client a one-second retry). `listen(2)` may be
/// called again to raise it; the kernel caps it (`net.core.somaxconn`).
pub(crate) fn set_listen_backlog(listener: &TcpListener, backlog: u32) -> io::Result<()> {
    let backlog = backlog.min(i32::MAX as u32) as i32;
    // SAFETY: a plain syscall on a socket we own.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
