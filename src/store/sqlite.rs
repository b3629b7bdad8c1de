//! The local SQLite database: records, stat caches, execution keys and counters. WAL
//! mode, a long busy timeout and short IMMEDIATE write transactions, so that many idem
//! processes on one cache never fail with "database is locked". It never touches blobs.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::record::Record;
use super::repair::{with_repair_hint, Corrupt};
use super::schema::connect;
pub use super::schema::SCHEMA_VERSION;
use super::Counter;

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

    pub(super) fn decode_row(id: i64, data: Vec<u8>) -> Result<(i64, Record)> {
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
    pub(super) fn cache_dir(&self) -> PathBuf {
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
        super::trace_sets::drop_sets_of_empty_tasks(&tx, &cache_dir, &tasks)?;
        tx.commit()?;
        Ok(())
    }

    /// One row of `idem list` / `idem show`, by record id.
    pub fn record_row(&self, id: i64) -> Result<Option<RecordRow>> {
        Ok(self
            .record_rows_where("WHERE id=?1", &[&id])?
            .into_iter()
            .next())
    }

    /// The rows matching `filter`, newest first.
    pub fn record_rows(&self, filter: &RecordFilter) -> Result<Vec<RecordRow>> {
        let mut tail = String::from("WHERE 1=1");
        let mut params: Vec<&dyn rusqlite::ToSql> = Vec::new();
        if let Some(pat) = &filter.argv_contains {
            params.push(pat);
            tail.push_str(&format!(" AND instr(argv, ?{}) > 0", params.len()));
        }
        if let Some(since) = &filter.created_since_ns {
            params.push(since);
            tail.push_str(&format!(" AND created_ns >= ?{}", params.len()));
        }
        params.push(&filter.limit);
        tail.push_str(&format!(
            " ORDER BY created_ns DESC, id DESC LIMIT ?{}",
            params.len()
        ));
        self.record_rows_where(&tail, &params)
    }

    fn record_rows_where(
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

/// Which records `idem list` shows.
#[derive(Debug, Clone)]
pub struct RecordFilter {
    /// Only command lines containing this text.
    pub argv_contains: Option<String>,
    /// Only records made at or after this time.
    pub created_since_ns: Option<i64>,
    /// At most this many, newest first.
    pub limit: i64,
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
