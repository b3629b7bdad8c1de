//! The semantic states of traced paths, computed by the same functions when a run is
//! recorded and when a record is checked, so the two can only differ when the path did.
//! A state never holds a stat fingerprint: touching a file keeps its state.
//!
//! State grammar (the tag says how to recompute it; docs/trace.md §1):
//! - `blake3:<hex>` / `blake3:<hex>+x`: content (stat, following symlinks); `+x` for
//!   programs with an execute bit;
//! - `stat:<attrs>` / `lstat:<attrs>`: a probe through stat / lstat;
//! - `both:<stat attrs> <- <lstat attrs>`: probed both ways (a symlink and where it leads);
//! - `absent`: lstat finds nothing;
//! - `listing:<hex>` then `/-<name>` (skipped) and `/?<name>` (any kind) masks;
//! - attrs: `file size=N mode=OOO mtime=NS`, `dir`, `symlink:<target>`, `fifo mode=OOO`
//!   ...; reduced to a kind word (`file`) or `exists` for paths the command wrote later.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Fingerprint;
use crate::deps::hash::{hash_file, HASHED_BYTES, HASHED_FILES};
use crate::deps::stat_cache::{ctime_ns, mtime_ns};

pub const ABSENT: &[u8] = b"absent";
pub const CONTENT: &[u8] = b"blake3:";
pub const STAT: &[u8] = b"stat:";
pub const LSTAT: &[u8] = b"lstat:";
pub const BOTH: &[u8] = b"both:";
pub const LISTING: &[u8] = b"listing:";
/// Between the two halves of a `both:` state: never part of the fixed-format stat attrs.
pub const BOTH_SEP: &[u8] = b" <- ";
/// The attrs a lookup that failed with ENOENT/ENOTDIR gives.
pub const GONE: &[u8] = b"absent";

/// How much of a probed path's attributes a state keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// kind, size, mode, mtime (a symlink: its target).
    Full,
    /// The kind only: a path the command probed, then wrote (same inode).
    Kind,
    /// Existence only: probed, then replaced by the command (its old kind is unknown).
    Exists,
}

const KIND_WORDS: [&str; 7] = [
    "file", "dir", "symlink", "fifo", "socket", "chardev", "blockdev",
];

/// The level a recorded attrs string was taken at.
pub fn level_of(attrs: &[u8]) -> Level {
    if attrs == b"exists" {
        Level::Exists
    } else if KIND_WORDS.iter().any(|w| w.as_bytes() == attrs) {
        Level::Kind
    } else {
        Level::Full
    }
}

/// What a stat says, compactly: a checker keeps one or two per path of a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub mode: u32,
}

impl Meta {
    pub fn of(md: &std::fs::Metadata) -> Meta {
        Meta {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime_ns: mtime_ns(md),
            ctime_ns: ctime_ns(md),
            mode: md.mode(),
        }
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
    /// Changed at or after `ns` (mtime or ctime).
    pub fn changed_since(&self, ns: i64) -> bool {
        self.mtime_ns.max(self.ctime_ns) >= ns
    }
}

pub fn kind_word(md: &Meta) -> &'static str {
    match md.format() {
        libc::S_IFREG => "file",
        libc::S_IFDIR => "dir",
        libc::S_IFLNK => "symlink",
        libc::S_IFIFO => "fifo",
        libc::S_IFSOCK => "socket",
        libc::S_IFCHR => "chardev",
        _ => "blockdev",
    }
}

/// A lookup's result: what stat said, or the errno it failed with.
pub type Looked = Result<Meta, i32>;

pub fn stat(path: &Path, follow: bool) -> Looked {
    let r = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    };
    r.map(|md| Meta::of(&md))
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
}

/// ENOENT and ENOTDIR: the path does not exist (a lookup the tracer records as ABSENT).
pub fn is_gone(errno: i32) -> bool {
    errno == libc::ENOENT || errno == libc::ENOTDIR
}

