//! `idem run` as a pipeline of small stages: snapshot → lookup → (replay | single flight
//! → execute → race guard → record → upload). A `Runner` owns the task, policy, cache
//! and remote, so each stage takes what it needs from one place. A cache fault never
//! changes the command's result: idem warns once and runs it as if it were not there.

use std::fs::File;
use std::path::PathBuf;

use anyhow::Result;

use super::lookup::{self, Age, Verdict};
use super::replay::{self, Replayed};
use super::snapshot::{self, Probe, Snapshot, Urls};
use super::{execute, flight, CacheControl, Policy, Task};
use crate::deps::DepState;
use crate::exit::{self, Code};
use crate::store::record::Record;
use crate::store::remote::Tier as Shared;
use crate::store::{Cache, Tier};
use crate::ui::{self, progress};

/// One `idem run`, with its cache open.
pub struct Runner {
    pub task: Task,
    pub policy: Policy,
    pub cache: Cache,
    pub remote: Option<Shared>,
    /// argv[0], resolved.
    pub program: PathBuf,
    /// `--stdin`: the spool the command reads, and its state.
    pub stdin: Option<(File, DepState)>,
}

/// The cache failed: either before the command started (run it plainly), or because
/// of what the user typed (exit 2).
pub enum Fault {
    BeforeRun(anyhow::Error),
    Usage(anyhow::Error),
}

impl From<anyhow::Error> for Fault {
    fn from(e: anyhow::Error) -> Self {
        if e.downcast_ref::<exit::UsageError>().is_some() {
            Fault::Usage(e)
        } else {
            Fault::BeforeRun(e)
        }
    }
}

/// Entry point of `idem run`. Returns the exit code.
pub fn run(task: Task, policy: Policy) -> Result<i32> {
    // A mistyped command is reported before stdin is read to its end.
    let program = match snapshot::resolve_program(&task) {
        Ok(p) => p,
        Err(e) => {
            ui::note(e.message());
            return Ok(e.code().into());
        }
    };
    if let Some(closed) = crate::exec::closed_stdio() {
        ui::warn(format!(
            "{closed} closed: running the command uncached, with {closed} closed too"
        ));
        return Ok(execute::uncached(&task, program, None));
    }
    // Spooled before anything else can fail, so that whatever happens to the cache the
    // command still gets every byte of its stdin.
    let spool = if task.stdin {
        let dir = policy
            .cache_dir
            .as_ref()
            .ok()
            .map(|d| d.join("blobs").join("tmp"))
            .filter(|d| crate::store::private::ensure_dir(d).is_ok());
        match super::stdin::spool_stdin(dir.as_deref()) {
            Ok(s) => Some(s),
            Err(e) => {
                ui::warn(format!("{e:#}; running the command uncached"));
                return Ok(execute::uncached(&task, program, None));
            }
        }
    } else {
        None
    };
    let fallback_stdin = || spool.as_ref().and_then(|(f, _)| super::stdin::rewound(f));
    let cache = match policy.cache_dir.as_ref() {
        Ok(dir) => Cache::open_for_run(dir),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    };
    let cache = match cache {
        Ok(c) => c,
        Err(e) => {
            ui::warn(format!(
                "cache unavailable ({e:#}); running the command uncached"
            ));
            return Ok(execute::uncached(&task, program, fallback_stdin()));
        }
    };
    let stdin = spool
        .as_ref()
        .and_then(|(f, s)| Some((f.try_clone().ok()?, s.clone())));
    let mut runner = Runner {
        task,
        policy,
        cache,
        remote: None,
        program,
        stdin,
    };
    match runner.run_cached() {
        Ok(code) => Ok(code),
        Err(Fault::BeforeRun(e)) => {
            ui::warn(format!("cache error ({e:#}); running the command uncached"));
            Ok(execute::uncached(
                &runner.task,
                runner.program.clone(),
                fallback_stdin(),
            ))
        }
        Err(Fault::Usage(e)) => Err(e),
    }
}

