//! `--trace` in the engine: the weak and strong keys of a traced task, the dependency-set
//! index (local hot file, SQLite, remote), the second lookup phase, what a traced run
//! adds to its record, and `--trace=check`'s report. docs/trace.md is the model. It never
//! decides anything `lookup` does not also decide for `status` and `explain`.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::snapshot::Snapshot;
use super::{Policy, Task};
use crate::deps::trace::{self as dt, Check, Checker, Entry, Findings, TraceOpts};
use crate::deps::{self, DepState, Kind};
use crate::encode::{Decoder, Encoder};
use crate::exec::TraceSetup;
use crate::store::record::OutputEntry;
use crate::store::remote::Tier as Shared;
use crate::store::{hot, trace_sets, Cache};
use crate::trace::{Inputs, Reason, TraceLog};
use crate::ui;

/// What the tracer must drop on top of /proc, /sys and /dev: the cache directory; and
/// what it must trace even there: the workspace (never hidden by an ignored prefix).
pub fn setup(task: &Task, policy: &Policy) -> TraceSetup {
    TraceSetup {
        traced_prefixes: vec![task.ws.root.clone()],
        ignore_prefixes: policy
            .cache_dir
            .as_ref()
            .ok()
            .map(|d| task.ws.absolute(d))
            .into_iter()
            .collect(),
    }
}

/// The weak key: the task key (which marks the task traced) and its declared inputs.
pub fn weak_key(task: &Task, declared_state: &[u8; 32]) -> [u8; 32] {
    let mut e = Encoder::new();
    e.str("idem-trace-weak")
        .bytes(&task.key)
        .bytes(declared_state);
    *blake3::hash(e.as_slice()).as_bytes()
}

/// The strong key of a traced record: the state key of declared and traced states.
pub fn strong_key(declared: &[DepState], entries: &[Entry]) -> [u8; 32] {
    let mut all = declared.to_vec();
    all.extend(entries.iter().map(|e| e.dep.clone()));
    deps::state_key(&all)
}

pub fn encode_set(entries: &[Entry]) -> Vec<u8> {
    let mut e = Encoder::new();
    dt::encode_entries(&mut e, entries);
    e.finish()
}

fn decode_set(data: &[u8]) -> Result<Vec<Entry>> {
    let mut d = Decoder::new(data);
    let entries = dt::decode_entries(&mut d)?;
    if !d.is_empty() {
        anyhow::bail!("trailing bytes after a dependency set");
    }
    Ok(entries)
}

/// The weak key's entry lists, newest first, still encoded (each is decoded only when
/// the lookup gets to it: the newest usually decides): from its hot file, else from
/// SQLite (which then rewrites the hot file).
pub fn load_sets(cache: &mut Cache, weak: &[u8; 32]) -> Result<trace_sets::Sets> {
    match hot::load_sets(&cache.dir, weak).and_then(|d| trace_sets::decode_sets(&d).ok()) {
        Some(sets) => Ok(sets),
        None => {
            let sets = cache.db.trace_sets(weak)?;
            if !sets.is_empty() {
                let _ = cache.db.refresh_hot_sets(weak);
            }
            Ok(sets)
        }
    }
}

/// The first recorded set whose entries all hold now, as a strong key; else the change
/// that rules out the newest set (for `-v` and `explain`).
pub enum Phase {
    /// The strong key of the set at this index.
    Holds([u8; 32], usize),
    None {
        sets: usize,
        change: Option<String>,
    },
}

/// Checks the encoded `sets` newest first (a list that does not decode is passed over,
/// never guessed at). A set whose strong key is in `skip` (its record is gone) is passed
/// over too: the caller asks again with it added.
pub fn first_holding(
    checker: &mut Checker,
    declared: &[DepState],
    sets: &[Vec<u8>],
    skip: &[[u8; 32]],
) -> Phase {
    let mut change = None;
    for (i, raw) in sets.iter().enumerate() {
        let Ok(entries) = decode_set(raw) else {
            continue;
        };
        match checker.check(&entries) {
            Check::Unchanged => {
                let strong = strong_key(declared, &entries);
                if !skip.contains(&strong) {
                    return Phase::Holds(strong, i);
                }
            }
            Check::Changed(c) => {
                if change.is_none() {
                    change = Some(c.to_string());
                }
            }
        }
    }
    Phase::None {
        sets: sets.len(),
        change,
    }
}

/// After a hit through the local set `raw`: entries the checker had to hash because
/// their fingerprint was racy or changed, yet found unchanged, get the fingerprint they
/// have now, and the set is stored again in place of `raw` (a header a build's previous
/// step wrote just before the recording would otherwise be re-hashed on every hit).
pub fn refresh_set(
    checker: &Checker,
    cache: &mut Cache,
    weak: &[u8; 32],
    task: &Task,
    raw: &[u8],
    now_ns: i64,
) -> Result<()> {
    let mut entries = decode_set(raw)?;
    if checker.refresh(&mut entries) {
        cache
            .db
            .replace_trace_set(weak, &task.key, raw, &encode_set(&entries), now_ns)?;
    }
    Ok(())
}

