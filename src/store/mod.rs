//! Storage: the local tier (SQLite database + content-addressed blobs) and the remote
//! tiers behind one trait. Storage knows nothing of how a state was computed.

pub mod blobs;
pub mod gc;
pub mod hitlog;
pub mod hot;
pub mod maintenance;
pub mod private;
pub mod record;
pub mod remote;
pub mod repair;
pub mod schema;
pub mod sqlite;
pub mod trace_sets;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// `--cache-dir`, else `IDEM_CACHE_DIR` (both via clap), else `$XDG_CACHE_HOME/idem`,
/// else `~/.cache/idem`.
pub fn cache_dir(arg: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = arg {
        return Ok(p.to_path_buf());
    }
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("idem"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .context("neither --cache-dir, IDEM_CACHE_DIR, XDG_CACHE_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache").join("idem"))
}

/// The local tier, opened.
pub struct Cache {
    pub dir: PathBuf,
    pub db: sqlite::Db,
    pub blobs: blobs::BlobStore,
}

impl Cache {
    /// Opens the cache for inspection or maintenance: hit counters folded in. A damaged
    /// database is moved aside (with a warning) and a fresh one started, so `clear`,
    /// `gc`, `verify` and `stats` repair a cache instead of failing on it.
    pub fn open(dir: &Path) -> Result<Self> {
        let db = match sqlite::Db::open_checked(dir) {
            Ok(db) => db,
            Err(e) if repair::is_corrupt(&e) => {
                let aside = repair::move_aside(dir)?;
                let why = repair::damage(&e);
                eprintln!(
                    "idem: warning: {why}; moved it aside to {} and started a fresh cache database",
                    aside.display()
                );
                sqlite::Db::open_folded(dir)?
            }
            Err(e) => return Err(e),
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            db,
            blobs: blobs::BlobStore::new(dir),
        })
    }

    /// Opens the cache for `run`: nothing written on the way in.
    pub fn open_for_run(dir: &Path) -> Result<Self> {
        let db = sqlite::Db::open(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            db,
            blobs: blobs::BlobStore::new(dir),
        })
    }
}

/// Which tier served a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Local,
    Remote,
}

/// The cache's counters (`idem stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Hits,
    RemoteHits,
    Misses,
    Uploads,
    /// Nanoseconds of command time that replays saved.
    SavedNs,
}

impl Counter {
    /// The counter's name in the database and in `hits.log`.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Hits => "hits",
            Counter::RemoteHits => "remote_hits",
            Counter::Misses => "misses",
            Counter::Uploads => "uploads",
            Counter::SavedNs => "saved_ns",
        }
    }

    /// The hit counters, as `hits.log` names them.
    pub fn hit_from_name(name: &str) -> Option<Counter> {
        match name {
            "hits" => Some(Counter::Hits),
            "remote_hits" => Some(Counter::RemoteHits),
            _ => None,
        }
    }
}
