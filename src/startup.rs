//! What Rust's runtime start-up did before `main` that idem relies on, done by the
//! binary's own C `main` instead (src/main.rs; docs/benchmarks.md H13 says why): closed
//! standard descriptors reopened on /dev/null, SIGPIPE ignored. Allocation-free; it must
//! never do more than that start-up did.

/// Call first thing in `main`, before any file is opened.
pub fn init() {
    // Before the descriptors are reopened: `cmd >&-` must stay visible to the engine.
    crate::exec::probe_closed_stdio();
    reopen_closed_stdio();
    // Writes to a closed pipe fail with EPIPE (a replay reports it as 141) instead of
    // killing idem. The command itself gets SIGPIPE back: std's spawn resets it.
    // SAFETY: setting a signal disposition to SIG_IGN touches no memory of ours.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Opens /dev/null on each of fds 0–2 that is not open, as std's runtime does: otherwise
/// the first file idem opens would become its stdout or stderr.
fn reopen_closed_stdio() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll, fcntl and open on the process's own descriptors, with a valid array
    // and a static C string; abort() when /dev/null cannot be opened, as std does.
    unsafe {
        while libc::poll(fds.as_mut_ptr(), 3, 0) == -1 {
            match *libc::__errno_location() {
                libc::EINTR => continue,
                // RLIMIT_NOFILE or a transient allocation failure can refuse poll().
                libc::EINVAL | libc::EAGAIN | libc::ENOMEM => {
                    for fd in 0..3 {
                        if libc::fcntl(fd, libc::F_GETFD) == -1
                            && *libc::__errno_location() == libc::EBADF
                        {
                            open_dev_null();
                        }
                    }
                    return;
                }
                _ => libc::abort(),
            }
        }
        // In order 0, 1, 2: open() takes the lowest free descriptor, the closed one.
        for pfd in fds {
            if pfd.revents & libc::POLLNVAL != 0 {
                open_dev_null();
            }
        }
    }
}

unsafe fn open_dev_null() {
    if libc::open(c"/dev/null".as_ptr(), libc::O_RDWR, 0) == -1 {
        libc::abort();
    }
}