pub fn fingerprint(md: &Meta, observed_at_ns: i64) -> Fingerprint {
    Fingerprint {
        dev: md.dev,
        ino: md.ino,
        size: md.size,
        mtime_ns: md.mtime_ns,
        ctime_ns: md.ctime_ns,
        mode: md.mode,
        observed_at_ns,
    }
}

/// The attrs of a looked-up path at a level; `read_link` is asked only for symlinks at
/// full level.
pub fn attrs(looked: &Looked, level: Level, read_link: impl FnOnce() -> Vec<u8>) -> Vec<u8> {
    let md = match looked {
        Ok(md) => md,
        Err(e) if is_gone(*e) => return GONE.to_vec(),
        Err(e) => return format!("unreadable errno={e}").into_bytes(),
    };
    let kind = kind_word(md);
    match level {
        Level::Exists => return b"exists".to_vec(),
        Level::Kind => return kind.as_bytes().to_vec(),
        Level::Full => {}
    }
    let perm = md.mode & 0o7777;
    match kind {
        "dir" => b"dir".to_vec(),
        "symlink" => {
            let mut s = b"symlink:".to_vec();
            s.extend_from_slice(&read_link());
            s
        }
        "file" => format!("file size={} mode={perm:o} mtime={}", md.size, md.mtime_ns).into_bytes(),
        other => format!("{other} mode={perm:o}").into_bytes(),
    }
}

pub fn read_link(path: &Path) -> Vec<u8> {
    match std::fs::read_link(path) {
        Ok(t) => t.as_os_str().as_bytes().to_vec(),
        Err(e) => format!("<unreadable: {e}>").into_bytes(),
    }
}

/// `stat:`/`lstat:` + attrs.
pub fn probe_state(tag: &[u8], attrs: &[u8]) -> Vec<u8> {
    [tag, attrs].concat()
}

/// `both:<stat attrs> <- <lstat attrs>`.
pub fn both_state(stat_attrs: &[u8], lstat_attrs: &[u8]) -> Vec<u8> {
    [BOTH, stat_attrs, BOTH_SEP, lstat_attrs].concat()
}

/// Splits a `both:` payload into (stat attrs, lstat attrs): the stat half is fixed-format
/// (no `" <- "`), the lstat half may hold any link target.
pub fn split_both(payload: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = payload
        .windows(BOTH_SEP.len())
        .position(|w| w == BOTH_SEP)?;
    Some((&payload[..at], &payload[at + BOTH_SEP.len()..]))
}

/// The content state of a regular file from its hash.
pub fn content_state(hash: &[u8; 32], md: &Meta, exec: bool) -> Vec<u8> {
    let x = if exec && md.mode & 0o111 != 0 {
        "+x"
    } else {
        ""
    };
    format!("blake3:{}{x}", blake3::Hash::from(*hash).to_hex()).into_bytes()
}

/// Hashes a regular file and returns (hash, observed_at_ns): the time before hashing, or
/// `i64::MIN` (never trusted by a fast path) when the file changed while it was read.
pub fn hash_content(path: &Path, md: &Meta) -> std::io::Result<([u8; 32], i64)> {
    let observed = crate::clock::real_now_ns();
    HASHED_FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    HASHED_BYTES.fetch_add(md.size, std::sync::atomic::Ordering::Relaxed);
    let hash = hash_file(path, md.size)?;
    let same = Meta::of(&std::fs::metadata(path)?) == *md;
    Ok((hash, if same { observed } else { i64::MIN }))
}

/// What a content entry's path is now when it is not a regular file.
pub fn non_file_state(md: &Meta) -> Vec<u8> {
    format!("not a file: {}", kind_word(md)).into_bytes()
}

