//! The address family of a tracee's socket, for `listen`: a socket the command never bound
//! (the kernel binds it to a random port) carries no address the tracer could read, so
//! its fd is duplicated into the tracer (pidfd_getfd, Linux ≥ 5.6) and asked SO_DOMAIN.
//! Never changes the tracee's socket; the duplicate is closed at once.

use std::os::fd::{FromRawFd, OwnedFd};

/// `tid`'s fd `fd` is a socket of this family; `None` when it cannot be known (an old
/// kernel, a closed fd, not a socket).
pub fn socket_family(tid: i32, fd: i32) -> Option<u16> {
    // SAFETY: plain syscalls; each fd returned is owned at once and closed on drop.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, tid, 0);
        if pidfd < 0 {
            return None;
        }
        let pidfd = OwnedFd::from_raw_fd(pidfd as i32);
        let dup = libc::syscall(
            libc::SYS_pidfd_getfd,
            std::os::fd::AsRawFd::as_raw_fd(&pidfd),
            fd,
            0,
        );
        if dup < 0 {
            return None;
        }
        let dup = OwnedFd::from_raw_fd(dup as i32);
        let mut domain: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let rc = libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&dup),
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut domain as *mut libc::c_int).cast(),
            &mut len,
        );
        (rc == 0).then_some(domain as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn families_of_our_own_sockets() {
        let me = std::process::id() as i32;
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let unix = std::os::unix::net::UnixDatagram::unbound().unwrap();
        let file = std::fs::File::open("/usr").unwrap();
        // pidfd_getfd needs Linux 5.6: None on an older kernel, never a wrong family.
        if let Some(f) = socket_family(me, tcp.as_raw_fd()) {
            assert_eq!(f as i32, libc::AF_INET);
            assert_eq!(
                socket_family(me, unix.as_raw_fd()),
                Some(libc::AF_UNIX as u16)
            );
        }
        assert_eq!(socket_family(me, file.as_raw_fd()), None);
    }
}
