//! STUB, replaced by trace-deps' src/deps/trace.rs: traced entries with the contract's
//! signatures (BRIEF.md) and the simplest correct bodies (no fingerprint fast path: every
//! check re-hashes). It must never be mistaken for the real module; it only lets the
//! engine be built and tested against the contract.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{DepState, Kind};
use crate::encode::{Decoder, Encoder};
use crate::trace::{Inputs, TraceLog};

/// A traced input and its stat fingerprint at recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dep: DepState,
    pub fp: Fingerprint,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Fingerprint {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub mode: u32,
    pub observed_at_ns: i64,
}

pub struct TraceOpts<'a> {
    pub ws: &'a crate::spec::Workspace,
    pub ignore: &'a globset::GlobSet,
    pub started_ns: i64,
}

pub struct Findings {
    pub entries: Vec<Entry>,
    pub outputs: Vec<Vec<u8>>,
    pub side_effects: Vec<PathBuf>,
    pub unrecordable: Vec<String>,
}

fn ignored(opts: &TraceOpts, abs: &Path, key: &[u8]) -> bool {
    opts.ignore.is_match(abs)
        || opts
            .ignore
            .is_match(Path::new(std::ffi::OsStr::from_bytes(key)))
}

fn fingerprint(abs: &Path) -> Fingerprint {
    match std::fs::symlink_metadata(abs) {
        Ok(md) => Fingerprint {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime_ns: super::stat_cache::mtime_ns(&md),
            ctime_ns: super::stat_cache::ctime_ns(&md),
            mode: md.mode(),
            observed_at_ns: crate::clock::real_now_ns(),
        },
        Err(_) => Fingerprint::default(),
    }
}

/// The semantic state of a traced path of this kind, `None` when it is gone.
fn state_of(kind: Kind, abs: &Path) -> Option<Vec<u8>> {
    match kind {
        Kind::TraceAbsent => Some(if std::fs::symlink_metadata(abs).is_ok() {
            b"present".to_vec()
        } else {
            b"absent".to_vec()
        }),
        Kind::TraceRead | Kind::TraceExec => {
            let md = std::fs::metadata(abs).ok()?;
            if md.is_dir() {
                return Some(b"dir".to_vec());
            }
            let h = super::hash::hash_file(abs, md.len()).ok()?;
            Some(format!("blake3:{}", crate::encode::hex(&h)).into_bytes())
        }
        Kind::TraceProbe => {
            let md = std::fs::metadata(abs).ok()?;
            Some(if md.is_dir() {
                b"dir".to_vec()
            } else if md.is_file() {
                b"file".to_vec()
            } else {
                b"other".to_vec()
            })
        }
        Kind::TraceListing => {
            let mut names: Vec<Vec<u8>> = std::fs::read_dir(abs)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.file_name().as_bytes().to_vec()))
                .collect();
            names.sort();
            let mut e = Encoder::new();
            e.list(names.iter());
            Some(format!("listing:{}", blake3::hash(e.as_slice()).to_hex()).into_bytes())
        }
        Kind::TraceLink => std::fs::read_link(abs)
            .ok()
            .map(|t| t.as_os_str().as_bytes().to_vec()),
        _ => None,
    }
}

fn kind_of(inputs: Inputs) -> Kind {
    if inputs.contains(Inputs::EXEC) {
        Kind::TraceExec
    } else if inputs.contains(Inputs::READ) {
        Kind::TraceRead
    } else if inputs.contains(Inputs::LISTING) {
        Kind::TraceListing
    } else if inputs.contains(Inputs::LINK) {
        Kind::TraceLink
    } else if inputs.contains(Inputs::PROBE) || inputs.contains(Inputs::PROBE_NOFOLLOW) {
        Kind::TraceProbe
    } else {
        Kind::TraceAbsent
    }
}

