//! Hot files: per task key, the records a hit may replay (`hot/<task>.rec`) and the
//! task's stat cache (`hot/<task>.stat`, a flat table used in place), so a hit reads two
//! small files and never opens SQLite. The database stays the source of truth: a `.rec` file is only written or
//! removed inside the SQLite write transaction that changed the task's records, and
//! anything unreadable, corrupt, naming another task or not owned by us is a miss,
//! never a guess.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::record::Record;
use crate::deps::stat_cache::StatCache;
use crate::encode::{Decoder, Encoder};

/// The directory of hot files inside a cache directory.
pub const DIR: &str = "hot";
/// At most this many records (the newest) per `.rec` file; older states of a task are
/// still found in SQLite, they only miss the fast path.
pub const MAX_RECORDS: usize = 64;
/// Hot files larger than this are not read (a hostile or runaway file): SQLite answers.
const MAX_LEN: u64 = 256 << 20;
/// Hot files at least this large are checksummed on all cores.
const PARALLEL_CHECK: usize = 256 << 10;

const REC_MAGIC: &[u8] = b"idem-hot-rec-1";
/// Version 2: the flat table of `deps::stat_cache` (version 1 files read as absent).
const STAT_MAGIC: &[u8] = b"idem-hot-stat-2";
const SETS_MAGIC: &[u8] = b"idem-hot-sets-1";

pub fn dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join(DIR)
}

fn rec_path(cache_dir: &Path, task_key: &[u8; 32]) -> PathBuf {
    dir(cache_dir).join(format!("{}.rec", crate::encode::hex(task_key)))
}

fn stat_path(cache_dir: &Path, task_key: &[u8; 32]) -> PathBuf {
    dir(cache_dir).join(format!("{}.stat", crate::encode::hex(task_key)))
}

fn sets_path(cache_dir: &Path, weak_key: &[u8; 32]) -> PathBuf {
    dir(cache_dir).join(format!("{}.sets", crate::encode::hex(weak_key)))
}

/// The dependency-set index of a traced weak key (the `trace_sets.data` bytes), when its
/// hot file exists and is intact.
pub fn load_sets(cache_dir: &Path, weak_key: &[u8; 32]) -> Option<Vec<u8>> {
    let body = read_checked(&sets_path(cache_dir, weak_key), SETS_MAGIC)?;
    let (key, rest) = body.split_at_checked(32)?;
    (key == weak_key).then(|| rest.to_vec())
}

/// Replaces a weak key's set-index file. Only the database's write transaction that
/// changed `trace_sets` calls this.
pub fn write_sets(cache_dir: &Path, weak_key: &[u8; 32], data: &[u8]) -> Result<()> {
    let mut body = Vec::with_capacity(32 + data.len());
    body.extend_from_slice(weak_key);
    body.extend_from_slice(data);
    write_checked(&sets_path(cache_dir, weak_key), SETS_MAGIC, &body)
}

/// Removes a weak key's set-index file.
pub fn forget_sets(cache_dir: &Path, weak_key: &[u8; 32]) -> Result<()> {
    remove(&sets_path(cache_dir, weak_key))
}

/// What the `.rec` file of a task says about one state.
pub enum Found {
    /// The record (decoded without its dependency list) and its database id.
    Record(i64, Box<Record>),
    /// The file is valid and holds `count` records, none for this state.
    NotInFile { count: usize },
    /// No file, or one that is unreadable, corrupt or not this task's.
    NoFile,
}

/// Looks a state up in the task's `.rec` file. Never fails: any doubt is `NoFile`.
pub fn lookup(cache_dir: &Path, task_key: &[u8; 32], state_key: &[u8; 32]) -> Found {
    let Some(body) = read_checked(&rec_path(cache_dir, task_key), REC_MAGIC) else {
        return Found::NoFile;
    };
    match find(&body, task_key, state_key) {
        Ok(found) => found,
        Err(_) => Found::NoFile,
    }
}

fn find(body: &[u8], task_key: &[u8; 32], state_key: &[u8; 32]) -> Result<Found> {
    let mut d = Decoder::new(body);
    if &d.hash()? != task_key {
        bail!("hot file of another task");
    }
    let count = d.count()?;
    for _ in 0..count {
        let state = d.hash()?;
        let id = d.i64()?;
        let data = d.bytes()?;
        if &state == state_key {
            let rec = Record::decode_for_replay(data)?;
            if &rec.task_key != task_key || &rec.state_key != state_key {
                bail!("hot record {id} is not the one its entry names");
            }
            return Ok(Found::Record(id, Box::new(rec)));
        }
    }
    if !d.is_empty() {
        bail!("trailing bytes in hot file");
    }
    Ok(Found::NotInFile { count })
}

