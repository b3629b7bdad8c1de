//! File dependencies: turn `-f` specs (files, directories, globs, `!excludes`) into a
//! sorted list of paths, then into states through the stat cache. A file is re-hashed
//! only when its stat changed or it was written too close to its last hashing ("racy").

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use globset::{GlobBuilder, GlobMatcher};
use rayon::prelude::*;

use super::stat_cache::{file_entry, CacheBuilder, CacheUse, Cursor, Stat, StatEntry};
use super::walk::{walk, Dirs, Known, Listing, Rules};
use super::{DepState, Kind};
use crate::spec::Workspace;

// Callers outside `deps` name these through `files`; they live in their own modules.
pub use super::hash::{hash_file, hash_file_streaming, hash_reader, hashed_so_far};
pub use super::stat_cache::StatCache;

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
    /// Literal paths that do not exist are returned too (state `absent`, nothing
    /// known); `missing` lists them for a warning. A directory named by a literal spec
    /// is returned with every subdirectory walked (its membership); a symlink named by a
    /// spec (literal, or a glob's base) is returned and, when it leads to a directory,
    /// followed like `find -H`, its entries keyed by the path as named.
    pub fn resolve(&self, no_ignore: bool, skip: &dyn Skip) -> Result<Resolved> {
        let mut entries = Listing::default();
        let mut missing = Vec::new();
        for inc in &self.includes {
            let (base, matcher) = match inc {
                PathSpec::Literal(p) => (p, None),
                PathSpec::Glob { base, matcher } => (base, Some(matcher)),
            };
            let base_bytes = base.as_os_str().as_bytes();
            let st = match Stat::lstat(base) {
                Ok(st) => st,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if matcher.is_none() {
                        missing.push(base.clone());
                        entries.push(base_bytes, Known::Unknown);
                    }
                    continue;
                }
                Err(e) => return Err(e).with_context(|| format!("cannot stat {}", base.display())),
            };
            let excluded = self.excluded(base);
            if st.is_dir() {
                // The directory itself is listed like its subdirectories (`src/`), so
                // an empty one differs from an absent one. Globs have no membership.
                if matcher.is_none() && !excluded {
                    entries.push(&dir_marker(base_bytes), Known::Dir);
                }
                self.walk_spec(base, matcher, no_ignore, skip, &mut entries)?;
            } else if st.is_symlink() {
                // The link text is a state of its own; the directory it leads to is
                // walked as if it were here.
                if !excluded {
                    entries.push(base_bytes, Known::Stat(st));
                }
                if let Some(real) = followed_dir(base, skip).filter(|_| !excluded) {
                    let through = Through {
                        named: base,
                        real: &real,
                        inner: skip,
                    };
                    self.walk_spec(base, matcher, no_ignore, &through, &mut entries)?;
                }
            } else if matcher.is_none() && !excluded {
                entries.push(base_bytes, Known::Stat(st));
            }
        }
        // One spec is already in order: this is a pass of comparisons, no sort.
        entries.sort_unique();
        Ok(Resolved { entries, missing })
    }

    /// Walks one spec's directory (as named: through a link, `dir` is the link's path).
    /// A literal directory lists its subdirectories too; a glob lists only the files it
    /// matches.
    fn walk_spec(
        &self,
        dir: &Path,
        matcher: Option<&GlobMatcher>,
        no_ignore: bool,
        skip: &dyn Skip,
        out: &mut Listing,
    ) -> Result<()> {
        let rules = Rules::for_dir(&self.root, dir, no_ignore);
        let keep = |f: &Path| {
            matcher.is_none_or(|m| f.strip_prefix(dir).is_ok_and(|rel| m.is_match(rel)))
                && !self.excluded(f)
                && !skip.skip(f)
        };
        let prune = |d: &Path| skip.skip(d);
        let dirs = if matcher.is_some() {
            Dirs::Skip
        } else {
            Dirs::List
        };
        walk(dir, &rules, &keep, &prune, dirs, out)
    }
}

