//! Dependencies and their states: one file per kind. A kind computes "what is this
//! input now"; it knows nothing of records or storage, and an unknown state is reported
//! as unknown, never guessed.

pub mod dirent;
pub mod env;
pub mod files;
pub mod hash;
pub mod program;
pub mod stat_cache;
/// Only where the tracer exists (it reads `trace::TraceLog`); elsewhere `--trace` is
/// refused in `plan`.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub mod trace;
pub mod url;
pub mod walk;

use crate::encode::{Decoder, Encoder};
use anyhow::{bail, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    File = 1,
    Env = 2,
    Url = 3,
    Program = 4,
    Stdin = 5,
    /// Traced (`--trace`, deps/trace.rs): a file whose content the command read.
    TraceRead = 10,
    /// Traced: a path the command looked up (stat, access, ...): kind, size, mode, mtime.
    TraceProbe = 11,
    /// Traced: a path the command found missing.
    TraceAbsent = 12,
    /// Traced: a directory whose entries the command listed.
    TraceListing = 13,
    /// Traced: a symlink whose target the command read.
    TraceLink = 14,
    /// Traced: a program the command executed or mapped (executable, interpreter).
    TraceExec = 15,
}

impl Kind {
    pub fn from_u8(v: u8) -> Result<Self> {
        Ok(match v {
            1 => Kind::File,
            2 => Kind::Env,
            3 => Kind::Url,
            4 => Kind::Program,
            5 => Kind::Stdin,
            10 => Kind::TraceRead,
            11 => Kind::TraceProbe,
            12 => Kind::TraceAbsent,
            13 => Kind::TraceListing,
            14 => Kind::TraceLink,
            15 => Kind::TraceExec,
            _ => bail!("unknown dependency kind {v}"),
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Env => "env",
            Kind::Url => "url",
            Kind::Program => "program",
            Kind::Stdin => "stdin",
            Kind::TraceRead => "file",
            Kind::TraceProbe => "path",
            Kind::TraceAbsent => "absent",
            Kind::TraceListing => "dir",
            Kind::TraceLink => "link",
            Kind::TraceExec => "program",
        }
    }

    /// A kind `--trace` discovers (deps/trace.rs), as opposed to a declared one.
    pub fn is_traced(self) -> bool {
        (Kind::TraceRead as u8..=Kind::TraceExec as u8).contains(&(self as u8))
    }
}

/// One (dependency, state) pair. `name` is the path key, variable name or URL; `state`
/// is a printable-ish byte string: `blake3:<hex>`, `absent`, `symlink:<target>`,
/// `keyed:<hex>`, `unset`, `etag:"…"`, …
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DepState {
    pub kind: Kind,
    pub name: Vec<u8>,
    pub state: Vec<u8>,
}

impl DepState {
    pub fn new(kind: Kind, name: impl Into<Vec<u8>>, state: impl Into<Vec<u8>>) -> Self {
        Self {
            kind,
            name: name.into(),
            state: state.into(),
        }
    }

    pub fn display_name(&self) -> String {
        format!(
            "{} {}",
            self.kind.label(),
            crate::ui::escape_controls(&String::from_utf8_lossy(&self.name))
        )
    }
}

/// The state key: blake3 over the sorted, canonically encoded pairs.
pub fn state_key(deps: &[DepState]) -> [u8; 32] {
    let mut sorted: Vec<&DepState> = deps.iter().collect();
    // Snapshots list files already in order: then this is one pass of comparisons.
    if !sorted.is_sorted() {
        sorted.sort();
    }
    let mut head = Encoder::new();
    head.str("idem-state").u64(crate::spec::KEY_SCHEMA);
    head.u64(sorted.len() as u64);
    // Encoded through a fixed 64 KiB buffer (the same bytes an Encoder would build):
    // a 10,000-file task would otherwise allocate a 1 MB buffer on every hit, and
    // feeding blake3 one small field at a time hashes a block at a time, where whole
    // buffers let it hash many chunks at once (SIMD).
    const FLUSH: usize = 64 << 10;
    let mut h = blake3::Hasher::new();
    let mut buf: Vec<u8> = Vec::with_capacity(FLUSH);
    buf.extend_from_slice(head.as_slice());
    for d in sorted {
        let need = 17 + d.name.len() + d.state.len();
        if buf.len() + need > FLUSH && !buf.is_empty() {
            // A full buffer only comes with thousands of deps: then hashing on every
            // core pays (a small snapshot never starts the thread pool here).
            h.update_rayon(&buf);
            buf.clear();
        }
        if need > FLUSH {
            h.update(&[d.kind as u8]);
            h.update(&(d.name.len() as u64).to_le_bytes());
            h.update(&d.name);
            h.update(&(d.state.len() as u64).to_le_bytes());
            h.update(&d.state);
            continue;
        }
        buf.push(d.kind as u8);
        buf.extend_from_slice(&(d.name.len() as u64).to_le_bytes());
        buf.extend_from_slice(&d.name);
        buf.extend_from_slice(&(d.state.len() as u64).to_le_bytes());
        buf.extend_from_slice(&d.state);
    }
    h.update(&buf);
    *h.finalize().as_bytes()
}

pub fn encode_deps(e: &mut Encoder, deps: &[DepState]) {
    e.u64(deps.len() as u64);
    for d in deps {
        e.u8(d.kind as u8).bytes(&d.name).bytes(&d.state);
    }
}

/// Moves past an encoded dependency list without allocating it.
pub fn skip_deps(d: &mut Decoder) -> Result<()> {
    let n = d.count_of(17)?; // kind + two length prefixes
    for _ in 0..n {
        Kind::from_u8(d.u8()?)?;
        d.bytes()?;
        d.bytes()?;
    }
    Ok(())
}

pub fn decode_deps(d: &mut Decoder) -> Result<Vec<DepState>> {
    let n = d.count_of(17)?; // kind + two length prefixes
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = Kind::from_u8(d.u8()?)?;
        out.push(DepState::new(kind, d.vec()?, d.vec()?));
    }
    Ok(out)
}

