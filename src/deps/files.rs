//! File dependencies: turn `-f` specs (files, directories, globs, `!excludes`) into a
//! sorted list of paths, then into states through the stat cache. A file is re-hashed
//! only when its stat changed or it was written too close to its last hashing ("racy").

use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use globset::{GlobBuilder, GlobMatcher};
use rayon::prelude::*;

use super::walk::{walk, Rules};
use super::{DepState, Kind};
use crate::encode::{Decoder, Encoder};
use crate::spec::Workspace;

/// One parsed path spec: a literal path, or a glob anchored at its literal prefix.
#[derive(Debug, Clone)]
pub enum PathSpec {
    Literal(PathBuf),
    Glob { base: PathBuf, matcher: GlobMatcher },
}

/// An exclusion: anchored like an include when it has a `/`, else matched against
/// every file name (as in .gitignore).
#[derive(Debug, Clone)]
enum Exclude {
    Anchored { base: PathBuf, matcher: GlobMatcher },
    Name(GlobMatcher),
}

fn has_glob_meta(s: &[u8]) -> bool {
    s.iter().any(|c| matches!(c, b'*' | b'?' | b'[' | b'{'))
}

fn build_glob(pattern: &str, spec: &OsStr) -> Result<GlobMatcher> {
    Ok(GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .with_context(|| format!("invalid glob '{}'", spec.to_string_lossy()))?
        .compile_matcher())
}

impl PathSpec {
    pub fn parse(spec: &OsStr, ws: &Workspace) -> Result<Self> {
        let bytes = spec.as_bytes();
        if bytes.is_empty() {
            bail!("empty path spec: give a file, directory or glob");
        }
        if !has_glob_meta(bytes) {
            return Ok(PathSpec::Literal(ws.absolute(Path::new(spec))));
        }
        let text = spec
            .to_str()
            .with_context(|| format!("glob '{}' is not valid UTF-8", spec.to_string_lossy()))?;
        let (base, rest) = split_glob(text);
        let matcher = build_glob(&rest, spec)?;
        Ok(PathSpec::Glob {
            base: ws.absolute(Path::new(&base)),
            matcher,
        })
    }

    /// The directory a walk for this spec starts from (or the literal path itself).
    pub fn base(&self) -> &Path {
        match self {
            PathSpec::Literal(p) => p,
            PathSpec::Glob { base, .. } => base,
        }
    }

    /// Does this spec cover `abs` (the path itself, or anything under a literal dir)?
    pub fn covers(&self, abs: &Path) -> bool {
        match self {
            PathSpec::Literal(p) => abs.starts_with(p),
            PathSpec::Glob { base, matcher } => match abs.strip_prefix(base) {
                Ok(rel) => prefixes(rel).any(|p| matcher.is_match(p)),
                Err(_) => false,
            },
        }
    }
}

/// Splits `src/lib/**/*.c` into (`src/lib`, `**/*.c`).
fn split_glob(text: &str) -> (String, String) {
    let parts: Vec<&str> = text.split('/').collect();
    let first_glob = parts
        .iter()
        .position(|p| has_glob_meta(p.as_bytes()))
        .unwrap_or(parts.len());
    let mut base = parts[..first_glob].join("/");
    if base.is_empty() {
        base = if text.starts_with('/') {
            "/".into()
        } else {
            ".".into()
        };
    }
    (base, parts[first_glob..].join("/"))
}

/// `a`, `a/b`, `a/b/c` for `a/b/c`: a match on a directory covers what is inside.
fn prefixes(rel: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    let mut acc = PathBuf::new();
    rel.components().map(move |c| {
        acc.push(c);
        acc.clone()
    })
}

/// All `-f` specs of a task, parsed once.
#[derive(Debug, Clone, Default)]
pub struct FileSpecs {
    includes: Vec<PathSpec>,
    excludes: Vec<Exclude>,
    /// The workspace root: ignore files are read from it down to each walked dir.
    root: PathBuf,
}

/// Paths whose state is not an input: declared outputs (and .git when ignoring).
pub trait Skip: Sync {
    fn skip(&self, abs: &Path) -> bool;
}

/// Skips nothing.
pub struct NoSkip;

impl Skip for NoSkip {
    fn skip(&self, _: &Path) -> bool {
        false
    }
}

