//! Socket reads straight into a `BytesMut`, shared by server and client.
//!
//! Both sides read into the spare capacity of the connection's buffer, so
//! bytes land where the decoder will split frames off them: no scratch
//! buffer, no copy, no zero-filling.

use std::io;
use std::os::fd::AsRawFd;

use bytes::BytesMut;

/// One `read(2)` from `socket` into `buf`'s spare capacity, first making
/// room for at least `chunk / 4` (reserving `chunk` when short of it).
///
/// Returns the bytes read (`0` is EOF) and whether the read was short, i.e.
/// the socket is drained for now: with edge-triggered readiness, new data
/// raises a new event, so another syscall just to see `WouldBlock` can be
/// skipped.
pub(crate) fn read_into(
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
