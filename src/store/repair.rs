//! Repairing a damaged cache database: recognising corruption in an error, saying how
//! to repair it, and moving the damaged file aside with what was derived from it (hot
//! files, hit log). It never deletes a database.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Damage to the database file itself (not "busy", not "full"): what moving the file
/// aside repairs.
#[derive(Debug)]
pub struct Corrupt {
    /// What is damaged and how it showed.
    pub what: String,
    /// How to repair it, for those (like `run`) that do not repair it themselves.
    pub hint: Option<String>,
}

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)?;
        match &self.hint {
            Some(h) => write!(f, "; {h}"),
            None => Ok(()),
        }
    }
}

/// The damage `e` reports, without the repair hint (for the warning of a repair).
pub fn damage(e: &anyhow::Error) -> String {
    e.chain()
        .find_map(|c| c.downcast_ref::<Corrupt>().map(|c| c.what.clone()))
        .unwrap_or_else(|| format!("{e:#}"))
}

impl std::error::Error for Corrupt {}

/// True when `e` (anywhere in its chain) says the database file is damaged.
pub fn is_corrupt(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<Corrupt>().is_some()
            || matches!(
                c.downcast_ref::<rusqlite::Error>(),
                Some(rusqlite::Error::SqliteFailure(f, _))
                    if matches!(f.code, rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            )
    })
}

/// A corruption error, reworded to say how to repair it; other errors unchanged.
pub fn with_repair_hint(e: anyhow::Error, path: &Path) -> anyhow::Error {
    if !is_corrupt(&e) || e.chain().any(|c| c.downcast_ref::<Corrupt>().is_some()) {
        return e;
    }
    anyhow::Error::new(Corrupt {
        what: format!("{e:#}"),
        hint: Some(format!(
            "repair it with `idem clear --yes` (moves {} aside and starts a fresh cache)",
            path.display()
        )),
    })
}

/// Moves a corrupt database (its write-ahead log and its hit log too) aside to
/// `idem.db.corrupt-<UTC time>` and drops its shared-memory index and the hot files made
/// from it, so the next open starts a fresh one and nothing answers a hit for records
/// the fresh database (what `list` and `forget` see) does not hold. Returns where it went.
pub fn move_aside(cache_dir: &Path) -> Result<PathBuf> {
    // Before (a failure leaves the database where it was) and after (a run that was
    // still reading the old database may have rewritten one meanwhile).
    drop_hot_files(cache_dir)?;
    let db = cache_dir.join("idem.db");
    let stamp: String = crate::commands::ui::utc(crate::clock::real_now_ns())
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let mut aside = cache_dir.join(format!("idem.db.corrupt-{stamp}"));
    if std::fs::symlink_metadata(&aside).is_ok() {
        aside = cache_dir.join(format!("idem.db.corrupt-{stamp}-{}", std::process::id()));
    }
    std::fs::rename(&db, &aside)
        .with_context(|| format!("cannot move {} aside to {}", db.display(), aside.display()))?;
    let mut wal = aside.clone().into_os_string();
    wal.push("-wal");
    let _ = std::fs::rename(cache_dir.join("idem.db-wal"), wal);
    let _ = std::fs::remove_file(cache_dir.join("idem.db-shm"));
    // The hit counts of the old database are not folded into the fresh one.
    let mut log = aside.clone().into_os_string();
    log.push("-hits.log");
    if let Err(e) = std::fs::rename(cache_dir.join("hits.log"), &log) {
        if e.kind() != std::io::ErrorKind::NotFound {
            let _ = std::fs::remove_file(cache_dir.join("hits.log"));
        }
    }
    drop_hot_files(cache_dir)?;
    Ok(aside)
}

fn drop_hot_files(cache_dir: &Path) -> Result<()> {
    super::hot::invalidate_all(cache_dir, false).with_context(|| {
        format!(
            "cannot drop the hot files of the damaged database in {}",
            cache_dir.display()
        )
    })
}
