//! Turns one traced syscall into log entries: at the seccomp stop (entry) its arguments
//! are read and its paths resolved; pure lookups are recorded at once from the tracer's
//! own stat, writes wait for the syscall-exit stop's return value. Never changes a syscall.

use std::path::{Path, PathBuf};

use super::memory::{self, as_dirfd, Cwds};
use super::model::{Access, Inputs, Reason, TraceLog, Writes};
use super::net;
use super::noise::Noise;
use super::procfs::{self, Magic};
use super::syscalls::Sys;

/// State shared by every decoded call: the log being built, the cwd cache, the noise
/// prefixes and the prefixes carved out of them.
pub struct Ctx {
    pub log: TraceLog,
    pub cwds: Cwds,
    pub noise: Noise,
}

/// What a call still needs at its syscall-exit stop.
#[derive(Debug, Clone)]
pub enum Pending {
    Open {
        path: PathBuf,
        flags: u64,
        /// For O_CREAT opens: whether the path existed just before the call.
        existed: bool,
    },
    Exec {
        path: PathBuf,
    },
    /// The exec succeeded (its event was handled): nothing left to record at exit.
    ExecDone,
    /// chdir/fchdir: drop the cwd cache once it succeeded (chdir also records a lookup).
    Chdir {
        path: Option<PathBuf>,
    },
    Rename {
        from: Option<PathBuf>,
        to: Option<PathBuf>,
        exchange: bool,
    },
    Remove {
        path: PathBuf,
    },
    Create {
        path: PathBuf,
        what: Writes,
        /// linkat/link: the existing file the new name points at.
        source: Option<PathBuf>,
    },
    Truncate {
        path: PathBuf,
        len: u64,
    },
    Utime {
        path: PathBuf,
    },
}

fn is_restart(rval: i64) -> bool {
    // ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK: the kernel
    // re-issues the call, and the tracer will see it again.
    matches!(-rval, 512 | 513 | 514 | 516)
}

fn failed_lookup(errno: i64, follow: bool) -> Inputs {
    if errno == libc::ENOENT as i64 || errno == libc::ENOTDIR as i64 {
        Inputs::ABSENT
    } else if follow {
        Inputs::PROBE
    } else {
        Inputs::PROBE_NOFOLLOW
    }
}

/// What a lookup of `path` finds right now, as the tracee is about to look it up: the
/// tracer's own stat at the seccomp stop stands in for the syscall's result (same cwd,
/// same credentials, same moment), which saves the syscall-exit stop on the hottest
/// calls (stat, access, readlink, read-only open: ~95 % of a compile's traced calls).
fn observe(path: &Path, follow: bool, link: bool) -> Inputs {
    let m = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    };
    match m {
        Ok(m) if link && m.file_type().is_symlink() => Inputs::LINK,
        Ok(_) if link => Inputs::PROBE_NOFOLLOW,
        Ok(_) => probe(follow),
        Err(e) => failed_lookup(e.raw_os_error().unwrap_or(0) as i64, follow),
    }
}

fn probe(follow: bool) -> Inputs {
    if follow {
        Inputs::PROBE
    } else {
        Inputs::PROBE_NOFOLLOW
    }
}

impl Ctx {
    fn ignored(&self, p: &Path) -> bool {
        self.noise.ignored(p)
    }

    /// Resolves a path argument, following /proc magic links (`/proc/self/fd/N/…`,
    /// `/dev/fd/N`) to the file they lead to; `None` when empty, unresolvable, not a file
    /// (a pipe) or noise. Marks the run unknowable when the string cannot be read or a
    /// magic link's target cannot be known (a deleted file).
    fn path(&mut self, tid: i32, sys: Sys, dirfd: i32, addr: u64) -> Option<PathBuf> {
        let Some(raw) = memory::read_cstr(tid, addr) else {
            if addr != 0 {
                self.log.unknowable(
                    tid,
                    Reason::Unreadable {
                        syscall: sys.name(),
                    },
                );
            }
            return None;
        };
        let p = memory::resolve(&mut self.cwds, tid, dirfd, &raw)?;
        let p = match procfs::resolve(tid, p) {
            Magic::Path(p) => p,
            Magic::NotAFile => return None,
            Magic::Unresolvable { link, deleted } => {
                if !deleted.is_some_and(|former| self.ignored(&former)) {
                    self.log.unknowable(tid, Reason::UnresolvableLink(link));
                }
                return None;
            }
        };
        (!self.ignored(&p)).then_some(p)
    }

