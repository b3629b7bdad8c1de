//! The stat cache: per task, each input file's (device, inode, size, mtime, ctime,
//! mode) and the hash it had then, as one flat table read in one go (like git's index).
//! A cached hash is reused only when the stat is unchanged and the file was not written
//! within a tick of its hashing ("racy"); a table that fails any check is never used.

use std::cmp::Ordering;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::hash::{hash_file, HASHED_BYTES, HASHED_FILES};

pub use super::dirent::Stat;

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
    fn same_stat(&self, st: &Stat) -> bool {
        self.dev == st.dev
            && self.ino == st.ino
            && self.size == st.size
            && self.mtime_ns == st.mtime_ns
            && self.ctime_ns == st.ctime_ns
            && self.mode == st.mode
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

/// Encoded table layout (all little-endian): `count: u64`, `paths_len: u64`, then
/// `count` fixed-width rows of [`ROW`] bytes sorted by path, then the path bytes.
/// A row: path offset (u32, into the path bytes) and length (u32), dev, ino, size,
/// mtime_ns, ctime_ns, hashed_at_ns (8 bytes each), mode (u32), 4 zero bytes, hash.
const HEADER: usize = 16;
pub const ROW: usize = 96;

/// The stat cache of one task: a validated table, compared in place (nothing is
/// decoded into owned paths). Cloning shares the bytes.
#[derive(Clone, Default)]
pub struct StatCache {
    /// The table is `buf[at..at + table_len]` (a loaded file keeps its header and checksum
    /// around it: no copy).
    buf: Arc<Vec<u8>>,
    at: usize,
    table_len: usize,
    count: usize,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

impl StatCache {
    /// Takes a table found at `buf[at..at + len]`, checking every offset, length and
    /// the sort order: anything that fails is an error (the caller then starts from an
    /// empty cache and re-hashes), never a panic or a trusted guess.
    pub fn parse(buf: Vec<u8>, at: usize, len: usize) -> Result<Self> {
        let end = at.checked_add(len).context("stat cache length overflows")?;
        let table = buf.get(at..end).context("stat cache outside its file")?;
        if table.len() < HEADER {
            bail!("stat cache shorter than its header");
        }
        let count = usize::try_from(u64_at(table, 0))?;
        let paths_len = usize::try_from(u64_at(table, 8))?;
        let rows_len = count
            .checked_mul(ROW)
            .context("stat cache count overflows")?;
        let want = HEADER
            .checked_add(rows_len)
            .and_then(|n| n.checked_add(paths_len))
            .context("stat cache size overflows")?;
        if want != table.len() {
            bail!(
                "stat cache of {} bytes, its header says {want}",
                table.len()
            );
        }
        let c = StatCache {
            buf: Arc::new(buf),
            at,
            table_len: len,
            count,
        };
        let mut prev: Option<&[u8]> = None;
        for i in 0..count {
            let row = c.row(i);
            let (off, n) = (u32_at(row, 0) as usize, u32_at(row, 4) as usize);
            if off.checked_add(n).is_none_or(|e| e > paths_len) {
                bail!("stat cache row {i} points outside the path bytes");
            }
            let path = c.path(i);
            if prev.is_some_and(|p| p >= path) {
                bail!("stat cache rows are not sorted");
            }
            prev = Some(path);
        }
        Ok(c)
    }

    /// [`StatCache::parse`] of a whole buffer.
    pub fn decode(buf: Vec<u8>) -> Result<Self> {
        let len = buf.len();
        Self::parse(buf, 0, len)
    }

    /// The table from entries in any order (the last of equal paths wins).
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a [u8], StatEntry)>) -> Self {
        let mut v: Vec<(&[u8], StatEntry)> = entries.into_iter().collect();
        v.reverse();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        Self::build(&v)
    }

    /// Encodes entries already sorted by path and unique.
    fn build(sorted: &[(&[u8], StatEntry)]) -> Self {
        let paths_len: usize = sorted.iter().map(|(p, _)| p.len()).sum();
        let len = HEADER + sorted.len() * ROW + paths_len;
        let mut b = Vec::with_capacity(len);
        b.extend_from_slice(&(sorted.len() as u64).to_le_bytes());
        b.extend_from_slice(&(paths_len as u64).to_le_bytes());
        let mut off = 0usize;
        for (p, e) in sorted {
            // Paths are bounded by the hot file's size limit, far below 4 GiB.
            b.extend_from_slice(&(off as u32).to_le_bytes());
            b.extend_from_slice(&(p.len() as u32).to_le_bytes());
            for v in [e.dev, e.ino, e.size] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            for v in [e.mtime_ns, e.ctime_ns, e.hashed_at_ns] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            b.extend_from_slice(&e.mode.to_le_bytes());
            b.extend_from_slice(&[0; 4]);
            b.extend_from_slice(&e.hash);
            off += p.len();
        }
        for (p, _) in sorted {
            b.extend_from_slice(p);
        }
        debug_assert_eq!(b.len(), len);
        StatCache {
            buf: Arc::new(b),
            at: 0,
            table_len: len,
            count: sorted.len(),
        }
    }

    /// The encoded table (what [`StatCache::parse`] reads back).
    pub fn encode(&self) -> &[u8] {
        if self.table_len == 0 {
            return &[0; HEADER];
        }
        self.table()
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn table(&self) -> &[u8] {
        &self.buf[self.at..self.at + self.table_len]
    }

    fn row(&self, i: usize) -> &[u8] {
        let at = HEADER + i * ROW;
        &self.table()[at..at + ROW]
    }

    /// The path of row `i` (`i < len()`).
    pub fn path(&self, i: usize) -> &[u8] {
        let row = self.row(i);
        let (off, n) = (u32_at(row, 0) as usize, u32_at(row, 4) as usize);
        let start = HEADER + self.count * ROW + off;
        &self.table()[start..start + n]
    }

    /// The entry of row `i` (`i < len()`).
    pub fn entry(&self, i: usize) -> StatEntry {
        let r = self.row(i);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&r[64..96]);
        StatEntry {
            dev: u64_at(r, 8),
            ino: u64_at(r, 16),
            size: u64_at(r, 24),
            mtime_ns: u64_at(r, 32) as i64,
            ctime_ns: u64_at(r, 40) as i64,
            hashed_at_ns: u64_at(r, 48) as i64,
            mode: u32_at(r, 56),
            hash,
        }
    }

    /// Every (path, entry), in path order.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], StatEntry)> + '_ {
        (0..self.count).map(|i| (self.path(i), self.entry(i)))
    }

    /// The row of `path`, by binary search.
    pub fn find(&self, path: &[u8]) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.path(mid).cmp(path) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    pub fn get(&self, path: &[u8]) -> Option<StatEntry> {
        self.find(path).map(|i| self.entry(i))
    }

    /// Both hold the same table; `true` at once when they share their bytes.
    pub fn same_as(&self, other: &StatCache) -> bool {
        (Arc::ptr_eq(&self.buf, &other.buf)
            && self.at == other.at
            && self.table_len == other.table_len)
            || self.encode() == other.encode()
    }
}

