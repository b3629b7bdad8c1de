//! `idem stats`: hit/miss counters, time saved and the cache's size, for humans or as
//! JSON; `--zero` resets the counters. It changes nothing else (the hit log is folded in).

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::StatsArgs;
use crate::commands::ui::{self, Style};
use crate::store::Counter;
use crate::store::{self, Cache};

/// Bytes of every file under `dir` (database, WAL, blobs, temporary files, locks).
pub fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Entry point of `idem stats`.
pub fn run(args: &StatsArgs) -> Result<i32> {
    let dir = store::cache_dir(args.cache.cache_dir.as_deref())?;
    let mut cache = Cache::open(&dir).context("cannot open the cache")?;
    if args.zero {
        cache.db.zero_stats().context("cannot reset the counters")?;
        if !args.json {
            println!("counters reset");
            return Ok(0);
        }
    }
    let hits = cache.db.stat(Counter::Hits)?;
    let remote_hits = cache.db.stat(Counter::RemoteHits)?;
    let misses = cache.db.stat(Counter::Misses)?;
    let saved_ns = cache.db.stat(Counter::SavedNs)?;
    let uploads = cache.db.stat(Counter::Uploads)?;
    let size = cache.db.cache_size()?;
    let disk = disk_bytes(&dir);
    let lookups = hits + remote_hits + misses;
    let rate = (lookups > 0).then(|| (hits + remote_hits) as f64 / lookups as f64);
    if args.json {
        let out = json!({
            "cache_dir": dir.display().to_string(),
            "hits": hits,
            "remote_hits": remote_hits,
            "misses": misses,
            "hit_rate": rate,
            "saved_ns": saved_ns,
            "uploads": uploads,
            "records": size.records,
            "blobs": size.blobs,
            "blob_bytes": size.blob_bytes,
            "record_bytes": size.record_bytes,
            "disk_bytes": disk,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    let color = ui::color();
    let mut t = ui::Table::new(vec![false, false]);
    let mut row = |k: &str, v: String| t.row(vec![(k.to_string(), Style::Bold), (v, Style::Plain)]);
    row("cache", dir.display().to_string());
    row(
        "hits",
        if remote_hits > 0 {
            format!("{hits} (+{remote_hits} remote)")
        } else {
            hits.to_string()
        },
    );
    row("misses", misses.to_string());
    row(
        "hit rate",
        rate.map(|r| format!("{:.1}%", r * 100.0))
            .unwrap_or_else(|| "-".into()),
    );
    row("time saved", crate::ui::units::duration_ns(saved_ns));
    if uploads > 0 {
        row("uploads", uploads.to_string());
    }
    row("records", size.records.to_string());
    row(
        "blobs",
        format!(
            "{} ({})",
            size.blobs,
            crate::ui::units::size(size.blob_bytes)
        ),
    );
    row("on disk", crate::ui::units::size(disk));
    print!("{}", t.render(color));
    Ok(0)
}
