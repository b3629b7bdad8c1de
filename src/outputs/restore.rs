//! Restoring a checked manifest, all-or-nothing: every blob is copied and verified into
//! one staging directory at the workspace root first, then moved into place through
//! directory fds that never follow a link. Nothing is left behind on any exit path.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use anyhow::{bail, Context, Result};

use super::confined::{self, DirFd, Found, Kind};
use super::interrupt::Guard;
use super::manifest::{Item, What};
use super::OutputSpecs;
use crate::deps::files::{hash_reader, PathSpec};
use crate::spec::Workspace;
use crate::store::blobs::BlobStore;
use crate::store::record::BlobRef;

/// Temporaries of one restore live in one directory under the workspace root (same
/// filesystem as the outputs, outside every declared output), removed when the restore
/// ends, however it ends.
const STAGING_PREFIX: &str = ".idem-restore-";

enum Step {
    /// Already has the right content: its mtime becomes now, its mode the recorded one.
    Touch(usize),
    /// Staged under this name, to be moved into place.
    Place(usize, OsString),
    /// Created (or kept) in phase 2, its mode set last.
    Dir(usize),
}

/// A workspace key from components.
fn key_of(parts: &[OsString]) -> Vec<u8> {
    let mut k = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(b'/');
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

fn mkdir_open(parent: &DirFd, name: &OsStr, shown: &str) -> Result<DirFd> {
    match parent.mkdir(name) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {shown}")),
    }
    match parent.child(name) {
        Ok(Found::Dir(d)) => Ok(d),
        _ => bail!("cannot replay: {shown} changed while it was being restored"),
    }
}

/// Directory fds reached from the workspace root one component at a time, never
/// through a link; the last one is kept, since manifests come sorted.
struct Dirs {
    root: DirFd,
    /// Paths the record lists as directories: a file found there may be replaced.
    recorded: HashSet<Vec<u8>>,
    last: Option<(Vec<OsString>, DirFd)>,
}

impl Dirs {
    /// `Ok(None)` (only without `create`): part of the path does not exist yet.
    fn get(&mut self, parts: &[OsString], create: bool) -> Result<Option<&DirFd>> {
        let cached = matches!(&self.last, Some((p, _)) if p.as_slice() == parts);
        if !cached {
            match self.walk(parts, create)? {
                Some(d) => self.last = Some((parts.to_vec(), d)),
                None => return Ok(None),
            }
        }
        Ok(self.last.as_ref().map(|(_, d)| d))
    }

    fn walk(&self, parts: &[OsString], create: bool) -> Result<Option<DirFd>> {
        let mut dir = self
            .root
            .try_clone()
            .context("cannot reopen the workspace root")?;
        for (i, name) in parts.iter().enumerate() {
            let key = key_of(&parts[..=i]);
            let shown = String::from_utf8_lossy(&key).into_owned();
            let found = dir
                .child(name)
                .with_context(|| format!("cannot open {shown}"))?;
            dir = match found {
                Found::Dir(d) => d,
                Found::Not(Kind::Symlink) => {
                    bail!("cannot replay: {shown} is a symlink where the record has a directory")
                }
                Found::Not(_) if self.recorded.contains(&key) => {
                    if !create {
                        return Ok(None);
                    }
                    dir.unlink(name, false)
                        .with_context(|| format!("cannot replace {shown}"))?;
                    mkdir_open(&dir, name, &shown)?
                }
                Found::Not(_) => {
                    bail!("cannot replay: {shown} is not a directory, but the record has one there")
                }
                Found::Missing if create => mkdir_open(&dir, name, &shown)?,
                Found::Missing => return Ok(None),
            };
        }
        Ok(Some(dir))
    }
}

/// The one staging directory of this restore, created on first use.
struct Staging {
    /// Removed, with whatever is still in it, when dropped.
    _dir: tempfile::TempDir,
    fd: DirFd,
}

impl Staging {
    fn create(ws: &Workspace) -> Result<Staging> {
        let dir = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(&ws.root)
            .with_context(|| {
                format!("cannot create a staging directory in {}", ws.root.display())
            })?;
        let fd = DirFd::open(dir.path())
            .with_context(|| format!("cannot open {}", dir.path().display()))?;
        Ok(Staging { _dir: dir, fd })
    }
}