impl Runner {
    fn run_cached(&mut self) -> std::result::Result<i32, Fault> {
        let snap = self.snapshot()?;
        self.remote = connect_remote(&self.policy)?;
        if self.task.exec_key.is_some() {
            return Ok(super::exec_key::run_keyed(self, snap)?);
        }
        if self.policy.control == CacheControl::Refresh {
            return Ok(super::refresh::refresh(self, snap)?);
        }
        let verdict = self.decide(&snap)?;
        let mut replayable = true;
        match &verdict {
            Verdict::Hit { id, record, tier } => match self.replay(*id, record, *tier)? {
                Replayed::Exit(code) => {
                    // The process exits with this code next: freeing the snapshot's
                    // per-file states one by one (20,000 allocations on a 10,000-file
                    // hit, ~8 % of its instructions) would buy nothing.
                    std::mem::forget(snap);
                    return Ok(code);
                }
                Replayed::Failed => replayable = false,
            },
            Verdict::Unreplayable { id, reason } => {
                ui::warn(format!(
                    "cannot replay record {id} ({reason}); running the command"
                ));
                replayable = false;
            }
            _ => {}
        }
        if self.policy.control == CacheControl::CacheOnly {
            ui::note("no matching record (--cache-only): nothing was run");
            return Ok(Code::CacheOnlyMiss.into());
        }
        if self.policy.verbose {
            let why = match &verdict {
                // Only a replay that failed (warned above) brings a hit here.
                Verdict::Hit { id, .. } => format!("record {id} matched but could not be replayed"),
                _ => lookup::describe(&verdict, &self.task, &self.cache, &snap),
            };
            ui::note(format!("miss: {}", ui::escape_controls(&why)));
        }
        // Single flight: one process runs, identical requests wait and replay its outcome.
        let name = flight::lease_name(&self.task.key, &snap.state_key());
        let lease = match flight::acquire(self, &name)? {
            flight::Local::Got(l) => Some(l),
            flight::Local::Busy => return Ok(Code::Busy.into()),
            flight::Local::TimedOut => None,
        };
        let replayable = replayable && self.policy.control != CacheControl::Force;
        if lease.is_some() && replayable {
            // The holder we waited for (here or on another host) may have recorded it.
            if let Verdict::Hit { id, record, tier } = self.decide(&snap)? {
                if let Replayed::Exit(code) = self.replay(id, &record, tier)? {
                    return Ok(code);
                }
            }
        }
        // Across hosts: the remote's lease (Redis), taken inside the local one.
        let remote_lease = if replayable && snap.states_known() {
            match flight::remote(self, &snap)? {
                flight::Remote::Run(l) => l,
                flight::Remote::Done(code) => return Ok(code),
            }
        } else {
            None
        };
        let code = execute::execute_and_record(self, snap, None);
        // Released after the upload, so a waiter polling the remote finds the record.
        drop(remote_lease);
        drop(lease);
        Ok(code)
    }

    /// Snapshot stage: every dependency's state now, the stat cache saved for next time.
    fn snapshot(&mut self) -> Result<Snapshot> {
        let old = snapshot::load_stat_cache(&self.cache, &self.task.key);
        let mut snap = progress::during(
            self.policy.progress,
            "hashing inputs",
            &crate::deps::files::hashed_so_far,
            || {
                snapshot::snapshot(
                    &self.task,
                    &self.policy,
                    Probe {
                        program: &self.program,
                        old: &old,
                        stdin: self.stdin.as_ref().map(|(_, s)| s),
                        urls: Urls::Check,
                        warn_missing: true,
                    },
                )
            },
        )?;
        snapshot::trust_offline_urls(&self.cache, &self.task, &mut snap);
        snapshot::save_stat_cache(&mut self.cache, &self.task.key, &snap.stat_cache, &old);
        Ok(snap)
    }

    /// Lookup stage: the shared verdict, dated now.
    pub fn decide(&mut self, snap: &Snapshot) -> Result<Verdict> {
        lookup::lookup(
            &self.task,
            &self.policy,
            &mut self.cache,
            self.remote.as_ref(),
            snap,
            crate::clock::now_ns(),
        )
    }

    /// Replay stage; with `--stale`, an old record also starts a background refresh.
    pub fn replay(&mut self, id: i64, rec: &Record, tier: Tier) -> Result<Replayed> {
        let now = crate::clock::now_ns();
        let done = replay::replay(
            &self.task,
            &self.policy,
            &mut self.cache,
            (id, rec, tier),
            now,
        )?;
        if let (Replayed::Exit(_), Some(stale)) = (&done, self.policy.stale) {
            let age = Age::of(rec, now);
            if age.beyond(stale) {
                if self.policy.verbose {
                    if let Age::Future(_) = age {
                        ui::note(format!("record {id} is dated {age}: refreshing it"));
                    }
                }
                super::refresh::spawn();
            }
        }
        Ok(done)
    }
}

/// The policy's remote tier, connected (`None` without one). A URL idem cannot
/// understand is a usage error (exit 2, before anything runs); an unreachable remote
/// only warns, later, on first use.
pub fn connect_remote(policy: &Policy) -> Result<Option<Shared>> {
    let Some(cfg) = &policy.remote else {
        return Ok(None);
    };
    Shared::connect(cfg)
        .map(Some)
        .map_err(|e| exit::usage(format!("--remote/IDEM_REMOTE: {e:#}")))
}
