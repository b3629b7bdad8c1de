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

use super::dirent::{read_dir, Kind};
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