fn same_content(file: &mut File, blob: &BlobRef) -> bool {
    file.metadata().is_ok_and(|m| m.size() == blob.size)
        && hash_reader(file, blob.size).is_ok_and(|h| h == blob.hash)
}

/// Copies a blob into the staging directory and verifies the copy.
fn stage_file(
    staging: &DirFd,
    name: &OsStr,
    blob: &BlobRef,
    mode: u32,
    blobs: &BlobStore,
    shown: &str,
) -> Result<()> {
    let mut dst = staging
        .create_file(name)
        .with_context(|| format!("cannot stage {shown}"))?;
    if blob.size > 0 {
        let src = blobs.path(&blob.hash);
        let mut from = File::open(&src)
            .with_context(|| format!("blob for {shown} is missing ({})", src.display()))?;
        std::io::copy(&mut from, &mut dst)
            .with_context(|| format!("cannot copy the blob of {shown}"))?;
    }
    dst.seek(SeekFrom::Start(0))?;
    let len = dst.metadata()?.len();
    let got = hash_reader(&mut dst, len)?;
    if got != blob.hash {
        // The blob's bytes no longer match its name: drop it so the next run stores
        // them afresh. (A record merely wrong about a size does not get to delete it.)
        blobs.remove(&blob.hash)?;
        bail!("blob for {shown} is corrupt");
    }
    if len != blob.size {
        bail!(
            "the record gives {shown} {} bytes, its blob has {len}",
            blob.size
        );
    }
    confined::chmod(&dst, mode).with_context(|| format!("cannot set the mode of {shown}"))?;
    Ok(())
}

/// Restores checked items; on an error before phase 2 nothing has been written outside
/// the staging directory.
pub fn restore_items(
    ws: &Workspace,
    items: &[Item],
    blobs: &BlobStore,
    specs: &OutputSpecs,
    clean: bool,
    guard: &Guard,
) -> Result<()> {
    let root = DirFd::open(&ws.root)
        .with_context(|| format!("cannot open the workspace root {}", ws.root.display()))?;
    let recorded: HashSet<Vec<u8>> = items
        .iter()
        .filter(|i| matches!(i.what, What::Dir { .. }))
        .map(|i| i.key.clone())
        .collect();
    let mut dirs = Dirs {
        root,
        recorded,
        last: None,
    };

    // Phase 1: look (never follow), stage and verify; the workspace is not written.
    let mut staging: Option<Staging> = None;
    let mut steps = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some(sig) = guard.caught() {
            bail!("interrupted by signal {sig}");
        }
        let parent = dirs.get(&item.parents, false)?;
        match &item.what {
            What::Dir { .. } => {
                if let Some(p) = parent {
                    if p.kind(&item.name)? == Some(Kind::Symlink) {
                        bail!(
                            "cannot replay: {} is a symlink where the record has a directory",
                            item.shown()
                        );
                    }
                }
                steps.push(Step::Dir(i));
            }
            What::File { mode, blob } => {
                if let Some(mut f) = parent
                    .map(|p| p.open_file(&item.name))
                    .transpose()?
                    .flatten()
                {
                    if same_content(&mut f, blob) {
                        steps.push(Step::Touch(i));
                        continue;
                    }
                }
                let st = match &mut staging {
                    Some(s) => s,
                    None => staging.insert(Staging::create(ws)?),
                };
                let name = OsString::from(i.to_string());
                stage_file(&st.fd, &name, blob, *mode, blobs, &item.shown())?;
                steps.push(Step::Place(i, name));
            }
            What::Link { target } => {
                let st = match &mut staging {
                    Some(s) => s,
                    None => staging.insert(Staging::create(ws)?),
                };
                let name = OsString::from(i.to_string());
                st.fd
                    .symlink(target, &name)
                    .with_context(|| format!("cannot stage symlink {}", item.shown()))?;
                steps.push(Step::Place(i, name));
            }
        }
    }

    // Phase 2: everything is verified; move it into place.
    dirs.last = None;
    for step in &steps {
        if let Step::Dir(i) = step {
            let item = &items[*i];
            let mut parts = item.parents.clone();
            parts.push(item.name.clone());
            dirs.get(&parts, true)?;
        }
    }
    for step in &steps {
        let (i, staged) = match step {
            Step::Dir(_) => continue,
            Step::Touch(i) => (*i, None),
            Step::Place(i, name) => (*i, Some(name)),
        };
        let item = &items[i];
        let shown = item.shown();
        let parent = dirs
            .get(&item.parents, true)?
            .context("directories are created by get(create)")?;
        match (staged, &item.what) {
            (Some(staged), _) => {
                if parent.kind(&item.name)? == Some(Kind::Dir) {
                    parent
                        .remove_tree(&item.name)
                        .with_context(|| format!("cannot replace directory {shown}"))?;
                }
                let st = staging
                    .as_ref()
                    .context("staged items have a staging dir")?;
                st.fd
                    .rename(staged, parent, &item.name)
                    .with_context(|| format!("cannot move restored output to {shown}"))?;
            }
            (None, What::File { mode, .. }) => {
                let f = parent
                    .open_file(&item.name)?
                    .with_context(|| format!("cannot replay: {shown} changed while restoring"))?;
                // futimens needs ownership, not write permission: a 0444 output still
                // gets its fresh mtime.
                confined::touch_now(&f)
                    .with_context(|| format!("cannot set the mtime of {shown}"))?;
                if f.metadata()?.mode() & 0o7777 != *mode {
                    confined::chmod(&f, *mode)
                        .with_context(|| format!("cannot set the mode of {shown}"))?;
                }
            }
            (None, _) => {}
        }
    }
    // Modes last and deepest first: a read-only directory must not block what goes in.
    for step in steps.iter().rev() {
        if let Step::Dir(i) = step {
            let item = &items[*i];
            let What::Dir { mode } = item.what else {
                continue;
            };
            let mut parts = item.parents.clone();
            parts.push(item.name.clone());
            let dir = dirs
                .get(&parts, false)?
                .with_context(|| format!("cannot replay: {} vanished", item.shown()))?;
            dir.chmod(mode)
                .with_context(|| format!("cannot set the mode of {}", item.shown()))?;
        }
    }
    drop(staging);
    if clean {
        let listed: HashSet<&[u8]> = items.iter().map(|i| i.key.as_slice()).collect();
        clean_extras(ws, specs, &dirs.root, &listed)?;
    }
    Ok(())
}