impl FileSpecs {
    pub fn parse(specs: &[std::ffi::OsString], ws: &Workspace) -> Result<Self> {
        let mut out = FileSpecs {
            root: ws.root.clone(),
            ..FileSpecs::default()
        };
        for spec in specs {
            let bytes = spec.as_bytes();
            if let Some(rest) = bytes.strip_prefix(b"!") {
                let text = std::str::from_utf8(rest).with_context(|| {
                    format!("exclude '{}' is not valid UTF-8", spec.to_string_lossy())
                })?;
                if text.is_empty() {
                    bail!("empty exclude '!': give a pattern after the '!'");
                }
                if text.contains('/') {
                    let (base, rest) = split_glob(text);
                    let pattern = if rest.is_empty() {
                        "**".to_string()
                    } else {
                        rest
                    };
                    out.excludes.push(Exclude::Anchored {
                        base: ws.absolute(Path::new(&base)),
                        matcher: build_glob(&pattern, spec)?,
                    });
                } else {
                    out.excludes.push(Exclude::Name(build_glob(text, spec)?));
                }
            } else {
                out.includes.push(PathSpec::parse(spec, ws)?);
            }
        }
        Ok(out)
    }

    pub fn includes(&self) -> &[PathSpec] {
        &self.includes
    }

    fn excluded(&self, abs: &Path) -> bool {
        self.excludes.iter().any(|ex| match ex {
            Exclude::Name(m) => abs.file_name().is_some_and(|n| m.is_match(n)),
            Exclude::Anchored { base, matcher } => match abs.strip_prefix(base) {
                Ok(rel) => prefixes(rel).any(|p| matcher.is_match(p)),
                Err(_) => false,
            },
        })
    }

    /// Expands the specs into absolute paths with their `lstat`, sorted by path bytes.
    /// Literal paths that do not exist are returned too (state `absent`, no metadata);
    /// `missing` lists them for a warning.
    pub fn resolve(&self, no_ignore: bool, skip: &dyn Skip) -> Result<Resolved> {
        let mut entries: Vec<(PathBuf, Option<Metadata>)> = Vec::new();
        let mut missing = Vec::new();
        let prune = |d: &Path| skip.skip(d);
        for inc in &self.includes {
            match inc {
                PathSpec::Literal(p) => match std::fs::symlink_metadata(p) {
                    Ok(md) if md.is_dir() => {
                        let rules = Rules::for_dir(&self.root, p, no_ignore);
                        let keep = |f: &Path| !self.excluded(f) && !skip.skip(f);
                        for (path, md) in walk(p, &rules, &keep, &prune)? {
                            entries.push((path, Some(md)));
                        }
                    }
                    Ok(md) => {
                        if !self.excluded(p) {
                            entries.push((p.clone(), Some(md)))
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        missing.push(p.clone());
                        entries.push((p.clone(), None));
                    }
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot stat {}", p.display()))
                    }
                },
                PathSpec::Glob { base, matcher } => {
                    if !base.is_dir() {
                        continue;
                    }
                    let rules = Rules::for_dir(&self.root, base, no_ignore);
                    let keep = |f: &Path| {
                        f.strip_prefix(base).is_ok_and(|rel| matcher.is_match(rel))
                            && !self.excluded(f)
                            && !skip.skip(f)
                    };
                    for (path, md) in walk(base, &rules, &keep, &prune)? {
                        entries.push((path, Some(md)));
                    }
                }
            }
        }
        entries.sort_by(|a, b| a.0.as_os_str().as_bytes().cmp(b.0.as_os_str().as_bytes()));
        entries.dedup_by(|a, b| a.0 == b.0);
        Ok(Resolved { entries, missing })
    }
}

pub struct Resolved {
    /// Sorted by path bytes; metadata is `None` for paths that do not exist.
    pub entries: Vec<(PathBuf, Option<Metadata>)>,
    pub missing: Vec<PathBuf>,
}

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

/// Files and bytes hashed by this process (for progress display only).
pub static HASHED_FILES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
pub static HASHED_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// ", 1234 files (56.7 MB) hashed" for progress lines.
pub fn hashed_so_far() -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let files = HASHED_FILES.load(Relaxed);
    let bytes = HASHED_BYTES.load(Relaxed);
    format!(": {files} files ({:.1} MB) hashed", bytes as f64 / 1e6)
}

/// Files at least this large are hashed in parallel chunks.
const PARALLEL_THRESHOLD: u64 = 1 << 20;
/// Chunk size for streaming hashes: large enough for blake3's multithreading to pay,
/// small enough that memory stays constant (no mmap: mapped pages count as RSS).
const CHUNK: usize = 16 << 20;

