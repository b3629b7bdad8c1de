//! The cache database's schema: its version, the migrations that reach it, and opening
//! a database file (private, never through a link) switched to WAL and migrated by one
//! process at a time. It never reads or writes records.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

/// The cache schema this idem writes. Older databases are migrated forward; newer ones
/// are refused.
pub const SCHEMA_VERSION: i64 = 3;

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
    // v3: the dependency-set index of traced tasks (`--trace`, engine/traced.rs): per
    // weak key, the newest entry lists (deps::trace::encode_entries), in `data`. Hot
    // files `hot/<weak>.sets` mirror it; an idem that predates them must not write here.
    "CREATE TABLE trace_sets(
        weak_key BLOB PRIMARY KEY,
        task_key BLOB NOT NULL,
        updated_ns INTEGER NOT NULL,
        data BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX trace_sets_task ON trace_sets(task_key);",
];

/// Settings that do not persist in the file. WAL commits need no fsync with NORMAL
/// (durability of the last commits is traded, never integrity); mmap reads large
/// blobs without copying them out of the page cache.
const PER_CONNECTION: &str = "PRAGMA synchronous=NORMAL; PRAGMA mmap_size=268435456;";

/// Opens the database file, switching a new one to WAL and migrating an old one.
pub(super) fn connect(path: &Path) -> Result<Connection> {
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
            // read in ~20 page reads instead of ~300. Only possible before WAL. A new,
            // empty file takes the page size as it is: rewriting it with VACUUM cost
            // four fsyncs (~25 ms) on every first run of an empty cache.
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            conn.execute_batch(if pages == 0 {
                "PRAGMA page_size=65536;"
            } else {
                "PRAGMA page_size=65536; VACUUM;"
            })?;
        }
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!("cannot switch to WAL mode (got {mode})");
        }
        // The migration commits in WAL mode like every later write: with NORMAL, no
        // fsync of its own (durability of the last commit traded, never integrity).
        conn.execute_batch(PER_CONNECTION)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(conn: &Connection) -> (i64, String, i64) {
        let page: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        (page, mode, version)
    }

    #[test]
    fn a_new_file_gets_large_pages_and_wal_without_vacuum() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idem.db");
        let conn = connect(&path).unwrap();
        assert_eq!(settings(&conn), (65536, "wal".into(), SCHEMA_VERSION));
    }

    #[test]
    fn an_unversioned_file_with_content_is_rewritten_with_large_pages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idem.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE other(x); INSERT INTO other VALUES (1);")
            .unwrap();
        let conn = connect(&path).unwrap();
        assert_eq!(settings(&conn), (65536, "wal".into(), SCHEMA_VERSION));
        let n: i64 = conn
            .query_row("SELECT count(*) FROM other", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }
}
