//! Directory walks for file dependencies: parallel across subdirectories, one
//! `fstatat` per file relative to its open directory, entries produced already in path
//! byte order into one buffer (no allocation per file), and the `.gitignore`/`.ignore`
//! rules git and ripgrep apply. Symlinks met on the way are never followed.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;
use rayon::prelude::*;

use super::stat_cache::Stat;

/// What a [`Listing`] knows of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// A directory the walk entered, named with a trailing slash: its kind is known
    /// from `readdir`, so it costs no `stat` (a hit over a deep tree must not pay one
    /// per directory).
    Dir,
    /// Anything but a directory, with the `lstat` the walk took.
    Stat(Stat),
    /// Not looked at yet (a literal path that did not exist when resolved).
    Unknown,
}

#[derive(Clone, Copy)]
struct Item {
    start: usize,
    end: usize,
    known: Known,
}

/// Paths and what is known of them, all path bytes in one buffer: a walk of 10,000
/// files makes a few allocations per directory, none per file.
#[derive(Default)]
pub struct Listing {
    bytes: Vec<u8>,
    items: Vec<Item>,
}

impl Listing {
    pub fn push(&mut self, path: &[u8], known: Known) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(path);
        self.items.push(Item {
            start,
            end: self.bytes.len(),
            known,
        });
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Entry `i`: its path bytes and what is known of it.
    pub fn get(&self, i: usize) -> (&[u8], Known) {
        let it = &self.items[i];
        (&self.bytes[it.start..it.end], it.known)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Known)> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Moves `other`'s entries to the end of this one.
    pub fn append(&mut self, other: Listing) {
        if self.items.is_empty() && self.items.capacity() < other.items.len() {
            *self = other;
            return;
        }
        let shift = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.items.extend(other.items.into_iter().map(|it| Item {
            start: it.start + shift,
            end: it.end + shift,
            known: it.known,
        }));
    }

    /// Sorted by path bytes, each path once (the first of equal paths is kept). A walk
    /// already produces this order, so one spec costs a single pass of comparisons.
    pub fn sort_unique(&mut self) {
        let bytes = &self.bytes;
        let path = |it: &Item| &bytes[it.start..it.end];
        if self.items.windows(2).all(|w| path(&w[0]) < path(&w[1])) {
            return;
        }
        self.items.sort_by(|a, b| path(a).cmp(path(b)));
        self.items.dedup_by(|a, b| path(a) == path(b));
    }
}

/// What a walk returns besides the files `keep` accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dirs {
    /// Only files: a glob matches files, and a directory no file lies in is no input.
    Skip,
    /// Also every subdirectory descended into (and kept): they make the membership of
    /// the walked directories part of the state, empty ones included.
    List,
}

/// Ignore rules in force in a directory: the matchers of it and its ancestors,
/// deepest last.
#[derive(Clone, Default)]
pub struct Rules {
    stack: Vec<Arc<Gitignore>>,
    enabled: bool,
}

impl Rules {
    /// The rules in force at `dir`: `.git/info/exclude` of the root, then the
    /// `.gitignore` and `.ignore` files of every directory from `root` down to `dir`'s
    /// parent (the walk itself adds `dir`'s own). `root` is the workspace root.
    pub fn for_dir(root: &Path, dir: &Path, no_ignore: bool) -> Self {
        let mut rules = Rules {
            stack: Vec::new(),
            enabled: !no_ignore,
        };
        if no_ignore {
            return rules;
        }
        let exclude = root.join(".git").join("info").join("exclude");
        if exclude.is_file() {
            let mut b = GitignoreBuilder::new(root);
            let _ = b.add(&exclude);
            if let Ok(g) = b.build() {
                rules.stack.push(Arc::new(g));
            }
        }
        if let Ok(rel) = dir.strip_prefix(root) {
            let mut cur = root.to_path_buf();
            let mut ancestors = vec![cur.clone()];
            let comps: Vec<_> = rel.components().collect();
            for c in comps.iter().take(comps.len().saturating_sub(1)) {
                cur.push(c);
                ancestors.push(cur.clone());
            }
            if dir == root {
                ancestors.clear();
            }
            for a in ancestors {
                rules.push_dir(&a, true, true);
            }
        }
        rules
    }

