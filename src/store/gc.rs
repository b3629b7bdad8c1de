//! Garbage collection: eviction by LRU and age, the blob sweep, and the automatic,
//! hourly gc a run triggers past a size limit. It must never leave a record whose blob
//! is gone: records go first, then blob files, each checked unreferenced under the
//! database write lock `insert_record` also takes (docs/gc.md).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::{Context, Result};

use super::maintenance::LruRow;
use super::Cache;
use crate::ui::progress::{self, Delayed, Unit};
use crate::ui::{self, units};

/// The automatic gc looks at the cache at most this often (tracked in `meta`).
pub const AUTO_INTERVAL_NS: i64 = 3600 * 1_000_000_000;
/// `meta` entry holding the time of the last automatic check.
pub const AUTO_META: &str = "last_auto_gc_ns";
/// Temporary files (interrupted captures) untouched for this long are removed.
const TMP_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Blob files checked and removed per write transaction (keeps writers' waits short).
const SWEEP_BATCH: usize = 256;

/// Eviction limits; both optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub max_size: Option<u64>,
    pub max_age: Option<Duration>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.max_size.is_none() && self.max_age.is_none()
    }
}

/// What a gc did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub evicted: u64,
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    pub tmp_removed: u64,
}

/// `IDEM_MAX_SIZE` (5G) and `IDEM_MAX_AGE` (30d); an invalid value is an error naming
/// the variable (a usage error for `idem gc`, a warning for the automatic gc).
pub fn env_limits() -> std::result::Result<Limits, String> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let max_size = get("IDEM_MAX_SIZE")
        .map(|v| units::parse_size(&v).map_err(|e| format!("IDEM_MAX_SIZE: {e}")))
        .transpose()?;
    let max_age = get("IDEM_MAX_AGE")
        .map(|v| units::parse_duration(&v).map_err(|e| format!("IDEM_MAX_AGE: {e}")))
        .transpose()?;
    Ok(Limits { max_size, max_age })
}

/// Called after a record is stored. Free unless a limit is configured; then at most
/// one check per [`AUTO_INTERVAL_NS`] across all processes (claimed atomically), and a
/// full gc only when that check finds the cache over a limit. Never fails the run.
pub fn maybe_auto(cache: &mut Cache) {
    let limits = match env_limits() {
        Ok(l) if l.is_empty() => return,
        Ok(l) => l,
        Err(e) => {
            ui::warn(format!("automatic gc skipped: {e:#}"));
            return;
        }
    };
    let now = crate::clock::now_ns();
    match cache.db.claim_interval(AUTO_META, now, AUTO_INTERVAL_NS) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            ui::warn(format!("automatic gc skipped: {e:#}"));
            return;
        }
    }
    let over = over_limits(cache, &limits, now);
    match over {
        Ok(false) => {}
        Ok(true) => {
            if let Err(e) = collect(cache, &limits, progress::Mode::Never) {
                ui::warn(format!("automatic gc failed: {e:#}"));
            }
        }
        Err(e) => ui::warn(format!("automatic gc skipped: {e:#}")),
    }
}

