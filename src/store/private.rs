//! The cache directory belongs to its user: created 0700, its files created 0600 and
//! opened without following symlinks, and a directory or database that someone else owns
//! or can write is refused. It never walks the directory: a check is one (f)stat.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result};

/// A cache directory or database idem must not use; the message names the path and
/// the fix. `run` warns with it and runs uncached; maintenance commands stop with it.
#[derive(Debug)]
pub struct UnsafeCache(pub String);

impl std::fmt::Display for UnsafeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnsafeCache {}

/// The effective uid, asked once per process (a hit checks several files against it).
pub fn euid() -> u32 {
    static EUID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    // SAFETY: geteuid cannot fail and touches no memory.
    *EUID.get_or_init(|| unsafe { libc::geteuid() })
}

/// Ours and written by nobody else: owned by the effective user, neither group- nor
/// other-writable (the quiet form of [`check_owned`], for files that read as absent).
pub fn is_owned(meta: &std::fs::Metadata) -> bool {
    meta.uid() == euid() && meta.mode() & 0o022 == 0
}

/// Refuses `meta` (of `path`, a `what`) unless the effective user owns it and neither
/// group nor others can write it.
pub fn check_owned(path: &Path, meta: &std::fs::Metadata, what: &str) -> Result<()> {
    let me = euid();
    let p = path.display();
    if meta.uid() != me {
        return Err(UnsafeCache(format!(
            "{what} {p} is owned by uid {}, not by you (uid {me}), so anyone with that uid could steer or read your results: not using it; use a cache directory of your own (--cache-dir or IDEM_CACHE_DIR), or `chown -R {me} {p}` if it is really yours",
            meta.uid()
        ))
        .into());
    }
    let mode = meta.mode();
    if mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "group and others",
            (true, false) => "its group",
            _ => "others",
        };
        return Err(UnsafeCache(format!(
            "{what} {p} is writable by {who} (mode {:o}): not using it; fix it with `chmod go-w {p}` (a cache shared by a team belongs on a remote, see docs/remote.md)",
            mode & 0o7777
        ))
        .into());
    }
    Ok(())
}

/// Creates the cache directory 0700 when it does not exist (parents too), else checks
/// that it is a directory of ours that nobody else can write. One `stat` when it exists.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => check_owned(dir, &m, "cache directory"),
        Ok(_) => anyhow::bail!(
            "cache directory {} is not a directory: remove it or choose another --cache-dir",
            dir.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_dir(dir),
        Err(e) => Err(e).with_context(|| format!("cannot read cache directory {}", dir.display())),
    }
}

/// `mkdir -p -m 700`: every directory idem creates under the cache is private.
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create cache directory {}", dir.display()))
}

/// Options for a file inside the cache: never through a symlink, never inherited by
/// the command, 0600 when created, and no blocking on a FIFO planted in its place.
pub fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK);
    o
}

/// Opens (creating it 0600 if needed) a file that idem appends to or locks in the cache
/// directory, refusing a symlink or anything that is not a regular file of ours.
pub fn open_rw(path: &Path, append: bool) -> Result<File> {
    open_rw_stat(path, append).map(|(f, _)| f)
}

/// [`open_rw`], also returning the file's metadata (its one `fstat`).
pub fn open_rw_stat(path: &Path, append: bool) -> Result<(File, std::fs::Metadata)> {
    let f = options()
        .read(!append)
        .write(!append)
        .append(append)
        .create(true)
        .open(path)
        .with_context(|| {
            format!(
                "cannot open {} (a symlink there is never followed)",
                path.display()
            )
        })?;
    let m = f
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?;
    if !m.is_file() {
        anyhow::bail!("{} is not a regular file: not using it", path.display());
    }
    check_owned(path, &m, "cache file")?;
    Ok((f, m))
}

/// Opens a cache file for reading only, without following a symlink.
pub fn open_read(path: &Path) -> std::io::Result<File> {
    options().read(true).open(path)
}

/// The database file: created here 0600 (SQLite would use 0644 and follow a symlink)
/// when absent; when present, refused if it is a symlink or someone else's. One `lstat`.
pub fn ensure_db_file(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(UnsafeCache(format!(
            "cache database {} is a symbolic link: not using it; remove the link (idem never writes through one)",
            path.display()
        ))
        .into()),
        Ok(m) => check_owned(path, &m, "cache database"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match options().write(true).create_new(true).open(path) {
                Ok(_) => Ok(()),
                // Another idem created it first: check what it made.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => ensure_db_file(path),
                Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
            }
        }
        Err(e) => Err(e).with_context(|| format!("cannot stat {}", path.display())),
    }
}
