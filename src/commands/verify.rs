//! `idem verify`: re-hashes every referenced blob and decodes every record; drops the
//! records whose blobs are missing or corrupt (and corrupt records), then removes the
//! corrupt blob files. It reports each problem; it never repairs by guessing.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::VerifyArgs;
use crate::store::gc;
use crate::store::record::{BlobRef, Record};
use crate::store::{self, Cache};

/// Entry point of `idem verify`. Exit 0 when everything was sound, 1 when records were
/// dropped.
pub fn run(args: &VerifyArgs) -> Result<i32> {
    let dir = store::cache_dir(args.cache.cache_dir.as_deref())?;
    let mut cache = Cache::open(&dir).context("cannot open the cache")?;
    let mut problems: Vec<(Option<i64>, Option<String>, String)> = Vec::new();
    let mut bad_records: BTreeSet<i64> = BTreeSet::new();
    let records = cache.db.record_data()?;
    for (id, data) in &records {
        if let Err(e) = Record::decode(data) {
            problems.push((Some(*id), None, format!("record is corrupt: {e:#}")));
            bad_records.insert(*id);
        }
    }
    let blobs = cache.db.referenced_blobs()?;
    let total: u64 = blobs.iter().map(|(_, s)| s).sum();
    let mut bar = crate::ui::progress::Delayed::new(
        args.progress.into(),
        total,
        crate::ui::progress::Unit::Bytes,
        "verify: re-hashing blobs",
    );
    let mut bad_blobs = Vec::new();
    for (hash, size) in &blobs {
        let blob = BlobRef {
            hash: *hash,
            size: *size,
        };
        if let Err(e) = cache.blobs.check(&blob) {
            let holders = cache.db.records_with_blob(hash)?;
            for id in &holders {
                bad_records.insert(*id);
            }
            problems.push((None, Some(crate::encode::hex(hash)), format!("{e:#}")));
            bad_blobs.push(*hash);
        }
        bar.inc(*size);
    }
    bar.finish();
    let ids: Vec<i64> = bad_records.iter().copied().collect();
    cache
        .db
        .delete_records(&ids)
        .context("cannot drop the broken records")?;
    cache
        .db
        .invalidate_hot()
        .context("cannot remove the hot files")?;
    // Now unreferenced: remove corrupt files so no future write deduplicates into them.
    let (removed, _) = gc::sweep(&mut cache, bad_blobs, crate::ui::progress::Mode::Never)?;
    if args.json {
        let out = json!({
            "records_checked": records.len(),
            "blobs_checked": blobs.len(),
            "bytes_checked": total,
            "problems": problems.iter().map(|(id, hash, msg)| json!({
                "record_id": id, "blob": hash, "message": msg,
            })).collect::<Vec<_>>(),
            "dropped_records": ids,
            "removed_blobs": removed,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (id, hash, msg) in &problems {
            match (id, hash) {
                (Some(id), _) => println!("record {id}: {msg}"),
                (None, Some(h)) => println!("blob {}…: {msg}", &h[..16]),
                _ => println!("{msg}"),
            }
        }
        println!(
            "checked {} record(s) and {} blob(s) ({}); dropped {} record(s), removed {} corrupt blob file(s)",
            records.len(),
            blobs.len(),
            crate::ui::units::size(total),
            ids.len(),
            removed
        );
    }
    Ok(if ids.is_empty() { 0 } else { 1 })
}
