//! Output files: capture what a successful command produced into the blob store, and
//! restore it on a hit — all-or-nothing, never outside the workspace root. Restore
//! writes nothing until every blob it needs has been copied and verified.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};

use crate::deps::files::{PathSpec, Skip};
use crate::spec::Workspace;
use crate::store::blobs::BlobStore;
use crate::store::record::OutputEntry;

/// The parsed `-o` specs of a task.
#[derive(Debug, Clone, Default)]
pub struct OutputSpecs {
    specs: Vec<(OsString, PathSpec)>,
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
        Ok(Self { specs })
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

    /// With --clean-outputs: files under declared output directories that the manifest
    /// does not list.
    fn extras(&self, ws: &Workspace, manifest: &[OutputEntry]) -> Result<Vec<PathBuf>> {
        let listed: std::collections::HashSet<PathBuf> = manifest
            .iter()
            .filter_map(|e| e.path())
            .map(|p| ws.path_of(p))
            .collect();
        let mut extra = Vec::new();
        for (_, spec) in &self.specs {
            if let PathSpec::Literal(dir) = spec {
                if !dir.is_dir() {
                    continue;
                }
                for entry in walk_all(dir)? {
                    if !listed.contains(&entry) {
                        extra.push(entry);
                    }
                }
            }
        }
        // Deepest first, so directories are empty when their turn comes.
        extra.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        Ok(extra)
    }
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

/// A manifest path must be relative, without `..`, and land inside the root even
/// after following the symlinks that already exist on disk.
fn safe_target(ws: &Workspace, key: &[u8]) -> Result<PathBuf> {
    let rel = Path::new(OsStr::from_bytes(key));
    if key.is_empty()
        || rel.is_absolute()
        || rel.components().any(|c| !matches!(c, Component::Normal(_)))
    {
        bail!(
            "recorded output path '{}' would escape the workspace root; refusing to restore",
            String::from_utf8_lossy(key)
        );
    }
    let target = ws.root.join(rel);
    let root = std::fs::canonicalize(&ws.root).unwrap_or_else(|_| ws.root.clone());
    let mut existing = target.parent();
    while let Some(dir) = existing {
        if dir.exists() {
            let real = std::fs::canonicalize(dir)
                .with_context(|| format!("cannot resolve {}", dir.display()))?;
            if !real.starts_with(&root) {
                bail!(
                    "recorded output path '{}' leads outside the workspace root through a symlink; refusing to restore",
                    String::from_utf8_lossy(key)
                );
            }
            break;
        }
        existing = dir.parent();
    }
    Ok(target)
}

/// Checks a whole manifest without touching the disk beyond `stat`s.
pub fn validate(ws: &Workspace, manifest: &[OutputEntry]) -> Result<()> {
    for e in manifest {
        if let Some(p) = e.path() {
            safe_target(ws, p)?;
        }
    }
    Ok(())
}

enum Step {
    /// Already has the right content: only its mtime becomes now.
    Touch(PathBuf, u32),
    Place(tempfile::TempPath, PathBuf),
    Dir(PathBuf, u32),
}

fn same_content(target: &Path, blob: &crate::store::record::BlobRef) -> bool {
    match std::fs::symlink_metadata(target) {
        Ok(md) if md.is_file() && md.size() == blob.size => {
            crate::deps::files::hash_file_streaming(target, md.size()).is_ok_and(|h| h == blob.hash)
        }
        _ => false,
    }
}

/// Restores a manifest. On any error nothing has been renamed into place (temporary
/// files are removed), so the caller can run the command instead.
pub fn restore(
    ws: &Workspace,
    manifest: &[OutputEntry],
    blobs: &BlobStore,
    specs: &OutputSpecs,
    clean: bool,
) -> Result<()> {
    validate(ws, manifest)?;
    // Phase 1: copy and verify every blob next to its destination.
    let mut steps = Vec::new();
    for e in manifest {
        match e {
            OutputEntry::File { path, mode, blob } => {
                let target = safe_target(ws, path)?;
                if same_content(&target, blob) {
                    steps.push(Step::Touch(target, *mode));
                    continue;
                }
                let parent = target
                    .parent()
                    .context("output path has a parent (checked above)")?;
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
                let tmp = tempfile::Builder::new()
                    .prefix(".idem-restore-")
                    .tempfile_in(parent)
                    .with_context(|| {
                        format!("cannot create a temporary file in {}", parent.display())
                    })?
                    .into_temp_path();
                if blob.size > 0 {
                    let src = blobs.path(&blob.hash);
                    std::fs::copy(&src, &tmp).with_context(|| {
                        format!(
                            "blob for {} is missing ({})",
                            String::from_utf8_lossy(path),
                            src.display()
                        )
                    })?;
                }
                let got = crate::deps::files::hash_file_streaming(&tmp, blob.size)?;
                let len = std::fs::metadata(&tmp)?.len();
                if got != blob.hash || len != blob.size {
                    blobs.remove(&blob.hash)?;
                    bail!("blob for {} is corrupt", String::from_utf8_lossy(path));
                }
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(*mode))?;
                steps.push(Step::Place(tmp, target));
            }
            OutputEntry::Symlink { path, target: link } => {
                let target = safe_target(ws, path)?;
                let parent = target
                    .parent()
                    .context("output path has a parent (checked above)")?;
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
                let tmp = parent.join(format!(".idem-link-{}-{}", std::process::id(), steps.len()));
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(OsStr::from_bytes(link), &tmp)
                    .with_context(|| format!("cannot create symlink {}", target.display()))?;
                steps.push(Step::Place(tempfile::TempPath::try_from_path(tmp)?, target));
            }
            OutputEntry::Dir { path, mode } => {
                steps.push(Step::Dir(safe_target(ws, path)?, *mode));
            }
            OutputEntry::Absent { .. } => {}
        }
    }
    // Phase 2: everything is verified; move it into place.
    for step in &steps {
        if let Step::Dir(dir, _) = step {
            if std::fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir()) {
                std::fs::remove_file(dir)
                    .with_context(|| format!("cannot replace {}", dir.display()))?;
            }
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let now = SystemTime::now();
    let mut dir_modes = Vec::new();
    for step in steps {
        match step {
            Step::Touch(target, mode) => {
                // futimens needs ownership, not write permission: a 0444 output
                // must still get its fresh mtime.
                let f = std::fs::File::open(&target)
                    .with_context(|| format!("cannot open {}", target.display()))?;
                f.set_modified(now)
                    .with_context(|| format!("cannot set the mtime of {}", target.display()))?;
                if std::fs::metadata(&target)?.mode() & 0o7777 != mode {
                    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
                }
            }
            Step::Place(tmp, target) => {
                if std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                    std::fs::remove_dir_all(&target).with_context(|| {
                        format!("cannot replace directory {}", target.display())
                    })?;
                }
                tmp.persist(&target).map_err(|e| e.error).with_context(|| {
                    format!("cannot move restored output to {}", target.display())
                })?;
            }
            // Modes last: a read-only directory must not block the files going in.
            Step::Dir(dir, mode) => dir_modes.push((dir, mode)),
        }
    }
    for (dir, mode) in dir_modes.into_iter().rev() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
    }
    if clean {
        for extra in specs.extras(ws, manifest)? {
            let md = std::fs::symlink_metadata(&extra)?;
            if md.is_dir() {
                let _ = std::fs::remove_dir(&extra);
            } else {
                std::fs::remove_file(&extra)
                    .with_context(|| format!("cannot remove stale output {}", extra.display()))?;
            }
        }
    }
    Ok(())
}
