//! The one gate every record passes before a restore writes anything, whichever tier
//! it came from: paths relative and inside the task's declared `-o` specs, each listed
//! once, modes without setuid/setgid. It never touches the disk.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use anyhow::{bail, Result};

use super::OutputSpecs;
use crate::spec::Workspace;
use crate::store::record::{BlobRef, OutputEntry};

/// Setuid and setgid: a record never restores them.
const SET_ID_BITS: u32 = 0o6000;

/// What to put at one path.
#[derive(Debug, Clone)]
pub enum What {
    File { mode: u32, blob: BlobRef },
    Link { target: Vec<u8> },
    Dir { mode: u32 },
}

/// One checked manifest entry: its workspace key split into components.
#[derive(Debug, Clone)]
pub struct Item {
    pub key: Vec<u8>,
    pub parents: Vec<OsString>,
    pub name: OsString,
    pub what: What,
}

impl Item {
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(&self.key).into_owned()
    }
}

/// A checked manifest, and what `-v` should say about it.
pub struct Checked {
    pub items: Vec<Item>,
    pub notes: Vec<String>,
}

/// The checks that need no task: every path relative, without `.`/`..`, listed once
/// (a path listed as two kinds, say a directory and a link, is refused).
pub fn validate(manifest: &[OutputEntry]) -> Result<()> {
    let mut seen = HashSet::new();
    for e in manifest {
        let Some(key) = e.path() else { continue };
        split(key)?;
        if !seen.insert(key) {
            bail!(
                "the record lists output '{}' twice; refusing to restore",
                String::from_utf8_lossy(key)
            );
        }
    }
    Ok(())
}

/// Splits a key into its components; only the canonical form is accepted (no empty,
/// `.` or `..` component, no leading slash), so one path has one spelling.
fn split(key: &[u8]) -> Result<(Vec<OsString>, OsString)> {
    let mut parts = Vec::new();
    for part in key.split(|&b| b == b'/') {
        if part.is_empty() || part == b"." || part == b".." || part.contains(&0) {
            bail!(
                "recorded output path '{}' would escape the workspace root or is malformed; refusing to restore",
                String::from_utf8_lossy(key)
            );
        }
        parts.push(OsStr::from_bytes(part).to_os_string());
    }
    let Some(name) = parts.pop() else {
        bail!("the record lists an empty output path; refusing to restore");
    };
    Ok((parts, name))
}

/// Checks a record's manifest against the task that is asking for it.
pub fn check(ws: &Workspace, specs: &OutputSpecs, manifest: &[OutputEntry]) -> Result<Checked> {
    validate(manifest)?;
    let mut items = Vec::new();
    let mut notes = Vec::new();
    for e in manifest {
        let Some(key) = e.path() else { continue };
        let shown = String::from_utf8_lossy(key);
        if !specs.covers(&ws.path_of(key)) {
            bail!("the record lists '{shown}', which no -o of this task declares; refusing to restore");
        }
        let mut strip = |mode: u32| {
            let mode = mode & 0o7777;
            if mode & SET_ID_BITS != 0 {
                notes.push(format!(
                    "restoring {shown} without its setuid/setgid bits ({mode:04o} -> {:04o})",
                    mode & !SET_ID_BITS
                ));
            }
            mode & !SET_ID_BITS
        };
        let what = match e {
            OutputEntry::File { mode, blob, .. } => What::File {
                mode: strip(*mode),
                blob: *blob,
            },
            OutputEntry::Dir { mode, .. } => What::Dir { mode: strip(*mode) },
            OutputEntry::Symlink { target, .. } => What::Link {
                target: target.clone(),
            },
            OutputEntry::Absent { .. } => continue,
        };
        let (parents, name) = split(key)?;
        items.push(Item {
            key: key.to_vec(),
            parents,
            name,
            what,
        });
    }
    // A path under a file or a link would be restored through it: refused.
    let leaves: HashSet<&[u8]> = items
        .iter()
        .filter(|i| !matches!(i.what, What::Dir { .. }))
        .map(|i| i.key.as_slice())
        .collect();
    for item in &items {
        let mut prefix = Vec::new();
        for part in &item.parents {
            if !prefix.is_empty() {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(part.as_bytes());
            if leaves.contains(prefix.as_slice()) {
                bail!(
                    "the record lists '{}' under '{}', which it lists as a file or link; refusing to restore",
                    item.shown(),
                    String::from_utf8_lossy(&prefix)
                );
            }
        }
    }
    // Parents before children: directories are created in this order.
    items.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Checked { items, notes })
}