    fn push_dir(&mut self, dir: &Path, has_gitignore: bool, has_ignore: bool) {
        // `.ignore` wins over `.gitignore` in the same directory (as in ripgrep): it is
        // pushed later, and later (deeper) matchers are consulted first.
        for (name, present) in [(".gitignore", has_gitignore), (".ignore", has_ignore)] {
            if !present {
                continue;
            }
            let file = dir.join(name);
            if !file.is_file() {
                continue;
            }
            let mut b = GitignoreBuilder::new(dir);
            if b.add(&file).is_some() {
                continue; // unreadable or malformed: ignore the file, as git does
            }
            if let Ok(g) = b.build() {
                if !g.is_empty() {
                    self.stack.push(Arc::new(g));
                }
            }
        }
    }

    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        if !self.enabled {
            return false;
        }
        for g in self.stack.iter().rev() {
            match g.matched(path, is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
        }
        false
    }
}

/// Walks `dir` and appends to `out`, in path byte order with each directory named
/// `dir/` right before its contents, every non-directory entry that `keep` accepts
/// with its `lstat`. `prune` stops descent into a directory. With `Dirs::List`, every
/// subdirectory descended into that `keep` accepts is listed too (no system call more
/// than the walk makes anyway). Subdirectories are walked in parallel.
pub fn walk(
    dir: &Path,
    rules: &Rules,
    keep: &(dyn Fn(&Path) -> bool + Sync),
    prune: &(dyn Fn(&Path) -> bool + Sync),
    dirs: Dirs,
    out: &mut Listing,
) -> Result<()> {
    let walker = Walker { keep, prune, dirs };
    walker.dir(dir.as_os_str().as_bytes(), rules, out)
}

struct Walker<'a> {
    keep: &'a (dyn Fn(&Path) -> bool + Sync),
    prune: &'a (dyn Fn(&Path) -> bool + Sync),
    dirs: Dirs,
}

/// One entry of a directory being walked, in walk order.
enum Slot {
    /// A file (or link, FIFO…): index into the names, and its `lstat`.
    File(usize, Stat),
    /// A subdirectory to descend into, listed itself or not.
    Dir(usize, bool),
}

impl Walker<'_> {
    fn dir(&self, dir: &[u8], rules: &Rules, out: &mut Listing) -> Result<()> {
        let shown = || Path::new(OsStr::from_bytes(dir)).display();
        let mut names =
            read_dir(dir).with_context(|| format!("cannot read directory {}", shown()))?;
        let mut rules = rules.clone();
        if rules.enabled {
            let has = |n: &[u8]| names.entries.iter().any(|e| names.name(e) == n);
            let (g, i) = (has(b".gitignore"), has(b".ignore"));
            rules.push_dir(Path::new(OsStr::from_bytes(dir)), g, i);
        }
        names
            .resolve_unknown_kinds()
            .with_context(|| format!("in directory {}", shown()))?;
        names.sort();
        let mut path = Vec::with_capacity(dir.len() + 64);
        path.extend_from_slice(dir);
        if !path.ends_with(b"/") {
            path.push(b'/');
        }
        let base = path.len();
        let mut slots = Vec::with_capacity(names.entries.len());
        for (i, e) in names.entries.iter().enumerate() {
            let name = names.name(e);
            path.truncate(base);
            path.extend_from_slice(name);
            let p = Path::new(OsStr::from_bytes(&path));
            let is_dir = match e.kind {
                Kind::Dir => true,
                Kind::Other => false,
                // Vanished before we could tell what it was.
                Kind::Unknown => continue,
            };
            if is_dir {
                if rules.enabled && name == b".git" {
                    continue;
                }
                if rules.ignored(p, true) || (self.prune)(p) {
                    continue;
                }
                let listed = self.dirs == Dirs::List && (self.keep)(p);
                slots.push(Slot::Dir(i, listed));
            } else {
                if rules.ignored(p, false) || !(self.keep)(p) {
                    continue;
                }
                let st = match names.stats.get(e.stat as usize) {
                    Some(st) => *st,
                    // An fstatat on the open directory: one component to resolve
                    // instead of the whole path.
                    None => match names.stat(e) {
                        Ok(st) => st,
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(err) => {
                            return Err(err).with_context(|| format!("cannot stat {}", p.display()))
                        }
                    },
                };
                slots.push(Slot::File(i, st));
            }
        }
        names.close();
        // Two or more subdirectories are walked in parallel, each into its own listing,
        // then spliced in order; a lone one is walked straight into `out`.
        let subdirs: Vec<Vec<u8>> = slots
            .iter()
            .filter_map(|s| match s {
                Slot::Dir(i, _) => {
                    let mut p = path[..base].to_vec();
                    p.extend_from_slice(names.name(&names.entries[*i]));
                    Some(p)
                }
                Slot::File(..) => None,
            })
            .collect();
        let mut nested: Vec<Listing> = if subdirs.len() >= 2 {
            subdirs
                .par_iter()
                .map(|sub| {
                    let mut l = Listing::default();
                    self.dir(sub, &rules, &mut l).map(|()| l)
                })
                .collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        // Room for this directory's entries and the nested listings, in one go.
        let nested_bytes: usize = nested.iter().map(|l| l.bytes.len()).sum();
        let nested_items: usize = nested.iter().map(Listing::len).sum();
        out.bytes.reserve(nested_bytes + slots.len() * (base + 16));
        out.items.reserve(nested_items + slots.len());
        let mut next_sub = subdirs.iter();
        let mut next_nested = nested.iter_mut();
        for slot in &slots {
            match *slot {
                Slot::File(i, st) => {
                    path.truncate(base);
                    path.extend_from_slice(names.name(&names.entries[i]));
                    out.push(&path, Known::Stat(st));
                }
                Slot::Dir(_, listed) => {
                    let Some(sub) = next_sub.next() else {
                        unreachable!("one subdirectory path per directory slot");
                    };
                    if listed {
                        path.clear();
                        path.extend_from_slice(sub);
                        path.push(b'/');
                        out.push(&path, Known::Dir);
                    }
                    match next_nested.next() {
                        Some(l) => out.append(std::mem::take(l)),
                        None => self.dir(sub, &rules, out)?,
                    }
                }
            }
        }
        Ok(())
    }
}

