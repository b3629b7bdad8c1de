//! Path operations confined to a directory tree: every step goes through a directory
//! fd opened with `O_NOFOLLOW`, one component at a time, so a symlink planted anywhere
//! in the tree is seen as a link and never followed out of it.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// What sits at a name inside a directory, as `lstat` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    /// A device, fifo or socket.
    Other,
}

/// The result of looking up one component.
pub enum Found {
    Missing,
    Dir(DirFd),
    /// Present, but not a directory (the kind says what it is).
    Not(Kind),
}

/// An open directory; every operation is relative to it and never follows a link at
/// the name it is given.
pub struct DirFd(OwnedFd);

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

impl DirFd {
    /// Opens the root of the tree (the workspace root is trusted, links and all).
    pub fn open(path: &Path) -> io::Result<DirFd> {
        let c = cstr(path.as_os_str())?;
        // SAFETY: a valid C string; the fd is owned from here on.
        let fd = retry(|| {
            check(unsafe {
                libc::open(
                    c.as_ptr(),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                )
            })
        })?;
        Ok(DirFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// A second handle on the same directory.
    pub fn try_clone(&self) -> io::Result<DirFd> {
        Ok(DirFd(self.0.try_clone()?))
    }

    fn raw(&self) -> libc::c_int {
        self.0.as_raw_fd()
    }

    /// `lstat` of a name in this directory; `None` when it does not exist.
    pub fn kind(&self, name: &OsStr) -> io::Result<Option<Kind>> {
        let c = cstr(name)?;
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd, C string and out pointer.
        let r =
            unsafe { libc::fstatat(self.raw(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::NotFound {
                Ok(None)
            } else {
                Err(e)
            };
        }
        Ok(Some(match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFREG => Kind::File,
            libc::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        }))
    }

    /// Opens a subdirectory without following a link at `name`.
    pub fn child(&self, name: &OsStr) -> io::Result<Found> {
        let c = cstr(name)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: valid fd and C string; the fd is owned from here on.
        match retry(|| check(unsafe { libc::openat(self.raw(), c.as_ptr(), flags) })) {
            Ok(fd) => Ok(Found::Dir(DirFd(unsafe { OwnedFd::from_raw_fd(fd) }))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Found::Missing),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                Ok(match self.kind(name)? {
                    None => Found::Missing,
                    Some(k) => Found::Not(k),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Creates a subdirectory (mode 0777 minus the umask, like `mkdir -p`).
    pub fn mkdir(&self, name: &OsStr) -> io::Result<()> {
        let c = cstr(name)?;
        // SAFETY: valid fd and C string.
        check(unsafe { libc::mkdirat(self.raw(), c.as_ptr(), 0o777) }).map(|_| ())
    }

    /// Opens an existing regular file for reading; `None` when the name is anything
    /// else (a link is never followed, a fifo never blocks).
    pub fn open_file(&self, name: &OsStr) -> io::Result<Option<File>> {
        let c = cstr(name)?;
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
        // SAFETY: valid fd and C string; the fd is owned from here on.
        let fd = match retry(|| check(unsafe { libc::openat(self.raw(), c.as_ptr(), flags) })) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ELOOP)) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        let file = unsafe { File::from_raw_fd(fd) };
        Ok(file.metadata()?.is_file().then_some(file))
    }

    /// Creates a new file (never an existing name), readable and writable by its owner.
    pub fn create_file(&self, name: &OsStr) -> io::Result<File> {
        let c = cstr(name)?;
        let flags =
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: valid fd and C string; the fd is owned from here on.
        let fd = retry(|| {
            check(unsafe { libc::openat(self.raw(), c.as_ptr(), flags, 0o600 as libc::c_uint) })
        })?;
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    pub fn symlink(&self, target: &[u8], name: &OsStr) -> io::Result<()> {
        let t = cstr(OsStr::from_bytes(target))?;
        let c = cstr(name)?;
        // SAFETY: valid fd and C strings.
        check(unsafe { libc::symlinkat(t.as_ptr(), self.raw(), c.as_ptr()) }).map(|_| ())
    }

    /// Moves `name` here to `to_name` in `to` (replacing a file or link there; the
    /// link itself, never what it points to).
    pub fn rename(&self, name: &OsStr, to: &DirFd, to_name: &OsStr) -> io::Result<()> {
        let a = cstr(name)?;
        let b = cstr(to_name)?;
        // SAFETY: valid fds and C strings.
        check(unsafe { libc::renameat(self.raw(), a.as_ptr(), to.raw(), b.as_ptr()) }).map(|_| ())
    }

    /// Removes a file, link or empty directory.
    pub fn unlink(&self, name: &OsStr, dir: bool) -> io::Result<()> {
        let c = cstr(name)?;
        let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
        // SAFETY: valid fd and C string.
        check(unsafe { libc::unlinkat(self.raw(), c.as_ptr(), flags) }).map(|_| ())
    }

    /// Removes `name` and, if it is a directory, everything under it, never following
    /// a link.
    pub fn remove_tree(&self, name: &OsStr) -> io::Result<()> {
        match self.child(name)? {
            Found::Missing => Ok(()),
            Found::Not(_) => self.unlink(name, false),
            Found::Dir(sub) => {
                for (entry, _) in sub.entries()? {
                    sub.remove_tree(&entry)?;
                }
                self.unlink(name, true)
            }
        }
    }

    /// The names in this directory (without `.` and `..`) and their kinds.
    pub fn entries(&self) -> io::Result<Vec<(OsString, Kind)>> {
        // SAFETY: fdopendir takes ownership of the dup'ed fd and closedir releases it.
        let dup = check(unsafe { libc::fcntl(self.raw(), libc::F_DUPFD_CLOEXEC, 0) })?;
        let dir = unsafe { libc::fdopendir(dup) };
        if dir.is_null() {
            let e = io::Error::last_os_error();
            unsafe { libc::close(dup) };
            return Err(e);
        }
        unsafe { libc::rewinddir(dir) };
        let mut names = Vec::new();
        loop {
            // SAFETY: dir is a valid DIR*; the entry is copied out before the next call.
            let ent = unsafe { libc::readdir(dir) };
            if ent.is_null() {
                break;
            }
            let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) };
            let bytes = name.to_bytes();
            if bytes != b"." && bytes != b".." {
                names.push(OsString::from_vec(bytes.to_vec()));
            }
        }
        unsafe { libc::closedir(dir) };
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            if let Some(k) = self.kind(&n)? {
                out.push((n, k));
            }
        }
        Ok(out)
    }

    /// Sets this directory's mode (the fd was opened without following a link).
    pub fn chmod(&self, mode: u32) -> io::Result<()> {
        // SAFETY: valid fd.
        check(unsafe { libc::fchmod(self.raw(), mode as libc::mode_t) }).map(|_| ())
    }
}

/// Sets a file's mode through its fd.
pub fn chmod(file: &File, mode: u32) -> io::Result<()> {
    // SAFETY: valid fd.
    check(unsafe { libc::fchmod(file.as_raw_fd(), mode as libc::mode_t) }).map(|_| ())
}

/// Sets a file's mtime to "now" as the kernel's file-timestamp clock sees it, so a file
/// written a moment later is never older (the atime is left alone).
pub fn touch_now(file: &File) -> io::Result<()> {
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
    ];
    // SAFETY: valid fd and a two-element array, as futimens requires.
    check(unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) }).map(|_| ())
}