/// The real directory a symlink named by a spec leads to, when it should be walked:
/// not dangling, a directory, and not a declared output (or idem's cache).
fn followed_dir(link: &Path, skip: &dyn Skip) -> Option<PathBuf> {
    let real = std::fs::canonicalize(link).ok()?;
    let is_dir = std::fs::metadata(&real).ok()?.is_dir();
    (is_dir && !skip.skip(&real)).then_some(real)
}

/// The skip rules for a walk through a symlink: outputs and the cache directory are
/// declared by their real paths, so each path under the link is also tested at the
/// place it really is (`ol -> out` must not make `out/` an input).
struct Through<'a> {
    named: &'a Path,
    real: &'a Path,
    inner: &'a dyn Skip,
}

impl Skip for Through<'_> {
    fn skip(&self, abs: &Path) -> bool {
        self.inner.skip(abs)
            || abs
                .strip_prefix(self.named)
                .is_ok_and(|rel| self.inner.skip(&self.real.join(rel)))
    }
}

/// A walked directory in `Resolved::entries`: its path with a trailing slash, and no
/// `stat` (it is known to be a directory; stat'ing it would cost a system call per
/// directory on every hit). No other entry ends in a slash: specs are normalized.
fn dir_marker(dir: &[u8]) -> Vec<u8> {
    let mut path = dir.to_vec();
    if !path.ends_with(b"/") {
        path.push(b'/');
    }
    path
}

pub struct Resolved {
    /// Sorted by path bytes; walked directories are named with a trailing slash.
    pub entries: Listing,
    pub missing: Vec<PathBuf>,
}

/// The stat-cache lookups of one sorted run of paths.
pub struct Lookup<'a> {
    pub old: &'a StatCache,
    pub cursor: Cursor<'a>,
}

impl<'a> Lookup<'a> {
    pub fn new(old: &'a StatCache) -> Self {
        Lookup {
            old,
            cursor: Cursor::new(old),
        }
    }
}

/// The state of a path (appended to `state`) and, for regular files, where its
/// stat-cache entry came from. A symlink's state is its target text and, when it leads
/// to a regular file, that file's content too: editing the file behind
/// `cfg -> shared/cfg` must be a change; when it leads to a directory, `;dir` (a
/// dangling link and a link to an empty directory differ). Whether that directory is
/// walked is `resolve`'s call.
pub fn path_state(
    path: &Path,
    known: Option<Stat>,
    cache: &mut Lookup<'_>,
    skip: &dyn Skip,
    now_ns: &dyn Fn() -> i64,
    state: &mut Vec<u8>,
) -> Result<Option<CacheUse>> {
    let st = match known {
        Some(st) => st,
        None => match Stat::lstat(path) {
            Ok(st) => st,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                state.extend_from_slice(b"absent");
                return Ok(None);
            }
            Err(e) => return Err(e).with_context(|| format!("cannot stat {}", path.display())),
        },
    };
    if st.is_symlink() {
        let target = std::fs::read_link(path)
            .with_context(|| format!("cannot read symlink {}", path.display()))?;
        state.extend_from_slice(b"symlink:");
        state.extend_from_slice(target.as_os_str().as_bytes());
        let real = std::fs::canonicalize(path).ok();
        let real_st = real.as_ref().and_then(|r| Stat::lstat(r).ok());
        if let (Some(real), Some(real_st)) = (real, real_st) {
            // A link into a declared output (compile_commands.json -> build/…) keeps
            // its text-only state: the output's content is the command's, not an input.
            if real_st.is_file() && !skip.skip(&real) {
                // Out of the sorted run: a search of its own.
                let mut own = Lookup::new(cache.old);
                let (entry, used) = file_entry(&real, &real_st, own.old, &mut own.cursor, now_ns)?;
                state.push(b';');
                file_state(&entry, &real_st, state);
                return Ok(Some(used));
            }
            if real_st.is_dir() && !skip.skip(&real) {
                state.extend_from_slice(b";dir");
            }
        }
        return Ok(None);
    }
    if !st.is_file() {
        // Never open FIFOs, sockets or devices: reading them could block or consume.
        state.extend_from_slice(if st.is_dir() { b"dir" } else { b"special" });
        return Ok(None);
    }
    let (entry, used) = file_entry(path, &st, cache.old, &mut cache.cursor, now_ns)?;
    file_state(&entry, &st, state);
    Ok(Some(used))
}

