//! Reading a stopped tracee: strings and small structs from its memory
//! (process_vm_readv, page by page), its cwd and fds through /proc, and turning a
//! (dirfd, path) pair into the absolute path the kernel is about to resolve.
//! Never writes to the tracee.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const PAGE: usize = 4096;
/// Longest path read from a tracee (PATH_MAX).
const PATH_MAX: usize = 4096;

/// Reads up to `buf.len()` bytes at `addr` without crossing into an unmapped page:
/// returns how many bytes were read (0 on a fault at `addr`).
fn read_some(pid: i32, addr: u64, buf: &mut [u8]) -> usize {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: both iovecs describe valid lengths; the local one is our own buffer.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        0
    } else {
        n as usize
    }
}

/// Reads exactly `buf.len()` bytes at `addr`.
pub fn read_exact(pid: i32, addr: u64, buf: &mut [u8]) -> bool {
    addr != 0 && read_some(pid, addr, buf) == buf.len()
}

/// Reads a little-endian/native u64 at `addr`.
pub fn read_u64(pid: i32, addr: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    read_exact(pid, addr, &mut b).then(|| u64::from_ne_bytes(b))
}

/// Reads a NUL-terminated string at `addr`, one page at a time so that a string that
/// ends just before an unmapped page is read whole. `None`: unreadable or too long.
pub fn read_cstr(pid: i32, addr: u64) -> Option<Vec<u8>> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::with_capacity(128);
    let mut at = addr;
    let mut chunk = [0u8; PAGE];
    while out.len() <= PATH_MAX {
        let to_page_end = PAGE - (at as usize % PAGE);
        let n = read_some(pid, at, &mut chunk[..to_page_end]);
        if n == 0 {
            return None;
        }
        if let Some(nul) = chunk[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..nul]);
            return Some(out);
        }
        out.extend_from_slice(&chunk[..n]);
        at += n as u64;
    }
    None
}

/// The target of a /proc symlink (a thread's cwd or one of its fds), when it is a path.
fn proc_link(link: &str) -> Option<PathBuf> {
    let target = std::fs::read_link(link).ok()?;
    target.is_absolute().then_some(target)
}

/// Per-thread cwd cache; dropped whole on any chdir (threads can share a cwd).
#[derive(Default)]
pub struct Cwds {
    by_tid: HashMap<i32, PathBuf>,
}

impl Cwds {
    pub fn get(&mut self, tid: i32) -> Option<PathBuf> {
        if let Some(p) = self.by_tid.get(&tid) {
            return Some(p.clone());
        }
        let p = proc_link(&format!("/proc/{tid}/cwd"))?;
        self.by_tid.insert(tid, p.clone());
        Some(p)
    }

    pub fn forget_all(&mut self) {
        self.by_tid.clear();
    }

    pub fn forget(&mut self, tid: i32) {
        self.by_tid.remove(&tid);
    }
}

/// The path an fd of `tid` refers to, when it is a path (not a socket, pipe...).
pub fn fd_path(tid: i32, fd: i32) -> Option<PathBuf> {
    proc_link(&format!("/proc/{tid}/fd/{fd}"))
}

/// `dirfd` as the kernel passes it: AT_FDCWD is -100 in a 32-bit int.
pub fn as_dirfd(arg: u64) -> i32 {
    arg as u32 as i32
}

/// Resolves `path` against `dirfd` (or the cwd for AT_FDCWD) of thread `tid`, the way the
/// kernel is about to. `None` for an empty path or a base that is not a path.
pub fn resolve(cwds: &mut Cwds, tid: i32, dirfd: i32, path: &[u8]) -> Option<PathBuf> {
    if path.is_empty() {
        return None;
    }
    if path[0] == b'/' {
        return Some(normalize(Path::new(OsStr::from_bytes(path))));
    }
    let base = if dirfd == libc::AT_FDCWD {
        cwds.get(tid)?
    } else {
        fd_path(tid, dirfd)?
    };
    Some(normalize(&base.join(OsStr::from_bytes(path))))
}

/// Drops `.` components, repeated and trailing slashes; keeps `..` (folding it lexically
/// would be wrong once a symlink is involved, and re-resolving the same string later
/// gives exactly what the program's lookup gave).
pub fn normalize(p: &Path) -> PathBuf {
    // Path::components already drops `.` (except a leading one) and repeated slashes.
    let mut out = PathBuf::new();
    for c in p.components() {
        if c != std::path::Component::CurDir {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_keeps_dotdot() {
        assert_eq!(normalize(Path::new("/a/./b//c/")), PathBuf::from("/a/b/c"));
        assert_eq!(
            normalize(Path::new("/usr/lib/../include/./x.h")),
            PathBuf::from("/usr/lib/../include/x.h")
        );
    }

    #[test]
    fn reads_own_strings_across_a_page_end() {
        // A string placed so that it ends right at a page boundary.
        let mut v = vec![0u8; 3 * PAGE];
        let base = v.as_ptr() as usize;
        let page_start = base.div_ceil(PAGE) * PAGE;
        let s_start = page_start + PAGE - 5 - base;
        v[s_start..s_start + 9].copy_from_slice(b"/abc/defg");
        v[s_start + 9] = 0;
        let pid = std::process::id() as i32;
        let got = read_cstr(pid, (base + s_start) as u64).unwrap();
        assert_eq!(got, b"/abc/defg");
        assert_eq!(read_cstr(pid, 0), None);
    }

    #[test]
    fn resolves_against_cwd_and_dirfd() {
        let mut cwds = Cwds::default();
        let tid = std::process::id() as i32;
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            resolve(&mut cwds, tid, libc::AT_FDCWD, b"x/./y"),
            Some(cwd.join("x/y"))
        );
        let dir = std::fs::File::open("/usr").unwrap();
        use std::os::fd::AsRawFd;
        assert_eq!(
            resolve(&mut cwds, tid, dir.as_raw_fd(), b"lib"),
            Some(PathBuf::from("/usr/lib"))
        );
        assert_eq!(resolve(&mut cwds, tid, libc::AT_FDCWD, b""), None);
    }
}
