//! Checks recorded traced entries against the filesystem now. One `Checker` per lookup:
//! each distinct path is stat'ed, hashed, read or listed at most once however many
//! entry lists name it. An unchanged, non-racy fingerprint proves an unchanged state
//! without hashing; it never writes anything.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::state::{self, Level, Looked};
use super::{Change, Check, Entry, Fingerprint};
use crate::spec::Workspace;

/// What this lookup has learnt about one path so far: its stats, and (boxed, rarely
/// needed on a hit) what only a changed fingerprint makes it read.
#[derive(Default)]
struct Seen {
    stat: Option<Looked>,
    lstat: Option<Looked>,
    read: Option<Box<Read>>,
}

#[derive(Default)]
struct Read {
    /// blake3 of the content, or the error that prevented reading it, with the time it
    /// was observed (`i64::MIN`: the file moved while it was read).
    hash: Option<Result<([u8; 32], i64), String>>,
    link: Option<Vec<u8>>,
    /// With the time it was read.
    listing: Option<Result<(Listing, i64), String>>,
}

impl Seen {
    fn read(&mut self) -> &mut Read {
        self.read.get_or_insert_with(Box::default)
    }
}

/// A directory's entries as (name, kind letter), sorted.
type Listing = Vec<(Vec<u8>, u8)>;

/// The memo's hash (FxHash's word-at-a-time mix): keys are path bytes from our own
/// records, thousands per lookup, so SipHash's DoS resistance buys nothing here.
#[derive(Default)]
struct PathHasher(u64);

impl Hasher for PathHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = self.0;
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &b in words.remainder() {
            h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
        self.0 = h;
    }
}

/// See the module doc.
pub struct Checker<'a> {
    ws: &'a Workspace,
    seen: HashMap<Vec<u8>, Seen, BuildHasherDefault<PathHasher>>,
    /// Reused to build absolute paths without an allocation per entry.
    buf: PathBuf,
    work: Work,
}

/// What a checker had to do beyond stat calls (for tests, `-v` and the bench).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    /// Files hashed because their fingerprint did not prove them unchanged.
    pub hashed: u64,
    /// Directories listed because their fingerprint did not prove them unchanged.
    pub listed: u64,
}

impl<'a> Checker<'a> {
    pub fn new(ws: &'a Workspace) -> Self {
        Checker {
            ws,
            seen: HashMap::default(),
            buf: PathBuf::new(),
            work: Work::default(),
        }
    }

    /// The hashing and listing this checker did so far.
    pub fn work(&self) -> Work {
        self.work
    }

    /// Unchanged when every entry's state now equals the recorded one; else the first
    /// entry that differs.
    pub fn check(&mut self, entries: &[Entry]) -> Check {
        if self.seen.is_empty() {
            self.seen.reserve(entries.len());
        }
        for e in entries {
            if let Some(change) = self.check_one(e) {
                return Check::Changed(change);
            }
        }
        Check::Unchanged
    }

    /// After an `Unchanged` check: gives the entries this checker had to hash or list
    /// (a changed or racy fingerprint) and found unchanged the fingerprint they have
    /// now, when it can be trusted from now on. True when any changed: storing the list
    /// again spares the next lookups that hashing (a file recorded right after it was
    /// written, as a build's previous step leaves it, is racy until then).
    pub fn refresh(&self, entries: &mut [Entry]) -> bool {
        let mut refreshed = false;
        for e in entries.iter_mut() {
            let Some(seen) = self.seen.get(&e.dep.name) else {
                continue;
            };
            let Some(Ok(md)) = seen.stat else {
                continue;
            };
            let recorded = e.dep.state.as_slice();
            let observed = if recorded.starts_with(state::CONTENT) {
                match seen.read.as_ref().and_then(|r| r.hash.as_ref()) {
                    Some(Ok((h, at)))
                        if md.is_file()
                            && state::content_state(h, &md, recorded.ends_with(b"+x"))
                                == recorded =>
                    {
                        *at
                    }
                    _ => continue,
                }
            } else if recorded.starts_with(state::LISTING) {
                match seen.read.as_ref().and_then(|r| r.listing.as_ref()) {
                    Some(Ok((l, at)))
                        if state::listing_now(l, &state::listing_masks(recorded)) == recorded =>
                    {
                        *at
                    }
                    _ => continue,
                }
            } else {
                continue;
            };
            let fp = state::fingerprint(&md, observed);
            if !fp.is_racy() && fp != e.fp {
                e.fp = fp;
                refreshed = true;
            }
        }
        refreshed
    }

    fn check_one(&mut self, e: &Entry) -> Option<Change> {
        let Checker {
            ws,
            seen,
            buf,
            work,
        } = self;
        let name = &e.dep.name;
        let path: &Path = if name.first() == Some(&b'/') {
            Path::new(OsStr::from_bytes(name))
        } else {
            buf.clear();
            buf.push(&ws.root);
            if name.as_slice() != b"." {
                buf.push(OsStr::from_bytes(name));
            }
            buf
        };
        if !seen.contains_key(name) {
            seen.insert(name.clone(), Seen::default());
        }
        let seen = seen
            .get_mut(name)
            .expect("the path's Seen was inserted just above");
        let recorded = e.dep.state.as_slice();
        let now = if recorded == state::ABSENT {
            absent_now(seen, path)
        } else if recorded.starts_with(state::CONTENT) {
            content_now(seen, path, &e.fp, recorded, work)
        } else if recorded.starts_with(state::LISTING) {
            listing_now(seen, path, &e.fp, recorded, work)
        } else if let Some(attrs) = recorded.strip_prefix(state::STAT) {
            probe_now(seen, path, &e.fp, true, attrs).map(|a| state::probe_state(state::STAT, &a))
        } else if let Some(attrs) = recorded.strip_prefix(state::LSTAT) {
            probe_now(seen, path, &e.fp, false, attrs).map(|a| state::probe_state(state::LSTAT, &a))
        } else if let Some(payload) = recorded.strip_prefix(state::BOTH) {
            both_now(seen, path, &e.fp, payload)
        } else {
            // A state this version cannot recompute never matches.
            Some(b"unknown state".to_vec())
        };
        let now = now.filter(|n| n.as_slice() != recorded)?;
        let now = if recorded == state::ABSENT {
            // Say what is there now.
            Some([b"present ".as_slice(), &now].concat())
        } else if is_gone_state(&now) {
            None
        } else {
            Some(now)
        };
        Some(Change {
            dep: e.dep.clone(),
            now,
        })
    }
}

