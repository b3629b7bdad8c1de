//! `idem gc`: evict by the given limits (or IDEM_MAX_SIZE / IDEM_MAX_AGE), sweep
//! unreferenced blobs, and say what was freed. The work is `store::gc`'s.

use anyhow::{Context, Result};

use crate::cli::GcArgs;
use crate::store::gc::{collect, env_limits, Limits};
use crate::store::{self, Cache};
use crate::ui::units;

/// Entry point of `idem gc`.
pub fn run(args: &GcArgs) -> Result<i32> {
    let env = env_limits().map_err(crate::exit::usage)?;
    let limits = Limits {
        max_size: args.max_size.or(env.max_size),
        max_age: args.max_age.or(env.max_age),
    };
    let dir = store::cache_dir(args.cache.cache_dir.as_deref())?;
    let mut cache = Cache::open(&dir).context("cannot open the cache")?;
    let report = collect(&mut cache, &limits, args.progress.into())?;
    let after = cache.db.cache_size()?;
    println!(
        "evicted {} record(s); removed {} blob(s) ({}){}; cache now {} record(s), {}",
        report.evicted,
        report.blobs_removed,
        units::size(report.bytes_freed),
        if report.tmp_removed > 0 {
            format!(" and {} stale temporary file(s)", report.tmp_removed)
        } else {
            String::new()
        },
        after.records,
        units::size(after.total())
    );
    Ok(0)
}