/// The remote's copy of a weak key's index (empty without a remote or on any fault).
pub fn remote_sets(remote: Option<&Shared>, weak: &[u8; 32]) -> trace_sets::Sets {
    remote
        .and_then(|r| r.get_trace_sets(weak))
        .unwrap_or_default()
}

/// A traced run's findings, or `None` (warned once, reasons under `-v`) when it must not
/// be recorded.
pub fn findings(
    task: &Task,
    policy: &Policy,
    log: &mut TraceLog,
    started_ns: i64,
) -> Option<Findings> {
    let Some(tracing) = &task.trace else {
        return None;
    };
    if tracing.net_allow {
        log.unknowable.retain(|u| {
            !matches!(
                u.reason,
                Reason::InetSocket { .. } | Reason::InetBind { .. }
            )
        });
    }
    let opts = TraceOpts {
        ws: &task.ws,
        ignore: &tracing.ignore,
        started_ns,
    };
    let mut found = match dt::findings(log, &opts) {
        Ok(f) => f,
        Err(e) => {
            ui::warn(format!(
                "cannot read the traced inputs ({e:#}); not recorded"
            ));
            return None;
        }
    };
    // A write named through `..` (`make -C lib` writing `../out/x.o`) is kept by its
    // absolute name, as a side effect: when it really is in the workspace it is an
    // output, captured at its canonical path (a hit must restore it).
    let mut side_effects = Vec::new();
    for p in std::mem::take(&mut found.side_effects) {
        match written_inside(&task.ws, log, &p) {
            Some(key)
                if tracing
                    .ignore
                    .is_match(Path::new(std::ffi::OsStr::from_bytes(&key))) => {}
            Some(key) => found.outputs.push(key),
            None => side_effects.push(p),
        }
    }
    found.side_effects = side_effects;
    found.outputs = found
        .outputs
        .into_iter()
        .map(|key| canonical_output(&task.ws, key))
        .collect();
    found.outputs.sort();
    found.outputs.dedup();
    // Writes idem could never restore (the gate refuses them): not recordable.
    for key in &found.outputs {
        if unrestorable(task, policy, key) {
            found.unrecordable.push(format!(
                "it wrote {}, which idem never restores",
                String::from_utf8_lossy(key)
            ));
        }
    }
    if found.unrecordable.is_empty() {
        return Some(found);
    }
    if policy.verbose {
        ui::warn(format!(
            "not recorded: {}",
            ui::escape_controls(&found.unrecordable.join("; "))
        ));
    } else {
        let net = log.unknowable.iter().any(|u| {
            matches!(
                u.reason,
                Reason::InetSocket { .. } | Reason::InetBind { .. }
            )
        });
        let hint = if net {
            " (it used the network: declare what it fetches with -u and pass --trace-net=allow)"
        } else {
            " (-v says why)"
        };
        ui::warn(format!(
            "not recorded: the traced command did something idem cannot replay{hint}"
        ));
    }
    None
}

/// The canonical workspace key of a path written through `..` that is still there
/// (and not only removed) and really lies inside the workspace.
fn written_inside(ws: &crate::spec::Workspace, log: &TraceLog, p: &Path) -> Option<Vec<u8>> {
    if !p.components().any(|c| c == std::path::Component::ParentDir) {
        return None;
    }
    let only_removed = log
        .paths
        .get(p)
        .is_none_or(|u| u.writes == crate::trace::Writes::REMOVED);
    if only_removed || std::fs::symlink_metadata(p).is_err() {
        return None;
    }
    let (parent, name) = (p.parent()?, p.file_name()?);
    let key = ws.key_of(&std::fs::canonicalize(parent).ok()?.join(name));
    let canonical = !key.starts_with(b"/")
        && key != b"."
        && key
            .split(|&b| b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..");
    canonical.then_some(key)
}

/// The workspace key of the file an output key names through `.`/`..`: its parent
/// directory resolved (the file is there after the run), its name kept. Unchanged when
/// already canonical or when it cannot be resolved (then refused by `unrestorable`).
fn canonical_output(ws: &crate::spec::Workspace, key: Vec<u8>) -> Vec<u8> {
    let odd = |c: &[u8]| c == b".." || c == b"." || c.is_empty();
    if key.starts_with(b"/") || !key.split(|&b| b == b'/').any(odd) {
        return key;
    }
    let abs = ws.path_of(&key);
    let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
        return key;
    };
    if odd(name.as_bytes()) {
        return key;
    }
    match std::fs::canonicalize(parent) {
        Ok(real) => {
            let resolved = ws.key_of(&real.join(name));
            if resolved.starts_with(b"/") || resolved == b"." {
                key
            } else {
                resolved
            }
        }
        Err(_) => key,
    }
}