/// A directory's entries as (name, kind letter), sorted by name.
pub fn read_listing(dir: &Path) -> std::io::Result<Vec<(Vec<u8>, u8)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let letter = match e.file_type() {
            Ok(t) if t.is_dir() => b'd',
            Ok(t) if t.is_file() => b'f',
            Ok(t) if t.is_symlink() => b'l',
            Ok(_) => b'o',
            // Gone between readdir and the fallback lstat: it was listed, kind unknown.
            Err(_) => b'?',
        };
        out.push((e.file_name().as_bytes().to_vec(), letter));
    }
    out.sort();
    Ok(out)
}

/// The masks of a recorded listing state.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Masks {
    /// Names left out whatever they are (the command wrote them before it listed).
    pub skip: Vec<Vec<u8>>,
    /// Names whose kind does not count, only their presence.
    pub any_kind: Vec<Vec<u8>>,
}

/// `listing:<hex>` + masks, over `names` (sorted by name, already without skipped ones;
/// names in `any_kind` carry the kind letter `?`).
pub fn listing_state(names: &[(Vec<u8>, u8)], masks: &Masks) -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    for (name, kind) in names {
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name);
        h.update(&[*kind]);
    }
    let mut s = LISTING.to_vec();
    s.extend_from_slice(h.finalize().to_hex().as_bytes());
    for n in &masks.skip {
        s.extend_from_slice(b"/-");
        s.extend_from_slice(n);
    }
    for n in &masks.any_kind {
        s.extend_from_slice(b"/?");
        s.extend_from_slice(n);
    }
    s
}

/// The masks a recorded listing state carries (names never contain `/`).
pub fn listing_masks(state: &[u8]) -> Masks {
    let mut m = Masks::default();
    for part in state.split(|&b| b == b'/').skip(1) {
        match part.split_first() {
            Some((b'-', n)) => m.skip.push(n.to_vec()),
            Some((b'?', n)) => m.any_kind.push(n.to_vec()),
            _ => {}
        }
    }
    m
}

/// The listing state of a directory's entries now, under a recorded state's masks.
pub fn listing_now(entries: &[(Vec<u8>, u8)], masks: &Masks) -> Vec<u8> {
    let names: Vec<(Vec<u8>, u8)> = entries
        .iter()
        .filter(|(n, _)| !masks.skip.contains(n))
        .map(|(n, k)| {
            let k = if masks.any_kind.contains(n) { b'?' } else { *k };
            (n.clone(), k)
        })
        .collect();
    listing_state(&names, masks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_states_split_at_the_first_separator() {
        let s = both_state(b"absent", b"symlink:a <- b");
        let (st, lst) = split_both(&s[BOTH.len()..]).unwrap();
        assert_eq!(st, b"absent");
        assert_eq!(lst, b"symlink:a <- b");
    }

    #[test]
    fn listing_masks_roundtrip_and_change_the_state() {
        let masks = Masks {
            skip: vec![b"out.o".to_vec()],
            any_kind: vec![b"x".to_vec()],
        };
        let names = vec![(b"a.c".to_vec(), b'f'), (b"x".to_vec(), b'?')];
        let s = listing_state(&names, &masks);
        assert_eq!(listing_masks(&s), masks);
        assert_ne!(s, listing_state(&names, &Masks::default()));
        // Now: out.o present (skipped), x a directory (any kind): the same state.
        let now = vec![
            (b"a.c".to_vec(), b'f'),
            (b"out.o".to_vec(), b'f'),
            (b"x".to_vec(), b'd'),
        ];
        assert_eq!(listing_now(&now, &masks), s);
    }

    #[test]
    fn levels_are_recognised_from_the_recorded_attrs() {
        assert_eq!(level_of(b"exists"), Level::Exists);
        assert_eq!(level_of(b"file"), Level::Kind);
        assert_eq!(level_of(b"dir"), Level::Kind);
        assert_eq!(level_of(b"file size=1 mode=644 mtime=5"), Level::Full);
        assert_eq!(level_of(b"symlink:x"), Level::Full);
    }
}
