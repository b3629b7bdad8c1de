//! Directory walks for file dependencies: parallel across subdirectories, one
//! `fstatat` per file relative to its directory (no full-path lookups), and the
//! `.gitignore`/`.ignore` rules git and ripgrep apply. Symlinks met on the way are never
//! followed (the caller decides about the directory it starts from).

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;
use rayon::prelude::*;

/// One walked entry.
pub enum Entry {
    /// Anything but a directory, with its `lstat`.
    File(PathBuf, Metadata),
    /// A directory the walk entered: its kind is known from `readdir`, so it costs no
    /// `stat` (a hit over a deep tree must not pay one per directory).
    Dir(PathBuf),
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

/// Walks `dir` and returns every non-directory entry that `keep` accepts, with its
/// metadata, in no particular order. `prune` stops descent into a directory. With
/// `Dirs::List`, every subdirectory descended into that `keep` accepts is returned
/// too (no system call more than the walk makes anyway).
pub fn walk(
    dir: &Path,
    rules: &Rules,
    keep: &(dyn Fn(&Path) -> bool + Sync),
    prune: &(dyn Fn(&Path) -> bool + Sync),
    dirs: Dirs,
) -> Result<Vec<Entry>> {
    let mut files = Vec::new();
    let mut subdirs = Vec::new();
    let mut names = Vec::new();
    let read = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?;
    let mut has_gitignore = false;
    let mut has_ignore = false;
    for entry in read {
        let entry = entry.with_context(|| format!("cannot read directory {}", dir.display()))?;
        let name = entry.file_name();
        if name == ".gitignore" {
            has_gitignore = true;
        } else if name == ".ignore" {
            has_ignore = true;
        }
        names.push(entry);
    }
    let mut rules = rules.clone();
    if rules.enabled {
        rules.push_dir(dir, has_gitignore, has_ignore);
    }
    for entry in names {
        let path = entry.path();
        let ft = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        if ft.is_dir() {
            if rules.enabled && entry.file_name() == ".git" {
                continue;
            }
            if rules.ignored(&path, true) || prune(&path) {
                continue;
            }
            if dirs == Dirs::List && keep(&path) {
                files.push(Entry::Dir(path.clone()));
            }
            subdirs.push(path);
        } else {
            if rules.ignored(&path, false) || !keep(&path) {
                continue;
            }
            // DirEntry::metadata is an fstatat on the open directory: one component
            // to resolve instead of the whole path.
            match entry.metadata() {
                Ok(md) => files.push(Entry::File(path, md)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot stat {}", path.display())),
            }
        }
    }
    if subdirs.len() == 1 {
        files.extend(walk(&subdirs[0], &rules, keep, prune, dirs)?);
    } else if !subdirs.is_empty() {
        let nested: Vec<Vec<Entry>> = subdirs
            .par_iter()
            .map(|d| walk(d, &rules, keep, prune, dirs))
            .collect::<Result<_>>()?;
        for mut n in nested {
            files.append(&mut n);
        }
    }
    Ok(files)
}