/// Paths a traced record may not restore: under `.git/`, in the cache directory, or
/// named through `..`/`.` (kept as the program named them: the restore gate accepts only
/// canonical paths, so such a record would never replay).
fn unrestorable(task: &Task, policy: &Policy, key: &[u8]) -> bool {
    if key.starts_with(b"/")
        || key
            .split(|&b| b == b'/')
            .any(|c| c == b".git" || c == b".." || c == b"." || c.is_empty())
    {
        return true;
    }
    let abs = task.ws.path_of(key);
    policy
        .cache_dir
        .as_ref()
        .is_ok_and(|d| abs.starts_with(task.ws.absolute(d)))
}

/// Captures the traced outputs (workspace keys) like `-o` outputs, after `declared`
/// (whose paths win).
pub fn capture_outputs(
    task: &Task,
    blobs: &crate::store::blobs::BlobStore,
    keys: &[Vec<u8>],
    declared: &mut Vec<OutputEntry>,
) -> Result<()> {
    let mut seen: std::collections::HashSet<Vec<u8>> = declared
        .iter()
        .filter_map(|e| e.path().map(<[u8]>::to_vec))
        .collect();
    for key in keys {
        if !seen.insert(key.clone()) {
            continue;
        }
        let abs = task.ws.path_of(key);
        match std::fs::symlink_metadata(&abs) {
            Ok(md) => declared.push(crate::outputs::capture_path(&abs, &md, &task.ws, blobs)?),
            // Gone since findings looked: nothing to restore.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot stat traced output {}", abs.display())))
            }
        }
    }
    Ok(())
}

/// "12 entries (5 file, 6 absent, 1 program)": counts by kind, for `-v` and `show`.
pub fn counts(entries: impl Iterator<Item = Kind>) -> (usize, String) {
    let mut by: std::collections::BTreeMap<Kind, usize> = Default::default();
    let mut n = 0;
    for k in entries {
        *by.entry(k).or_default() += 1;
        n += 1;
    }
    let parts: Vec<String> = by
        .iter()
        .map(|(k, c)| format!("{c} {}", k.label()))
        .collect();
    (n, parts.join(", "))
}

/// One undeclared workspace input found by `--trace=check`.
struct Undeclared {
    group: &'static str,
    shown: String,
    spec: String,
}

/// `--trace=check`: prints every workspace input the declared specs do not cover,
/// grouped, with the `-f` spec that would; returns how many there were.
pub fn report_check(task: &Task, snap: &Snapshot, log: &TraceLog) -> usize {
    let declared: std::collections::HashSet<&[u8]> = snap
        .deps
        .iter()
        .filter(|d| d.kind == Kind::File)
        .map(|d| d.name.as_slice())
        .collect();
    let ignore = task.trace.as_ref().map(|t| &t.ignore);
    let covered = |abs: &Path| task.files.includes().iter().any(|s| s.covers(abs));
    let mut found: Vec<Undeclared> = Vec::new();
    for (abs, u) in log.inputs() {
        let key = task.ws.key_of(abs);
        if key.starts_with(b"/") || *abs == snap.program || task.outputs.covers(abs) {
            continue;
        }
        if ignore.is_some_and(|g| {
            g.is_match(abs) || g.is_match(Path::new(std::ffi::OsStr::from_bytes(&key)))
        }) {
            continue;
        }
        let group = if u.inputs.contains(Inputs::READ) || u.inputs.contains(Inputs::EXEC) {
            if std::fs::metadata(abs).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            "read"
        } else if u.inputs.contains(Inputs::LISTING) {
            "listed"
        } else if u.inputs == Inputs::ABSENT {
            "probed, absent"
        } else {
            continue;
        };
        let is_covered = match group {
            "read" => declared.contains(key.as_slice()) || covered(abs),
            "listed" => task
                .files
                .includes()
                .iter()
                .any(|s| abs.starts_with(s.base()) || covered(abs)),
            _ => covered(abs),
        };
        if is_covered {
            continue;
        }
        let rel = spec_for(&task.ws.cwd, abs);
        let spec = if group == "listed" {
            format!("-f {}/", rel.trim_end_matches('/'))
        } else {
            format!("-f {rel}")
        };
        found.push(Undeclared {
            group,
            shown: String::from_utf8_lossy(&key).into_owned(),
            spec,
        });
    }
    if found.is_empty() {
        ui::note("--trace=check: every workspace input the command used is declared");
        return 0;
    }
    let mut out = format!(
        "idem: --trace=check: {} undeclared workspace input(s):\n",
        found.len()
    );
    for group in ["read", "listed", "probed, absent"] {
        let items: Vec<&Undeclared> = found.iter().filter(|f| f.group == group).collect();
        if items.is_empty() {
            continue;
        }
        out.push_str(&format!("  {group}:\n"));
        for f in items {
            out.push_str(&format!(
                "    {:<40} {}\n",
                ui::escape_controls(&f.shown),
                ui::escape_controls(&f.spec)
            ));
        }
    }
    eprint!("{out}");
    found.len()
}

/// How to name `abs` in a `-f` spec typed in `cwd`: relative when below it.
fn spec_for(cwd: &Path, abs: &Path) -> String {
    let shown: PathBuf = match abs.strip_prefix(cwd) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_path_buf(),
        _ => abs.to_path_buf(),
    };
    let s = shown.to_string_lossy().into_owned();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
