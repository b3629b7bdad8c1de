//! Single flight on one machine: an exclusive `flock` on `locks/<key>` held by the idem
//! process executing a (task, state) or an execution key. The kernel drops the lock
//! when the holder dies in any way, so a stale lease can never block anyone forever.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::encode::hex;

/// A held lease; dropping it releases the lock (and removes the lock file first, so
/// the next holder always locks a fresh inode).
pub struct Lease {
    file: Option<File>,
    path: PathBuf,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

/// Who holds a lease, as written in its lock file.
#[derive(Debug, Clone, Default)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub started_ns: i64,
}

impl Holder {
    fn parse(s: &str) -> Option<Self> {
        let mut it = s.split_whitespace();
        Some(Holder {
            pid: it.next()?.parse().ok()?,
            started_ns: it.next()?.parse().ok()?,
            host: it.next().unwrap_or("").to_string(),
        })
    }
}

pub enum Acquire {
    Got(Lease),
    Busy(Holder),
}

pub fn lock_path(cache_dir: &Path, name: &[u8; 32]) -> PathBuf {
    cache_dir.join("locks").join(hex(name))
}

fn flock(file: &File, blocking: bool) -> std::io::Result<bool> {
    let op = if blocking {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// Opens (creating it 0600) the lock file without following a symlink planted in its
/// place: claiming truncates the file, which must never reach anything outside the cache.
fn open_lock(path: &Path) -> Result<File> {
    let dir = path
        .parent()
        .context("lock path has a parent by construction")?;
    if !dir.is_dir() {
        crate::store::private::create_dir(dir)?;
    }
    crate::store::private::open_rw(path, false).context("cannot open lock file")
}

/// The file we locked is still the one at `path` (not unlinked by a releasing holder).
fn still_current(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

fn claim(mut file: File, path: &Path) -> Result<Lease> {
    let me = format!(
        "{} {} {}\n",
        std::process::id(),
        crate::clock::real_now_ns(),
        crate::host::name()
    );
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(me.as_bytes())?;
    Ok(Lease {
        file: Some(file),
        path: path.to_path_buf(),
    })
}

fn read_holder(path: &Path) -> Holder {
    let mut s = String::new();
    if let Ok(mut f) = crate::store::private::open_read(path) {
        let _ = f.read_to_string(&mut s);
    }
    Holder::parse(&s).unwrap_or_default()
}

/// Takes the lease if nobody holds it.
pub fn try_acquire(cache_dir: &Path, name: &[u8; 32]) -> Result<Acquire> {
    let path = lock_path(cache_dir, name);
    loop {
        let file = open_lock(&path)?;
        if !flock(&file, false).with_context(|| format!("cannot lock {}", path.display()))? {
            return Ok(Acquire::Busy(read_holder(&path)));
        }
        if still_current(&file, &path) {
            return Ok(Acquire::Got(claim(file, &path)?));
        }
    }
}

/// Waits for the holder to finish (or die), then takes the lease. `None` when
/// `timeout` passed first. The wait sleeps in the kernel: no polling of anything.
pub fn wait_acquire(
    cache_dir: &Path,
    name: &[u8; 32],
    timeout: Option<Duration>,
    mut tick: impl FnMut(&Holder),
) -> Result<Option<Lease>> {
    let path = lock_path(cache_dir, name);
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let file = open_lock(&path)?;
        let holder = read_holder(&path);
        let (tx, rx) = mpsc::channel();
        let waiter = file.try_clone()?;
        std::thread::spawn(move || {
            let res = flock(&waiter, true);
            let _ = tx.send(res);
        });
        loop {
            let step = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    left.min(Duration::from_millis(100))
                }
                None => Duration::from_millis(100),
            };
            match rx.recv_timeout(step) {
                Ok(res) => {
                    res.with_context(|| format!("cannot lock {}", path.display()))?;
                    break;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => tick(&holder),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    anyhow::bail!("lock waiter thread ended without an answer")
                }
            }
        }
        if still_current(&file, &path) {
            return Ok(Some(claim(file, &path)?));
        }
    }
}