/// With --clean-outputs: removes what the declared output directories hold beyond the
/// record, without following a link (a declared directory that is a link is left alone).
fn clean_extras(
    ws: &Workspace,
    specs: &OutputSpecs,
    root: &DirFd,
    listed: &HashSet<&[u8]>,
) -> Result<()> {
    for (_, spec) in &specs.specs {
        let PathSpec::Literal(base) = spec else {
            continue;
        };
        let key = ws.key_of(base);
        let parts: Vec<OsString> = key
            .split(|&b| b == b'/')
            .map(|p| OsStr::from_bytes(p).to_os_string())
            .collect();
        let mut dir = root.try_clone()?;
        let mut reached = true;
        for name in &parts {
            match dir.child(name)? {
                Found::Dir(d) => dir = d,
                _ => {
                    reached = false;
                    break;
                }
            }
        }
        if reached {
            clean_dir(&dir, &key, listed)?;
        }
    }
    Ok(())
}

fn clean_dir(dir: &DirFd, key: &[u8], listed: &HashSet<&[u8]>) -> Result<()> {
    for (name, kind) in dir.entries()? {
        let mut k = key.to_vec();
        k.push(b'/');
        k.extend_from_slice(name.as_bytes());
        let shown = String::from_utf8_lossy(&k).into_owned();
        if kind == Kind::Dir {
            if let Found::Dir(sub) = dir.child(&name)? {
                clean_dir(&sub, &k, listed)?;
            }
            if !listed.contains(k.as_slice()) {
                // Not empty means something listed lives inside it: keep it.
                let _ = dir.unlink(&name, true);
            }
        } else if !listed.contains(k.as_slice()) {
            dir.unlink(&name, false)
                .with_context(|| format!("cannot remove stale output {shown}"))?;
        }
    }
    Ok(())
}