/// `blake3:<hex>`, and `+x` for an executable (written in one go: 10,000 of these are
/// made on every warm hit).
fn file_state(entry: &StatEntry, st: &Stat, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 7 + 64 + 2];
    text[..7].copy_from_slice(b"blake3:");
    for (i, b) in entry.hash.iter().enumerate() {
        text[7 + 2 * i] = HEX[(b >> 4) as usize];
        text[8 + 2 * i] = HEX[(b & 15) as usize];
    }
    let len = if st.mode & 0o111 != 0 {
        text[71..].copy_from_slice(b"+x");
        73
    } else {
        71
    };
    out.extend_from_slice(&text[..len]);
}

/// States of a listing, in its order, in parallel above a thousand entries. Returns
/// the states and adds where each stat-cache entry came from to `new_cache`.
pub fn states(
    ws: &Workspace,
    items: &Listing,
    kind: Kind,
    old: &StatCache,
    skip: &dyn Skip,
    new_cache: &mut CacheBuilder,
) -> Result<Vec<DepState>> {
    let now = crate::clock::real_now_ns;
    // A run of consecutive entries, with one cursor into the (sorted) stat cache, fills
    // its slots of the output in place (no intermediate vectors to concatenate).
    let fill = |start: usize, deps: &mut [DepState], uses: &mut [Option<CacheUse>]| -> Result<()> {
        let mut cache = Lookup::new(old);
        for (j, (dep, used)) in deps.iter_mut().zip(uses.iter_mut()).enumerate() {
            let (p, known) = items.get(start + j);
            let path = Path::new(OsStr::from_bytes(p));
            // A walked directory is named `src/sub/`, as `ls -p` shows it: its presence
            // is the membership of its parent, and a file replaced by a directory of the
            // same name reads as one removed and one added.
            if known == Known::Dir {
                let dir = p.strip_suffix(b"/").filter(|d| !d.is_empty()).unwrap_or(p);
                dep.name = ws.key_of(Path::new(OsStr::from_bytes(dir)));
                dep.name.push(b'/');
                dep.state = b"dir".to_vec();
                continue;
            }
            let known = match known {
                Known::Stat(st) => Some(st),
                _ => None,
            };
            *used = path_state(path, known, &mut cache, skip, &now, &mut dep.state)?;
            dep.name = ws.key_of(path);
        }
        Ok(())
    };
    let n = items.len();
    // Empty vectors do not allocate: the slots cost one allocation each, not per entry.
    let mut deps: Vec<DepState> = (0..n)
        .map(|_| DepState::new(kind, Vec::new(), Vec::new()))
        .collect();
    let mut uses: Vec<Option<CacheUse>> = (0..n).map(|_| None).collect();
    const RUN: usize = 512;
    if n >= 2 * RUN {
        deps.par_chunks_mut(RUN)
            .zip(uses.par_chunks_mut(RUN))
            .enumerate()
            .try_for_each(|(r, (d, u))| fill(r * RUN, d, u))?;
    } else {
        fill(0, &mut deps, &mut uses)?;
    }
    new_cache.extend(uses);
    Ok(deps)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state of `p` against a one-entry stat cache.
    fn state_with(p: &Path, cache: &StatCache) -> String {
        let mut st = Vec::new();
        path_state(p, None, &mut Lookup::new(cache), &NoSkip, &|| 0, &mut st).unwrap();
        String::from_utf8(st).unwrap()
    }

    /// The stat cache is trusted only outside the racy window: an entry whose stat
    /// matches exactly but was hashed within a tick of the write is re-hashed.
    #[test]
    fn racy_entry_is_rehashed_even_when_stat_matches() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "bbbb").unwrap();
        let st = Stat::lstat(&p).unwrap();
        let stale = *blake3::hash(b"aaaa").as_bytes();
        let entry = |hashed_at_ns| StatEntry {
            dev: st.dev,
            ino: st.ino,
            size: st.size,
            mtime_ns: st.mtime_ns,
            ctime_ns: st.ctime_ns,
            mode: st.mode,
            hash: stale,
            hashed_at_ns,
        };
        let key = p.as_os_str().as_bytes();
        let fresh_hex = blake3::hash(b"bbbb").to_hex().to_string();
        let stale_hex = blake3::hash(b"aaaa").to_hex().to_string();

        let racy_cache =
            StatCache::from_entries([(key, entry(st.mtime_ns.max(st.ctime_ns) + 1_000_000))]);
        assert!(state_with(&p, &racy_cache).contains(&fresh_hex));

        let safe_cache = StatCache::from_entries([(key, entry(st.mtime_ns + 10_000_000_000))]);
        assert!(
            state_with(&p, &safe_cache).contains(&stale_hex),
            "a safe entry with a matching stat is trusted without reading the file"
        );
        // A stat that differs in any field is re-hashed.
        let mut moved = entry(st.mtime_ns + 10_000_000_000);
        moved.ino ^= 1;
        assert!(state_with(&p, &StatCache::from_entries([(key, moved)])).contains(&fresh_hex));
    }

    /// Keys of what `resolve` returns for `specs` in a workspace at `root`.
    fn resolved_keys(root: &Path, specs: &[&str]) -> Vec<String> {
        let ws = Workspace {
            root: root.to_path_buf(),
            cwd: root.to_path_buf(),
        };
        let specs: Vec<std::ffi::OsString> = specs.iter().map(|s| (*s).into()).collect();
        let r = FileSpecs::parse(&specs, &ws)
            .unwrap()
            .resolve(false, &NoSkip)
            .unwrap();
        r.entries
            .iter()
            .map(|(p, _)| {
                String::from_utf8_lossy(&ws.key_of(Path::new(OsStr::from_bytes(p)))).into_owned()
            })
            .collect()
    }

    #[test]
    fn directory_specs_list_their_directories_and_globs_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("d/empty")).unwrap();
        std::fs::create_dir_all(root.join("d/ign")).unwrap();
        std::fs::create_dir_all(root.join("d/x.o")).unwrap();
        std::fs::write(root.join("d/a.c"), "a").unwrap();
        std::fs::write(root.join("d/.gitignore"), "ign/\n").unwrap();
        std::os::unix::fs::symlink("d", root.join("dl")).unwrap();
        assert_eq!(
            resolved_keys(root, &["d/", "!*.o"]),
            ["d/", "d/.gitignore", "d/a.c", "d/empty/"]
        );
        assert_eq!(
            resolved_keys(root, &["dl"]),
            ["dl", "dl/.gitignore", "dl/a.c", "dl/empty/", "dl/x.o/"]
        );
        assert_eq!(resolved_keys(root, &["d/**/*.c"]), ["d/a.c"]);
        assert_eq!(resolved_keys(root, &["dl/*.c"]), ["dl", "dl/a.c"]);
    }

    /// Outputs are declared by their real path: a walk through a link must skip them
    /// where they really are.
    #[test]
    fn walk_through_a_link_skips_outputs_at_their_real_path() {
        struct SkipOut(PathBuf);
        impl Skip for SkipOut {
            fn skip(&self, abs: &Path) -> bool {
                abs.starts_with(&self.0)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("out")).unwrap();
        std::fs::write(root.join("out/o"), "o").unwrap();
        std::fs::write(root.join("in"), "i").unwrap();
        std::os::unix::fs::symlink(".", root.join("here")).unwrap();
        let ws = Workspace {
            root: root.to_path_buf(),
            cwd: root.to_path_buf(),
        };
        let specs = FileSpecs::parse(&["here/".into()], &ws).unwrap();
        let r = specs.resolve(false, &SkipOut(root.join("out"))).unwrap();
        let keys: Vec<String> = r
            .entries
            .iter()
            .map(|(p, _)| {
                String::from_utf8_lossy(&ws.key_of(Path::new(OsStr::from_bytes(p)))).into_owned()
            })
            .collect();
        assert_eq!(keys, ["here", "here/here", "here/in"]);
    }

    #[test]
    fn glob_split() {
        assert_eq!(split_glob("src/**/*.c"), ("src".into(), "**/*.c".into()));
        assert_eq!(split_glob("*.c"), (".".into(), "*.c".into()));
        assert_eq!(split_glob("/a/b/*.c"), ("/a/b".into(), "*.c".into()));
    }
}