/// The blake3 of an input file (dependency or program). Read, never mapped: a file
/// truncated while mapped kills the reader with SIGBUS (measured: 10 of 30 runs died
/// while a 2 GB input was being rewritten), and idem must never fail a step, or lose a
/// command's exit code in its post-run check, because an input moved under it.
pub fn hash_file(path: &Path, size: u64) -> std::io::Result<[u8; 32]> {
    if size < OVERLAP_THRESHOLD {
        return hash_file_streaming(path, size);
    }
    // Large inputs: one thread reads the next chunk while the others hash this one,
    // so the copy out of the page cache overlaps the hashing.
    use std::sync::mpsc::sync_channel;
    let mut file = std::fs::File::open(path)?;
    let mut h = blake3::Hasher::new();
    std::thread::scope(|s| -> std::io::Result<()> {
        let (full_tx, full_rx) = sync_channel::<std::io::Result<(Vec<u8>, usize)>>(1);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(2);
        for _ in 0..2 {
            let _ = empty_tx.send(vec![0u8; CHUNK]);
        }
        s.spawn(move || {
            while let Ok(mut buf) = empty_rx.recv() {
                let got = fill(&mut file, &mut buf);
                let last = !matches!(got, Ok(n) if n == buf.len());
                if full_tx.send(got.map(|n| (buf, n))).is_err() || last {
                    return;
                }
            }
        });
        while let Ok(chunk) = full_rx.recv() {
            let (buf, n) = chunk?;
            h.update_rayon(&buf[..n]);
            if n < buf.len() {
                break;
            }
            let _ = empty_tx.send(buf);
        }
        drop(empty_tx);
        Ok(())
    })?;
    Ok(*h.finalize().as_bytes())
}

/// Inputs at least this large are read and hashed concurrently.
const OVERLAP_THRESHOLD: u64 = 64 << 20;

/// Reads until `buf` is full or the end of the file; returns the bytes read.
fn fill(reader: &mut dyn std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The blake3 of a file in constant memory (blobs, outputs): mapped pages would count
/// towards resident memory, which restores and replays must keep small.
pub fn hash_file_streaming(path: &Path, size: u64) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    hash_reader(&mut file, size)
}

/// Streams a reader through blake3 in constant memory.
pub fn hash_reader(reader: &mut dyn std::io::Read, size_hint: u64) -> std::io::Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    if size_hint < PARALLEL_THRESHOLD {
        let mut buf = Vec::with_capacity(size_hint as usize + 1);
        reader.read_to_end(&mut buf)?;
        h.update(&buf);
        return Ok(*h.finalize().as_bytes());
    }
    let mut buf = vec![0u8; CHUNK];
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            break;
        }
        h.update_rayon(&buf[..filled]);
        if filled < buf.len() {
            break;
        }
    }
    Ok(*h.finalize().as_bytes())
}

/// The state of one path, using and refreshing the stat cache.
/// A stat-cache entry with the path bytes it is keyed by.
pub type CacheEntry = (Vec<u8>, StatEntry);

/// A path's state and, for regular files, the stat-cache entry to keep (keyed by the
/// path it describes). A symlink's state is its target text and, when it leads to a
/// regular file, that file's content too: editing the file behind `cfg -> shared/cfg`
/// must be a change. Directories behind links are not walked.
pub fn path_state(
    path: &Path,
    known: Option<&Metadata>,
    old: &StatCache,
    skip: &dyn Skip,
    now_ns: impl Fn() -> i64,
) -> Result<(Vec<u8>, Option<CacheEntry>)> {
    let fetched;
    let md = match known {
        Some(md) => md,
        None => match std::fs::symlink_metadata(path) {
            Ok(md) => {
                fetched = md;
                &fetched
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((b"absent".to_vec(), None))
            }
            Err(e) => return Err(e).with_context(|| format!("cannot stat {}", path.display())),
        },
    };
    let ft = md.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(path)
            .with_context(|| format!("cannot read symlink {}", path.display()))?;
        let mut st = b"symlink:".to_vec();
        st.extend_from_slice(target.as_os_str().as_bytes());
        let real = std::fs::canonicalize(path).ok();
        let real_md = real
            .as_ref()
            .and_then(|r| std::fs::symlink_metadata(r).ok());
        if let (Some(real), Some(real_md)) = (real, real_md) {
            // A link into a declared output (compile_commands.json -> build/…) keeps
            // its text-only state: the output's content is the command's, not an input.
            if real_md.is_file() && !skip.skip(&real) {
                let entry = file_entry(&real, &real_md, old, &now_ns)?;
                st.extend_from_slice(b";");
                st.extend_from_slice(&file_state(&entry, &real_md));
                return Ok((st, Some((real.as_os_str().as_bytes().to_vec(), entry))));
            }
        }
        return Ok((st, None));
    }
    if !ft.is_file() {
        // Never open FIFOs, sockets or devices: reading them could block or consume.
        let what = if ft.is_dir() { "dir" } else { "special" };
        return Ok((what.as_bytes().to_vec(), None));
    }
    let entry = file_entry(path, md, old, &now_ns)?;
    Ok((
        file_state(&entry, md),
        Some((path.as_os_str().as_bytes().to_vec(), entry)),
    ))
}

