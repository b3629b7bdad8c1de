//! Process helpers for the crash, fault and soak suites: spawning idem so that the
//! test can wait for it *and every process it started* to be gone (a pipe whose write
//! end all of them inherit reaches EOF only then: no sleeps, no polling), and a
//! redis-server on loopback whose readiness is read from its own log line.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};

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

/// A redis-server on a free loopback port, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// `None` (with a printed reason) when redis-server is missing, except under CI.
    pub fn start() -> Option<RedisServer> {
        let found = std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|d| d.join("redis-server").is_file())
        });
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is required in CI; .ci/run installs it"
            );
            eprintln!("skipping the redis part: redis-server not installed");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "notice"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let out = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(out).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("Ready to accept connections") => break,
                Some(Ok(_)) => continue,
                _ => panic!("redis-server exited before it was ready"),
            }
        }
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Some(RedisServer {
            child,
            port,
            _dir: dir,
        })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