/// How a dependency differs between a record and now (for `-v`, `explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Changed,
    Added,
    Removed,
}

/// Dependencies by identity (kind, name), in a stable order.
pub fn by_identity(deps: &[DepState]) -> std::collections::BTreeMap<(Kind, &[u8]), &DepState> {
    deps.iter()
        .map(|d| ((d.kind, d.name.as_slice()), d))
        .collect()
}

/// Per-dependency differences, in a stable order. Values are never exposed, only names;
/// URL validators are shown (they are public metadata, not secrets).
pub fn diff(old: &[DepState], new: &[DepState]) -> Vec<(DepState, Change, Option<String>)> {
    let old_map = by_identity(old);
    let new_map = by_identity(new);
    let mut out = Vec::new();
    for (k, n) in &new_map {
        match old_map.get(k) {
            None => out.push(((*n).clone(), Change::Added, None)),
            Some(o) if o.state != n.state => {
                let detail = (n.kind == Kind::Url).then(|| {
                    url::describe_change(
                        &String::from_utf8_lossy(&o.state),
                        &String::from_utf8_lossy(&n.state),
                    )
                });
                out.push(((*n).clone(), Change::Changed, detail))
            }
            Some(_) => {}
        }
    }
    for (k, o) in &old_map {
        if !new_map.contains_key(k) {
            out.push(((*o).clone(), Change::Removed, None));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_key_ignores_order_but_not_content() {
        let a = DepState::new(Kind::File, "a", "blake3:1");
        let b = DepState::new(Kind::Env, "B", "unset");
        assert_eq!(
            state_key(&[a.clone(), b.clone()]),
            state_key(&[b.clone(), a.clone()])
        );
        let a2 = DepState::new(Kind::File, "a", "blake3:2");
        assert_ne!(state_key(&[a, b.clone()]), state_key(&[a2, b]));
    }

    #[test]
    fn streamed_state_key_equals_the_canonical_encoding() {
        // Small states, and some larger than the flush buffer, in and out of order.
        let mut deps = vec![
            DepState::new(Kind::File, "b", "blake3:2"),
            DepState::new(Kind::File, "a", "blake3:1"),
            DepState::new(Kind::Env, "BIG", vec![b'x'; 100_000]),
        ];
        for i in 0..3000 {
            deps.push(DepState::new(
                Kind::File,
                format!("d/{i:05}"),
                "blake3:ffff",
            ));
        }
        deps.push(DepState::new(Kind::Url, "u", vec![b'y'; 70_000]));
        let mut sorted = deps.clone();
        sorted.sort();
        let mut e = Encoder::new();
        e.str("idem-state")
            .u64(crate::spec::KEY_SCHEMA)
            .u64(sorted.len() as u64);
        for d in &sorted {
            e.u8(d.kind as u8).bytes(&d.name).bytes(&d.state);
        }
        assert_eq!(state_key(&deps), *blake3::hash(&e.finish()).as_bytes());
    }

    #[test]
    fn diff_names_changes() {
        let old = vec![
            DepState::new(Kind::File, "a", "1"),
            DepState::new(Kind::File, "gone", "1"),
        ];
        let new = vec![
            DepState::new(Kind::File, "a", "2"),
            DepState::new(Kind::File, "new", "1"),
        ];
        let d = diff(&old, &new);
        assert_eq!(d.len(), 3);
        assert!(d
            .iter()
            .any(|(s, c, _)| s.name == b"a" && *c == Change::Changed));
        assert!(d
            .iter()
            .any(|(s, c, _)| s.name == b"new" && *c == Change::Added));
        assert!(d
            .iter()
            .any(|(s, c, _)| s.name == b"gone" && *c == Change::Removed));
    }
}