fn file_state(entry: &StatEntry, md: &Metadata) -> Vec<u8> {
    let exec = if md.mode() & 0o111 != 0 { "+x" } else { "" };
    format!("blake3:{}{exec}", blake3::Hash::from(entry.hash).to_hex()).into_bytes()
}

/// The stat-cache entry of a regular file: the cached one when its stat is unchanged
/// and it is not racy, else a fresh hash.
fn file_entry(
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

/// States of many paths, in parallel above a handful of files. Returns the states and
/// adds the refreshed stat-cache entries (only the paths seen now) to `new_cache`.
pub fn states(
    ws: &Workspace,
    items: &[(PathBuf, Option<Metadata>)],
    kind: Kind,
    old: &StatCache,
    skip: &dyn Skip,
    new_cache: &mut StatCache,
) -> Result<Vec<DepState>> {
    let now = crate::clock::real_now_ns;
    type Found = (DepState, Option<(Vec<u8>, StatEntry)>);
    let one = |(p, md): &(PathBuf, Option<Metadata>)| -> Result<Found> {
        let (st, entry) = path_state(p, md.as_ref(), old, skip, now)?;
        Ok((DepState::new(kind, ws.key_of(p), st), entry))
    };
    let results: Vec<Found> = if items.len() >= 32 {
        items.par_iter().map(one).collect::<Result<_>>()?
    } else {
        items.iter().map(one).collect::<Result<_>>()?
    };
    let mut deps = Vec::with_capacity(results.len());
    for (dep, entry) in results {
        if let Some(e) = entry {
            new_cache.entries.push(e);
        }
        deps.push(dep);
    }
    if !new_cache.entries.windows(2).all(|w| w[0].0 < w[1].0) {
        new_cache.normalize();
    }
    Ok(deps)
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

    /// The stat cache is trusted only outside the racy window: an entry whose stat
    /// matches exactly but was hashed within a tick of the write is re-hashed.
    #[test]
    fn racy_entry_is_rehashed_even_when_stat_matches() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "bbbb").unwrap();
        let md = std::fs::symlink_metadata(&p).unwrap();
        let stale = *blake3::hash(b"aaaa").as_bytes();
        let entry = |hashed_at_ns| StatEntry {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime_ns: mtime_ns(&md),
            ctime_ns: ctime_ns(&md),
            mode: md.mode(),
            hash: stale,
            hashed_at_ns,
        };
        let key = p.as_os_str().as_bytes().to_vec();
        let fresh_hex = blake3::hash(b"bbbb").to_hex().to_string();
        let stale_hex = blake3::hash(b"aaaa").to_hex().to_string();

        let mut racy_cache = StatCache::default();
        racy_cache.entries.push((
            key.clone(),
            entry(mtime_ns(&md).max(ctime_ns(&md)) + 1_000_000),
        ));
        let (st, _) = path_state(&p, None, &racy_cache, &NoSkip, || 0).unwrap();
        assert!(String::from_utf8(st).unwrap().contains(&fresh_hex));

        let mut safe_cache = StatCache::default();
        safe_cache
            .entries
            .push((key, entry(mtime_ns(&md) + 10_000_000_000)));
        let (st, _) = path_state(&p, None, &safe_cache, &NoSkip, || 0).unwrap();
        assert!(
            String::from_utf8(st).unwrap().contains(&stale_hex),
            "a safe entry with a matching stat is trusted without reading the file"
        );
    }

    #[test]
    fn every_hashing_path_agrees_with_blake3() {
        let dir = tempfile::tempdir().unwrap();
        // Sizes around each threshold: small read, chunked, overlapped (two threads).
        for size in [
            0usize,
            100,
            (1 << 20) + 3,
            (16 << 20) + 5,
            (64 << 20) + (16 << 20) + 7,
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let p = dir.path().join(format!("f{size}"));
            std::fs::write(&p, &data).unwrap();
            let want = *blake3::hash(&data).as_bytes();
            assert_eq!(
                hash_file(&p, size as u64).unwrap(),
                want,
                "hash_file {size}"
            );
            assert_eq!(
                hash_file_streaming(&p, size as u64).unwrap(),
                want,
                "streaming {size}"
            );
        }
    }

    #[test]
    fn glob_split() {
        assert_eq!(split_glob("src/**/*.c"), ("src".into(), "**/*.c".into()));
        assert_eq!(split_glob("*.c"), (".".into(), "*.c".into()));
        assert_eq!(split_glob("/a/b/*.c"), ("/a/b".into(), "*.c".into()));
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