/// A state now that says "nothing there", whatever lookup computed it.
fn is_gone_state(now: &[u8]) -> bool {
    now == state::GONE
        || now.strip_prefix(state::STAT) == Some(state::GONE)
        || now.strip_prefix(state::LSTAT) == Some(state::GONE)
        || now == state::both_state(state::GONE, state::GONE)
}

fn looked<'s>(slot: &'s mut Option<Looked>, path: &Path, follow: bool) -> &'s Looked {
    slot.get_or_insert_with(|| state::stat(path, follow))
}

/// The fingerprint proves the state unchanged: same stat, observed well after the
/// path's last change.
fn fast_path(fp: &Fingerprint, l: &Looked) -> bool {
    match l {
        Ok(md) => !fp.is_racy() && fp.same_stat(&state::fingerprint(md, 0)),
        Err(_) => false,
    }
}

/// `None` = unchanged (proved without computing it); `Some(state)` = the state now,
/// compared by the caller.
fn absent_now(seen: &mut Seen, path: &Path) -> Option<Vec<u8>> {
    let l = *looked(&mut seen.lstat, path, false);
    match l {
        Err(e) if state::is_gone(e) => None,
        l => Some(state::attrs(&l, Level::Full, || link_of(seen, path))),
    }
}

fn link_of(seen: &mut Seen, path: &Path) -> Vec<u8> {
    seen.read()
        .link
        .get_or_insert_with(|| state::read_link(path))
        .clone()
}

fn content_now(
    seen: &mut Seen,
    path: &Path,
    fp: &Fingerprint,
    recorded: &[u8],
    work: &mut Work,
) -> Option<Vec<u8>> {
    let l = looked(&mut seen.stat, path, true);
    if fast_path(fp, l) {
        return None;
    }
    let md = match l {
        Ok(md) if md.is_file() => *md,
        Ok(md) => return Some(state::non_file_state(md)),
        Err(e) if state::is_gone(*e) => return Some(state::GONE.to_vec()),
        Err(e) => return Some(format!("unreadable errno={e}").into_bytes()),
    };
    let hash = seen.read().hash.get_or_insert_with(|| {
        work.hashed += 1;
        state::hash_content(path, &md).map_err(|e| e.to_string())
    });
    Some(match hash {
        Ok((h, _)) => state::content_state(h, &md, recorded.ends_with(b"+x")),
        Err(e) => format!("unreadable: {e}").into_bytes(),
    })
}

fn listing_now(
    seen: &mut Seen,
    path: &Path,
    fp: &Fingerprint,
    recorded: &[u8],
    work: &mut Work,
) -> Option<Vec<u8>> {
    let l = looked(&mut seen.stat, path, true);
    if fast_path(fp, l) {
        return None;
    }
    match l {
        Ok(md) if md.is_dir() => {}
        Ok(md) => return Some(state::non_file_state(md)),
        Err(e) if state::is_gone(*e) => return Some(state::GONE.to_vec()),
        Err(e) => return Some(format!("unreadable errno={e}").into_bytes()),
    }
    let entries = seen.read().listing.get_or_insert_with(|| {
        work.listed += 1;
        let at = crate::clock::real_now_ns();
        state::read_listing(path)
            .map(|l| (l, at))
            .map_err(|e| e.to_string())
    });
    Some(match entries {
        Ok((entries, _)) => state::listing_now(entries, &state::listing_masks(recorded)),
        Err(e) => format!("unreadable: {e}").into_bytes(),
    })
}

/// The attrs now at the recorded level. A symlink's target is read only when its lstat
/// fingerprint does not prove it unchanged.
fn probe_now(
    seen: &mut Seen,
    path: &Path,
    fp: &Fingerprint,
    follow: bool,
    recorded_attrs: &[u8],
) -> Option<Vec<u8>> {
    let level = state::level_of(recorded_attrs);
    let slot = if follow {
        &mut seen.stat
    } else {
        &mut seen.lstat
    };
    let l = *looked(slot, path, follow);
    let is_link = matches!(&l, Ok(md) if md.is_symlink());
    if is_link && level == Level::Full && fast_path(fp, &l) {
        return None;
    }
    Some(state::attrs(&l, level, || link_of(seen, path)))
}

fn both_now(seen: &mut Seen, path: &Path, fp: &Fingerprint, payload: &[u8]) -> Option<Vec<u8>> {
    let Some((stat_attrs, lstat_attrs)) = state::split_both(payload) else {
        return Some(b"unknown state".to_vec());
    };
    let s = probe_now(seen, path, &Fingerprint::NONE, true, stat_attrs)
        .unwrap_or_else(|| stat_attrs.to_vec());
    let l = probe_now(seen, path, fp, false, lstat_attrs).unwrap_or_else(|| lstat_attrs.to_vec());
    Some(state::both_state(&s, &l))
}