impl PartialEq for StatCache {
    fn eq(&self, other: &Self) -> bool {
        self.same_as(other)
    }
}

impl Eq for StatCache {}

impl std::fmt::Debug for StatCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatCache")
            .field("count", &self.count)
            .finish()
    }
}

/// Looks up a run of paths in increasing order: after one binary search, each lookup
/// moves forward from the last row found, so sorted input costs one comparison or two
/// per path instead of a search.
pub struct Cursor<'a> {
    cache: &'a StatCache,
    next: Option<usize>,
}

impl<'a> Cursor<'a> {
    pub fn new(cache: &'a StatCache) -> Self {
        Cursor { cache, next: None }
    }

    pub fn find(&mut self, path: &[u8]) -> Option<usize> {
        let c = self.cache;
        let Some(mut i) = self.next else {
            let found = c.find(path);
            self.next = Some(found.map_or_else(|| lower_bound(c, path), |i| i + 1));
            return found;
        };
        // Never more than a few steps forward on a warm hit; a path out of order (or
        // far ahead) falls back to the binary search.
        for _ in 0..8 {
            if i >= c.count {
                break;
            }
            match c.path(i).cmp(path) {
                Ordering::Less => i += 1,
                Ordering::Equal => {
                    self.next = Some(i + 1);
                    return Some(i);
                }
                Ordering::Greater => {
                    if i == 0 || c.path(i - 1) < path {
                        self.next = Some(i);
                        return None;
                    }
                    break;
                }
            }
        }
        self.next = None;
        self.find(path)
    }
}

