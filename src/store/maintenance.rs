//! The database queries of maintenance: the cache's size, LRU order and blob references
//! for gc, every record for verify, deletions for forget and clear. SQL stays in
//! `store/`; these never run on the hit path.

use anyhow::Result;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::record::Record;
use super::sqlite::Db;

/// Sizes the cache is measured by (no filesystem walk): the records' own bytes and
/// the bytes of the distinct blobs they reference.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheSize {
    pub records: u64,
    pub record_bytes: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
}

impl CacheSize {
    pub fn total(&self) -> u64 {
        self.record_bytes + self.blob_bytes
    }
}

/// For gc: one record's LRU time and encoded size.
#[derive(Debug, Clone, Copy)]
pub struct LruRow {
    pub id: i64,
    pub last_used_ns: i64,
    pub data_bytes: u64,
}

impl Db {
    pub fn cache_size(&self) -> Result<CacheSize> {
        let (records, record_bytes): (i64, i64) = self.conn()?.query_row(
            "SELECT COUNT(*), COALESCE(SUM(length(data)), 0) FROM records",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (blobs, blob_bytes): (i64, i64) = self.conn()?.query_row(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM (SELECT hash, MAX(size) AS size FROM record_blobs GROUP BY hash)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(CacheSize {
            records: records as u64,
            record_bytes: record_bytes as u64,
            blobs: blobs as u64,
            blob_bytes: blob_bytes as u64,
        })
    }

    /// The oldest last-use time of any record (an index lookup).
    pub fn oldest_use_ns(&self) -> Result<Option<i64>> {
        Ok(self
            .conn()?
            .query_row("SELECT MIN(last_used_ns) FROM records", [], |r| r.get(0))?)
    }

    /// Every record, least recently used first.
    pub fn lru_rows(&self) -> Result<Vec<LruRow>> {
        let mut stmt = self.conn()?.prepare(
            "SELECT id, last_used_ns, length(data) FROM records ORDER BY last_used_ns ASC, id ASC",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(LruRow {
                    id: r.get(0)?,
                    last_used_ns: r.get(1)?,
                    data_bytes: r.get::<_, i64>(2)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Every (record id, blob hash, size) reference.
    pub fn blob_refs(&self) -> Result<Vec<(i64, [u8; 32], u64)>> {
        let mut stmt = self
            .conn()?
            .prepare("SELECT record_id, hash, size FROM record_blobs")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, h, size)| {
                Some((id, <[u8; 32]>::try_from(h.as_slice()).ok()?, size as u64))
            })
            .collect())
    }

    /// Ids of the records that reference a blob.
    pub fn records_with_blob(&self, hash: &[u8; 32]) -> Result<Vec<i64>> {
        let mut stmt = self
            .conn()?
            .prepare_cached("SELECT record_id FROM record_blobs WHERE hash=?1")?;
        let ids = stmt
            .query_map(params![&hash[..]], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        Ok(ids)
    }

    /// Ids of a task's records.
    pub fn records_of_task(&self, task_key: &[u8; 32]) -> Result<Vec<i64>> {
        let mut stmt = self
            .conn()?
            .prepare("SELECT id FROM records WHERE task_key=?1")?;
        let ids = stmt
            .query_map(params![&task_key[..]], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        Ok(ids)
    }

    /// Ids of the records made under an execution key.
    pub fn records_of_exec_key(&self, key: &str) -> Result<Vec<i64>> {
        let mut stmt = self
            .conn()?
            .prepare("SELECT id FROM records WHERE exec_key=?1")?;
        let ids = stmt
            .query_map(params![key], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        Ok(ids)
    }

    /// Forgets an execution key's run count; true when it existed.
    pub fn delete_exec_key(&mut self, key: &str) -> Result<bool> {
        Ok(self
            .conn()?
            .execute("DELETE FROM exec_keys WHERE key=?1", params![key])?
            > 0)
    }

    pub fn delete_stat_cache(&mut self, task_key: &[u8; 32]) -> Result<()> {
        super::hot::forget_stat(&self.cache_dir(), task_key)
    }

    /// Every record, the hashes they reference, execution keys and stat caches; the
    /// counters are kept. Blob files are the caller's to sweep afterwards.
    pub fn clear_all(&mut self) -> Result<u64> {
        let cache_dir = self.cache_dir();
        let tx = self
            .conn_mut()?
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n: i64 = tx.query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))?;
        tx.execute_batch(
            "DELETE FROM record_blobs; DELETE FROM records; DELETE FROM exec_keys; DELETE FROM stat_cache; DELETE FROM trace_sets;",
        )?;
        super::hot::invalidate_all(&cache_dir, false)?;
        tx.commit()?;
        Ok(n as u64)
    }

    /// Removes every hot record file under the write lock (`verify`); hits rebuild them
    /// from the database.
    pub fn invalidate_hot(&mut self) -> Result<()> {
        let cache_dir = self.cache_dir();
        let tx = self
            .conn_mut()?
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        super::hot::invalidate_all(&cache_dir, true)?;
        tx.commit()?;
        Ok(())
    }

    /// Resets every counter.
    pub fn zero_stats(&mut self) -> Result<()> {
        self.conn()?.execute("DELETE FROM stats", [])?;
        Ok(())
    }

    /// Atomically claims a periodic job: true (and `name` set to `now_ns`) when the
    /// last claim is older than `interval_ns` or absent; false otherwise.
    pub fn claim_interval(&mut self, name: &str, now_ns: i64, interval_ns: i64) -> Result<bool> {
        let tx = self
            .conn_mut()?
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE name=?1", params![name], |r| {
                r.get(0)
            })
            .optional()?;
        let last = last.and_then(|v| v.parse::<i64>().ok());
        if let Some(last) = last {
            if now_ns.saturating_sub(last) < interval_ns && now_ns >= last {
                return Ok(false);
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta(name, value) VALUES (?1, ?2)",
            params![name, now_ns.to_string()],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Raw encoded records by id (verify decodes them itself to report corrupt ones).
    pub fn record_data(&self) -> Result<Vec<(i64, Vec<u8>)>> {
        let mut stmt = self
            .conn()?
            .prepare("SELECT id, data FROM records ORDER BY id")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Newest records with the same display command line but another task key (for
    /// explain's "closest task").
    pub fn latest_same_argv(
        &self,
        argv: &str,
        not_task: &[u8; 32],
    ) -> Result<Option<(i64, Record)>> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn()?
            .query_row(
                "SELECT id, data FROM records WHERE argv=?1 AND task_key<>?2 ORDER BY created_ns DESC, id DESC LIMIT 1",
                params![argv, &not_task[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(id, data)| Self::decode_row(id, data)).transpose()
    }

    /// Every distinct (hash, size) referenced by a record.
    pub fn referenced_blobs(&self) -> Result<Vec<([u8; 32], u64)>> {
        let mut stmt = self
            .conn()?
            .prepare("SELECT hash, MAX(size) FROM record_blobs GROUP BY hash")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(h, s)| Some((<[u8; 32]>::try_from(h.as_slice()).ok()?, s as u64)))
            .collect())
    }
}
