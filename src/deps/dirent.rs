//! One directory's names for the walk: `open` + `readdir64` into one buffer (no
//! allocation per name), sorted in full-path byte order, and `fstatat` relative to the
//! open directory into a compact `Stat`. Never follows a symlink below the directory
//! it opens.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};

use super::stat_cache::{ctime_ns, mtime_ns};

/// A path's `lstat`, as much of it as the stat cache compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub mode: u32,
}

impl Stat {
    pub fn of(md: &Metadata) -> Self {
        Stat {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime_ns: mtime_ns(md),
            ctime_ns: ctime_ns(md),
            mode: md.mode(),
        }
    }

    /// The same fields as [`Stat::of`] from a raw `struct stat` (the walk's `fstatat`).
    pub fn of_raw(st: &libc::stat) -> Self {
        Stat {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime_ns: st.st_mtime.saturating_mul(1_000_000_000) + st.st_mtime_nsec,
            ctime_ns: st.st_ctime.saturating_mul(1_000_000_000) + st.st_ctime_nsec,
            mode: st.st_mode,
        }
    }

    /// `lstat(path)`.
    pub fn lstat(path: &Path) -> std::io::Result<Self> {
        std::fs::symlink_metadata(path).map(|md| Self::of(&md))
    }

    fn format(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    pub fn is_file(&self) -> bool {
        self.format() == libc::S_IFREG
    }

    pub fn is_dir(&self) -> bool {
        self.format() == libc::S_IFDIR
    }

    pub fn is_symlink(&self) -> bool {
        self.format() == libc::S_IFLNK
    }
}

/// The type `readdir` reported.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Other,
    Unknown,
}

pub struct Name {
    pub start: usize,
    /// Without the terminating NUL (which is stored, for `fstatat`).
    pub len: usize,
    pub kind: Kind,
    /// Index in `Names::stats` of the `lstat` taken when `readdir` did not tell the
    /// type (`NO_STAT`: none; kept out of line so a name stays small).
    pub stat: u32,
    /// The sort key's first 8 bytes (see `Names::sort`).
    pub key: u64,
}

/// The names of one directory (without `.` and `..`), in one buffer, and the open
/// directory for `fstatat`.
pub struct Names {
    pub dir: *mut libc::DIR,
    pub bytes: Vec<u8>,
    pub entries: Vec<Name>,
    pub stats: Vec<Stat>,
}

pub const NO_STAT: u32 = u32::MAX;

// The DIR handle is only used by the thread holding `Names`; it is never shared.
unsafe impl Send for Names {}

impl Names {
    pub fn name(&self, e: &Name) -> &[u8] {
        &self.bytes[e.start..e.start + e.len]
    }

    /// Not every filesystem fills in `d_type`: ask those entries' `lstat` (an entry
    /// that vanished stays `Unknown` and is passed over).
    pub fn resolve_unknown_kinds(&mut self) -> Result<()> {
        for i in 0..self.entries.len() {
            if self.entries[i].kind != Kind::Unknown {
                continue;
            }
            match self.stat(&self.entries[i]) {
                Ok(st) => {
                    let at = u32::try_from(self.stats.len()).unwrap_or(NO_STAT);
                    self.stats.push(st);
                    let e = &mut self.entries[i];
                    e.kind = if st.is_dir() { Kind::Dir } else { Kind::Other };
                    e.stat = at;
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    let name = self.name(&self.entries[i]);
                    return Err(err)
                        .with_context(|| format!("cannot stat {}", String::from_utf8_lossy(name)));
                }
            }
        }
        Ok(())
    }

