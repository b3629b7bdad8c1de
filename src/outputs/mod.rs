//! Output files: capture what a successful command produced into the blob store, and
//! restore it on a hit — all-or-nothing, only paths the task declared, never through a
//! symlink or outside the workspace root, whoever wrote the record.

mod confined;
mod interrupt;
mod manifest;
mod restore;

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::deps::files::{PathSpec, Skip};
use crate::spec::Workspace;
use crate::store::blobs::BlobStore;
use crate::store::record::OutputEntry;

/// The parsed `-o` specs of a task.
#[derive(Debug, Clone, Default)]
pub struct OutputSpecs {
    specs: Vec<(OsString, PathSpec)>,
    /// A traced task (`--trace`): its records may also restore what the command itself
    /// created, anywhere in the workspace but `.git/` and the cache directory.
    traced: Option<TracedOutputs>,
}

/// Where a traced record's own outputs may be restored (docs/security.md).
#[derive(Debug, Clone)]
struct TracedOutputs {
    root: PathBuf,
    cache_dir: Option<PathBuf>,
}

impl TracedOutputs {
    fn allows(&self, abs: &Path) -> bool {
        let Ok(rel) = abs.strip_prefix(&self.root) else {
            return false;
        };
        !rel.as_os_str().is_empty()
            && !rel.components().any(|c| c.as_os_str() == ".git")
            && !self.cache_dir.as_ref().is_some_and(|c| abs.starts_with(c))
    }
}

impl Skip for OutputSpecs {
    fn skip(&self, abs: &Path) -> bool {
        self.specs.iter().any(|(_, s)| s.covers(abs))
    }
}

impl OutputSpecs {
    /// Parses and validates: every output must lie inside the workspace root.
    pub fn parse(raw: &[OsString], ws: &Workspace) -> Result<Self> {
        let mut specs = Vec::new();
        for r in raw {
            let spec = PathSpec::parse(r, ws)?;
            let base = spec.base();
            if !ws.inside_root(base) || base == ws.root {
                bail!(
                    "output '{}' is outside the workspace root {} (or is the root itself): outputs must be inside it; set --root if needed",
                    r.to_string_lossy(),
                    ws.root.display()
                );
            }
            specs.push((r.clone(), spec));
        }
        Ok(Self {
            specs,
            traced: None,
        })
    }

    /// Lets this traced task's records restore the outputs the command created: any
    /// path inside the workspace root except the root itself, anything under a `.git`
    /// directory, and the cache directory (`cache_dir`, absolute).
    pub fn allow_traced(&mut self, ws: &Workspace, cache_dir: Option<PathBuf>) {
        self.traced = Some(TracedOutputs {
            root: ws.root.clone(),
            cache_dir,
        });
    }

    /// Whether a record may restore this path: a declared output covers it, or (traced
    /// task) the traced rule allows it. Inputs are never skipped by the traced rule.
    pub fn covers(&self, abs: &Path) -> bool {
        self.skip(abs) || self.traced.as_ref().is_some_and(|t| t.allows(abs))
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Refuses an input that is also an output (`-f x -o x`, or an input inside an
    /// output directory).
    pub fn check_not_inputs(&self, inputs: &[PathSpec]) -> Result<()> {
        for inp in inputs {
            if let PathSpec::Literal(p) = inp {
                if self.skip(p) {
                    bail!(
                        "{} is declared both as an input (-f) and an output (-o): a path cannot be both",
                        p.display()
                    );
                }
            }
        }
        Ok(())
    }

    /// Stores every file the specs match and returns the manifest, plus warnings for
    /// specs that matched nothing.
    pub fn capture(
        &self,
        ws: &Workspace,
        blobs: &BlobStore,
    ) -> Result<(Vec<OutputEntry>, Vec<String>)> {
        let mut entries = Vec::new();
        let mut warnings = Vec::new();
        for (raw, spec) in &self.specs {
            let before = entries.len();
            match spec {
                PathSpec::Literal(p) => match std::fs::symlink_metadata(p) {
                    Ok(md) if md.is_dir() => capture_dir(p, ws, blobs, &mut entries, &|_| true)?,
                    Ok(md) if md.is_symlink() && p.is_dir() => {
                        // Restoring through the link could write anywhere it points; the
                        // link is the output, and the user should know the files are not.
                        warnings.push(link_to_dir_warning(raw, p, ws));
                        entries.push(capture_one(p, &md, ws, blobs)?);
                    }
                    Ok(md) => entries.push(capture_one(p, &md, ws, blobs)?),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("cannot stat output {}", p.display()))
                    }
                },
                PathSpec::Glob { base, matcher } => {
                    if base.is_dir() {
                        let matches =
                            |p: &Path| p.strip_prefix(base).is_ok_and(|rel| matcher.is_match(rel));
                        capture_dir(base, ws, blobs, &mut entries, &matches)?;
                        // The glob's base directory itself is not an output.
                        entries.retain(|e| !matches!(e, OutputEntry::Dir { path, .. } if ws.path_of(path) == *base));
                    }
                }
            }
            if entries.len() == before {
                warnings.push(format!(
                    "output '{}' matched nothing after the command succeeded",
                    raw.to_string_lossy()
                ));
                entries.push(OutputEntry::Absent {
                    spec: raw.as_bytes().to_vec(),
                });
            }
        }
        // One entry per path even when specs overlap.
        let mut seen = std::collections::HashSet::new();
        entries.retain(|e| e.path().is_none_or(|p| seen.insert(p.to_vec())));
        Ok((entries, warnings))
    }
}

