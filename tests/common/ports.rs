//! An address that refuses connections, reserved for the whole test
//! process so nothing else can start listening on it meanwhile.
//!
//! "Bind port 0, read it, drop the listener" gives a port that refuses
//! until someone else (another test, another process) binds it; a fixed
//! port such as 9 or 1 may well be open. A TCP socket that is bound but
//! never listens holds the port and answers every connect with a reset.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{FromRawFd, OwnedFd};

/// A 127.0.0.1 address whose connects are refused, for as long as this
/// process lives (its socket is kept open on purpose).
pub fn refusing_addr() -> SocketAddr {
    // SAFETY: plain socket calls on a descriptor this function owns, with
    // a sockaddr_in it built and a length that matches it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let socket = OwnedFd::from_raw_fd(fd);
        let mut addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let bound = libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len);
        assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
        let named = libc::getsockname(fd, (&mut addr as *mut libc::sockaddr_in).cast(), &mut len);
        assert_eq!(named, 0, "getsockname: {}", std::io::Error::last_os_error());
        // Held until the process exits: the port stays ours, and closed.
        std::mem::forget(socket);
        SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::LOCALHOST,
            u16::from_be(addr.sin_port),
        ))
    }
}