/// Writes the task's `.rec` file from `(id, record)` pairs, newest first (at most
/// [`MAX_RECORDS`] are kept). Only the database's write transaction calls this.
pub fn write_records(cache_dir: &Path, task_key: &[u8; 32], recs: &[(i64, Record)]) -> Result<()> {
    let mut e = Encoder::new();
    e.bytes(task_key);
    let kept = &recs[..recs.len().min(MAX_RECORDS)];
    e.u64(kept.len() as u64);
    for (id, rec) in kept {
        // A replay needs no dependency list; dropping it keeps a 10,000-file task's
        // hot file small.
        let slim = Record {
            deps: Vec::new(),
            ..rec.clone()
        };
        e.bytes(&rec.state_key).i64(*id).bytes(&slim.encode());
    }
    write_checked(&rec_path(cache_dir, task_key), REC_MAGIC, e.as_slice())
}

/// Removes the task's `.rec` file (the next hit rebuilds it from the database).
pub fn invalidate(cache_dir: &Path, task_key: &[u8; 32]) -> Result<()> {
    remove(&rec_path(cache_dir, task_key))
}

/// Removes every hot file (`clear`), or only the record files (`verify`: they are
/// rebuilt from the database it just checked).
pub fn invalidate_all(cache_dir: &Path, records_only: bool) -> Result<()> {
    let d = dir(cache_dir);
    let entries = match std::fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", d.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", d.display()))?;
        let path = entry.path();
        if !records_only || path.extension().is_some_and(|e| e == "rec") {
            remove(&path)?;
        }
    }
    Ok(())
}

/// The task's stat cache, checked (`None` when absent, corrupt, truncated or not this
/// task's: the snapshot then re-hashes). The table is used in place in the buffer read.
pub fn load_stat(cache_dir: &Path, task_key: &[u8; 32]) -> Option<StatCache> {
    let buf = read_verified(&stat_path(cache_dir, task_key), STAT_MAGIC)?;
    let at = STAT_MAGIC.len() + 32;
    let len = buf.len().checked_sub(at + 32)?;
    if buf.get(STAT_MAGIC.len()..at)? != task_key {
        return None;
    }
    StatCache::parse(buf, at, len).ok()
}

/// Replaces the task's stat cache.
pub fn save_stat(cache_dir: &Path, task_key: &[u8; 32], cache: &StatCache) -> Result<()> {
    let table = cache.encode();
    let mut body = Vec::with_capacity(32 + table.len());
    body.extend_from_slice(task_key);
    body.extend_from_slice(table);
    write_checked(&stat_path(cache_dir, task_key), STAT_MAGIC, &body)
}