/// `-o build/` where build is a symlink to a directory: what is and is not recorded.
fn link_to_dir_warning(raw: &std::ffi::OsStr, p: &Path, ws: &Workspace) -> String {
    let target = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let hint = if target.starts_with(&ws.root) {
        format!(
            "declare its target (-o {}/) to record them",
            String::from_utf8_lossy(&ws.key_of(&target))
        )
    } else {
        "it points outside the workspace, where idem never restores".to_string()
    };
    format!(
        "output '{}' is a symlink to the directory {}: only the link is recorded, not the \
         files written through it ({hint})",
        raw.to_string_lossy(),
        target.display()
    )
}

fn walk_all(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let walker = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .build();
    for entry in walker {
        let entry = entry.with_context(|| format!("cannot walk {}", dir.display()))?;
        if entry.path() != dir {
            out.push(entry.path().to_path_buf());
        }
    }
    Ok(out)
}

fn capture_dir(
    dir: &Path,
    ws: &Workspace,
    blobs: &BlobStore,
    entries: &mut Vec<OutputEntry>,
    wanted: &dyn Fn(&Path) -> bool,
) -> Result<()> {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(walk_all(dir)?);
    paths.sort();
    for p in paths {
        if !wanted(&p) && p != dir {
            continue;
        }
        let md = std::fs::symlink_metadata(&p)
            .with_context(|| format!("cannot stat output {}", p.display()))?;
        entries.push(capture_one(&p, &md, ws, blobs)?);
    }
    Ok(())
}

/// Captures one path (file, directory or symlink) as an output entry: what a traced
/// output is captured with, exactly like a declared one.
pub fn capture_path(
    p: &Path,
    md: &std::fs::Metadata,
    ws: &Workspace,
    blobs: &BlobStore,
) -> Result<OutputEntry> {
    capture_one(p, md, ws, blobs)
}

fn capture_one(
    p: &Path,
    md: &std::fs::Metadata,
    ws: &Workspace,
    blobs: &BlobStore,
) -> Result<OutputEntry> {
    let path = ws.key_of(p);
    let ft = md.file_type();
    Ok(if ft.is_symlink() {
        let target = std::fs::read_link(p)
            .with_context(|| format!("cannot read symlink {}", p.display()))?;
        OutputEntry::Symlink {
            path,
            target: target.as_os_str().as_bytes().to_vec(),
        }
    } else if ft.is_dir() {
        OutputEntry::Dir {
            path,
            mode: md.mode() & 0o7777,
        }
    } else if ft.is_file() {
        OutputEntry::File {
            path,
            mode: md.mode() & 0o7777,
            blob: blobs.put_file(p, md.size())?,
        }
    } else {
        bail!(
            "output {} is neither a file, a directory nor a symlink",
            p.display()
        )
    })
}

/// The checks a record's manifest must pass whatever task asks for it (used by the
/// remote tier before it stores a record locally): relative canonical paths, each once.
pub fn validate(_ws: &Workspace, manifest: &[OutputEntry]) -> Result<()> {
    manifest::validate(manifest)
}

/// Restores a manifest for the task whose declared outputs are `specs`, and returns
/// what `-v` should say (setuid/setgid bits dropped). On an error the workspace is as
/// before (nothing staged is left), so the caller can run the command instead.
pub fn restore(
    ws: &Workspace,
    manifest: &[OutputEntry],
    blobs: &BlobStore,
    specs: &OutputSpecs,
    clean: bool,
) -> Result<Vec<String>> {
    let checked = manifest::check(ws, specs, manifest)?;
    if checked.items.is_empty() && !clean {
        return Ok(checked.notes);
    }
    let guard = interrupt::Guard::install();
    let result = restore::restore_items(ws, &checked.items, blobs, specs, clean, &guard);
    // Delivers a SIGINT/SIGTERM that arrived meanwhile, now that nothing is half done.
    guard.finish();
    result.map(|()| checked.notes)
}