/// The first row whose path is not below `path`.
fn lower_bound(c: &StatCache, path: &[u8]) -> usize {
    let (mut lo, mut hi) = (0, c.count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if c.path(mid) < path {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Where a path's stat-cache entry came from in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheUse {
    /// Row `i` of the old cache, unchanged.
    Kept(usize),
    /// Hashed now: the path it is keyed by and the new entry (boxed: a warm hit's
    /// vector of uses stays 16 bytes a file).
    Fresh(Box<(Vec<u8>, StatEntry)>),
}

/// Collects what a snapshot used, in the order it met the paths, to become the next
/// stat cache. On a warm hit every use is `Kept(0)`, `Kept(1)`, …: the old table is
/// reused as it is (no copy, no write).
#[derive(Default)]
pub struct CacheBuilder {
    uses: Vec<CacheUse>,
}

impl CacheBuilder {
    pub fn push(&mut self, u: CacheUse) {
        self.uses.push(u);
    }

    pub fn extend(&mut self, uses: Vec<Option<CacheUse>>) {
        self.uses.reserve(uses.len());
        self.uses.extend(uses.into_iter().flatten());
    }

    pub fn finish(self, old: &StatCache) -> StatCache {
        let unchanged = self.uses.len() == old.len()
            && self
                .uses
                .iter()
                .enumerate()
                .all(|(i, u)| *u == CacheUse::Kept(i));
        if unchanged {
            return old.clone();
        }
        let mut v: Vec<(&[u8], StatEntry)> = self
            .uses
            .iter()
            .map(|u| match u {
                CacheUse::Kept(i) => (old.path(*i), old.entry(*i)),
                CacheUse::Fresh(f) => (f.0.as_slice(), f.1),
            })
            .collect();
        if !v.windows(2).all(|w| w[0].0 < w[1].0) {
            v.sort_by(|a, b| a.0.cmp(b.0));
            v.dedup_by(|a, b| a.0 == b.0);
        }
        StatCache::build(&v)
    }
}

/// The stat-cache entry of a regular file: the cached row when its stat is unchanged
/// and it is not racy, else a fresh hash.
pub fn file_entry(
    path: &Path,
    st: &Stat,
    old: &StatCache,
    cursor: &mut Cursor<'_>,
    now_ns: &dyn Fn() -> i64,
) -> Result<(StatEntry, CacheUse)> {
    use std::os::unix::ffi::OsStrExt;
    let key = path.as_os_str().as_bytes();
    if let Some(i) = cursor.find(key) {
        let e = old.entry(i);
        if e.same_stat(st) && !e.is_racy() {
            return Ok((e, CacheUse::Kept(i)));
        }
    }
    let e = hash_entry(path, st, now_ns)?;
    Ok((e, CacheUse::Fresh(Box::new((key.to_vec(), e)))))
}

/// Hashes a regular file now, for a new entry.
fn hash_entry(path: &Path, st: &Stat, now_ns: &dyn Fn() -> i64) -> Result<StatEntry> {
    let hashed_at_ns = now_ns();
    HASHED_FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    HASHED_BYTES.fetch_add(st.size, std::sync::atomic::Ordering::Relaxed);
    let hash =
        hash_file(path, st.size).with_context(|| format!("cannot read {}", path.display()))?;
    // The file may have changed while we read it: then never trust this entry.
    let st2 = Stat::lstat(path).with_context(|| format!("cannot stat {}", path.display()))?;
    let hashed_at_ns = if st2.mtime_ns != st.mtime_ns || st2.size != st.size {
        i64::MIN
    } else {
        hashed_at_ns
    };
    Ok(StatEntry {
        dev: st.dev,
        ino: st.ino,
        size: st.size,
        mtime_ns: st.mtime_ns,
        ctime_ns: st.ctime_ns,
        mode: st.mode,
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

    fn entry(n: u8) -> StatEntry {
        StatEntry {
            dev: 1,
            ino: n as u64,
            size: 3,
            mtime_ns: 4,
            ctime_ns: -5,
            mode: 0o100644,
            hash: [n; 32],
            hashed_at_ns: 8,
        }
    }

    fn sample() -> StatCache {
        StatCache::from_entries([
            (&b"/x/b"[..], entry(2)),
            (&b"/x/a"[..], entry(1)),
            (&b"/x/c"[..], entry(3)),
            (&b"/x/a"[..], entry(9)),
        ])
    }

    #[test]
    fn stat_cache_roundtrip() {
        let c = sample();
        assert_eq!(c.len(), 3, "equal paths are deduplicated");
        let d = StatCache::decode(c.encode().to_vec()).unwrap();
        let got: Vec<(Vec<u8>, StatEntry)> = d.entries().map(|(p, e)| (p.to_vec(), e)).collect();
        assert_eq!(
            got,
            [
                (b"/x/a".to_vec(), entry(9)),
                (b"/x/b".to_vec(), entry(2)),
                (b"/x/c".to_vec(), entry(3)),
            ]
        );
        assert_eq!(d.get(b"/x/b"), Some(entry(2)));
        assert_eq!(d.get(b"/x/bb"), None);
        assert!(StatCache::decode(Vec::new()).is_err());
        assert!(StatCache::decode(StatCache::default().encode().to_vec())
            .unwrap()
            .is_empty());
    }

    /// A short, long or rearranged table is refused as a whole, and no mutation of a
    /// valid one panics: the caller then re-hashes everything.
    #[test]
    fn truncated_or_inconsistent_tables_are_refused() {
        let good = sample().encode().to_vec();
        for cut in 0..good.len() {
            assert!(
                StatCache::decode(good[..cut].to_vec()).is_err(),
                "cut {cut}"
            );
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(StatCache::decode(longer).is_err());
        // Rows out of order: swap the first two rows.
        let mut swapped = good.clone();
        let (a, b) = (HEADER, HEADER + ROW);
        let first: Vec<u8> = swapped[a..b].to_vec();
        swapped.copy_within(b..b + ROW, a);
        swapped[b..b + ROW].copy_from_slice(&first);
        assert!(StatCache::decode(swapped).is_err());
        // A path offset past the path bytes.
        let mut outside = good.clone();
        outside[HEADER..HEADER + 4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(StatCache::decode(outside).is_err());
        for i in 0..good.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = good.clone();
                bad[i] ^= bit;
                if let Ok(c) = StatCache::decode(bad) {
                    let _: Vec<_> = c.entries().collect();
                }
            }
        }
    }

    #[test]
    fn cursor_agrees_with_binary_search() {
        let paths: Vec<Vec<u8>> = (0..50u8)
            .filter(|i| i % 3 != 0)
            .map(|i| format!("/p/{i:03}").into_bytes())
            .collect();
        let c = StatCache::from_entries(paths.iter().map(|p| (p.as_slice(), entry(1))));
        let queries: Vec<Vec<u8>> = (0..60u8)
            .map(|i| format!("/p/{i:03}").into_bytes())
            .chain([b"/a".to_vec(), b"/p/025".to_vec(), b"/z".to_vec()])
            .collect();
        let mut cur = Cursor::new(&c);
        for q in &queries {
            assert_eq!(cur.find(q), c.find(q), "{}", String::from_utf8_lossy(q));
        }
    }

    #[test]
    fn builder_reuses_an_unchanged_table_and_rebuilds_otherwise() {
        let old = sample();
        let mut b = CacheBuilder::default();
        (0..3).for_each(|i| b.push(CacheUse::Kept(i)));
        let same = b.finish(&old);
        assert!(Arc::ptr_eq(&same.buf, &old.buf));
        let mut b = CacheBuilder::default();
        b.push(CacheUse::Fresh(Box::new((b"/x/0".to_vec(), entry(7)))));
        b.push(CacheUse::Kept(2));
        let new = b.finish(&old);
        let got: Vec<(Vec<u8>, StatEntry)> = new.entries().map(|(p, e)| (p.to_vec(), e)).collect();
        assert_eq!(
            got,
            [(b"/x/0".to_vec(), entry(7)), (b"/x/c".to_vec(), entry(3))]
        );
    }
}
