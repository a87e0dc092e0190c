//! Socket calls std does not offer: reading into a buffer's spare
//! capacity, raising a listener's backlog, and the kernel's liveness
//! checks of a connection (TCP keepalive, `TCP_USER_TIMEOUT`).

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

/// Liveness of an idle or one-way-cut TCP connection, left to the kernel:
/// `keepalive` turns on TCP keepalive with that idle time (probes then go
/// every third of it, at least 1 s apart, three of them), and
/// `user_timeout` (`TCP_USER_TIMEOUT`) bounds how long sent data (or a
/// keepalive probe) may stay unacknowledged before the kernel drops the
/// connection with `ETIMEDOUT`. `None` leaves the kernel's default.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TcpLiveness {
    pub(crate) keepalive: Option<std::time::Duration>,
    pub(crate) user_timeout: Option<std::time::Duration>,
}

impl TcpLiveness {
    /// Sets these options on `socket`.
    pub(crate) fn apply(&self, socket: &impl AsRawFd) -> io::Result<()> {
        let fd = socket.as_raw_fd();
        if let Some(idle) = self.keepalive {
            let idle_s = idle.as_secs().clamp(1, i32::MAX as u64) as i32;
            let interval_s = (idle_s / 3).max(1);
            setsockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
            setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, idle_s)?;
            setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, interval_s)?;
            setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3)?;
        }
        if let Some(timeout) = self.user_timeout {
            let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
            setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, ms)?;
        }
        Ok(())
    }
}

/// One integer socket option; the error names it.
fn setsockopt(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    value: i32,
) -> io::Result<()> {
    // SAFETY: a plain syscall on a socket we own, reading one c_int.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast::<libc::c_void>(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("setsockopt({level}, {name}): {e}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TcpLiveness;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    fn getsockopt(socket: &impl AsRawFd, level: libc::c_int, name: libc::c_int) -> i32 {
        let mut value: i32 = -1;
        let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
        // SAFETY: reads one c_int into `value`.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                level,
                name,
                (&mut value as *mut i32).cast::<libc::c_void>(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "getsockopt: {}", std::io::Error::last_os_error());
        value
    }

    #[test]
    fn liveness_options_reach_the_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let liveness = TcpLiveness {
            keepalive: Some(Duration::from_secs(30)),
            user_timeout: Some(Duration::from_millis(2500)),
        };
        liveness.apply(&stream).unwrap();
        assert_eq!(getsockopt(&stream, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
        assert_eq!(
            getsockopt(&stream, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
            30
        );
        assert_eq!(
            getsockopt(&stream, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL),
            10
        );
        assert_eq!(getsockopt(&stream, libc::IPPROTO_TCP, libc::TCP_KEEPCNT), 3);
        let user = getsockopt(&stream, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT);
        assert_eq!(user, 2500);
        // None leaves the kernel's defaults alone.
        let other = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        TcpLiveness::default().apply(&other).unwrap();
        assert_eq!(getsockopt(&other, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 0);
        assert_eq!(
            getsockopt(&other, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT),
            0
        );
    }
}
