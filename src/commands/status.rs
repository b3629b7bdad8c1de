//! `idem status`: would `idem run` with these arguments be a hit? Exit 0 on hit, 1 on
//! miss, silent without -v. It snapshots dependencies like run does but never runs,
//! replays or records anything (it only refreshes the task's stat cache).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};

use crate::cli::RunArgs;
use crate::commands::ui;
use crate::deps::{DepState, Kind};
use crate::run::{self, Prepared, ProgramError, Snapshot};
use crate::store::record::Record;
use crate::store::Cache;

/// The task as it stands now: prepared arguments, the open cache and the snapshot.
pub struct Current {
    pub p: Prepared,
    pub cache: Cache,
    /// `Err(message)` when the program cannot be resolved (a run would fail).
    pub snap: std::result::Result<Snapshot, String>,
}

/// Prepares, opens the cache and snapshots every dependency (with a spinner when
/// hashing takes a while). URL states are checked as a run would.
pub fn evaluate(args: &RunArgs) -> Result<Current> {
    let p = run::prepare(args)?;
    let dir: PathBuf = p.cache_dir.as_ref().map_err(|e| anyhow!("{e:#}"))?.clone();
    // Like run: no hit-log fold on the way in (status is meant to be cheap).
    let mut cache = Cache::open_for_run(&dir).context("cannot open the cache")?;
    let program = match run::resolve_program(&p) {
        Ok(path) => path,
        Err(ProgramError::NotFound(m)) | Err(ProgramError::NotExecutable(m)) => {
            return Ok(Current {
                p,
                cache,
                snap: Err(m.trim_start_matches("idem: ").to_string()),
            })
        }
    };
    let stdin_state = if args.stdin {
        Some(stdin_state()?)
    } else {
        None
    };
    let old = run::load_stat_cache(&cache, &p.task_key);
    let mut snap = ui::with_spinner(args.progress, "hashing dependencies", || {
        run::snapshot(&p, args, program, &old, stdin_state.as_ref(), None, false)
    })?;
    run::fill_offline_urls(&cache, &p, &mut snap);
    if snap.stat_cache.entries != old.entries {
        // Only a cache of (stat → hash); saving it makes the next run cheaper.
        let _ = cache
            .db
            .save_stat_cache(&p.task_key, &snap.stat_cache.encode());
    }
    Ok(Current {
        p,
        cache,
        snap: Ok(snap),
    })
}

/// `--stdin`: hashes stdin as run would (the bytes are not kept).
fn stdin_state() -> Result<DepState> {
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut input = std::io::stdin().lock();
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                h.update(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("cannot read stdin"),
        }
    }
    Ok(DepState::new(
        Kind::Stdin,
        "-",
        format!("blake3:{}", h.finalize().to_hex()),
    ))
}

pub enum Verdict {
    /// A run would replay this record.
    Hit(i64, Box<Record>),
    /// A run would execute the command, for this reason.
    Miss(String),
}

/// What `idem run` would do, without doing it.
pub fn verdict(cur: &Current, args: &RunArgs) -> Result<Verdict> {
    let snap = match &cur.snap {
        Ok(s) => s,
        Err(m) => return Ok(Verdict::Miss(m.clone())),
    };
    let now = crate::clock::now_ns();
    let expired = |rec: &Record| {
        args.ttl
            .is_some_and(|ttl| run::age_ns(rec, now) > ttl.as_nanos() as i64)
    };
    if let Some(key) = &args.key {
        let Some(row) = cur.cache.db.exec_key(key)? else {
            return Ok(Verdict::Miss(format!("key '{key}' has not run yet")));
        };
        let latest = cur.cache.db.latest_for_exec_key(key)?;
        if latest.as_ref().is_some_and(|(_, r)| expired(r)) {
            return Ok(Verdict::Miss(format!(
                "key '{key}': its record expired (older than --ttl)"
            )));
        }
        if row.identity != cur.p.spec.identity() && args.key_reuse == crate::cli::KeyReuse::Deny {
            return Ok(Verdict::Miss(format!(
                "key '{key}' was used for another command ({})",
                row.argv
            )));
        }
        if row.successes < args.max_runs {
            return Ok(Verdict::Miss(format!(
                "key '{key}' ran {} of {} allowed time(s)",
                row.successes, args.max_runs
            )));
        }
        return Ok(match latest {
            Some((id, rec)) => Verdict::Hit(id, Box::new(rec)),
            None => Verdict::Miss(format!(
                "key '{key}' already ran but its record is gone (a run would do nothing)"
            )),
        });
    }
    if args.force {
        return Ok(Verdict::Miss("--force".into()));
    }
    if !snap.unknown.is_empty() && !snap.trusted_offline {
        return Ok(Verdict::Miss(format!(
            "state unknown: {}",
            snap.unknown.join(", ")
        )));
    }
    let Some((id, rec)) = cur.cache.db.lookup(&cur.p.task_key, &snap.state_key())? else {
        return Ok(Verdict::Miss(run::miss_reason(&cur.cache, &cur.p, snap)));
    };
    if expired(&rec) {
        return Ok(Verdict::Miss(format!(
            "record {id} expired (older than --ttl)"
        )));
    }
    if let Some(b) = rec.blobs().iter().find(|b| !cur.cache.blobs.contains(b)) {
        return Ok(Verdict::Miss(format!(
            "record {id} cannot be replayed: blob {} is missing",
            crate::encode::hex(&b.hash)
        )));
    }
    Ok(Verdict::Hit(id, Box::new(rec)))
}

/// Entry point of `idem status`.
pub fn run(args: &RunArgs) -> Result<i32> {
    let cur = evaluate(args)?;
    match verdict(&cur, args)? {
        Verdict::Hit(id, rec) => {
            if args.verbose {
                let age = run::age_ns(&rec, crate::clock::now_ns());
                eprintln!(
                    "idem: hit: record {id} (recorded {} ago, would save {})",
                    ui::short_duration_ns(age),
                    ui::short_duration_ns(rec.duration_ns as i64)
                );
            }
            Ok(0)
        }
        Verdict::Miss(reason) => {
            if args.verbose {
                eprintln!("idem: miss: {reason}");
            }
            Ok(1)
        }
    }
}
