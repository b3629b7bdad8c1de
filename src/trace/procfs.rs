//! /proc magic links inside a tracee's path: `/proc/<pid|self|thread-self>/{cwd,root,exe,
//! fd/N}/…` (also under `task/<tid>/`, and `/dev/fd/N`, `/dev/stdin`… which point there)
//! name the file they lead to, not a /proc file. Resolved as the tracee sees them, at its
//! syscall-entry stop (its fd table, cwd and root are intact). Never guesses a target.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// What a path stands for once its magic links are followed.
#[derive(Debug, PartialEq, Eq)]
pub enum Magic {
    /// A real path (unchanged when it held no magic link).
    Path(PathBuf),
    /// A pipe, socket, anonymous inode or memfd, or an fd that is not open (the call
    /// fails): no file is looked at.
    NotAFile,
    /// A link whose target cannot be known (a deleted file, an unreadable link): the run
    /// must not be recorded rather than guess, unless the deleted file's former path is
    /// noise (idem's `--stdin` spool, an unnamed file in the cache directory).
    Unresolvable {
        link: PathBuf,
        deleted: Option<PathBuf>,
    },
}

/// Links followed before giving up (`/proc/self/root/dev/fd/3/…` takes two).
const MAX_HOPS: usize = 8;

/// Follows the magic links of `path` (absolute, normalized) for thread `tid`.
pub fn resolve(tid: i32, path: PathBuf) -> Magic {
    let mut p = path;
    for _ in 0..MAX_HOPS {
        match step(tid, &p) {
            Step::Done => return Magic::Path(p),
            Step::Follow(next) => p = next,
            Step::NotAFile => return Magic::NotAFile,
            Step::Unresolvable(deleted) => return Magic::Unresolvable { link: p, deleted },
        }
    }
    Magic::Unresolvable {
        link: p,
        deleted: None,
    }
}

enum Step {
    Done,
    Follow(PathBuf),
    NotAFile,
    /// With the former path of a deleted file.
    Unresolvable(Option<PathBuf>),
}

fn names(p: &Path) -> Vec<&OsStr> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn joined(base: PathBuf, rest: &[&OsStr]) -> PathBuf {
    rest.iter().fold(base, |acc, n| acc.join(n))
}

fn is_number(n: &OsStr) -> bool {
    !n.is_empty() && n.as_bytes().iter().all(u8::is_ascii_digit)
}

fn step(tid: i32, p: &Path) -> Step {
    // The hot path (every traced path): one prefix test, no allocation.
    let bytes = p.as_os_str().as_bytes();
    if !bytes.starts_with(b"/proc/") && !bytes.starts_with(b"/dev/") {
        return Step::Done;
    }
    let n = names(p);
    match n.first().map(|s| s.as_bytes()) {
        Some(b"dev") if n.len() >= 2 => dev_link(tid, &n),
        Some(b"proc") if n.len() >= 3 => proc_link(tid, &n),
        _ => Step::Done,
    }
}

/// `/dev/fd`, `/dev/stdin`…: symlinks into `/proc/self/`, which is the tracee, not us.
fn dev_link(tid: i32, n: &[&OsStr]) -> Step {
    let Ok(target) = std::fs::read_link(Path::new("/dev").join(n[1])) else {
        return Step::Done;
    };
    let Ok(in_self) = target.strip_prefix("/proc/self") else {
        return Step::Done;
    };
    Step::Follow(joined(
        Path::new("/proc").join(tid.to_string()).join(in_self),
        &n[2..],
    ))
}

/// `/proc/<who>[/task/<tid>]/{cwd,root,exe,fd/N}/rest`.
fn proc_link(tid: i32, n: &[&OsStr]) -> Step {
    let who = match n[1].as_bytes() {
        b"self" | b"thread-self" => tid.to_string(),
        _ if is_number(n[1]) => n[1].to_string_lossy().into_owned(),
        _ => return Step::Done,
    };
    let mut dir = Path::new("/proc").join(who);
    let mut i = 2;
    if n.get(i).map(|s| s.as_bytes()) == Some(b"task") && n.get(i + 1).is_some_and(|t| is_number(t))
    {
        dir = dir.join("task").join(n[i + 1]);
        i += 2;
    }
    let link = match n.get(i).map(|s| s.as_bytes()) {
        Some(b"cwd" | b"root" | b"exe") => {
            i += 1;
            dir.join(n[i - 1])
        }
        Some(b"fd") if n.get(i + 1).is_some_and(|f| is_number(f)) => {
            i += 2;
            dir.join("fd").join(n[i - 1])
        }
        _ => return Step::Done,
    };
    let target = match std::fs::read_link(&link) {
        Ok(t) => t,
        // No such fd (or process): the tracee's own lookup fails the same way.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Step::NotAFile,
        Err(_) => return Step::Unresolvable(None),
    };
    let t = target.as_os_str().as_bytes();
    if !target.is_absolute() || t.starts_with(b"/memfd:") {
        // pipe:[…], socket:[…], anon_inode:…, a memfd: state held by processes.
        return Step::NotAFile;
    }
    if let Some(former) = t.strip_suffix(b" (deleted)") {
        return Step::Unresolvable(Some(PathBuf::from(OsStr::from_bytes(former))));
    }
    Step::Follow(joined(target, &n[i..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn me() -> i32 {
        // The calling thread: /proc/<tid> exists for it as for its process.
        unsafe { libc::gettid() }
    }

    #[test]
    fn plain_paths_are_unchanged() {
        for p in [
            "/usr/lib/x",
            "/proc/cpuinfo",
            "/proc/self/status",
            "/dev/null",
            "/",
        ] {
            assert_eq!(resolve(me(), p.into()), Magic::Path(p.into()));
        }
    }

    #[test]
    fn cwd_root_and_fds_lead_to_their_targets() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            resolve(me(), "/proc/self/cwd/a/b".into()),
            Magic::Path(cwd.join("a/b"))
        );
        assert_eq!(
            resolve(me(), "/proc/thread-self/root/usr/lib".into()),
            Magic::Path("/usr/lib".into())
        );
        let dir = std::fs::File::open("/usr").unwrap();
        let fd = dir.as_raw_fd();
        let pid = std::process::id();
        for p in [
            format!("/proc/self/fd/{fd}/lib"),
            format!("/proc/{pid}/task/{}/fd/{fd}/lib", me()),
            format!("/dev/fd/{fd}/lib"),
            format!("/proc/self/root/dev/fd/{fd}/lib"),
        ] {
            assert_eq!(
                resolve(me(), p.clone().into()),
                Magic::Path("/usr/lib".into()),
                "{p}"
            );
        }
    }

    #[test]
    fn pipes_closed_fds_and_deleted_files() {
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let p = format!("/dev/fd/{}", fds[0]);
        assert_eq!(resolve(me(), p.into()), Magic::NotAFile);
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        assert_eq!(
            resolve(me(), "/proc/self/fd/987654".into()),
            Magic::NotAFile
        );
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(dir.path().join("gone")).unwrap();
        std::fs::remove_file(dir.path().join("gone")).unwrap();
        let p = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
        let deleted = Some(dir.path().join("gone"));
        assert_eq!(
            resolve(me(), p.clone()),
            Magic::Unresolvable { link: p, deleted }
        );
    }
}