    /// Walk order: by name, a directory compared as if its name ended with `/`, which
    /// is the byte order of the full paths with directories named `dir/`. Each name's
    /// first 8 bytes (then `/` for a directory, then zeros: no name holds a NUL) are one
    /// big-endian integer, so most comparisons are one integer comparison.
    pub fn sort(&mut self) {
        let bytes = &self.bytes;
        let sort_name =
            |e: &Name| -> (&[u8], bool) { (&bytes[e.start..e.start + e.len], e.kind == Kind::Dir) };
        for e in &mut self.entries {
            let (name, dir) = sort_name(e);
            let mut k = [0u8; 8];
            let n = name.len().min(8);
            k[..n].copy_from_slice(&name[..n]);
            if dir && n < 8 {
                k[n] = b'/';
            }
            e.key = u64::from_be_bytes(k);
        }
        self.entries.sort_unstable_by(|a, b| {
            a.key.cmp(&b.key).then_with(|| {
                let ((x, xd), (y, yd)) = (sort_name(a), sort_name(b));
                let n = x.len().min(y.len());
                x[..n].cmp(&y[..n]).then_with(|| {
                    let after = |s: &[u8], dir: bool| match s.get(n) {
                        Some(&c) => c as u16 + 1,
                        None if dir => b'/' as u16 + 1,
                        None => 0,
                    };
                    after(x, xd).cmp(&after(y, yd))
                })
            })
        });
    }

    /// `lstat` of an entry, relative to the open directory.
    pub fn stat(&self, e: &Name) -> std::io::Result<Stat> {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: the name is NUL-terminated in `bytes`; `dir` is open (`stat` is only
        // called before `close`).
        let rc = unsafe {
            libc::fstatat(
                libc::dirfd(self.dir),
                self.bytes.as_ptr().add(e.start).cast(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fstatat succeeded, so it filled the struct.
        Ok(Stat::of_raw(unsafe { &st.assume_init() }))
    }

    /// Closes the directory (the names stay).
    pub fn close(&mut self) {
        if !self.dir.is_null() {
            // SAFETY: `dir` came from fdopendir and is closed once.
            unsafe { libc::closedir(self.dir) };
            self.dir = std::ptr::null_mut();
        }
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        self.close();
    }
}

/// Reads a directory's names (following a symlink at `dir` itself: the caller decided
/// to walk it; entries below are never followed).
pub fn read_dir(dir: &[u8]) -> std::io::Result<Names> {
    let c = std::ffi::CString::new(dir).map_err(std::io::Error::other)?;
    // SAFETY: a valid C string; the fd is handed to fdopendir or closed.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is an open directory; on failure we still own it and close it.
    let d = unsafe { libc::fdopendir(fd) };
    if d.is_null() {
        let e = std::io::Error::last_os_error();
        unsafe { libc::close(fd) };
        return Err(e);
    }
    let mut names = Names {
        dir: d,
        bytes: Vec::with_capacity(4096),
        entries: Vec::with_capacity(64),
        stats: Vec::new(),
    };
    loop {
        // SAFETY: errno is thread-local; readdir64 returns NULL at the end (errno
        // unchanged) or on error (errno set).
        unsafe { *libc::__errno_location() = 0 };
        let ent = unsafe { libc::readdir64(d) };
        if ent.is_null() {
            let errno = std::io::Error::last_os_error();
            if errno.raw_os_error().unwrap_or(0) != 0 {
                return Err(errno);
            }
            break;
        }
        // SAFETY: a non-NULL dirent from readdir64 is valid until the next call, and
        // d_name is NUL-terminated.
        let (name, d_type) = unsafe {
            let ent = &*ent;
            (
                std::ffi::CStr::from_ptr(ent.d_name.as_ptr()).to_bytes_with_nul(),
                ent.d_type,
            )
        };
        let len = name.len() - 1;
        if name[..len] == *b"." || name[..len] == *b".." {
            continue;
        }
        let kind = match d_type {
            libc::DT_DIR => Kind::Dir,
            libc::DT_UNKNOWN => Kind::Unknown,
            _ => Kind::Other,
        };
        names.entries.push(Name {
            start: names.bytes.len(),
            len,
            kind,
            stat: NO_STAT,
            key: 0,
        });
        names.bytes.extend_from_slice(name);
    }
    Ok(names)
}
