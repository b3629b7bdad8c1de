//! Spawning the command: stdin inherited (or fed from a spooled file), stdout and
//! stderr teed live to our own streams while being captured as blobs in arrival order.
//! Signals meant for idem reach the child; nothing here decides what gets recorded.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::store::blobs::{BlobStore, BlobWriter};
use crate::store::record::{BlobRef, STDERR, STDOUT};

/// How to start the command.
pub struct ExecCommand {
    pub program: PathBuf,
    pub argv: Vec<OsString>,
    /// `Some` replaces the whole environment (--strict-env).
    pub env: Option<Vec<(OsString, OsString)>>,
    /// A spooled copy of stdin (--stdin); else stdin is inherited.
    pub stdin: Option<File>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// What idem exits with: the code, or 128+N for signal N (as shells report it).
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

pub struct Captured {
    pub stdout: BlobRef,
    pub stderr: BlobRef,
    pub chunks: Vec<(u8, u64)>,
}

pub struct Outcome {
    pub exit: Exit,
    pub duration: Duration,
    /// `None` when capture failed or a stream was cut short: never record that.
    pub captured: Option<Captured>,
    /// idem itself received SIGINT/SIGTERM/SIGHUP/SIGQUIT while the command ran.
    pub interrupted: bool,
}

static CHILD_PID: AtomicI32 = AtomicI32::new(0);
static GOT_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    GOT_SIGNAL.store(sig, Ordering::SeqCst);
    // A terminal's Ctrl-C already reached the whole foreground process group, child
    // included (si_code SI_KERNEL); forward only signals sent to idem by a process.
    let from_process = info.is_null() || unsafe { (*info).si_code } <= 0;
    let pid = CHILD_PID.load(Ordering::SeqCst);
    if pid > 0 && (from_process || sig == libc::SIGTERM || sig == libc::SIGHUP) {
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Publishes the child's pid to the signal handler. A signal that arrived while the
/// child was being spawned (before its pid was known) is forwarded now.
fn register_child(pid: u32) {
    CHILD_PID.store(pid as i32, Ordering::SeqCst);
    let pending = GOT_SIGNAL.load(Ordering::SeqCst);
    if pending != 0 {
        unsafe {
            libc::kill(pid as i32, pending);
        }
    }
}

fn install_forwarding() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn build(cmd: &ExecCommand) -> Command {
    let mut c = Command::new(&cmd.program);
    c.arg0(&cmd.argv[0]).args(&cmd.argv[1..]);
    if let Some(env) = &cmd.env {
        c.env_clear();
        c.envs(env.iter().map(|(k, v)| (k, v)));
    }
    c
}

/// Spawn error → the shell's exit code and message.
pub fn spawn_error(cmd: &ExecCommand, e: &std::io::Error) -> (i32, String) {
    let name = cmd.argv[0].to_string_lossy();
    match e.kind() {
        std::io::ErrorKind::NotFound => (127, format!("idem: {name}: command not found")),
        _ => (126, format!("idem: {name}: cannot execute: {e}")),
    }
}

/// Runs the command with plain inherited stdio: what idem does when its cache is broken.
pub fn run_plain(cmd: &mut ExecCommand) -> Result<Exit, (i32, String)> {
    install_forwarding();
    let mut c = build(cmd);
    if let Some(f) = cmd.stdin.take() {
        c.stdin(Stdio::from(f));
    }
    let mut child = c.spawn().map_err(|e| spawn_error(cmd, &e))?;
    register_child(child.id());
    let status = child
        .wait()
        .map_err(|e| (70, format!("idem: waiting for the command failed: {e}")))?;
    Ok(status_to_exit(status))
}

fn status_to_exit(status: std::process::ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        (None, None) => Exit::Code(1),
    }
}

/// Runs the command, teeing and capturing its output into the blob store.
pub fn run_captured(
    cmd: &mut ExecCommand,
    blobs: &BlobStore,
) -> Result<Result<Outcome, (i32, String)>> {
    let mut out_w = blobs.writer().context("cannot capture stdout")?;
    let mut err_w = blobs.writer().context("cannot capture stderr")?;
    install_forwarding();
    let mut c = build(cmd);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(f) = cmd.stdin.take() {
        c.stdin(Stdio::from(f));
    }
    let start = Instant::now();
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => return Ok(Err(spawn_error(cmd, &e))),
    };
    register_child(child.id());
    let child_out = child
        .stdout
        .take()
        .context("child stdout is piped by construction")?;
    let child_err = child
        .stderr
        .take()
        .context("child stderr is piped by construction")?;

