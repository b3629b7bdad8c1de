//! After a traced run: one entry per input path under the first-access rule and the
//! strongest kind (docs/trace.md §1), the outputs and side effects, and every reason the
//! run cannot be recorded. It reads the filesystem; it never writes it.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::ops::Bound;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::Result;

use super::state::{self, Level, Looked, Masks};
use super::{Entry, Findings, Fingerprint, TraceOpts};
use crate::deps::{DepState, Kind};
use crate::trace::{Access, Inputs, PathUse, Reason, TraceLog, Writes};

/// Writes that leave the same inode in place: its kind before the run is its kind now.
const SAME_INODE: Writes = Writes(Writes::TRUNCATED.0 | Writes::MODIFIED.0 | Writes::METADATA.0);
/// First writes that fail on an existing path (or, for `CREATED`, were seen to create).
const CREATING: Writes =
    Writes(Writes::CREATED.0 | Writes::MKDIR.0 | Writes::SYMLINK.0 | Writes::LINKED.0);
/// Inputs that follow a final symlink (the kernel's lookup resolved it).
const FOLLOWING: Inputs =
    Inputs(Inputs::READ.0 | Inputs::EXEC.0 | Inputs::LISTING.0 | Inputs::PROBE.0);

/// See the module doc and [`super::Findings`].
pub fn findings(log: &TraceLog, opts: &TraceOpts) -> Result<Findings> {
    findings_reusing(log, opts, &[])
}

/// [`findings`], reusing the content hash of a file whose fingerprint in `known` (entries
/// recorded before, e.g. the task's other sets) is unchanged and not racy, as the stat
/// cache does for declared files: a traced step that reads a big unchanged file does
/// not hash it again on every recording.
pub fn findings_reusing(log: &TraceLog, opts: &TraceOpts, known: &[Entry]) -> Result<Findings> {
    let known: HashMap<&[u8], &Entry> = known
        .iter()
        .filter(|e| e.dep.state.starts_with(state::CONTENT) && !e.fp.is_racy())
        .map(|e| (e.dep.name.as_slice(), e))
        .collect();
    let mut out = Findings::default();
    for u in &log.unknowable {
        push_once(&mut out.unrecordable, reason_phrase(&u.reason));
    }
    let first_listing = first_listings(log);
    for (path, u) in &log.paths {
        let mut key = opts.ws.key_of(path);
        // `root/sub/../../x` may lead anywhere: never an output to restore under the
        // root, and its name stays the absolute path the program used.
        if key.split(|&b| b == b'/').any(|c| c == b"..") {
            key = path.as_os_str().as_bytes().to_vec();
        }
        let inside = !key.starts_with(b"/");
        if opts.ignore.is_match(path)
            || (inside && opts.ignore.is_match(Path::new(OsStr::from_bytes(&key))))
        {
            continue;
        }
        if u.is_written() {
            through_link(path, u, opts, &mut out);
            let present = state::stat(path, false).is_ok();
            let temporary = !present && created_by_run(u);
            if inside {
                let only_removed = u.writes == Writes::REMOVED;
                if present && !only_removed && key != b"." {
                    out.outputs.push(key.clone());
                }
                // A replay restores what the run left, it never deletes: a workspace
                // path that was there before the run and is gone after it would
                // survive a replay, so the outcome cannot be recorded.
                if !present && !temporary && u.writes.contains(Writes::REMOVED) {
                    push_once(
                        &mut out.unrecordable,
                        format!(
                            "deleted {}, which existed before the run (a replay never deletes)",
                            shown(&key)
                        ),
                    );
                }
            } else if !temporary {
                out.side_effects.push(path.clone());
            }
        }
        if !u.is_input() {
            continue;
        }
        let ctx = PathCtx {
            path,
            key,
            u,
            log,
            opts,
            first_listing: first_listing.get(path.as_path()).copied(),
            known: &known,
        };
        match ctx.entry() {
            Ok(Some(e)) => out.entries.push(e),
            Ok(None) => {}
            Err(why) => push_once(&mut out.unrecordable, why),
        }
    }
    out.entries.sort_by(|a, b| a.dep.cmp(&b.dep));
    out.outputs.sort();
    out.outputs.dedup();
    out.side_effects.sort();
    out.side_effects.dedup();
    Ok(out)
}

/// Writes that follow a final symlink (open without `O_NOFOLLOW`, truncate, utime).
const FOLLOWING_WRITES: Writes =
    Writes(Writes::CREATED.0 | Writes::TRUNCATED.0 | Writes::MODIFIED.0 | Writes::METADATA.0);

