//! The tee: the command's stdout and stderr copied live to idem's own streams while
//! being captured as blobs in arrival order. A capture failure never stops the copy:
//! the command's output always flows; it only makes the run unrecordable.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::Captured;
use crate::store::blobs::BlobWriter;
use crate::store::record::{STDERR, STDOUT};

/// The tee's chunks, and whether the capture is complete.
pub(super) fn tee_result(tee: Result<(Vec<(u8, u64)>, bool)>) -> (Vec<(u8, u64)>, bool) {
    match tee {
        Ok((chunks, ok)) => (chunks, ok),
        Err(e) => {
            crate::ui::warn(format!(
                "capturing output failed: {e:#}; this run will not be recorded"
            ));
            (Vec::new(), false)
        }
    }
}

/// Finishes both blobs of a complete capture (`None`: never record this run).
pub(super) fn finish_capture(
    out_w: BlobWriter,
    err_w: BlobWriter,
    chunks: Vec<(u8, u64)>,
    complete: bool,
) -> Option<Captured> {
    if !complete {
        return None;
    }
    match (out_w.finish(), err_w.finish()) {
        (Ok(stdout), Ok(stderr)) => Some(Captured {
            stdout,
            stderr,
            chunks,
        }),
        (Err(e), _) | (_, Err(e)) => {
            crate::ui::warn(format!(
                "storing captured output failed: {e:#}; this run will not be recorded"
            ));
            None
        }
    }
}

/// How long idem keeps reading after the command exited while something it started
/// in the background still holds its stdout/stderr open.
const BACKGROUND_GRACE: Duration = Duration::from_secs(1);

/// A pollable fd that becomes readable when the process exits (Linux ≥ 5.3).
fn pidfd_open(pid: u32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Copies both pipes to our stdout/stderr as data arrives, recording (stream, length)
/// in arrival order. Returns false in the second place when the capture is incomplete
/// (one of our own streams was closed, the cache could not take the bytes, or a
/// background process kept the pipes open), so the run must not be recorded. A
/// capture failure never stops the tee: the command's output always flows.
pub(super) fn tee_streams(
    pid: u32,
    child_out: File,
    child_err: File,
    out_w: &mut BlobWriter,
    err_w: &mut BlobWriter,
) -> Result<(Vec<(u8, u64)>, bool)> {
    let mut readers: [Option<File>; 2] = [Some(child_out), Some(child_err)];
    let mut exited = pidfd_open(pid);
    let mut deadline: Option<Instant> = None;
    let mut chunks: Vec<(u8, u64)> = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut complete = true;
    let mut capturing = true;
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    while readers.iter().any(Option::is_some) {
        let mut slots: Vec<usize> = Vec::with_capacity(3);
        let mut raw: Vec<libc::pollfd> = Vec::with_capacity(3);
        for (i, r) in readers.iter().enumerate() {
            if let Some(f) = r {
                slots.push(i);
                raw.push(libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        if let Some(fd) = &exited {
            slots.push(2);
            raw.push(libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    eprintln!(
                        "idem: warning: the command exited but a process it started still holds its output open; not recorded"
                    );
                    complete = false;
                    for (i, r) in readers.iter_mut().enumerate() {
                        if let Some(f) = r.take() {
                            hand_off(f, if i == 0 { 1 } else { 2 });
                        }
                    }
                    break;
                }
                left.as_millis().min(i32::MAX as u128) as i32
            }
        };
        let rc = unsafe { libc::poll(raw.as_mut_ptr(), raw.len() as libc::nfds_t, timeout_ms) };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err).context("poll on the command's output failed");
        }
        for (&idx, p) in slots.iter().zip(raw.iter()) {
            if p.revents == 0 {
                continue;
            }
            if idx == 2 {
                exited = None;
                deadline = Some(Instant::now() + BACKGROUND_GRACE);
                continue;
            }
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
            // A traced run's spinner never draws over the command's output.
            crate::ui::progress::retire_quiet();
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
            if capturing {
                let stored = if idx == 0 {
                    out_w.write_all(data)
                } else {
                    err_w.write_all(data)
                };
                if let Err(e) = stored {
                    eprintln!(
                        "idem: warning: cannot store the command's output ({e}); not recorded"
                    );
                    capturing = false;
                    complete = false;
                }
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

/// Hands a pipe that a background process of the command still holds to a detached
/// `cat` copying it to our own fd 1 or 2, so that process's later output still
/// arrives (and it gets no SIGPIPE) after idem exits, as it would without idem.
fn hand_off(reader: File, to_fd: i32) {
    use std::os::fd::FromRawFd;
    let dup = unsafe { libc::dup(to_fd) };
    if dup < 0 {
        return;
    }
    // SAFETY: dup returned a fresh descriptor that nothing else owns.
    let out = unsafe { std::os::fd::OwnedFd::from_raw_fd(dup) };
    let mut c = Command::new("cat");
    c.stdin(Stdio::from(reader))
        .stdout(Stdio::from(out))
        .stderr(Stdio::null());
    // SAFETY: setsid() is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let _ = c.spawn();
}