    let mut complete = true;
    let tee = tee_streams(child_out, child_err, &mut out_w, &mut err_w);
    let chunks = match tee {
        Ok((chunks, ok)) => {
            complete &= ok;
            chunks
        }
        Err(e) => {
            eprintln!(
                "idem: warning: capturing output failed: {e:#}; this run will not be recorded"
            );
            complete = false;
            Vec::new()
        }
    };
    let status = child.wait().context("waiting for the command failed")?;
    let duration = start.elapsed();
    CHILD_PID.store(0, Ordering::SeqCst);
    let exit = status_to_exit(status);
    let captured = if complete {
        match (out_w.finish(), err_w.finish()) {
            (Ok(stdout), Ok(stderr)) => Some(Captured {
                stdout,
                stderr,
                chunks,
            }),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("idem: warning: storing captured output failed: {e:#}; this run will not be recorded");
                None
            }
        }
    } else {
        None
    };
    Ok(Ok(Outcome {
        exit,
        duration,
        captured,
        interrupted: GOT_SIGNAL.load(Ordering::SeqCst) != 0,
    }))
}

/// Copies both pipes to our stdout/stderr as data arrives, recording (stream, length)
/// in arrival order. Returns false in the second place when the capture is incomplete
/// (one of our own streams was closed), so the run must not be recorded.
fn tee_streams(
    child_out: std::process::ChildStdout,
    child_err: std::process::ChildStderr,
    out_w: &mut BlobWriter,
    err_w: &mut BlobWriter,
) -> Result<(Vec<(u8, u64)>, bool)> {
    use std::os::fd::OwnedFd;
    let mut readers: [Option<File>; 2] = [
        Some(File::from(OwnedFd::from(child_out))),
        Some(File::from(OwnedFd::from(child_err))),
    ];
    let mut chunks: Vec<(u8, u64)> = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut complete = true;
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    while readers.iter().any(Option::is_some) {
        let mut pfds: Vec<(usize, libc::pollfd)> = Vec::with_capacity(2);
        for (i, r) in readers.iter().enumerate() {
            if let Some(f) = r {
                pfds.push((
                    i,
                    libc::pollfd {
                        fd: f.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    },
                ));
            }
        }
        let mut raw: Vec<libc::pollfd> = pfds.iter().map(|(_, p)| *p).collect();
        let rc = unsafe { libc::poll(raw.as_mut_ptr(), raw.len() as libc::nfds_t, -1) };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err).context("poll on the command's output failed");
        }
        for (slot, p) in pfds.iter().zip(raw.iter()) {
            if p.revents == 0 {
                continue;
            }
            let idx = slot.0;
            let Some(reader) = readers[idx].as_mut() else {
                continue;
            };
            let n = loop {
                match reader.read(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            }
            .context("reading the command's output failed")?;
            if n == 0 {
                readers[idx] = None;
                continue;
            }
            let data = &buf[..n];
            let res = if idx == 0 {
                let mut l = stdout.lock();
                l.write_all(data).and_then(|_| l.flush())
            } else {
                let mut l = stderr.lock();
                l.write_all(data).and_then(|_| l.flush())
            };
            if res.is_err() {
                // Our reader went away (EPIPE): close this pipe so the command sees a
                // broken pipe too, exactly as it would without idem; never record this.
                readers[idx] = None;
                complete = false;
                continue;
            }
            if idx == 0 {
                out_w.write_all(data)?;
            } else {
                err_w.write_all(data)?;
            }
            let stream = if idx == 0 { STDOUT } else { STDERR };
            match chunks.last_mut() {
                Some((s, len)) if *s == stream => *len += n as u64,
                _ => chunks.push((stream, n as u64)),
            }
        }
    }
    Ok((chunks, complete))
}