/// A write through a symlink lands on its target, which the tracer never named: inside
/// the workspace it is an output too (else a hit would restore the link and not the
/// file), outside it is a side effect. The link itself stays what the command named.
fn through_link(path: &Path, u: &PathUse, opts: &TraceOpts, out: &mut Findings) {
    if u.writes.0 & FOLLOWING_WRITES.0 == 0
        || !std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
    {
        return;
    }
    let Ok(real) = std::fs::canonicalize(path) else {
        return; // dangling now: nothing was left behind it
    };
    let key = opts.ws.key_of(&real);
    let inside = !key.starts_with(b"/") && !key.split(|&b| b == b'/').any(|c| c == b"..");
    if opts.ignore.is_match(&real)
        || (inside && opts.ignore.is_match(Path::new(OsStr::from_bytes(&key))))
    {
        return;
    }
    if inside {
        out.outputs.push(key);
    } else if !out.side_effects.contains(&real) {
        out.side_effects.push(real);
    }
}

fn push_once(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// One phrase per unknowable reason, for the warning and `-v`.
pub fn reason_phrase(r: &Reason) -> String {
    match r {
        Reason::InetSocket { family } => {
            format!("connected an inet socket ({})", family_name(*family))
        }
        Reason::InetBind { family } => {
            format!("bound an inet socket ({})", family_name(*family))
        }
        Reason::OpenByHandle => "opened a file by handle (open_by_handle_at)".to_string(),
        Reason::IoUring => "io_uring".to_string(),
        Reason::SetuidExec(p) => format!("executed setuid {}", shown(p.as_os_str().as_bytes())),
        Reason::ForeignAbi { arch } => format!("made a foreign-ABI syscall (arch {arch:#x})"),
        Reason::X32Abi => "made an x32-ABI syscall".to_string(),
        Reason::Unreadable { syscall } => {
            format!("a path argument of {syscall} could not be read")
        }
        Reason::UnresolvableLink(p) => format!(
            "read through {}, whose target cannot be known (a deleted file?)",
            shown(p.as_os_str().as_bytes())
        ),
    }
}

fn family_name(family: u16) -> String {
    match family as i32 {
        libc::AF_INET => "AF_INET".to_string(),
        libc::AF_INET6 => "AF_INET6".to_string(),
        f => format!("address family {f}"),
    }
}

fn shown(name: &[u8]) -> String {
    crate::ui::escape_controls(&String::from_utf8_lossy(name)).into_owned()
}

/// The seq of each path's first `LISTING` access.
fn first_listings(log: &TraceLog) -> HashMap<&Path, u64> {
    let mut m = HashMap::new();
    for e in &log.events {
        if let Access::Input(k) = e.access {
            if k.contains(Inputs::LISTING) {
                m.entry(e.path.as_path()).or_insert(e.seq);
            }
        }
    }
    m
}

/// Did not exist before the run: the first access created it or found it missing.
fn created_by_run(u: &PathUse) -> bool {
    match u.first {
        Access::Write(w) => CREATING.contains(w),
        Access::Input(_) => u.inputs == Inputs::ABSENT,
    }
}

struct PathCtx<'a> {
    known: &'a HashMap<&'a [u8], &'a Entry>,
    path: &'a Path,
    key: Vec<u8>,
    u: &'a PathUse,
    log: &'a TraceLog,
    opts: &'a TraceOpts<'a>,
    first_listing: Option<u64>,
}

type Found = std::result::Result<Option<Entry>, String>;

