//! The subtle rules of traced entries, on real temporary files and hand-built logs (and
//! runs of the real tracer): first access, strongest kind, listings without the
//! command's own names, races, keys, the fast path and its racy rule, relocation.
//! Helpers here; `findings`, `check` and `real` hold the tests.

mod check;
mod findings;
mod real;
mod start;

pub(super) use std::path::{Path, PathBuf};

pub(super) use globset::{Glob, GlobSet, GlobSetBuilder};

pub(super) use super::*;
pub(super) use crate::encode::{Decoder, Encoder};
pub(super) use crate::spec::Workspace;
pub(super) use crate::trace::{Access, Inputs, Reason, TraceLog, Writes};

pub(super) fn workspace() -> (tempfile::TempDir, Workspace) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().canonicalize().unwrap();
    (
        d,
        Workspace {
            root: root.clone(),
            cwd: root,
        },
    )
}

pub(super) fn write(p: &Path, content: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// A start after every write so far: the fine clock is never behind a file timestamp.
pub(super) fn started_now() -> i64 {
    crate::clock::real_now_ns() + 1
}

pub(super) fn run(log: &TraceLog, ws: &Workspace, started_ns: i64) -> Findings {
    run_ignoring(log, ws, started_ns, &GlobSet::empty())
}

pub(super) fn run_ignoring(
    log: &TraceLog,
    ws: &Workspace,
    started_ns: i64,
    ignore: &GlobSet,
) -> Findings {
    findings(
        log,
        &TraceOpts {
            ws,
            ignore,
            started_ns,
        },
    )
    .unwrap()
}

pub(super) fn input(log: &mut TraceLog, p: &Path, k: Inputs) {
    log.record(1, p.to_path_buf(), Access::Input(k));
}

pub(super) fn wrote(log: &mut TraceLog, p: &Path, w: Writes) {
    log.record(1, p.to_path_buf(), Access::Write(w));
}

pub(super) fn entry<'a>(f: &'a Findings, key: &str) -> &'a Entry {
    f.entries
        .iter()
        .find(|e| e.dep.name == key.as_bytes())
        .unwrap_or_else(|| panic!("no entry {key}: {:#?}", f.entries))
}

pub(super) fn state_of(f: &Findings, key: &str) -> String {
    String::from_utf8_lossy(&entry(f, key).dep.state).into_owned()
}

/// The fingerprints as if recorded long after every change: the fast path applies.
pub(super) fn settled(entries: &[Entry]) -> Vec<Entry> {
    entries
        .iter()
        .cloned()
        .map(|mut e| {
            if e.fp.mode != 0 {
                e.fp.observed_at_ns = e.fp.mtime_ns.max(e.fp.ctime_ns) + 10_000_000_000;
            }
            e
        })
        .collect()
}

pub(super) fn changed(c: Check) -> String {
    match c {
        Check::Changed(c) => c.to_string(),
        Check::Unchanged => panic!("expected a change"),
    }
}