/// Removes the task's stat cache (`forget`).
pub fn forget_stat(cache_dir: &Path, task_key: &[u8; 32]) -> Result<()> {
    remove(&stat_path(cache_dir, task_key))
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// File layout: magic, body, blake3(magic ‖ body). A torn or bit-flipped file fails
/// the checksum and reads as absent. Returns the body alone.
fn read_checked(path: &Path, magic: &[u8]) -> Option<Vec<u8>> {
    let mut buf = read_verified(path, magic)?;
    buf.truncate(buf.len() - 32);
    buf.drain(..magic.len());
    Some(buf)
}

/// The whole file (magic, body, checksum) when its checksum and magic are right.
fn read_verified(path: &Path, magic: &[u8]) -> Option<Vec<u8>> {
    // O_NOFOLLOW: a symlink planted in the cache is never followed; O_NONBLOCK: a FIFO
    // in its place cannot hang the hit (and fails the regular-file check below).
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let md = f.metadata().ok()?;
    // Someone else's file (or one they can write) in our cache could replay any
    // outcome they like, as ours: it reads as absent and the database answers.
    if !md.is_file() || md.len() > MAX_LEN || !super::private::is_owned(&md) {
        return None;
    }
    // Read, not mapped: another process truncating the file could SIGBUS a mapping.
    // Through `take`: File's own read_to_end asks for the size again (fstat + lseek). A
    // file that grew since reads one byte long and fails its checksum.
    let mut buf = Vec::with_capacity(md.len() as usize + 1);
    (&mut f).take(md.len() + 1).read_to_end(&mut buf).ok()?;
    let split = buf.len().checked_sub(32)?;
    let (content, sum) = buf.split_at(split);
    if !content.starts_with(magic) {
        return None;
    }
    let mut h = blake3::Hasher::new();
    // The stat cache of a 10,000-file task is over a megabyte: check it on every core
    // (a hit that large walks its inputs on the thread pool anyway).
    if content.len() >= PARALLEL_CHECK {
        h.update_rayon(content);
    } else {
        h.update(content);
    }
    (h.finalize().as_bytes() == sum).then_some(buf)
}

/// Written to a private temporary file, then renamed over the old one: readers see the
/// old file or the new one, never a mix.
fn write_checked(path: &Path, magic: &[u8], body: &[u8]) -> Result<()> {
    let dir = path.parent().context("hot file path has a parent")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".tmp.{}.{}",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("hot")
    ));
    let mut hasher = blake3::Hasher::new();
    hasher.update(magic).update(body);
    let written = (|| -> std::io::Result<()> {
        let _ = std::fs::remove_file(&tmp);
        let mut f: File = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(magic)?;
        f.write_all(body)?;
        f.write_all(hasher.finalize().as_bytes())?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::BlobRef;

    fn rec(state: u8) -> Record {
        Record {
            task_key: [7; 32],
            state_key: [state; 32],
            exec_key: None,
            created_ns: 1,
            duration_ns: 2,
            exit_code: 0,
            stdout: BlobRef::empty(),
            stderr: BlobRef::empty(),
            chunks: vec![],
            outputs: vec![],
            deps: vec![crate::deps::DepState::new(
                crate::deps::Kind::File,
                "a",
                "blake3:x",
            )],
            argv: vec![b"true".to_vec()],
            cwd: b".".to_vec(),
            host: "h".into(),
            version: "v".into(),
            task: None,
            side_effects: vec![],
        }
    }

    #[test]
    fn finds_written_records_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        write_records(dir.path(), &[7; 32], &[(5, rec(1)), (3, rec(2))]).unwrap();
        match lookup(dir.path(), &[7; 32], &[2; 32]) {
            Found::Record(id, r) => {
                assert_eq!(id, 3);
                assert!(r.deps.is_empty());
                assert_eq!(r.state_key, [2; 32]);
            }
            _ => panic!("record not found"),
        }
        assert!(matches!(
            lookup(dir.path(), &[7; 32], &[9; 32]),
            Found::NotInFile { count: 2 }
        ));
        assert!(matches!(
            lookup(dir.path(), &[8; 32], &[2; 32]),
            Found::NoFile
        ));
    }

    #[test]
    fn any_flipped_byte_or_truncation_reads_as_no_file() {
        let dir = tempfile::tempdir().unwrap();
        write_records(dir.path(), &[7; 32], &[(5, rec(1))]).unwrap();
        let path = rec_path(dir.path(), &[7; 32]);
        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            std::fs::write(&path, &bad).unwrap();
            assert!(matches!(
                lookup(dir.path(), &[7; 32], &[1; 32]),
                Found::NoFile
            ));
        }
        std::fs::write(&path, &good[..good.len() - 1]).unwrap();
        assert!(matches!(
            lookup(dir.path(), &[7; 32], &[1; 32]),
            Found::NoFile
        ));
    }

    #[test]
    fn a_renamed_file_of_another_task_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        write_records(dir.path(), &[7; 32], &[(5, rec(1))]).unwrap();
        std::fs::rename(
            rec_path(dir.path(), &[7; 32]),
            rec_path(dir.path(), &[8; 32]),
        )
        .unwrap();
        assert!(matches!(
            lookup(dir.path(), &[8; 32], &[1; 32]),
            Found::NoFile
        ));
    }

    #[test]
    fn symlinks_are_not_followed_and_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let table = stat_table();
        save_stat(dir.path(), &[7; 32], &table).unwrap();
        let p = stat_path(dir.path(), &[7; 32]);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load_stat(dir.path(), &[7; 32]).unwrap(), table);
        let other = stat_path(dir.path(), &[8; 32]);
        std::os::unix::fs::symlink(&p, &other).unwrap();
        assert!(load_stat(dir.path(), &[8; 32]).is_none());
    }

    fn stat_table() -> StatCache {
        use crate::deps::stat_cache::StatEntry;
        let e = |n: u8| StatEntry {
            dev: 1,
            ino: n as u64,
            size: 10,
            mtime_ns: 20,
            ctime_ns: 30,
            mode: 0o100644,
            hash: [n; 32],
            hashed_at_ns: 40,
        };
        StatCache::from_entries([(&b"/w/a"[..], e(1)), (&b"/w/b/c"[..], e(2))])
    }

    /// A stat cache that is truncated, short, bit-flipped, of the old format, or whose
    /// checksum is right but whose table is inconsistent is never used: it loads as
    /// absent and the snapshot re-hashes every file.
    #[test]
    fn a_damaged_stat_file_loads_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let key = [7; 32];
        let table = stat_table();
        save_stat(dir.path(), &key, &table).unwrap();
        let path = stat_path(dir.path(), &key);
        let good = std::fs::read(&path).unwrap();
        assert_eq!(load_stat(dir.path(), &key).unwrap(), table);
        for cut in 0..good.len() {
            std::fs::write(&path, &good[..cut]).unwrap();
            assert!(load_stat(dir.path(), &key).is_none(), "cut at {cut}");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x04;
            std::fs::write(&path, &bad).unwrap();
            assert!(load_stat(dir.path(), &key).is_none(), "flip at {i}");
        }
        // Checksummed, but the table inside is short, or claims more rows than it has.
        let enc = table.encode();
        for body in [&enc[..enc.len() - 1], &enc[..8]] {
            let mut b = key.to_vec();
            b.extend_from_slice(body);
            write_checked(&path, STAT_MAGIC, &b).unwrap();
            assert!(load_stat(dir.path(), &key).is_none());
        }
        let mut more = enc.to_vec();
        more[0] += 1;
        let mut b = key.to_vec();
        b.extend_from_slice(&more);
        write_checked(&path, STAT_MAGIC, &b).unwrap();
        assert!(load_stat(dir.path(), &key).is_none());
        // The previous format's file, intact, is not read as this one.
        write_checked(
            &path,
            b"idem-hot-stat-1",
            &good[STAT_MAGIC.len()..good.len() - 32],
        )
        .unwrap();
        assert!(load_stat(dir.path(), &key).is_none());
    }
}