impl PathCtx<'_> {
    fn name(&self) -> String {
        shown(&self.key)
    }

    fn entry_of(&self, kind: Kind, state: Vec<u8>, fp: Fingerprint) -> Found {
        Ok(Some(Entry {
            dep: DepState::new(kind, self.key.clone(), state),
            fp,
        }))
    }

    fn entry(&self) -> Found {
        let i = self.u.inputs;
        let has = |k: Inputs| i.0 & k.0 != 0;
        if has(Inputs::ABSENT) && has(FOLLOWING) {
            return Err(format!(
                "{} was both missing and present while the command ran",
                self.name()
            ));
        }
        if has(Inputs::READ) || has(Inputs::EXEC) || has(Inputs::LISTING) {
            return self.content_or_listing();
        }
        if has(Inputs::LINK) || has(Inputs::PROBE) || has(Inputs::PROBE_NOFOLLOW) {
            return self.probe();
        }
        self.absent()
    }

    /// Read, Exec, Listing; a read "file" that is a directory is a Probe (or a Listing).
    fn content_or_listing(&self) -> Found {
        let i = self.u.inputs;
        let md = match state::stat(self.path, true) {
            Ok(md) => md,
            Err(e) if state::is_gone(e) && self.u.is_written() => {
                return Err(format!(
                    "read, then removed {}: its content before the run is gone",
                    self.name()
                ))
            }
            Err(e) if state::is_gone(e) => {
                return Err(format!("{} disappeared while the command ran", self.name()))
            }
            Err(e) => {
                return Err(format!(
                    "cannot stat {}: {}",
                    self.name(),
                    std::io::Error::from_raw_os_error(e)
                ))
            }
        };
        if md.is_dir() {
            if i.contains(Inputs::LISTING) {
                return self.listing(md);
            }
            return self.probe();
        }
        if !md.is_file() {
            return self.probe();
        }
        let exec = i.contains(Inputs::EXEC);
        if !i.contains(Inputs::READ) && !exec {
            return self.probe(); // listed a file: the listing failed, only its presence counts
        }
        if md.changed_since(self.opts.started_ns) {
            return Err(if self.u.is_written() {
                format!(
                    "read, then wrote {}: its content before the run is gone",
                    self.name()
                )
            } else {
                format!("{} changed while the command ran", self.name())
            });
        }
        let (hash, observed) = match self.known_hash(&md) {
            Some(known) => known,
            None => state::hash_content(self.path, &md)
                .map_err(|e| format!("cannot read {}: {e}", self.name()))?,
        };
        if observed == i64::MIN {
            return Err(format!("{} changed while it was hashed", self.name()));
        }
        let kind = if exec {
            Kind::TraceExec
        } else {
            Kind::TraceRead
        };
        self.entry_of(
            kind,
            state::content_state(&hash, &md, exec),
            state::fingerprint(&md, observed),
        )
    }

    /// The hash and observation time of a known entry for this path whose fingerprint
    /// proves the content unchanged.
    fn known_hash(&self, md: &state::Meta) -> Option<([u8; 32], i64)> {
        let e = self.known.get(self.key.as_slice())?;
        if !e.fp.same_stat(&state::fingerprint(md, 0)) {
            return None;
        }
        let hex = e.dep.state.strip_prefix(state::CONTENT)?;
        let hex = hex.strip_suffix(b"+x").unwrap_or(hex);
        let bytes = crate::encode::unhex(std::str::from_utf8(hex).ok()?)?;
        Some((bytes.try_into().ok()?, e.fp.observed_at_ns))
    }

    fn listing(&self, md: state::Meta) -> Found {
        if self.u.is_written() {
            return Err(format!(
                "listed, then removed or replaced {}/: its entries before the run are gone",
                self.name()
            ));
        }
        let observed = crate::clock::real_now_ns();
        let entries = state::read_listing(self.path)
            .map_err(|e| format!("cannot list {}/: {e}", self.name()))?;
        let listed_at = self.first_listing.unwrap_or(self.u.first_seq);
        let mut names: BTreeMap<Vec<u8>, u8> = entries.into_iter().collect();
        let mut masks = Masks::default();
        let mut wrote_inside = false;
        let children = self
            .log
            .paths
            .range::<Path, _>((Bound::Excluded(self.path), Bound::Unbounded))
            .take_while(|(p, _)| p.starts_with(self.path))
            .filter(|(p, u)| p.parent() == Some(self.path) && u.is_written());
        for (child, cu) in children {
            wrote_inside = true;
            let Some(name) = child.file_name().map(|n| n.as_bytes().to_vec()) else {
                continue;
            };
            let now = names.remove(&name);
            // Did the name exist before the run (what the first listing saw)?
            let before = match cu.first {
                // Written before it was listed: the listing saw the command's own doing,
                // and will again while every input before that write is unchanged.
                Access::Write(_) if cu.first_seq < listed_at => {
                    masks.skip.push(name);
                    continue;
                }
                Access::Write(w) if CREATING.contains(w) => false,
                Access::Write(w) if w == Writes::RENAMED_INTO => {
                    return Err(format!(
                        "listed {}/, then renamed over {}: whether it existed before is unknown",
                        self.name(),
                        shown(&name)
                    ))
                }
                // Truncated, modified, utime'd or removed: it existed.
                Access::Write(_) => true,
                Access::Input(_) => cu.inputs != Inputs::ABSENT,
            };
            if !before {
                continue;
            }
            let letter = match now {
                Some(l) if SAME_INODE.contains(cu.writes) => l,
                _ => {
                    masks.any_kind.push(name.clone());
                    b'?'
                }
            };
            names.insert(name, letter);
        }
        if !wrote_inside && md.changed_since(self.opts.started_ns) {
            return Err(format!(
                "dir {}/ changed while the command ran",
                self.name()
            ));
        }
        let names: Vec<(Vec<u8>, u8)> = names.into_iter().collect();
        self.entry_of(
            Kind::TraceListing,
            state::listing_state(&names, &masks),
            state::fingerprint(&md, observed),
        )
    }

    /// Probe and Link entries (and Absent mixed with a no-follow lookup: a dangling
    /// symlink).
    fn probe(&self) -> Found {
        let i = self.u.inputs;
        let follow = i.0 & (FOLLOWING.0 | Inputs::ABSENT.0) != 0;
        let nofollow = i.0 & (Inputs::PROBE_NOFOLLOW.0 | Inputs::LINK.0) != 0;
        let kind = if i.contains(Inputs::LINK) {
            Kind::TraceLink
        } else {
            Kind::TraceProbe
        };
        let observed = crate::clock::real_now_ns();
        let st = follow.then(|| state::stat(self.path, true));
        let lst = nofollow.then(|| state::stat(self.path, false));
        let level = if !self.u.is_written() {
            Level::Full
        } else if i.contains(Inputs::LINK) {
            return Err(format!(
                "read the link {}, then replaced it: its target before the run is gone",
                self.name()
            ));
        } else if state::stat(self.path, false).is_ok() && SAME_INODE.contains(self.u.writes) {
            Level::Kind
        } else {
            Level::Exists
        };
        if level == Level::Full {
            for looked in st.iter().chain(lst.iter()) {
                match looked {
                    Ok(md) if !md.is_dir() && md.changed_since(self.opts.started_ns) => {
                        return Err(format!("{} changed while the command ran", self.name()))
                    }
                    Err(e) if state::is_gone(*e) && !i.contains(Inputs::ABSENT) => {
                        return Err(format!("{} disappeared while the command ran", self.name()))
                    }
                    _ => {}
                }
            }
        }
        // Missing through the path, present as the path itself: only a dangling symlink
        // is both, and it must still be one.
        let dangling = matches!(lst, Some(Ok(md)) if md.is_symlink())
            && matches!(st, Some(Err(e)) if state::is_gone(e));
        if i.contains(Inputs::ABSENT) && !self.u.is_written() && !dangling {
            return Err(format!(
                "{} was both missing and present while the command ran",
                self.name()
            ));
        }
        let attrs = |l: &Looked| state::attrs(l, level, || state::read_link(self.path));
        let (state, fp_of) = match (&st, &lst) {
            (Some(s), Some(l)) => (state::both_state(&attrs(s), &attrs(l)), l),
            (Some(s), None) => (state::probe_state(state::STAT, &attrs(s)), s),
            (None, Some(l)) => (state::probe_state(state::LSTAT, &attrs(l)), l),
            (None, None) => return Ok(None),
        };
        let fp = match fp_of {
            Ok(md) => state::fingerprint(md, observed),
            Err(_) => Fingerprint::NONE,
        };
        self.entry_of(kind, state, fp)
    }

    fn absent(&self) -> Found {
        match state::stat(self.path, false) {
            Err(e) if state::is_gone(e) => {
                self.entry_of(Kind::TraceAbsent, state::ABSENT.to_vec(), Fingerprint::NONE)
            }
            // Missing before the run, created by it: an output, "absent" as input.
            _ if self.u.is_written() => {
                self.entry_of(Kind::TraceAbsent, state::ABSENT.to_vec(), Fingerprint::NONE)
            }
            Ok(md) if md.is_symlink() && state::stat(self.path, true).is_err() => {
                // A dangling symlink: missing to a lookup that follows it.
                let observed = crate::clock::real_now_ns();
                if md.changed_since(self.opts.started_ns) {
                    return Err(format!("{} changed while the command ran", self.name()));
                }
                let target = state::read_link(self.path);
                let lstat_attrs = [b"symlink:".as_slice(), &target].concat();
                self.entry_of(
                    Kind::TraceAbsent,
                    state::both_state(state::GONE, &lstat_attrs),
                    state::fingerprint(&md, observed),
                )
            }
            _ => Err(format!(
                "{} was missing to the command but exists now",
                self.name()
            )),
        }
    }
}
