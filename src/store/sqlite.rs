//! The local SQLite database: records, stat caches, execution keys and counters. WAL
//! mode, a long busy timeout and short IMMEDIATE write transactions, so that many idem
//! processes on one cache never fail with "database is locked". It never touches blobs.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::record::Record;
use super::repair::{with_repair_hint, Corrupt};
use super::Counter;

/// The cache schema this idem writes. Older databases are migrated forward; newer ones
/// are refused.
pub const SCHEMA_VERSION: i64 = 2;

const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE records(
        id INTEGER PRIMARY KEY,
        task_key BLOB NOT NULL,
        state_key BLOB NOT NULL,
        exec_key TEXT,
        created_ns INTEGER NOT NULL,
        last_used_ns INTEGER NOT NULL,
        hits INTEGER NOT NULL DEFAULT 0,
        size INTEGER NOT NULL,
        exit_code INTEGER NOT NULL,
        duration_ns INTEGER NOT NULL,
        argv TEXT NOT NULL,
        data BLOB NOT NULL,
        UNIQUE(task_key, state_key)
    );
    CREATE INDEX records_task ON records(task_key, created_ns);
    CREATE INDEX records_exec_key ON records(exec_key, created_ns) WHERE exec_key IS NOT NULL;
    CREATE INDEX records_lru ON records(last_used_ns);
    CREATE TABLE record_blobs(
        record_id INTEGER NOT NULL,
        hash BLOB NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY(record_id, hash)
    ) WITHOUT ROWID;
    CREATE INDEX record_blobs_hash ON record_blobs(hash);
    CREATE TABLE stat_cache(task_key BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE exec_keys(
        key TEXT PRIMARY KEY,
        identity BLOB NOT NULL,
        argv TEXT NOT NULL,
        successes INTEGER NOT NULL DEFAULT 0,
        created_ns INTEGER NOT NULL
    );
    CREATE TABLE stats(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE meta(name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
    // v2: stat caches live in hot files (store/hot.rs), next to the hot record files
    // every writer must keep in step with `records`; an idem that predates them must
    // not write here, and the version bump makes it refuse the cache.
    "DELETE FROM stat_cache;",
];

/// Settings that do not persist in the file. WAL commits need no fsync with NORMAL
/// (durability of the last commits is traded, never integrity); mmap reads large
/// blobs without copying them out of the page cache.
const PER_CONNECTION: &str = "PRAGMA synchronous=NORMAL; PRAGMA mmap_size=268435456;";

pub struct Db {
    conn: OnceCell<Connection>,
    pub path: PathBuf,
}

/// A row of `exec_keys`.
#[derive(Debug, Clone)]
pub struct ExecKeyRow {
    pub identity: Vec<u8>,
    pub argv: String,
    pub successes: u64,
}

/// Cheap summary of a record row (for list, gc, stats).
#[derive(Debug, Clone)]
pub struct RecordRow {
    pub id: i64,
    pub created_ns: i64,
    pub last_used_ns: i64,
    pub hits: i64,
    pub size: i64,
    pub exit_code: i32,
    pub duration_ns: i64,
    pub argv: String,
}

impl Db {
    /// A handle on the cache's database, whose directory and file are checked private
    /// (one `stat` and one `lstat`; someone else's is refused with
    /// [`super::private::UnsafeCache`]). Nothing is opened yet: the connection is made on
    /// the first query, so a hit answered from the hot files never pays for SQLite.
    pub fn open(cache_dir: &Path) -> Result<Self> {
        super::private::ensure_dir(cache_dir)?;
        let path = cache_dir.join("idem.db");
        super::private::ensure_db_file(&path)?;
        Ok(Db {
            conn: OnceCell::new(),
            path,
        })
    }

    /// The connection, opened (and migrated) on first use.
    pub(super) fn conn(&self) -> Result<&Connection> {
        if let Some(c) = self.conn.get() {
            return Ok(c);
        }
        let c = connect(&self.path)
            .map_err(|e| with_repair_hint(e, &self.path))
            .with_context(|| format!("cache database {}", self.path.display()))?;
        Ok(self.conn.get_or_init(|| c))
    }

    pub(super) fn conn_mut(&mut self) -> Result<&mut Connection> {
        self.conn()?;
        self.conn
            .get_mut()
            .context("the connection was opened by conn() just above")
    }

    /// Opens the database and folds the hit log into it, so counters and LRU times
    /// are exact (for stats, list, gc). `run` uses [`Db::open`] and folds only when
    /// the log has grown large.
    pub fn open_folded(cache_dir: &Path) -> Result<Self> {
        let mut db = Self::open(cache_dir)?;
        db.fold_hits(0)?;
        Ok(db)
    }

    /// [`Db::open_folded`] for maintenance commands, which must work on a damaged
    /// database: SQLite's `quick_check` runs first, and damage is a [`Corrupt`] error
    /// the caller repairs by moving the file aside.
    pub fn open_checked(cache_dir: &Path) -> Result<Self> {
        let mut db = Self::open(cache_dir)?;
        let verdict: String = db
            .conn()?
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|e| with_repair_hint(e.into(), &db.path))?;
        if verdict != "ok" {
            // quick_check reports over several lines; a warning is one.
            let verdict = verdict.split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(Corrupt {
                what: format!(
                    "cache database {} is damaged ({verdict})",
                    db.path.display()
                ),
                hint: None,
            }
            .into());
        }
        db.fold_hits(0).map_err(|e| with_repair_hint(e, &db.path))?;
        Ok(db)
    }

    pub(super) fn hit_log(&self) -> PathBuf {
        self.path.with_file_name("hits.log")
    }

    fn decode_row(id: i64, data: Vec<u8>) -> Result<(i64, Record)> {
        let rec = Record::decode(&data).with_context(|| format!("record {id} is corrupt"))?;
        Ok((id, rec))
    }

    /// The record for (task, state). A row that does not decode (corrupt) is reported
    /// once and treated as absent, so the run that follows overwrites it.
    pub fn lookup_with(
        &self,
        task_key: &[u8; 32],
        state_key: &[u8; 32],
        decode: fn(&[u8]) -> Result<Record>,
    ) -> Result<Option<(i64, Record)>> {
        // Decoded straight from SQLite's buffer: a large task's record is ~1 MB that a
        // copy into a Vec would only allocate and drop again.
        let row: Option<(i64, Result<Record>)> = self
            .conn()?
            .prepare_cached("SELECT id, data FROM records WHERE task_key=?1 AND state_key=?2")
            .and_then(|mut stmt| {
                stmt.query_row(params![&task_key[..], &state_key[..]], |r| {
                    let id: i64 = r.get(0)?;
                    Ok((id, decode(r.get_ref(1)?.as_blob()?)))
                })
                .optional()
            })
            .map_err(|e| with_repair_hint(e.into(), &self.path))?;
        match row
            .map(|(id, rec)| {
                rec.map(|r| (id, r))
                    .with_context(|| format!("record {id} is corrupt"))
            })
            .transpose()
        {
            Ok(found) => Ok(found),
            Err(e) => {
                crate::ui::warn(format!(
                    "{e:#}; running the command and recording it afresh"
                ));
                Ok(None)
            }
        }
    }

    /// The record for (task, state), whole.
    pub fn lookup(
        &self,
        task_key: &[u8; 32],
        state_key: &[u8; 32],
    ) -> Result<Option<(i64, Record)>> {
        self.lookup_with(task_key, state_key, Record::decode)
    }

    /// The record for (task, state) without its dependency list (a hit's lookup).
    pub fn lookup_for_replay(
        &self,
        task_key: &[u8; 32],
        state_key: &[u8; 32],
    ) -> Result<Option<(i64, Record)>> {
        self.lookup_with(task_key, state_key, Record::decode_for_replay)
    }

    /// The newest record of a task, whatever its state (for explain and -v).
    pub fn latest_for_task(&self, task_key: &[u8; 32]) -> Result<Option<(i64, Record)>> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn()?
            .prepare_cached(
                "SELECT id, data FROM records WHERE task_key=?1 ORDER BY created_ns DESC, id DESC LIMIT 1",
            )?
            .query_row(params![&task_key[..]], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(id, data)| Self::decode_row(id, data)).transpose()
    }

    /// The newest successful record made under an execution key.
    pub fn latest_for_exec_key(&self, key: &str) -> Result<Option<(i64, Record)>> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn()?
            .prepare_cached(
                "SELECT id, data FROM records WHERE exec_key=?1 ORDER BY created_ns DESC, id DESC LIMIT 1",
            )?
            .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(id, data)| Self::decode_row(id, data)).transpose()
    }

    pub fn record_by_id(&self, id: i64) -> Result<Option<Record>> {
        let row: Option<Vec<u8>> = self
            .conn()?
            .prepare_cached("SELECT data FROM records WHERE id=?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?;
        row.map(|data| Self::decode_row(id, data).map(|(_, r)| r))
            .transpose()
    }

    /// The idem.toml task a record was made by (for list): decoded without the
    /// dependency list, which can be a megabyte. A corrupt row has no task.
    pub fn task_of(&self, id: i64) -> Result<Option<String>> {
        let row: Option<Vec<u8>> = self
            .conn()?
            .prepare_cached("SELECT data FROM records WHERE id=?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?;
        Ok(row.and_then(|data| Record::decode_for_replay(&data).ok()?.task))
    }

    /// Stores a record (replacing one with the same task and state) and its blob
    /// references, in one short transaction. Blobs must already be stored.
    pub fn insert_record(&mut self, rec: &Record, last_used_ns: i64) -> Result<i64> {
        self.insert_record_counting(rec, last_used_ns, None)
    }

    /// [`Db::insert_record`], also counting a successful run under an execution key
    /// (key, identity, display argv) in the same transaction: a success is never
    /// stored without being counted, so `--key` can never run twice.
    pub fn insert_record_counting(
        &mut self,
        rec: &Record,
        last_used_ns: i64,
        exec: Option<(&str, &[u8], &str)>,
    ) -> Result<i64> {
        let data = rec.encode();
        let cache_dir = self.cache_dir();
        let tx = self
            .conn_mut()?
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old: Option<i64> = tx
            .query_row(
                "SELECT id FROM records WHERE task_key=?1 AND state_key=?2",
                params![&rec.task_key[..], &rec.state_key[..]],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(old) = old {
            tx.execute("DELETE FROM record_blobs WHERE record_id=?1", params![old])?;
            tx.execute("DELETE FROM records WHERE id=?1", params![old])?;
        }
        tx.execute(
            "INSERT INTO records(task_key, state_key, exec_key, created_ns, last_used_ns, hits, size, exit_code, duration_ns, argv, data)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9, ?10)",
            params![
                &rec.task_key[..],
                &rec.state_key[..],
                rec.exec_key,
                rec.created_ns,
                last_used_ns,
                rec.total_size() as i64,
                rec.exit_code,
                rec.duration_ns as i64,
                rec.display_argv(),
                data
            ],
        )?;
        let id = tx.last_insert_rowid();
        // Checked while holding the write lock that gc's blob sweep also holds: either
        // gc saw this record's references (and kept the blobs) or the blobs are already
        // gone and the record is refused. A record never points at a missing blob.
        let blobs = super::blobs::BlobStore::new(&cache_dir);
        for b in rec.blobs() {
            if !blobs.contains(&b) {
                bail!(
                    "blob {} vanished before its record was stored (a concurrent gc?)",
                    crate::encode::hex(&b.hash)
                );
            }
        }
        for b in rec.blobs() {
            tx.execute(
                "INSERT OR IGNORE INTO record_blobs(record_id, hash, size) VALUES (?1, ?2, ?3)",
                params![id, &b.hash[..], b.size as i64],
            )?;
        }
        if let Some((key, identity, argv)) = exec {
            tx.execute(
                "INSERT INTO exec_keys(key, identity, argv, successes, created_ns) VALUES (?1, ?2, ?3, 1, ?4)
                 ON CONFLICT(key) DO UPDATE SET successes = successes + 1",
                params![key, identity, argv, rec.created_ns],
            )?;
        }
        rebuild_hot(&tx, &cache_dir, &rec.task_key)?;
        commit_or_invalidate(tx, &cache_dir, &[rec.task_key])?;
        Ok(id)
    }

    /// The cache directory this database lives in.
    fn cache_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }

    /// Rewrites a task's hot file from the database, under the write lock (a hit that
    /// found its record here, not in the hot file).
    pub fn refresh_hot(&mut self, task_key: &[u8; 32]) -> Result<()> {
        let cache_dir = self.cache_dir();
        let tx = self
            .conn_mut()?
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        rebuild_hot(&tx, &cache_dir, task_key)?;
        commit_or_invalidate(tx, &cache_dir, &[*task_key])
    }

    pub fn add_stat(&mut self, counter: Counter, delta: i64) -> Result<()> {
        add_stat(self.conn()?, counter, delta)
    }

    pub fn stat(&self, counter: Counter) -> Result<i64> {
        let name = counter.name();
        Ok(self
            .conn()?
            .query_row(
                "SELECT value FROM stats WHERE name=?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    pub fn exec_key(&self, key: &str) -> Result<Option<ExecKeyRow>> {
        Ok(self
            .conn()?
            .query_row(
                "SELECT identity, argv, successes FROM exec_keys WHERE key=?1",
                params![key],
                |r| {
                    Ok(ExecKeyRow {
                        identity: r.get(0)?,
                        argv: r.get(1)?,
                        successes: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .optional()?)
    }

    /// Deletes records (and their blob references) by id, in one transaction.
    /// Their tasks' hot files are removed in the same transaction.
    pub fn delete_records(&mut self, ids: &[i64]) -> Result<()> {
        let cache_dir = self.cache_dir();
        let tx = self
            .conn_mut()?
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut tasks = std::collections::BTreeSet::new();
        for id in ids {
            let task: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT task_key FROM records WHERE id=?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(key) = task.and_then(|t| <[u8; 32]>::try_from(t.as_slice()).ok()) {
                tasks.insert(key);
            }
            tx.execute("DELETE FROM record_blobs WHERE record_id=?1", params![id])?;
            tx.execute("DELETE FROM records WHERE id=?1", params![id])?;
        }
        for key in &tasks {
            super::hot::invalidate(&cache_dir, key)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn record_rows(
        &self,
        sql_tail: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<RecordRow>> {
        let sql = format!(
            "SELECT id, created_ns, last_used_ns, hits, size, exit_code, duration_ns, argv FROM records {sql_tail}"
        );
        let mut stmt = self.conn()?.prepare(&sql)?;
        let rows = stmt
            .query_map(args, |r| {
                Ok(RecordRow {
                    id: r.get(0)?,
                    created_ns: r.get(1)?,
                    last_used_ns: r.get(2)?,
                    hits: r.get(3)?,
                    size: r.get(4)?,
                    exit_code: r.get(5)?,
                    duration_ns: r.get(6)?,
                    argv: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

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
            "DELETE FROM record_blobs; DELETE FROM records; DELETE FROM exec_keys; DELETE FROM stat_cache;",
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

impl Db {
    /// Calls `f(hash, referenced)` for each hash inside one IMMEDIATE transaction: a
    /// concurrent `insert_record` (which checks its blob files exist under the same
    /// lock) lands either before the check (the blob is kept) or after `f` removed it
    /// (the insert is refused), never in between.
    pub fn for_each_unreferenced(
        &mut self,
        hashes: &[[u8; 32]],
        mut f: impl FnMut(&[u8; 32], bool) -> Result<()>,
    ) -> Result<()> {
        let tx = self
            .conn_mut()?
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context("cannot lock the cache database for gc")?;
        for hash in hashes {
            f(hash, blob_referenced(&tx, hash)?)?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Inside a write transaction: is this blob referenced by any record?
fn blob_referenced(conn: &Connection, hash: &[u8; 32]) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM record_blobs WHERE hash=?1)")?
        .query_row(params![&hash[..]], |r| r.get(0))?)
}

pub(super) fn add_stat(conn: &Connection, counter: Counter, delta: i64) -> Result<()> {
    let name = counter.name();
    conn.prepare_cached(
        "INSERT INTO stats(name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = value + ?2",
    )?
    .execute(params![name, delta])?;
    Ok(())
}

/// Opens the database file, switching a new one to WAL and migrating an old one.
fn connect(path: &Path) -> Result<Connection> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .with_context(|| format!("cannot open cache database {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(120))?;
    prepare(&mut conn, path)?;
    Ok(conn)
}

fn prepare(conn: &mut Connection, path: &Path) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        bail!(
            "was written by a newer idem (cache schema {version}, this idem knows {SCHEMA_VERSION}): upgrade idem or use another --cache-dir"
        );
    }
    if version < SCHEMA_VERSION {
        // First use (or an upgrade): one process at a time switches to WAL and
        // migrates; SQLite's busy handler does not cover the journal-mode switch,
        // so concurrent first runs could otherwise fail with "database is locked".
        let lock_path = path.with_file_name("init.lock");
        let lock = super::private::open_rw(&lock_path, false)?;
        crate::lease::flock(&lock, true)
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version >= SCHEMA_VERSION {
            conn.execute_batch(PER_CONNECTION)?;
            return Ok(());
        }
        if version == 0 {
            // Large pages: a record or stat cache of a 10,000-file task is ~1 MB,
            // read in ~20 page reads instead of ~300. Only possible before WAL.
            conn.execute_batch("PRAGMA page_size=65536; VACUUM;")?;
        }
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!("cannot switch to WAL mode (got {mode})");
        }
        migrate(conn)?;
    }
    conn.execute_batch(PER_CONNECTION)?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        bail!("was written by a newer idem (cache schema {version})");
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)
            .with_context(|| format!("migration to schema {}", i + 1))?;
    }
    tx.execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION}"))?;
    tx.commit()?;
    Ok(())
}

/// Inside a write transaction: rewrites a task's hot file from its newest records. If
/// the file cannot be written it is removed; if it cannot be removed either, the error
/// aborts the transaction (a hot file must never disagree with the database).
fn rebuild_hot(conn: &Connection, cache_dir: &Path, task_key: &[u8; 32]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, data FROM records WHERE task_key=?1 ORDER BY created_ns DESC, id DESC LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![&task_key[..], super::hot::MAX_RECORDS as i64])?;
    let mut recs = Vec::new();
    while let Some(row) = rows.next()? {
        // A corrupt record stays out: its lookup falls through to SQLite, which
        // reports it.
        if let Ok(rec) = Record::decode_for_replay(row.get_ref(1)?.as_blob()?) {
            recs.push((row.get::<_, i64>(0)?, rec));
        }
    }
    if super::hot::write_records(cache_dir, task_key, &recs).is_err() {
        super::hot::invalidate(cache_dir, task_key)?;
    }
    Ok(())
}

/// Commits; if the commit fails, the hot files written inside the transaction are
/// removed, since they may name records that are not in the database.
fn commit_or_invalidate(
    tx: rusqlite::Transaction<'_>,
    cache_dir: &Path,
    tasks: &[[u8; 32]],
) -> Result<()> {
    if let Err(e) = tx.commit() {
        for key in tasks {
            let _ = super::hot::invalidate(cache_dir, key);
        }
        return Err(e.into());
    }
    Ok(())
}
