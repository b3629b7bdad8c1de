//! Process helpers for the crash, fault and soak suites: spawning idem so that the
//! test can wait for it *and every process it started* to be gone (a pipe whose write
//! end all of them inherit reaches EOF only then: no sleeps, no polling). Servers are
//! in common::servers.
#![allow(dead_code)]

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command};

/// A spawned process tree: `child` is idem; `wait_tree` returns once idem and every
/// descendant that inherited fd 3 (the command, a background refresher) has exited.
pub struct Tracked {
    pub child: Child,
    tree: Option<std::fs::File>,
}

impl Tracked {
    pub fn spawn(cmd: &mut Command) -> Tracked {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two fds into the array; both are owned below.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
        // SAFETY: fresh fds from pipe2, owned exactly once.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let write_fd = std::os::fd::AsRawFd::as_raw_fd(&write);
        // SAFETY: dup2 is async-signal-safe; the new fd 3 has no CLOEXEC, so idem and
        // everything it spawns keep the write end open until they exit.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(write_fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn idem");
        drop(write);
        Tracked {
            child,
            tree: Some(std::fs::File::from(read)),
        }
    }

    pub fn stdout(&mut self) -> ChildStdout {
        self.child.stdout.take().expect("stdout piped")
    }

    pub fn kill(&mut self) {
        // SAFETY: kill(2) on our own child's pid, not yet reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGKILL);
        }
    }

    /// Waits for idem's exit status, then for the whole tree to be gone.
    pub fn wait_tree(&mut self) -> std::process::ExitStatus {
        let status = self.child.wait().expect("wait idem");
        if let Some(mut tree) = self.tree.take() {
            let mut sink = Vec::new();
            let _ = tree.read_to_end(&mut sink);
        }
        status
    }
}
