//! The dependency-set index of traced tasks (`--trace`): per weak key, up to
//! [`MAX_SETS`] recorded entry lists, newest first, in SQLite (`trace_sets`) and mirrored
//! in `hot/<weak>.sets` so a traced hit never opens the database. Opaque bytes here: the
//! lists are encoded and checked by `engine/traced.rs`; a set never names a record, so a
//! stale or lost set only costs a miss.

use anyhow::Result;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::sqlite::Db;
use crate::encode::{Decoder, Encoder};

/// Entry lists kept per weak key; recording one more evicts the oldest.
pub const MAX_SETS: usize = 32;

/// An index: encoded entry lists (each one `deps::trace::encode_entries` output), newest
/// first.
pub type Sets = Vec<Vec<u8>>;

pub fn encode_sets(sets: &[Vec<u8>]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.str("idem-trace-sets").u64(1);
    e.list(sets.iter());
    e.finish()
}

pub fn decode_sets(data: &[u8]) -> Result<Sets> {
    let mut d = Decoder::new(data);
    if d.bytes()? != b"idem-trace-sets" || d.u64()? != 1 {
        anyhow::bail!("not a dependency-set index of this idem");
    }
    let n = d.count_of(8)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(d.vec()?);
    }
    if !d.is_empty() {
        anyhow::bail!("trailing bytes after a dependency-set index");
    }
    Ok(out)
}

/// `new` first, then `old` without duplicates of anything before it, at most
/// [`MAX_SETS`].
pub fn merge(new: &[Vec<u8>], old: &[Vec<u8>]) -> Sets {
    let mut out: Sets = Vec::new();
    for s in new.iter().chain(old) {
        if out.len() == MAX_SETS {
            break;
        }
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

impl Db {
    /// The index of a weak key from the database (rewriting its hot file, best effort).
    pub fn trace_sets(&self, weak_key: &[u8; 32]) -> Result<Sets> {
        let data: Option<Vec<u8>> = self
            .conn()?
            .prepare_cached("SELECT data FROM trace_sets WHERE weak_key=?1")?
            .query_row(params![&weak_key[..]], |r| r.get(0))
            .optional()?;
        match data {
            Some(d) => decode_sets(&d).or_else(|e| {
                crate::ui::warn(format!(
                    "dependency-set index is corrupt ({e:#}); ignoring it"
                ));
                Ok(Vec::new())
            }),
            None => Ok(Vec::new()),
        }
    }

    /// Adds entry lists at the front of a weak key's index (an identical older list
    /// moves to the front; the oldest beyond [`MAX_SETS`] are evicted), in one write
    /// transaction that also rewrites the hot file.
    pub fn add_trace_sets(
        &mut self,
        weak_key: &[u8; 32],
        task_key: &[u8; 32],
        new: &[Vec<u8>],
        now_ns: i64,
    ) -> Result<()> {
        self.update_trace_sets(weak_key, task_key, now_ns, |old| merge(new, &old))
    }

    /// Rewrites a weak key's index as `change` says, in one write transaction that also
    /// rewrites the hot file.
    fn update_trace_sets(
        &mut self,
        weak_key: &[u8; 32],
        task_key: &[u8; 32],
        now_ns: i64,
        change: impl FnOnce(Sets) -> Sets,
    ) -> Result<()> {
        let cache_dir = self.cache_dir();
        let tx = self
            .conn_mut()?
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old: Option<Vec<u8>> = tx
            .query_row(
                "SELECT data FROM trace_sets WHERE weak_key=?1",
                params![&weak_key[..]],
                |r| r.get(0),
            )
            .optional()?;
        let old = old.and_then(|d| decode_sets(&d).ok()).unwrap_or_default();
        let data = encode_sets(&change(old));
        tx.execute(
            "INSERT OR REPLACE INTO trace_sets(weak_key, task_key, updated_ns, data) VALUES (?1, ?2, ?3, ?4)",
            params![&weak_key[..], &task_key[..], now_ns, &data],
        )?;
        if super::hot::write_sets(&cache_dir, weak_key, &data).is_err() {
            super::hot::forget_sets(&cache_dir, weak_key)?;
        }
        if let Err(e) = tx.commit() {
            let _ = super::hot::forget_sets(&cache_dir, weak_key);
            return Err(e.into());
        }
        Ok(())
    }

    /// Puts `new` at the front of a weak key's index in place of `old` (the same
    /// dependency set with refreshed fingerprints), hot file included.
    pub fn replace_trace_set(
        &mut self,
        weak_key: &[u8; 32],
        task_key: &[u8; 32],
        old: &[u8],
        new: &[u8],
        now_ns: i64,
    ) -> Result<()> {
        self.update_trace_sets(weak_key, task_key, now_ns, |sets| {
            merge(
                &[new.to_vec()],
                &sets.into_iter().filter(|s| s != old).collect::<Sets>(),
            )
        })
    }

    /// Rewrites a weak key's hot file from the database (a lookup that found no file).
    pub fn refresh_hot_sets(&mut self, weak_key: &[u8; 32]) -> Result<()> {
        let cache_dir = self.cache_dir();
        let tx = self
            .conn_mut()?
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let data: Option<Vec<u8>> = tx
            .query_row(
                "SELECT data FROM trace_sets WHERE weak_key=?1",
                params![&weak_key[..]],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(d) = data {
            if super::hot::write_sets(&cache_dir, weak_key, &d).is_err() {
                super::hot::forget_sets(&cache_dir, weak_key)?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Inside a write transaction that deleted records of `tasks` (gc, forget, verify): drops
/// the indexes of those tasks that have no record left (their sets could only lead to
/// misses), hot files included.
pub(super) fn drop_sets_of_empty_tasks(
    tx: &rusqlite::Connection,
    cache_dir: &std::path::Path,
    tasks: &std::collections::BTreeSet<[u8; 32]>,
) -> Result<()> {
    for task in tasks {
        let weak: Vec<Vec<u8>> = tx
            .prepare_cached(
                "SELECT weak_key FROM trace_sets WHERE task_key=?1 AND NOT EXISTS (SELECT 1 FROM records WHERE task_key=?1)",
            )?
            .query_map(params![&task[..]], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<Vec<u8>>>>()?;
        for w in &weak {
            tx.execute("DELETE FROM trace_sets WHERE weak_key=?1", params![w])?;
            if let Ok(key) = <[u8; 32]>::try_from(w.as_slice()) {
                super::hot::forget_sets(cache_dir, &key)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_puts_new_first_dedups_and_evicts_the_oldest() {
        let old: Sets = (0..MAX_SETS as u8).map(|i| vec![i]).collect();
        let merged = merge(&[vec![200]], &old);
        assert_eq!(merged.len(), MAX_SETS);
        assert_eq!(merged[0], vec![200]);
        assert_eq!(merged[1], vec![0]);
        assert!(
            !merged.contains(&vec![MAX_SETS as u8 - 1]),
            "oldest evicted"
        );
        let again = merge(&[vec![5]], &merged);
        assert_eq!(again[0], vec![5]);
        assert_eq!(again.iter().filter(|s| **s == vec![5]).count(), 1);
    }

    #[test]
    fn encoding_roundtrips_and_rejects_garbage() {
        let sets = vec![vec![1, 2], vec![], vec![3]];
        assert_eq!(decode_sets(&encode_sets(&sets)).unwrap(), sets);
        let mut bad = encode_sets(&sets);
        bad.push(0);
        assert!(decode_sets(&bad).is_err());
        assert!(decode_sets(b"junk").is_err());
    }
}
