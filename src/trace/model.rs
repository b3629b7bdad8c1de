//! What a traced run did, as plain values: the ordered access log, one summary per path
//! under the first-access rule, and the reasons the outcome is unknowable. Knows nothing
//! of ptrace, keys or storage.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A set of input kinds (bit flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Inputs(pub u16);

impl Inputs {
    /// The file's content was read (open for reading, or for writing without truncation).
    pub const READ: Inputs = Inputs(1);
    /// A successful lookup that followed a final symlink (stat, access, a failed open of an
    /// existing path, `EEXIST`, ...): the path exists.
    pub const PROBE: Inputs = Inputs(2);
    /// A successful lookup of the path itself (lstat, `AT_SYMLINK_NOFOLLOW`, `O_NOFOLLOW`).
    pub const PROBE_NOFOLLOW: Inputs = Inputs(4);
    /// A lookup that failed with ENOENT or ENOTDIR: the path did not exist.
    pub const ABSENT: Inputs = Inputs(8);
    /// The directory's entries were read (getdents).
    pub const LISTING: Inputs = Inputs(16);
    /// The symlink's target was read (readlink).
    pub const LINK: Inputs = Inputs(32);
    /// The file was executed or mapped as a program image (executable, ELF interpreter,
    /// `#!` interpreter, script).
    pub const EXEC: Inputs = Inputs(64);

    pub fn contains(self, other: Inputs) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn insert(&mut self, other: Inputs) {
        self.0 |= other.0;
    }
}

/// A set of write kinds (bit flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Writes(pub u16);

impl Writes {
    /// Created by open(O_CREAT)/creat/mknod where it did not exist before.
    pub const CREATED: Writes = Writes(1);
    /// Truncated (O_TRUNC, truncate): the old content does not matter.
    pub const TRUNCATED: Writes = Writes(2);
    /// Opened for writing without truncation: the old content matters (also a READ input).
    pub const MODIFIED: Writes = Writes(4);
    /// The target of a successful rename.
    pub const RENAMED_INTO: Writes = Writes(8);
    /// unlink, rmdir, or the source of a rename.
    pub const REMOVED: Writes = Writes(16);
    pub const MKDIR: Writes = Writes(32);
    /// Created as a symlink.
    pub const SYMLINK: Writes = Writes(64);
    /// Created as a hard link.
    pub const LINKED: Writes = Writes(128);
    /// Times changed (utime*).
    pub const METADATA: Writes = Writes(256);

    pub fn contains(self, other: Writes) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn insert(&mut self, other: Writes) {
        self.0 |= other.0;
    }
}

/// One access to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Input(Inputs),
    Write(Writes),
}

/// One line of the ordered access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position in the order the tracer saw accesses (0-based).
    pub seq: u64,
    /// The thread that made the call.
    pub pid: i32,
    pub path: PathBuf,
    pub access: Access,
}

/// Everything one path went through, summarised under the first-access rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathUse {
    /// The first access and its position in the log.
    pub first: Access,
    pub first_seq: u64,
    /// Input kinds seen before the first write (accesses after a write of ours are the
    /// command's own doing and are never inputs).
    pub inputs: Inputs,
    /// Every write kind seen.
    pub writes: Writes,
}

impl PathUse {
    /// Its state before the run matters.
    pub fn is_input(&self) -> bool {
        !self.inputs.is_empty()
    }
    /// The command wrote it.
    pub fn is_written(&self) -> bool {
        !self.writes.is_empty()
    }
    /// Read (or otherwise looked at) before it was written: both an input and an output.
    pub fn read_before_write(&self) -> bool {
        self.is_input() && self.is_written()
    }
}

