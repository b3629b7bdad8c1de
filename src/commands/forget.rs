//! `idem forget -- CMD` (that task's records) and `idem forget --key K` (the records
//! and run count of an execution key). Records go first, then the blobs only they
//! referenced, so the cache never holds a record whose blob is gone.

use anyhow::{anyhow, Context, Result};

use crate::cli::ForgetArgs;
use crate::store::gc::delete_with_blobs;
use crate::store::{self, Cache};

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
    let task = crate::plan::task(a)?;
    let policy = crate::plan::policy(a)?;
    let dir = policy.cache_dir.map_err(|e| anyhow!("{e}"))?;
    let mut cache = Cache::open(&dir).context("cannot open the cache")?;
    let ids = cache.db.records_of_task(&task.key)?;
    let (n, blobs, _) = delete_with_blobs(&mut cache, &ids)?;
    cache.db.delete_stat_cache(&task.key)?;
    if let Some(key) = &a.key {
        cache.db.delete_exec_key(key)?;
    }
    println!(
        "forgot {n} record(s) and {blobs} blob(s) of `{}`",
        task.spec.display_argv()
    );
    Ok(0)
}