/// The type `readdir` reported.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    Other,
    Unknown,
}

struct Name {
    start: usize,
    /// Without the terminating NUL (which is stored, for `fstatat`).
    len: usize,
    kind: Kind,
    /// Index in `Names::stats` of the `lstat` taken when `readdir` did not tell the
    /// type (`NO_STAT`: none; kept out of line so a name stays small).
    stat: u32,
    /// The sort key's first 8 bytes (see `Names::sort`).
    key: u64,
}

/// The names of one directory (without `.` and `..`), in one buffer, and the open
/// directory for `fstatat`.
struct Names {
    dir: *mut libc::DIR,
    bytes: Vec<u8>,
    entries: Vec<Name>,
    stats: Vec<Stat>,
}

const NO_STAT: u32 = u32::MAX;

// The DIR handle is only used by the thread holding `Names`; it is never shared.
unsafe impl Send for Names {}

impl Names {
    fn name(&self, e: &Name) -> &[u8] {
        &self.bytes[e.start..e.start + e.len]
    }

    /// Not every filesystem fills in `d_type`: ask those entries' `lstat` (an entry
    /// that vanished stays `Unknown` and is passed over).
    fn resolve_unknown_kinds(&mut self) -> Result<()> {
        for i in 0..self.entries.len() {
            if self.entries[i].kind != Kind::Unknown {
                continue;
            }
            match self.stat(&self.entries[i]) {
                Ok(st) => {
                    let at = u32::try_from(self.stats.len()).unwrap_or(NO_STAT);
                    self.stats.push(st);
                    let e = &mut self.entries[i];
                    e.kind = if st.is_dir() { Kind::Dir } else { Kind::Other };
                    e.stat = at;
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    let name = self.name(&self.entries[i]);
                    return Err(err)
                        .with_context(|| format!("cannot stat {}", String::from_utf8_lossy(name)));
                }
            }
        }
        Ok(())
    }

    /// Walk order: by name, a directory compared as if its name ended with `/`, which
    /// is the byte order of the full paths with directories named `dir/`. Each name's
    /// first 8 bytes (then `/` for a directory, then zeros: no name holds a NUL) are one
    /// big-endian integer, so most comparisons are one integer comparison.
    fn sort(&mut self) {
        let bytes = &self.bytes;
        let sort_name =
            |e: &Name| -> (&[u8], bool) { (&bytes[e.start..e.start + e.len], e.kind == Kind::Dir) };
        for e in &mut self.entries {
            let (name, dir) = sort_name(e);
            let mut k = [0u8; 8];
            let n = name.len().min(8);
            k[..n].copy_from_slice(&name[..n]);
            if dir && n < 8 {
                k[n] = b'/';
            }
            e.key = u64::from_be_bytes(k);
        }
        self.entries.sort_unstable_by(|a, b| {
            a.key.cmp(&b.key).then_with(|| {
                let ((x, xd), (y, yd)) = (sort_name(a), sort_name(b));
                let n = x.len().min(y.len());
                x[..n].cmp(&y[..n]).then_with(|| {
                    let after = |s: &[u8], dir: bool| match s.get(n) {
                        Some(&c) => c as u16 + 1,
                        None if dir => b'/' as u16 + 1,
                        None => 0,
                    };
                    after(x, xd).cmp(&after(y, yd))
                })
            })
        });
    }