/// After the run: the inputs' states and the outputs (stub: states taken now).
pub fn findings(log: &TraceLog, opts: &TraceOpts) -> Result<Findings> {
    let mut entries = Vec::new();
    let mut outputs = Vec::new();
    let mut side_effects = Vec::new();
    let mut unrecordable: Vec<String> = log
        .unknowable
        .iter()
        .map(|u| format!("{:?}", u.reason))
        .collect();
    for (abs, u) in &log.paths {
        let key = opts.ws.key_of(abs);
        if ignored(opts, abs, &key) {
            continue;
        }
        if u.is_input() && !(u.inputs == Inputs::ABSENT && u.is_written()) {
            let kind = if u.is_written() && !u.inputs.contains(Inputs::READ) {
                Kind::TraceProbe
            } else {
                kind_of(u.inputs)
            };
            if u.is_written() && kind != Kind::TraceRead {
                // Existence only, as the contract's first-access rule says.
            } else if u.is_written() {
                unrecordable.push(format!("{} was read and then written", abs.display()));
                continue;
            }
            let Some(state) = state_of(kind, abs) else {
                unrecordable.push(format!("{} vanished", abs.display()));
                continue;
            };
            let fp = fingerprint(abs);
            let content = matches!(kind, Kind::TraceRead | Kind::TraceExec);
            if content && fp.ctime_ns >= opts.started_ns && !u.is_written() {
                unrecordable.push(format!("{} changed while the command ran", abs.display()));
                continue;
            }
            entries.push(Entry {
                dep: DepState::new(kind, key.clone(), state),
                fp,
            });
        }
        if u.is_written() {
            let present = std::fs::symlink_metadata(abs).is_ok();
            if opts.ws.inside_root(abs) && abs != &opts.ws.root {
                if present {
                    outputs.push(key);
                }
            } else {
                side_effects.push(abs.clone());
            }
        }
    }
    entries.sort_by(|a, b| (a.dep.kind, &a.dep.name).cmp(&(b.dep.kind, &b.dep.name)));
    outputs.sort();
    Ok(Findings {
        entries,
        outputs,
        side_effects,
        unrecordable,
    })
}

pub struct Checker<'a> {
    ws: &'a crate::spec::Workspace,
}

pub enum Check {
    Unchanged,
    Changed(Change),
}

pub struct Change {
    pub dep: DepState,
    pub now: Option<Vec<u8>>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = String::from_utf8_lossy(&self.dep.name);
        let label = self.dep.kind.label();
        match (self.dep.kind, self.now.as_deref()) {
            (Kind::TraceAbsent, _) => write!(f, "{label} {name} appeared"),
            (_, None) => write!(f, "{label} {name} is gone"),
            (Kind::TraceListing, _) => write!(f, "{label} {name}/ listing changed"),
            _ => write!(f, "{label} {name} changed"),
        }
    }
}

impl<'a> Checker<'a> {
    pub fn new(ws: &'a crate::spec::Workspace) -> Self {
        Checker { ws }
    }

    pub fn check(&mut self, entries: &[Entry]) -> Check {
        for e in entries {
            let now = state_of(e.dep.kind, &self.ws.path_of(&e.dep.name));
            if now.as_deref() != Some(e.dep.state.as_slice()) {
                return Check::Changed(Change {
                    dep: e.dep.clone(),
                    now,
                });
            }
        }
        Check::Unchanged
    }
}

pub fn encode_entries(e: &mut Encoder, entries: &[Entry]) {
    e.u64(entries.len() as u64);
    for x in entries {
        e.u8(x.dep.kind as u8)
            .bytes(&x.dep.name)
            .bytes(&x.dep.state);
        e.u64(x.fp.dev)
            .u64(x.fp.ino)
            .u64(x.fp.size)
            .i64(x.fp.mtime_ns)
            .i64(x.fp.ctime_ns)
            .u64(x.fp.mode as u64)
            .i64(x.fp.observed_at_ns);
    }
}

pub fn decode_entries(d: &mut Decoder) -> Result<Vec<Entry>> {
    let n = d.count_of(17 + 56)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = Kind::from_u8(d.u8()?)?;
        let dep = DepState::new(kind, d.vec()?, d.vec()?);
        let fp = Fingerprint {
            dev: d.u64()?,
            ino: d.u64()?,
            size: d.u64()?,
            mtime_ns: d.i64()?,
            ctime_ns: d.i64()?,
            mode: d.u64()? as u32,
            observed_at_ns: d.i64()?,
        };
        out.push(Entry { dep, fp });
    }
    Ok(out)
}
