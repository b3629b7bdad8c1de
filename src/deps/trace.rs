//! Traced dependencies: turns a `trace::TraceLog` into entries (ordinary `DepState`s of
//! the `Trace*` kinds plus a stat fingerprint for the fast path) and checks recorded
//! entries against the filesystem. Knows nothing of ptrace, records or storage.
//!
//! The contract with the engine is in /work/wt/BRIEF.md and docs/trace.md §1 and §6.

mod check;
mod findings;
mod state;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::{DepState, Kind};
use crate::encode::{Decoder, Encoder};

pub use check::{Checker, Work};
pub use findings::{findings, findings_reusing};

/// One traced dependency: its semantic state (in the state key) and the stat
/// fingerprint seen when it was recorded (fast path only, never in a key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dep: DepState,
    pub fp: Fingerprint,
}

/// A stat fingerprint: when it is unchanged (and was not taken within a clock tick of
/// the path's last change, the racy rule), the state is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Fingerprint {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    /// st_mode (type and permission bits); 0 = nothing there (an `absent` entry).
    pub mode: u32,
    /// When the state was computed; `i64::MIN` = never trust this fingerprint.
    pub observed_at_ns: i64,
}

impl Fingerprint {
    /// The fingerprint of an `absent` entry (and of states that have no fast path).
    pub const NONE: Fingerprint = Fingerprint {
        dev: 0,
        ino: 0,
        size: 0,
        mtime_ns: 0,
        ctime_ns: 0,
        mode: 0,
        observed_at_ns: i64::MIN,
    };

    /// Same stat, whatever the observation time.
    pub fn same_stat(&self, other: &Fingerprint) -> bool {
        (
            self.dev,
            self.ino,
            self.size,
            self.mtime_ns,
            self.ctime_ns,
            self.mode,
        ) == (
            other.dev,
            other.ino,
            other.size,
            other.mtime_ns,
            other.ctime_ns,
            other.mode,
        )
    }

    /// Changed within a clock tick of its observation: an identical stat proves nothing.
    pub fn is_racy(&self) -> bool {
        self.mode == 0
            || crate::deps::stat_cache::racy(self.mtime_ns, self.ctime_ns, self.observed_at_ns)
    }
}

/// What `findings` needs besides the log.
pub struct TraceOpts<'a> {
    pub ws: &'a crate::spec::Workspace,
    /// `--trace-ignore` globs, matched on the absolute path and on the workspace key.
    pub ignore: &'a globset::GlobSet,
    /// The run's start, from [`run_start_ns`] read just before spawning: an input whose
    /// mtime or ctime is at or after it changed while the command ran.
    pub started_ns: i64,
}

/// The run's start as file timestamps will see it: every file changed before it carries
/// an older timestamp, every file changed after it one at or after it.
///
/// File timestamps come from the coarse clock (`CLOCK_REALTIME_COARSE`, up to a tick or
/// more behind `SystemTime::now()`), so a write just after a fine start could look older.
/// But since Linux 6.13 ("multigrain" timestamps: ext4, xfs, btrfs, tmpfs) a file whose
/// times were read since its last change gets a *fine* timestamp on its next change,
/// ahead of the coarse clock: a header a build step wrote 5 ms before the traced step
/// started looked changed during the run, and the step was never recorded. The kernel
/// keeps every later timestamp at or above the newest fine one it handed out, so the
/// start is taken from `marker` touched twice with its times read before each touch
/// (the second touch gets a fine timestamp newer than every earlier one); the coarse
/// clock is the floor, and the answer when the marker cannot be written.
pub fn run_start_ns(marker: &Path) -> i64 {
    let coarse = coarse_now_ns();
    fine_file_stamp_ns(marker).map_or(coarse, |fine| fine.max(coarse))
}

fn coarse_now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the pointer it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc != 0 {
        return crate::clock::real_now_ns() - 100_000_000;
    }
    ts.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec)
}

/// A timestamp the filesystem hands out now (see [`run_start_ns`]).
fn fine_file_stamp_ns(marker: &Path) -> Option<i64> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(marker)
        .ok()?;
    for _ in 0..2 {
        f.metadata().ok()?;
        // SAFETY: a null `times` sets both times of our own open file to now.
        if unsafe { libc::futimens(f.as_raw_fd(), std::ptr::null()) } != 0 {
            return None;
        }
    }
    let md = f.metadata().ok()?;
    if !md.is_file() {
        return None;
    }
    let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
    Some(ns(md.mtime(), md.mtime_nsec()).max(ns(md.ctime(), md.ctime_nsec())))
}

