//! `idem forget -- CMD` (that task's records) and `idem forget --key K` (the records
//! and run count of an execution key). Records go first, then the blobs only they
//! referenced, so the cache never holds a record whose blob is gone.

use std::collections::HashSet;

use anyhow::{anyhow, Context, Result};

use crate::cli::ForgetArgs;
use crate::commands::gc;
use crate::store::{self, Cache};

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
    let (n, bytes) = gc::sweep(cache, hashes, crate::cli::Progress::Never)?;
    Ok((ids.len() as u64, n, bytes))
}

/// Entry point of `idem forget`.
pub fn run(args: &ForgetArgs) -> Result<i32> {
    let a = &args.run;
    if a.command.is_empty() {
        let Some(key) = a.key.as_deref().filter(|k| !k.is_empty()) else {
            return Err(crate::exit::usage(
                "forget needs a command after `--` (as in `idem forget -f src/ -- make`) or --key K",
            ));
        };
        let dir = store::cache_dir(a.cache.cache_dir.as_deref())?;
        let mut cache = Cache::open(&dir).context("cannot open the cache")?;
        let ids = cache.db.records_of_exec_key(key)?;
        let (n, blobs, _) = delete_with_blobs(&mut cache, &ids)?;
        let had_key = cache.db.delete_exec_key(key)?;
        println!(
            "forgot key '{key}': {n} record(s), {blobs} blob(s){}",
            if had_key {
                "; it may run again"
            } else {
                " (the key was unknown)"
            }
        );
        return Ok(0);
    }
    let p = crate::run::prepare(a)?;
    let dir = p.cache_dir.as_ref().map_err(|e| anyhow!("{e:#}"))?.clone();
    let mut cache = Cache::open(&dir).context("cannot open the cache")?;
    let ids = cache.db.records_of_task(&p.task_key)?;
    let (n, blobs, _) = delete_with_blobs(&mut cache, &ids)?;
    cache.db.delete_stat_cache(&p.task_key)?;
    if let Some(key) = &a.key {
        cache.db.delete_exec_key(key)?;
    }
    println!(
        "forgot {n} record(s) and {blobs} blob(s) of `{}`",
        p.spec.display_argv()
    );
    Ok(0)
}