    fn input(&mut self, tid: i32, path: PathBuf, k: Inputs) {
        self.log.record(tid, path, Access::Input(k));
    }

    fn write(&mut self, tid: i32, path: PathBuf, w: Writes) {
        self.log.record(tid, path, Access::Write(w));
    }

    /// Marks the run unknowable when the `struct sockaddr` at `addr` is not local:
    /// `connect`/`send*` reach a remote state, `bind` lets the network send in.
    fn socket_family(&mut self, tid: i32, addr: u64, bind: bool) {
        if addr == 0 {
            return;
        }
        let mut fam = [0u8; 2];
        if !memory::read_exact(tid, addr, &mut fam) {
            let syscall = if bind { "bind" } else { "connect" };
            self.log.unknowable(tid, Reason::Unreadable { syscall });
            return;
        }
        let family = u16::from_ne_bytes(fam);
        let local = [libc::AF_UNSPEC, libc::AF_UNIX, libc::AF_NETLINK];
        if local.contains(&(family as i32)) {
            return;
        }
        let reason = if bind {
            Reason::InetBind { family }
        } else {
            Reason::InetSocket { family }
        };
        self.log.unknowable(tid, reason);
    }

    /// Decodes a call at its seccomp stop. Returns what to finish at the exit stop, or
    /// `None` when it is fully recorded already (the tracee need not stop at exit).
    pub fn entry(&mut self, tid: i32, sys: Sys, a: &[u64; 6]) -> Option<Pending> {
        const CWD: i32 = libc::AT_FDCWD;
        let follows = |flags: u64| flags & libc::AT_SYMLINK_NOFOLLOW as u64 == 0;
        match sys {
            Sys::Open => self.open(tid, sys, CWD, a[0], a[1]),
            Sys::Creat => {
                let flags = (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64;
                self.open(tid, sys, CWD, a[0], flags)
            }
            Sys::OpenAt => self.open(tid, sys, as_dirfd(a[0]), a[1], a[2]),
            Sys::OpenAt2 => {
                // struct open_how { u64 flags; u64 mode; u64 resolve; }
                let Some(flags) = memory::read_u64(tid, a[2]) else {
                    self.log
                        .unknowable(tid, Reason::Unreadable { syscall: "openat2" });
                    return None;
                };
                self.open(tid, sys, as_dirfd(a[0]), a[1], flags)
            }
            Sys::Stat | Sys::Access => self.lookup(tid, sys, CWD, a[0], true, false),
            Sys::Lstat => self.lookup(tid, sys, CWD, a[0], false, false),
            Sys::NewFstatAt | Sys::Statx => {
                let flags = if sys == Sys::Statx { a[2] } else { a[3] };
                self.lookup(tid, sys, as_dirfd(a[0]), a[1], follows(flags), false)
            }
            Sys::FaccessAt => self.lookup(tid, sys, as_dirfd(a[0]), a[1], true, false),
            Sys::FaccessAt2 => self.lookup(tid, sys, as_dirfd(a[0]), a[1], follows(a[3]), false),
            Sys::ReadLink => self.lookup(tid, sys, CWD, a[0], false, true),
            Sys::ReadLinkAt => self.lookup(tid, sys, as_dirfd(a[0]), a[1], false, true),
            Sys::Execve => self.exec(tid, sys, CWD, a[0]),
            Sys::ExecveAt => self.exec(tid, sys, as_dirfd(a[0]), a[1]),
            Sys::Chdir | Sys::Fchdir => {
                let path = (sys == Sys::Chdir)
                    .then(|| self.path(tid, sys, CWD, a[0]))
                    .flatten();
                // Forget now as well as at exit: a thread sharing this cwd may look a path
                // up before the exit stop is handled, and must then read /proc afresh.
                self.cwds.forget_all();
                Some(Pending::Chdir { path })
            }
            Sys::Getdents | Sys::Getdents64 => {
                if let Some(dir) = memory::fd_path(tid, as_dirfd(a[0])) {
                    if !self.ignored(&dir) {
                        self.input(tid, dir, Inputs::LISTING);
                    }
                }
                None
            }
            Sys::Rename => self.rename(tid, sys, (CWD, a[0]), (CWD, a[1]), 0),
            Sys::RenameAt => {
                let (from, to) = ((as_dirfd(a[0]), a[1]), (as_dirfd(a[2]), a[3]));
                self.rename(tid, sys, from, to, 0)
            }
            Sys::RenameAt2 => {
                let (from, to) = ((as_dirfd(a[0]), a[1]), (as_dirfd(a[2]), a[3]));
                self.rename(tid, sys, from, to, a[4])
            }
            Sys::Unlink | Sys::Rmdir => self.remove(tid, sys, CWD, a[0]),
            Sys::UnlinkAt => self.remove(tid, sys, as_dirfd(a[0]), a[1]),
            Sys::Link => self.create(tid, sys, (CWD, a[1]), Writes::LINKED, Some((CWD, a[0]))),
            Sys::LinkAt => {
                let source = Some((as_dirfd(a[0]), a[1]));
                self.create(tid, sys, (as_dirfd(a[2]), a[3]), Writes::LINKED, source)
            }
            Sys::Symlink => self.create(tid, sys, (CWD, a[1]), Writes::SYMLINK, None),
            Sys::SymlinkAt => self.create(tid, sys, (as_dirfd(a[1]), a[2]), Writes::SYMLINK, None),
            Sys::Mkdir => self.create(tid, sys, (CWD, a[0]), Writes::MKDIR, None),
            Sys::MkdirAt => self.create(tid, sys, (as_dirfd(a[0]), a[1]), Writes::MKDIR, None),
            Sys::Mknod => self.create(tid, sys, (CWD, a[0]), Writes::CREATED, None),
            Sys::MknodAt => self.create(tid, sys, (as_dirfd(a[0]), a[1]), Writes::CREATED, None),
            Sys::Truncate => {
                let path = self.path(tid, sys, CWD, a[0])?;
                Some(Pending::Truncate { path, len: a[1] })
            }
            Sys::Utime | Sys::Utimes => self.utime(tid, sys, CWD, a[0]),
            Sys::FutimesAt | Sys::UtimensAt => self.utime(tid, sys, as_dirfd(a[0]), a[1]),
            Sys::Connect | Sys::Bind => {
                self.socket_family(tid, a[1], sys == Sys::Bind);
                None
            }
            Sys::Listen => {
                // An inet socket never bound is bound by listen to a random port; a
                // family that cannot be known counts as inet (never recorded wrong).
                let family =
                    net::socket_family(tid, as_dirfd(a[0])).unwrap_or(libc::AF_INET as u16);
                if family as i32 != libc::AF_UNIX {
                    self.log.unknowable(tid, Reason::InetBind { family });
                }
                None
            }
            Sys::SendTo => {
                self.socket_family(tid, a[4], false);
                None
            }
            Sys::SendMsg => {
                // struct msghdr starts with `void *msg_name`.
                if let Some(name) = memory::read_u64(tid, a[1]) {
                    self.socket_family(tid, name, false);
                }
                None
            }
            Sys::SendMmsg => {
                // struct mmsghdr { struct msghdr (56 bytes); unsigned msg_len; } = 64 bytes.
                for i in 0..a[2].min(64) {
                    if let Some(name) = memory::read_u64(tid, a[1] + i * 64) {
                        self.socket_family(tid, name, false);
                    }
                }
                None
            }
            Sys::IoUringSetup => {
                self.log.unknowable(tid, Reason::IoUring);
                None
            }
            Sys::OpenByHandleAt => {
                // Opens a file by an opaque handle: no path the tracer could record.
                self.log.unknowable(tid, Reason::OpenByHandle);
                None
            }
            Sys::NameToHandleAt => {
                // A lookup by name (the handle is opened later, unknowably).
                let follow = a[4] & libc::AT_SYMLINK_FOLLOW as u64 != 0;
                self.lookup(tid, sys, as_dirfd(a[0]), a[1], follow, false)
            }
        }
    }

    fn open(&mut self, tid: i32, sys: Sys, dirfd: i32, addr: u64, flags: u64) -> Option<Pending> {
        let path = self.path(tid, sys, dirfd, addr)?;
        let tmpfile = libc::O_TMPFILE as u64;
        if flags & tmpfile == tmpfile {
            // An unnamed file in a directory: nothing is named until linkat gives it a name.
            return None;
        }
        let creat = flags & libc::O_CREAT as u64 != 0;
        let writes = flags & libc::O_ACCMODE as u64 != libc::O_RDONLY as u64
            || creat
            || flags & libc::O_TRUNC as u64 != 0;
        if !writes {
            // A read-only open is a lookup: record it now and spare the exit stop.
            let follow = flags & libc::O_NOFOLLOW as u64 == 0;
            let handle = flags & (libc::O_PATH | libc::O_DIRECTORY) as u64 != 0;
            let k = match observe(&path, follow, false) {
                k if handle || k == Inputs::ABSENT => k,
                _ => Inputs::READ,
            };
            self.input(tid, path, k);
            return None;
        }
        let existed = creat && std::fs::metadata(&path).is_ok();
        Some(Pending::Open {
            path,
            flags,
            existed,
        })
    }

    fn lookup(
        &mut self,
        tid: i32,
        sys: Sys,
        dirfd: i32,
        addr: u64,
        follow: bool,
        link: bool,
    ) -> Option<Pending> {
        let path = self.path(tid, sys, dirfd, addr)?;
        let k = observe(&path, follow, link);
        self.input(tid, path, k);
        None
    }

    fn exec(&mut self, tid: i32, sys: Sys, dirfd: i32, addr: u64) -> Option<Pending> {
        let path = self.path(tid, sys, dirfd, addr)?;
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = std::fs::metadata(&path) {
            let setuid = m.mode() & libc::S_ISUID != 0;
            let setgid = m.mode() & libc::S_ISGID != 0 && m.mode() & libc::S_IXGRP != 0;
            if m.is_file() && (setuid || setgid) {
                self.log.unknowable(tid, Reason::SetuidExec(path.clone()));
            }
        }
        Some(Pending::Exec { path })
    }

    fn rename(
        &mut self,
        tid: i32,
        sys: Sys,
        from: (i32, u64),
        to: (i32, u64),
        flags: u64,
    ) -> Option<Pending> {
        let from = self.path(tid, sys, from.0, from.1);
        let to = self.path(tid, sys, to.0, to.1);
        if from.is_none() && to.is_none() {
            return None;
        }
        let exchange = flags & libc::RENAME_EXCHANGE as u64 != 0;
        Some(Pending::Rename { from, to, exchange })
    }

    fn remove(&mut self, tid: i32, sys: Sys, dirfd: i32, addr: u64) -> Option<Pending> {
        let path = self.path(tid, sys, dirfd, addr)?;
        Some(Pending::Remove { path })
    }

    fn create(
        &mut self,
        tid: i32,
        sys: Sys,
        at: (i32, u64),
        what: Writes,
        source: Option<(i32, u64)>,
    ) -> Option<Pending> {
        let source = source.and_then(|(fd, addr)| self.path(tid, sys, fd, addr));
        let path = self.path(tid, sys, at.0, at.1)?;
        Some(Pending::Create { path, what, source })
    }

    fn utime(&mut self, tid: i32, sys: Sys, dirfd: i32, addr: u64) -> Option<Pending> {
        // A NULL path (futimens) changes an open fd: not a lookup by name.
        let path = self.path(tid, sys, dirfd, addr)?;
        Some(Pending::Utime { path })
    }

    /// Records a call at its syscall-exit stop, given the kernel's return value.
    pub fn exit(&mut self, tid: i32, pending: Pending, rval: i64) {
        if is_restart(rval) {
            return;
        }
        let ok = rval >= 0;
        let errno = if ok { 0 } else { -rval };
        match pending {
            Pending::Open {
                path,
                flags,
                existed,
            } => self.open_exit(tid, path, flags, existed, ok, errno),
            Pending::Exec { path } => {
                // A successful exec was recorded at its event; here it failed.
                if !ok {
                    self.input(tid, path, failed_lookup(errno, true));
                }
            }
            Pending::ExecDone => {}
            Pending::Chdir { path } => {
                if ok {
                    self.cwds.forget_all();
                }
                if let Some(path) = path {
                    let k = if ok {
                        Inputs::PROBE
                    } else {
                        failed_lookup(errno, true)
                    };
                    self.input(tid, path, k);
                }
            }
            Pending::Rename { from, to, exchange } => {
                if ok {
                    for (p, removed) in [(from, !exchange), (to, false)] {
                        if let Some(p) = p {
                            if exchange {
                                self.input(tid, p.clone(), Inputs::READ);
                            }
                            let w = if removed {
                                Writes::REMOVED
                            } else {
                                Writes::RENAMED_INTO
                            };
                            self.write(tid, p, w);
                        }
                    }
                } else if let Some(from) = from {
                    self.input(tid, from, failed_lookup(errno, false));
                }
            }
            Pending::Remove { path } => {
                if ok {
                    self.write(tid, path, Writes::REMOVED);
                } else {
                    self.input(tid, path, failed_lookup(errno, false));
                }
            }
            Pending::Create { path, what, source } => {
                if let Some(src) = source {
                    let k = if ok {
                        Inputs::PROBE_NOFOLLOW
                    } else {
                        failed_lookup(errno, false)
                    };
                    self.input(tid, src, k);
                }
                if ok {
                    self.write(tid, path, what);
                } else if errno == libc::EEXIST as i64 {
                    self.input(tid, path, Inputs::PROBE_NOFOLLOW);
                } else if errno == libc::ENOENT as i64 || errno == libc::ENOTDIR as i64 {
                    self.input(tid, path, Inputs::ABSENT);
                }
            }
            Pending::Truncate { path, len } => {
                if ok && len == 0 {
                    self.write(tid, path, Writes::TRUNCATED);
                } else if ok {
                    self.input(tid, path.clone(), Inputs::READ);
                    self.write(tid, path, Writes::MODIFIED);
                } else {
                    self.input(tid, path, failed_lookup(errno, true));
                }
            }
            Pending::Utime { path } => {
                if ok {
                    self.write(tid, path, Writes::METADATA);
                } else {
                    self.input(tid, path, failed_lookup(errno, true));
                }
            }
        }
    }

    fn open_exit(
        &mut self,
        tid: i32,
        path: PathBuf,
        flags: u64,
        existed: bool,
        ok: bool,
        errno: i64,
    ) {
        let follow = flags & libc::O_NOFOLLOW as u64 == 0;
        if !ok {
            self.input(tid, path, failed_lookup(errno, follow));
            return;
        }
        if flags & libc::O_PATH as u64 != 0 || flags & libc::O_DIRECTORY as u64 != 0 {
            // A handle or a directory: its existence is what was looked at; its entries
            // count only if it is listed (getdents).
            self.input(tid, path, probe(follow));
            return;
        }
        let accmode = flags & libc::O_ACCMODE as u64;
        if accmode == libc::O_RDONLY as u64 {
            self.input(tid, path, Inputs::READ);
            return;
        }
        let creat = flags & libc::O_CREAT as u64 != 0;
        let trunc = flags & libc::O_TRUNC as u64 != 0;
        if creat && !existed {
            self.write(tid, path, Writes::CREATED);
        } else if trunc {
            self.write(tid, path, Writes::TRUNCATED);
        } else {
            // Written in place: what it held before the run shapes what it holds after.
            self.input(tid, path.clone(), Inputs::READ);
            self.write(tid, path, Writes::MODIFIED);
        }
    }

    /// A successful exec: the program named by the pending call, and every file mapped
    /// into the new image (the executable, its ELF interpreter, a `#!` interpreter, which
    /// the kernel opens without a syscall the tracer could see).
    pub fn exec_event(&mut self, pid: i32, pending: Option<Pending>) {
        if let Some(Pending::Exec { path }) = pending {
            self.input(pid, path, Inputs::EXEC);
        }
        let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
            return;
        };
        let mut seen: Vec<&str> = Vec::new();
        for line in maps.lines() {
            // address perms offset dev inode pathname
            let mut fields = line.splitn(6, ' ');
            let inode = fields.nth(4).unwrap_or("0");
            let name = fields.next().unwrap_or("").trim_start();
            if inode == "0" || !name.starts_with('/') || name.ends_with(" (deleted)") {
                continue;
            }
            if !seen.contains(&name) {
                seen.push(name);
            }
        }
        for name in seen {
            let p = memory::normalize(Path::new(name));
            if !self.ignored(&p) {
                self.input(pid, p, Inputs::EXEC);
            }
        }
    }
}