/// What a traced run depends on and did.
#[derive(Debug, Default, Clone)]
pub struct Findings {
    /// Sorted by (kind, name); one per path (the strongest kind).
    pub entries: Vec<Entry>,
    /// Workspace keys the run wrote and that are present at the end (files, dirs,
    /// symlinks), sorted.
    pub outputs: Vec<Vec<u8>>,
    /// Absolute paths written outside the workspace (temporaries it removed excluded).
    pub side_effects: Vec<PathBuf>,
    /// One phrase per reason the outcome cannot be recorded; non-empty → run, do not
    /// record.
    pub unrecordable: Vec<String>,
}

/// The result of checking one entry list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Unchanged,
    Changed(Change),
}

/// The first entry of a list that differs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// As recorded.
    pub dep: DepState,
    /// The state now; `None` = the path is gone.
    pub now: Option<Vec<u8>>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = String::from_utf8_lossy(&self.dep.name);
        let name = crate::ui::escape_controls(&name);
        let now = self.now.as_deref();
        match (self.dep.kind, now) {
            (Kind::TraceAbsent, Some(now)) => {
                write!(f, "{} {name} appeared", appeared_kind(now))
            }
            (Kind::TraceListing, None) => write!(f, "dir {name}/ disappeared"),
            // Recorded as a dangling symlink, now nothing at all.
            (Kind::TraceAbsent, None) => write!(f, "link {name} disappeared"),
            (Kind::TraceListing, Some(_)) => write!(f, "dir {name}/ listing changed"),
            (kind, None) => write!(f, "{} {name} disappeared", kind.label()),
            (kind, Some(_)) => write!(f, "{} {name} changed", kind.label()),
        }
    }
}

/// "file", "dir", "link", ... for the state now of a path that was absent.
fn appeared_kind(now: &[u8]) -> &'static str {
    let attrs = now.strip_prefix(b"present ").unwrap_or(now);
    let attrs = attrs.strip_prefix(b"both:").unwrap_or(attrs);
    if attrs.starts_with(b"dir") {
        "dir"
    } else if attrs.starts_with(b"symlink") {
        "link"
    } else if attrs.starts_with(b"file") {
        "file"
    } else {
        "path"
    }
}

/// Entry-list format version: bumped when the encoding changes.
const ENTRIES_V1: u64 = 1;
/// kind + two length prefixes + seven fixed-size fingerprint fields.
const MIN_ENTRY_LEN: usize = 1 + 8 + 8 + 7 * 8;

/// Encodes an entry list (fingerprints included) for the engine's set index.
pub fn encode_entries(e: &mut Encoder, entries: &[Entry]) {
    e.u64(ENTRIES_V1).u64(entries.len() as u64);
    for en in entries {
        let fp = &en.fp;
        e.u8(en.dep.kind as u8)
            .bytes(&en.dep.name)
            .bytes(&en.dep.state)
            .u64(fp.dev)
            .u64(fp.ino)
            .u64(fp.size)
            .i64(fp.mtime_ns)
            .i64(fp.ctime_ns)
            .u64(fp.mode as u64)
            .i64(fp.observed_at_ns);
    }
}

/// Decodes what [`encode_entries`] wrote; anything else is an error, never a panic.
pub fn decode_entries(d: &mut Decoder) -> Result<Vec<Entry>> {
    let v = d.u64()?;
    if v != ENTRIES_V1 {
        bail!("unknown traced entry list format {v}");
    }
    let n = d.count_of(MIN_ENTRY_LEN)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = Kind::from_u8(d.u8()?)?;
        if !kind.is_traced() {
            bail!("a traced entry list holds a {} dependency", kind.label());
        }
        let name = d.vec()?;
        if name.is_empty() || name.contains(&0) {
            bail!("a traced entry has an empty or NUL-holding name");
        }
        let state = d.vec()?;
        let fp = Fingerprint {
            dev: d.u64()?,
            ino: d.u64()?,
            size: d.u64()?,
            mtime_ns: d.i64()?,
            ctime_ns: d.i64()?,
            mode: u32::try_from(d.u64()?)?,
            observed_at_ns: d.i64()?,
        };
        out.push(Entry {
            dep: DepState { kind, name, state },
            fp,
        });
    }
    Ok(out)
}