    /// `lstat` of an entry, relative to the open directory.
    fn stat(&self, e: &Name) -> std::io::Result<Stat> {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: the name is NUL-terminated in `bytes`; `dir` is open (`stat` is only
        // called before `close`).
        let rc = unsafe {
            libc::fstatat(
                libc::dirfd(self.dir),
                self.bytes.as_ptr().add(e.start).cast(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fstatat succeeded, so it filled the struct.
        Ok(Stat::of_raw(unsafe { &st.assume_init() }))
    }

    /// Closes the directory (the names stay).
    fn close(&mut self) {
        if !self.dir.is_null() {
            // SAFETY: `dir` came from fdopendir and is closed once.
            unsafe { libc::closedir(self.dir) };
            self.dir = std::ptr::null_mut();
        }
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        self.close();
    }
}

/// Reads a directory's names (following a symlink at `dir` itself: the caller decided
/// to walk it; entries below are never followed).
fn read_dir(dir: &[u8]) -> std::io::Result<Names> {
    let c = std::ffi::CString::new(dir).map_err(std::io::Error::other)?;
    // SAFETY: a valid C string; the fd is handed to fdopendir or closed.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is an open directory; on failure we still own it and close it.
    let d = unsafe { libc::fdopendir(fd) };
    if d.is_null() {
        let e = std::io::Error::last_os_error();
        unsafe { libc::close(fd) };
        return Err(e);
    }
    let mut names = Names {
        dir: d,
        bytes: Vec::with_capacity(4096),
        entries: Vec::with_capacity(64),
        stats: Vec::new(),
    };
    loop {
        // SAFETY: errno is thread-local; readdir64 returns NULL at the end (errno
        // unchanged) or on error (errno set).
        unsafe { *libc::__errno_location() = 0 };
        let ent = unsafe { libc::readdir64(d) };
        if ent.is_null() {
            let errno = std::io::Error::last_os_error();
            if errno.raw_os_error().unwrap_or(0) != 0 {
                return Err(errno);
            }
            break;
        }
        // SAFETY: a non-NULL dirent from readdir64 is valid until the next call, and
        // d_name is NUL-terminated.
        let (name, d_type) = unsafe {
            let ent = &*ent;
            (
                std::ffi::CStr::from_ptr(ent.d_name.as_ptr()).to_bytes_with_nul(),
                ent.d_type,
            )
        };
        let len = name.len() - 1;
        if name[..len] == *b"." || name[..len] == *b".." {
            continue;
        }
        let kind = match d_type {
            libc::DT_DIR => Kind::Dir,
            libc::DT_UNKNOWN => Kind::Unknown,
            _ => Kind::Other,
        };
        names.entries.push(Name {
            start: names.bytes.len(),
            len,
            kind,
            stat: NO_STAT,
            key: 0,
        });
        names.bytes.extend_from_slice(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk's own output is in path byte order (a directory `a` sorts as `a/`,
    /// after `a.c` and `a-b`, before `a0`), so resolving one spec needs no sort.
    #[test]
    fn walk_order_is_path_byte_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("w");
        for d in [
            "a", "a/b", "a/b.c", "b", "b/a", "c/d/e", "empty", "abcdefg", "longname",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "a.c",
            "a-b",
            "a0",
            "a+",
            "a/x",
            "a/b/y",
            "a/b.c/z",
            "a/b-",
            "b.",
            "b/a.",
            "c/d/e/f",
            "c/d/e.f",
            "c/d/e0",
            "A",
            "_",
            "abcdefg.",
            "abcdefg0",
            "abcdefg/x",
            "longname.c",
            "longname0",
            "longnamex",
            "longname/y",
            "longnam",
        ] {
            std::fs::write(root.join(f), f).unwrap();
        }
        std::os::unix::fs::symlink("a", root.join("a~link")).unwrap();
        let rules = Rules::for_dir(&root, &root, true);
        let mut out = Listing::default();
        walk(&root, &rules, &|_| true, &|_| false, Dirs::List, &mut out).unwrap();
        let got: Vec<&[u8]> = out.iter().map(|(p, _)| p).collect();
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted);
        assert_eq!(
            got.len(),
            23 + 11 + 1,
            "23 files, 11 dirs (c and c/d too), 1 link"
        );
        let dirs = out.iter().filter(|(_, k)| *k == Known::Dir).count();
        assert_eq!(dirs, 11);
        let link = out
            .iter()
            .find(|(p, _)| p.ends_with(b"a~link"))
            .map(|(_, k)| k);
        assert!(
            matches!(link, Some(Known::Stat(st)) if st.is_symlink()),
            "not followed"
        );
    }
}
