//! The stat cache: per task, each input file's (device, inode, size, mtime, ctime,
//! mode) and the hash it had then. A cached hash is reused only when the stat is
//! unchanged and the file was not written within a tick of its hashing ("racy").

use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::hash::{hash_file, HASHED_BYTES, HASHED_FILES};
use crate::encode::{Decoder, Encoder};

/// What the stat cache remembers about one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatEntry {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub mode: u32,
    pub hash: [u8; 32],
    pub hashed_at_ns: i64,
}

impl StatEntry {
    fn same_stat(&self, md: &Metadata) -> bool {
        self.dev == md.dev()
            && self.ino == md.ino()
            && self.size == md.size()
            && self.mtime_ns == mtime_ns(md)
            && self.ctime_ns == ctime_ns(md)
            && self.mode == md.mode()
    }

    /// "Racy git": a file modified within one timestamp tick of its hashing could be
    /// modified again with an identical stat, so its hash cannot be trusted.
    pub fn is_racy(&self) -> bool {
        racy(self.mtime_ns, self.ctime_ns, self.hashed_at_ns)
    }
}

/// Filesystems with whole-second timestamps (nanoseconds all zero) get a 2 s margin;
/// nanosecond filesystems a margin larger than the kernel's coarse clock tick.
pub fn racy(mtime_ns: i64, ctime_ns: i64, hashed_at_ns: i64) -> bool {
    let newest = mtime_ns.max(ctime_ns);
    let margin = if mtime_ns % 1_000_000_000 == 0 {
        2_000_000_000
    } else {
        100_000_000
    };
    newest.saturating_add(margin) > hashed_at_ns
}

pub fn mtime_ns(md: &Metadata) -> i64 {
    md.mtime().saturating_mul(1_000_000_000) + md.mtime_nsec()
}

pub fn ctime_ns(md: &Metadata) -> i64 {
    md.ctime().saturating_mul(1_000_000_000) + md.ctime_nsec()
}

/// The stat cache of one task: (path bytes, entry), sorted by path bytes. Loaded and
/// saved as one blob so a hit reads one row, whatever the number of files; looked up
/// by binary search (no hashing of 10,000 paths on every hit).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StatCache {
    pub entries: Vec<(Vec<u8>, StatEntry)>,
}

impl StatCache {
    pub fn get(&self, path: &[u8]) -> Option<&StatEntry> {
        self.entries
            .binary_search_by(|(p, _)| p.as_slice().cmp(path))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// Restores the sort order after inserting out of order.
    pub fn normalize(&mut self) {
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        self.entries.dedup_by(|a, b| a.0 == b.0);
    }

    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut d = Decoder::new(buf);
        if d.u64()? != 2 {
            bail!("unknown stat cache format");
        }
        let n = d.count_of(104)?; // the fixed-size fields of one entry
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let path = d.vec()?;
            let e = StatEntry {
                dev: d.u64()?,
                ino: d.u64()?,
                size: d.u64()?,
                mtime_ns: d.i64()?,
                ctime_ns: d.i64()?,
                mode: d.u64()? as u32,
                hash: d.hash()?,
                hashed_at_ns: d.i64()?,
            };
            entries.push((path, e));
        }
        let mut c = Self { entries };
        if !c.entries.windows(2).all(|w| w[0].0 < w[1].0) {
            c.normalize();
        }
        Ok(c)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.u64(2).u64(self.entries.len() as u64);
        for (path, s) in &self.entries {
            e.bytes(path)
                .u64(s.dev)
                .u64(s.ino)
                .u64(s.size)
                .i64(s.mtime_ns)
                .i64(s.ctime_ns)
                .u64(s.mode as u64)
                .bytes(&s.hash)
                .i64(s.hashed_at_ns);
        }
        e.finish()
    }
}

/// A stat-cache entry with the path bytes it is keyed by.
pub type CacheEntry = (Vec<u8>, StatEntry);

/// The stat-cache entry of a regular file: the cached one when its stat is unchanged
/// and it is not racy, else a fresh hash.
pub fn file_entry(
    path: &Path,
    md: &Metadata,
    old: &StatCache,
    now_ns: &dyn Fn() -> i64,
) -> Result<StatEntry> {
    let key = path.as_os_str().as_bytes();
    if let Some(e) = old.get(key) {
        if e.same_stat(md) && !e.is_racy() {
            return Ok(*e);
        }
    }
    let hashed_at_ns = now_ns();
    HASHED_FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    HASHED_BYTES.fetch_add(md.size(), std::sync::atomic::Ordering::Relaxed);
    let hash =
        hash_file(path, md.size()).with_context(|| format!("cannot read {}", path.display()))?;
    // The file may have changed while we read it: then never trust this entry.
    let md2 = std::fs::symlink_metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?;
    let hashed_at_ns = if mtime_ns(&md2) != mtime_ns(md) || md2.size() != md.size() {
        i64::MIN
    } else {
        hashed_at_ns
    };
    Ok(StatEntry {
        dev: md.dev(),
        ino: md.ino(),
        size: md.size(),
        mtime_ns: mtime_ns(md),
        ctime_ns: ctime_ns(md),
        mode: md.mode(),
        hash,
        hashed_at_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn racy_window() {
        let s = 1_000_000_000i64;
        // Hashed in the same tick as the write: racy.
        assert!(racy(10 * s + 5, 10 * s + 5, 10 * s + 6));
        // Written long before hashing: trusted.
        assert!(!racy(10 * s + 5, 10 * s + 5, 20 * s));
        // Whole-second filesystems need two seconds of distance.
        assert!(racy(10 * s, 10 * s, 11 * s + 500_000_000));
        assert!(!racy(10 * s, 10 * s, 12 * s + 1));
    }

    #[test]
    fn stat_cache_roundtrip() {
        let mut c = StatCache::default();
        c.entries.push((
            b"/x".to_vec(),
            StatEntry {
                dev: 1,
                ino: 2,
                size: 3,
                mtime_ns: 4,
                ctime_ns: 5,
                mode: 0o644,
                hash: [7; 32],
                hashed_at_ns: 8,
            },
        ));
        let d = StatCache::decode(&c.encode()).unwrap();
        assert_eq!(d.entries, c.entries);
        assert!(StatCache::decode(&c.encode()[..10]).is_err());
    }
}