/// Cheap check (two aggregate queries, one index lookup; no filesystem walk).
fn over_limits(cache: &Cache, limits: &Limits, now: i64) -> Result<bool> {
    if let Some(max) = limits.max_size {
        if cache.db.cache_size()?.total() > max {
            return Ok(true);
        }
    }
    if let Some(age) = limits.max_age {
        if let Some(oldest) = cache.db.oldest_use_ns()? {
            if oldest < now.saturating_sub(age.as_nanos() as i64) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Evicts records past the limits (least recently used first), then removes every
/// blob file no record references, then stale temporary files.
pub fn collect(cache: &mut Cache, limits: &Limits, mode: progress::Mode) -> Result<Report> {
    let now = crate::clock::now_ns();
    let mut report = Report::default();
    if !limits.is_empty() {
        // Hits are logged outside SQLite on the run path; LRU times must include them.
        cache.db.fold_hits(0).context("cannot fold the hit log")?;
        let rows = cache.db.lru_rows()?;
        let refs = cache.db.blob_refs()?;
        let ids = plan(&rows, &refs, limits, now);
        cache
            .db
            .delete_records(&ids)
            .context("cannot delete evicted records")?;
        report.evicted = ids.len() as u64;
    }
    test_pause("after-records");
    let files = blob_files(cache)?;
    let (removed, bytes) = sweep(cache, files, mode)?;
    report.blobs_removed = removed;
    report.bytes_freed = bytes;
    report.tmp_removed = remove_stale_tmp(cache);
    Ok(report)
}

/// Which records to evict, least recently used first: every record not used within
/// `max_age`, then more until the records' bytes plus their distinct blobs' bytes are
/// at most `max_size`.
pub fn plan(rows: &[LruRow], refs: &[(i64, [u8; 32], u64)], limits: &Limits, now: i64) -> Vec<i64> {
    let mut by_record: HashMap<i64, Vec<([u8; 32], u64)>> = HashMap::new();
    let mut refcount: HashMap<[u8; 32], (u64, u64)> = HashMap::new();
    for (id, hash, size) in refs {
        by_record.entry(*id).or_default().push((*hash, *size));
        let e = refcount.entry(*hash).or_insert((0, *size));
        e.0 += 1;
    }
    let mut total: u64 = rows.iter().map(|r| r.data_bytes).sum::<u64>()
        + refcount.values().map(|(_, size)| size).sum::<u64>();
    let cutoff = limits
        .max_age
        .map(|a| now.saturating_sub(a.as_nanos().min(i64::MAX as u128) as i64));
    let mut out = Vec::new();
    for row in rows {
        let too_old = cutoff.is_some_and(|c| row.last_used_ns < c);
        let too_big = limits.max_size.is_some_and(|m| total > m);
        if !too_old && !too_big {
            // Rows are sorted by last use: later ones are younger, and total only
            // shrinks by evicting.
            break;
        }
        total = total.saturating_sub(row.data_bytes);
        for (hash, size) in by_record.get(&row.id).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(e) = refcount.get_mut(hash) {
                e.0 -= 1;
                if e.0 == 0 {
                    total = total.saturating_sub(*size);
                }
            }
        }
        out.push(row.id);
    }
    out
}

/// Deletes records, then sweeps the blobs they referenced (kept if still shared).
/// Returns (records deleted, blobs removed, bytes freed).
pub fn delete_with_blobs(cache: &mut Cache, ids: &[i64]) -> Result<(u64, u64, u64)> {
    if ids.is_empty() {
        return Ok((0, 0, 0));
    }
    let wanted: HashSet<i64> = ids.iter().copied().collect();
    let mut hashes: Vec<[u8; 32]> = cache
        .db
        .blob_refs()?
        .into_iter()
        .filter(|(id, _, _)| wanted.contains(id))
        .map(|(_, h, _)| h)
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    cache
        .db
        .delete_records(ids)
        .context("cannot delete records")?;
    let (n, bytes) = sweep(cache, hashes, progress::Mode::Never)?;
    Ok((ids.len() as u64, n, bytes))
}

/// Every blob file in the store, by hash (temporary files excluded).
pub fn blob_files(cache: &Cache) -> Result<Vec<[u8; 32]>> {
    let dir = cache.blobs.dir();
    let mut out = Vec::new();
    let top = match std::fs::read_dir(dir) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for sub in top {
        let sub = sub.with_context(|| format!("cannot read {}", dir.display()))?;
        let prefix = sub.file_name().to_string_lossy().into_owned();
        if prefix.len() != 2 || !sub.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let entries = std::fs::read_dir(sub.path())
            .with_context(|| format!("cannot read {}", sub.path().display()))?;
        for e in entries {
            let e = e.with_context(|| format!("cannot read {}", sub.path().display()))?;
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            if let Some(hash) =
                crate::encode::unhex(&name).and_then(|v| <[u8; 32]>::try_from(v).ok())
            {
                out.push(hash);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Removes those of `candidates` no record references. Each batch runs inside an
/// IMMEDIATE transaction: a concurrent `insert_record` (which checks its blob files
/// exist under the same lock) lands either before the check (the blob is kept) or
/// after the removal (the insert is refused), never in between. Returns (count, bytes).
pub fn sweep(
    cache: &mut Cache,
    candidates: Vec<[u8; 32]>,
    mode: progress::Mode,
) -> Result<(u64, u64)> {
    let mut bar = Delayed::new(
        mode,
        candidates.len() as u64,
        Unit::Items,
        "gc: sweeping blobs",
    );
    let (mut removed, mut bytes) = (0u64, 0u64);
    let blobs = cache.blobs.clone();
    for batch in candidates.chunks(SWEEP_BATCH) {
        cache.db.for_each_unreferenced(batch, |hash, referenced| {
            bar.inc(1);
            if referenced {
                return Ok(());
            }
            let path = blobs.path(hash);
            let size = match std::fs::symlink_metadata(&path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e).with_context(|| format!("cannot stat {}", path.display())),
            };
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    removed += 1;
                    bytes += size;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()))
                }
            }
            test_pause("mid-blobs");
            Ok(())
        })?;
    }
    bar.finish();
    Ok((removed, bytes))
}

/// Temporary files left by killed writers, untouched for a day.
fn remove_stale_tmp(cache: &Cache) -> u64 {
    let tmp = cache.blobs.dir().join("tmp");
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > TMP_MAX_AGE);
        if old && std::fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

/// Test-only hook: with `IDEM_TEST_GC_PAUSE_AT=<point>` gc announces the point on
/// stderr and blocks forever there, so a test can SIGKILL it at a known step (points:
/// `after-records`, `mid-blobs`). Documented in docs/gc.md; never set it otherwise.
fn test_pause(point: &str) {
    if std::env::var("IDEM_TEST_GC_PAUSE_AT").is_ok_and(|v| v == point) {
        ui::note(format!("test pause at {point}"));
        loop {
            std::thread::park();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, used: i64, bytes: u64) -> LruRow {
        LruRow {
            id,
            last_used_ns: used,
            data_bytes: bytes,
        }
    }

    #[test]
    fn plan_evicts_lru_until_under_size_counting_shared_blobs_once() {
        let rows = vec![row(1, 10, 0), row(2, 20, 0), row(3, 30, 0)];
        // Record 1 and 2 share blob A; 3 has blob B.
        let refs = vec![(1, [1; 32], 100), (2, [1; 32], 100), (3, [2; 32], 50)];
        let lim = |m| Limits {
            max_size: Some(m),
            max_age: None,
        };
        assert_eq!(plan(&rows, &refs, &lim(150), 0), Vec::<i64>::new());
        // Evicting 1 frees nothing (A still used by 2): 2 must go too.
        assert_eq!(plan(&rows, &refs, &lim(149), 0), vec![1, 2]);
        assert_eq!(plan(&rows, &refs, &lim(0), 0), vec![1, 2, 3]);
    }

    #[test]
    fn plan_evicts_by_age() {
        let rows = vec![row(1, 10, 5), row(2, 20, 5), row(3, 30, 5)];
        let lim = Limits {
            max_size: None,
            max_age: Some(Duration::from_nanos(15)),
        };
        assert_eq!(plan(&rows, &[], &lim, 40), vec![1, 2]);
    }
}