/// Why the outcome of this run cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// connect/sendto/sendmsg to a non-local socket family (AF_INET = 2, AF_INET6 = 10...).
    InetSocket { family: u16 },
    /// bind to a non-local socket family: the network can send in (a server, a UDP
    /// receiver).
    InetBind { family: u16 },
    /// open_by_handle_at opens a file by an opaque handle, with no path to record.
    OpenByHandle,
    /// io_uring's reads and writes bypass the syscalls the tracer sees.
    IoUring,
    /// A setuid/setgid program, which runs without its privileges under the tracer.
    SetuidExec(PathBuf),
    /// A syscall made through a foreign ABI (32-bit process), the AUDIT_ARCH value.
    ForeignAbi { arch: u32 },
    /// A syscall made through the x32 ABI on x86_64.
    X32Abi,
    /// A path argument the tracer could not read from the tracee's memory.
    Unreadable { syscall: &'static str },
    /// A path through a /proc magic link (`/proc/self/fd/N/…`, `/dev/fd/N`) whose target
    /// cannot be known: a deleted file, an unreadable link.
    UnresolvableLink(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknowable {
    pub pid: i32,
    pub reason: Reason,
}

/// How the root process ended, exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal { signal: i32, core_dumped: bool },
}

/// The result of a traced run.
#[derive(Debug, Clone, Default)]
pub struct TraceLog {
    pub events: Vec<Event>,
    pub paths: BTreeMap<PathBuf, PathUse>,
    pub unknowable: Vec<Unknowable>,
    /// Syscall stops taken (seccomp stops and syscall-exit stops): the tracing cost.
    pub stops: u64,
}

impl TraceLog {
    /// Appends an access to the log and folds it into the path's summary.
    pub fn record(&mut self, pid: i32, path: PathBuf, access: Access) {
        let seq = self.events.len() as u64;
        match self.paths.get_mut(&path) {
            Some(u) => match access {
                Access::Input(k) if u.writes.is_empty() => u.inputs.insert(k),
                Access::Input(_) => {}
                Access::Write(w) => u.writes.insert(w),
            },
            None => {
                let (inputs, writes) = match access {
                    Access::Input(k) => (k, Writes::default()),
                    Access::Write(w) => (Inputs::default(), w),
                };
                self.paths.insert(
                    path.clone(),
                    PathUse {
                        first: access,
                        first_seq: seq,
                        inputs,
                        writes,
                    },
                );
            }
        }
        self.events.push(Event {
            seq,
            pid,
            path,
            access,
        });
    }

    pub fn unknowable(&mut self, pid: i32, reason: Reason) {
        if !self.unknowable.iter().any(|u| u.reason == reason) {
            self.unknowable.push(Unknowable { pid, reason });
        }
    }

    pub fn get(&self, path: impl AsRef<Path>) -> Option<&PathUse> {
        self.paths.get(path.as_ref())
    }

    /// Paths whose state before the run matters.
    pub fn inputs(&self) -> impl Iterator<Item = (&PathBuf, &PathUse)> {
        self.paths.iter().filter(|(_, u)| u.is_input())
    }

    /// Paths the command wrote.
    pub fn written(&self) -> impl Iterator<Item = (&PathBuf, &PathUse)> {
        self.paths.iter().filter(|(_, u)| u.is_written())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_after_the_first_write_are_not_inputs() {
        let mut log = TraceLog::default();
        log.record(1, "/w/out".into(), Access::Write(Writes::CREATED));
        log.record(1, "/w/out".into(), Access::Input(Inputs::READ));
        log.record(1, "/w/out".into(), Access::Write(Writes::REMOVED));
        log.record(1, "/w/out".into(), Access::Input(Inputs::ABSENT));
        let u = log.get("/w/out").unwrap();
        assert!(!u.is_input());
        assert_eq!(u.writes, Writes(Writes::CREATED.0 | Writes::REMOVED.0));
        assert_eq!(u.first, Access::Write(Writes::CREATED));
        assert_eq!(log.events.len(), 4);
    }

    #[test]
    fn read_then_written_keeps_the_input() {
        let mut log = TraceLog::default();
        log.record(1, "/w/f".into(), Access::Input(Inputs::PROBE));
        log.record(1, "/w/f".into(), Access::Input(Inputs::READ));
        log.record(2, "/w/f".into(), Access::Write(Writes::TRUNCATED));
        let u = log.get("/w/f").unwrap();
        assert!(u.read_before_write());
        assert!(u.inputs.contains(Inputs::READ) && u.inputs.contains(Inputs::PROBE));
        assert_eq!(u.first_seq, 0);
    }

    #[test]
    fn an_unknowable_reason_is_listed_once() {
        let mut log = TraceLog::default();
        log.unknowable(1, Reason::IoUring);
        log.unknowable(2, Reason::IoUring);
        assert_eq!(log.unknowable.len(), 1);
    }
}
