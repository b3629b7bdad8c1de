//! Content-addressed blob store: `blobs/ab/cdef…` named by blake3. Blobs are written to
//! a temporary name and renamed into place, and verified against their hash before any
//! byte of them is used: a corrupt blob is a miss, never a wrong replay.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::record::BlobRef;
use crate::encode::hex;

#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
    /// Blobs this process wrote through a [`BlobWriter`], which hashed every byte as it
    /// went to the file: an upload right after need not read them back to verify them.
    written: Arc<Mutex<HashSet<[u8; 32]>>>,
}

impl BlobStore {
    pub fn new(cache_dir: &Path) -> Self {
        Self {
            dir: cache_dir.join("blobs"),
            written: Arc::default(),
        }
    }

    /// Whether this process wrote this blob's file itself from bytes it hashed (not a
    /// copy of an output file, not a blob that was already there).
    pub fn written_here(&self, blob: &BlobRef) -> bool {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&blob.hash)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, hash: &[u8; 32]) -> PathBuf {
        let h = hex(hash);
        self.dir.join(&h[..2]).join(&h[2..])
    }

    fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    pub fn contains(&self, blob: &BlobRef) -> bool {
        blob.size == 0
            || std::fs::metadata(self.path(&blob.hash)).is_ok_and(|m| m.len() == blob.size)
    }

    /// A writer that hashes what it is given and becomes a blob on `finish`.
    pub fn writer(&self) -> Result<BlobWriter> {
        let file = self.temp_file()?;
        Ok(BlobWriter {
            store: self.clone(),
            file: std::io::BufWriter::with_capacity(1 << 16, file),
            hasher: blake3::Hasher::new(),
            size: 0,
            fault: injected_fault(),
        })
    }

    /// Stores a file's content (copied with the kernel's fast paths when possible).
    pub fn put_file(&self, src: &Path, size: u64) -> Result<BlobRef> {
        let hash = crate::deps::files::hash_file_streaming(src, size)
            .with_context(|| format!("cannot read output {}", src.display()))?;
        let blob = BlobRef { hash, size };
        if self.contains(&blob) {
            return Ok(blob);
        }
        let tmpfile = self.temp_file()?;
        // Copied into the open temporary (0600, created O_EXCL), never by its name:
        // nothing can be written through a link, and no mode is carried over.
        if let Some(f) = injected_fault().filter(|f| size > f.after) {
            return Err(f.error())
                .with_context(|| format!("cannot copy {} into the cache", src.display()));
        }
        let mut from =
            File::open(src).with_context(|| format!("cannot read output {}", src.display()))?;
        std::io::copy(&mut from, &mut tmpfile.as_file())
            .with_context(|| format!("cannot copy {} into the cache", src.display()))?;
        self.install(tmpfile, &hash)?;
        Ok(blob)
    }

    /// A new temporary file (0600, `O_EXCL`) in `blobs/tmp`. The directory is created
    /// only when it is missing: asking for it before every blob cost a `mkdir` and a
    /// `stat` per file, thousands for a record of many small outputs.
    fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        let tmp = self.tmp_dir();
        let file = match tempfile::NamedTempFile::new_in(&tmp) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                super::private::create_dir(&tmp)?;
                tempfile::NamedTempFile::new_in(&tmp)
            }
            other => other,
        };
        file.with_context(|| format!("cannot create a temporary file in {}", tmp.display()))
    }

    /// Renames a finished temporary into place, creating its `ab/` directory only when
    /// the rename says it is missing.
    fn install(&self, tmp: tempfile::NamedTempFile, hash: &[u8; 32]) -> Result<()> {
        let dest = self.path(hash);
        let res = match tmp.persist(&dest) {
            Err(e) if e.error.kind() == std::io::ErrorKind::NotFound => {
                let parent = dest
                    .parent()
                    .context("blob path has a parent by construction")?;
                super::private::create_dir(parent)?;
                e.file.persist(&dest)
            }
            other => other,
        };
        res.map_err(|e| e.error)
            .with_context(|| format!("cannot store blob {}", dest.display()))?;
        Ok(())
    }

    /// Opens a blob after verifying its whole content against its hash.
    pub fn open_verified(&self, blob: &BlobRef) -> Result<Option<File>> {
        if blob.size == 0 {
            return Ok(None);
        }
        let path = self.path(&blob.hash);
        let file = super::private::open_read(&path)
            .with_context(|| format!("blob {} is missing", path.display()))?;
        let len = file.metadata()?.len();
        if len != blob.size {
            bail!(
                "blob {} has {} bytes, expected {}",
                path.display(),
                len,
                blob.size
            );
        }
        let got = if len >= 1 << 20 {
            hash_windows(&file, len)
        } else {
            crate::deps::files::hash_reader(&mut &file, len)
        }
        .with_context(|| format!("cannot read blob {}", path.display()))?;
        if got != blob.hash {
            // Drop it so the next run that produces these bytes stores them afresh.
            let _ = std::fs::remove_file(&path);
            bail!(
                "blob {} is corrupt (its content does not match its hash)",
                path.display()
            );
        }
        Ok(Some(file))
    }

    /// Re-hashes a blob file; used by `verify`.
    pub fn check(&self, blob: &BlobRef) -> Result<()> {
        self.open_verified(blob).map(|_| ())
    }

    pub fn remove(&self, hash: &[u8; 32]) -> Result<()> {
        let p = self.path(hash);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", p.display())),
        }
    }
}

