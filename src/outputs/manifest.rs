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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn ws() -> Workspace {
        Workspace {
            root: PathBuf::from("/w"),
            cwd: PathBuf::from("/w"),
        }
    }

    fn specs(raw: &[&str]) -> OutputSpecs {
        let raw: Vec<OsString> = raw.iter().map(OsString::from).collect();
        OutputSpecs::parse(&raw, &ws()).unwrap()
    }

    fn file(path: &str, mode: u32) -> OutputEntry {
        OutputEntry::File {
            path: path.into(),
            mode,
            blob: BlobRef::empty(),
        }
    }

    fn dir(path: &str) -> OutputEntry {
        OutputEntry::Dir {
            path: path.into(),
            mode: 0o755,
        }
    }

    fn link(path: &str) -> OutputEntry {
        OutputEntry::Symlink {
            path: path.into(),
            target: b"/etc".to_vec(),
        }
    }

    fn refused(specs: &OutputSpecs, m: &[OutputEntry]) -> String {
        match check(&ws(), specs, m) {
            Ok(_) => panic!("accepted {m:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn only_canonical_relative_paths_pass() {
        let s = specs(&["out/"]);
        for bad in [
            "", "/out/a", "out/../x", "out/./a", "out//a", "out/a/", "./out/a",
        ] {
            assert!(
                refused(&s, &[file(bad, 0o644)]).contains("refusing"),
                "{bad}"
            );
        }
        assert!(check(&ws(), &s, &[file("out/a", 0o644)]).is_ok());
    }

    #[test]
    fn paths_must_be_covered_by_a_declared_output() {
        let s = specs(&["out/", "build/*.o"]);
        assert!(refused(&s, &[file(".git/hooks/x", 0o755)]).contains("no -o"));
        assert!(refused(&s, &[file("outside", 0o644)]).contains("no -o"));
        assert!(refused(&s, &[file("build/a.c", 0o644)]).contains("no -o"));
        assert!(refused(&specs(&[]), &[file("out/a", 0o644)]).contains("no -o"));
        let ok = check(
            &ws(),
            &s,
            &[dir("out"), file("out/a", 0o644), file("build/a.o", 0o644)],
        );
        assert_eq!(ok.unwrap().items.len(), 3);
    }

    #[test]
    fn a_traced_task_restores_its_own_outputs_but_never_git_cache_or_outside() {
        let mut s = specs(&[]);
        s.allow_traced(&ws(), Some(PathBuf::from("/w/.cache/idem")));
        let ok = check(
            &ws(),
            &s,
            &[dir("gen"), file("gen/a.o", 0o644), file("x", 0o755)],
        );
        assert_eq!(ok.unwrap().items.len(), 3);
        for bad in [
            ".git/hooks/pre-commit",
            "sub/.git/config",
            ".cache/idem/idem.db",
        ] {
            assert!(refused(&s, &[file(bad, 0o755)]).contains("no -o"), "{bad}");
        }
        for bad in ["/etc/passwd", "../x", "gen/../../x"] {
            assert!(
                refused(&s, &[file(bad, 0o644)]).contains("refusing"),
                "{bad}"
            );
        }
        // Without the traced rule the same record is refused.
        assert!(refused(&specs(&[]), &[file("x", 0o644)]).contains("no -o"));
    }

    #[test]
    fn a_path_has_one_entry_of_one_kind_and_nothing_hides_under_a_file_or_link() {
        let s = specs(&["out/"]);
        assert!(refused(&s, &[dir("out/d"), link("out/d")]).contains("twice"));
        assert!(refused(&s, &[file("out/a", 0o644), file("out/a", 0o644)]).contains("twice"));
        assert!(refused(&s, &[link("out/l"), file("out/l/x", 0o644)]).contains("under"));
        assert!(refused(&s, &[file("out/f", 0o644), dir("out/f/d")]).contains("under"));
    }

    #[test]
    fn setuid_and_setgid_are_stripped_and_noted() {
        let s = specs(&["out/"]);
        let c = check(&ws(), &s, &[file("out/a", 0o6755), file("out/b", 0o1755)]).unwrap();
        let modes: Vec<u32> = c
            .items
            .iter()
            .map(|i| match i.what {
                What::File { mode, .. } => mode,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(modes, [0o755, 0o1755], "the sticky bit is not a privilege");
        assert_eq!(c.notes.len(), 1);
        assert!(c.notes[0].contains("out/a"));
    }
}