pub struct BlobWriter {
    store: BlobStore,
    file: std::io::BufWriter<tempfile::NamedTempFile>,
    hasher: blake3::Hasher,
    size: u64,
    fault: Option<Fault>,
}

/// An I/O error injected into blob writes for the reliability suite.
#[derive(Debug, Clone, Copy)]
struct Fault {
    errno: i32,
    /// Writes fail once a blob would grow past this many bytes.
    after: u64,
}

impl Fault {
    fn error(self) -> std::io::Error {
        std::io::Error::from_raw_os_error(self.errno)
    }
}

/// Test-only hook (docs/reliability.md): `IDEM_TEST_BLOB_FAULT=eio:N` (or `enospc:N`)
/// makes every blob write fail with EIO (ENOSPC) once the blob would pass N bytes, the
/// way a failing disk would. Read only when a blob is written, never on a hit.
fn injected_fault() -> Option<Fault> {
    let v = std::env::var("IDEM_TEST_BLOB_FAULT").ok()?;
    let (kind, after) = v.split_once(':')?;
    let errno = match kind {
        "eio" => libc::EIO,
        "enospc" => libc::ENOSPC,
        _ => return None,
    };
    Some(Fault {
        errno,
        after: after.parse().ok()?,
    })
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(f) = self
            .fault
            .filter(|f| self.size + buf.len() as u64 > f.after)
        {
            return Err(f.error());
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter {
    pub fn finish(self) -> Result<BlobRef> {
        let hash = *self.hasher.finalize().as_bytes();
        let blob = BlobRef {
            hash,
            size: self.size,
        };
        if blob.size == 0 || self.store.contains(&blob) {
            return Ok(blob);
        }
        self.persist(blob)
    }

    fn persist(self, blob: BlobRef) -> Result<BlobRef> {
        let tmp = self
            .file
            .into_inner()
            .map_err(|e| e.into_error())
            .context("cannot flush captured output")?;
        self.store.install(tmp, &blob.hash)?;
        self.store
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(blob.hash);
        Ok(blob)
    }

    pub fn finish_checked(self, expected: &BlobRef) -> Result<BlobRef> {
        let got = BlobRef {
            hash: *self.hasher.finalize().as_bytes(),
            size: self.size,
        };
        if got != *expected {
            bail!(
                "downloaded blob {} does not match its hash",
                hex(&expected.hash)
            );
        }
        // Downloads are of blobs the store lacked: no second look before the rename
        // (a copy another process stored meanwhile has the same bytes).
        if got.size == 0 {
            return Ok(got);
        }
        self.persist(got)
    }
}

/// Hashes a whole blob through 16 MiB mapped windows, each hashed on all cores and
/// unmapped before the next: no copy out of the page cache (a replay verifies every
/// byte before writing one), and resident memory bounded by one window whatever the
/// blob's size (mapping it whole made a 500 MB replay cost 506 MB of RSS).
fn hash_windows(file: &File, len: u64) -> std::io::Result<[u8; 32]> {
    use std::os::fd::AsRawFd;
    const WINDOW: u64 = 16 << 20;
    let mut h = blake3::Hasher::new();
    let mut off = 0u64;
    while off < len {
        let n = WINDOW.min(len - off) as usize;
        // SAFETY: a private read-only mapping of a range inside the file (whose length
        // was checked), unmapped before the next one. Blobs are never written in
        // place: they are written under a temporary name and renamed.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                n,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                off as libc::off_t,
            );
            if p == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            h.update_rayon(std::slice::from_raw_parts(p as *const u8, n));
            libc::munmap(p, n);
        }
        off += n as u64;
    }
    Ok(*h.finalize().as_bytes())
}
