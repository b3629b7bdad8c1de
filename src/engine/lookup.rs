//! The decision, written once: given a task, a policy and the current snapshot, which
//! record would a run replay, or why would it run? `run`, `status` and `explain` all
//! call [`lookup`]; none of them re-implements any part of it. It never writes output.

use std::time::Duration;

use anyhow::Result;

use super::snapshot::Snapshot;
use super::{CacheControl, Failures, Policy, Task};
use crate::deps;
use crate::store::record::Record;
use crate::store::remote::Tier as Shared;
use crate::store::{hot, Cache, Tier};
use crate::ui::units;

/// What a run with this task, policy and snapshot would do.
pub enum Verdict {
    /// Replay this record (found in `tier`; a remote record is now also local).
    Hit {
        id: i64,
        record: Box<Record>,
        tier: Tier,
    },
    /// Run the command, for this reason.
    Miss(Miss),
    /// A record matches but one of its blobs is missing or has the wrong size: run.
    Unreplayable { id: i64, reason: String },
    /// A record matches but is older than `--ttl` (or dated in the future): run.
    Expired { id: i64, age: Age },
    /// `--key K` was first used for another command line: exit 4, run nothing.
    KeyReused { argv: String },
    /// `--key K` has used up its runs and its record is gone: run nothing, exit 0.
    KeySpentNoRecord,
}

/// Why a run would execute the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// `--force`.
    Forced,
    /// A dependency's state could not be known (URL unreachable).
    StateUnknown(Vec<String>),
    /// No record for this task has these states.
    NoMatch,
    /// The matching record is a failure, and failures are not replayed without
    /// `--cache-failures`.
    FailureNotReplayed { exit_code: i32 },
    /// `--key K` has not run yet.
    KeyNotRun,
    /// `--key K` ran fewer times than `--max-runs` allows.
    KeyRunsLeft { ran: u64, allowed: u64 },
    /// A traced task: none of its `sets` recorded dependency sets holds now (`change`:
    /// what rules out the newest).
    Traced { sets: usize, change: Option<String> },
}

/// How old a record is. A record dated in the future (another machine's clock) has no
/// trustworthy age: under `--ttl` it counts as expired, under `--stale` as stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    Past(Duration),
    Future(Duration),
}

impl Age {
    pub fn of(rec: &Record, now_ns: i64) -> Age {
        let delta = now_ns.saturating_sub(rec.created_ns);
        if delta >= 0 {
            Age::Past(Duration::from_nanos(delta as u64))
        } else {
            Age::Future(Duration::from_nanos(delta.unsigned_abs()))
        }
    }

    /// Older than `limit`, or dated in the future.
    pub fn beyond(self, limit: Duration) -> bool {
        match self {
            Age::Past(d) => d > limit,
            Age::Future(_) => true,
        }
    }
}

impl std::fmt::Display for Age {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Age::Past(d) => write!(f, "{} ago", units::duration(*d)),
            Age::Future(d) => write!(
                f,
                "{} in the future (clock skew between machines?)",
                units::duration(*d)
            ),
        }
    }
}

impl Verdict {
    /// A run would replay a record (exit 0 for `status`).
    pub fn is_hit(&self) -> bool {
        matches!(self, Verdict::Hit { .. })
    }
}

/// The verdict. Consults the local tier, then `remote` (a remote hit is fetched into
/// the local tier, verified, before it is returned). `now_ns` dates the lookup.
pub fn lookup(
    task: &Task,
    policy: &Policy,
    cache: &mut Cache,
    remote: Option<&Shared>,
    snap: &Snapshot,
    now_ns: i64,
) -> Result<Verdict> {
    if task.exec_key.is_some() {
        return lookup_exec_key(task, policy, cache, now_ns);
    }
    if policy.control == CacheControl::Force {
        return Ok(Verdict::Miss(Miss::Forced));
    }
    if !snap.states_known() {
        return Ok(Verdict::Miss(Miss::StateUnknown(snap.unknown.clone())));
    }
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    if task.traced() {
        return lookup_traced(task, policy, cache, remote, snap, now_ns);
    }
    let state_key = snap.state_key();
    Ok(by_state(task, policy, cache, remote, &state_key, now_ns)?
        .unwrap_or(Verdict::Miss(Miss::NoMatch)))
}

/// The verdict for the record of (task, state), local then remote; `None` when neither
/// tier has one.
fn by_state(
    task: &Task,
    policy: &Policy,
    cache: &mut Cache,
    remote: Option<&Shared>,
    state_key: &[u8; 32],
    now_ns: i64,
) -> Result<Option<Verdict>> {
    let mut tier = Tier::Local;
    let mut found = local(cache, &task.key, state_key)?;
    if found.is_none() {
        if let Some(r) = remote {
            found = r.lookup(cache, &task.ws, &task.key, state_key);
            tier = Tier::Remote;
        }
    }
    let Some((id, rec)) = found else {
        return Ok(None);
    };
    if rec.exit_code != 0 && policy.failures == Failures::Rerun {
        // A failure recorded under --cache-failures is not replayed to callers who
        // did not ask for failures to be cached: they run, and may succeed.
        return Ok(Some(Verdict::Miss(Miss::FailureNotReplayed {
            exit_code: rec.exit_code,
        })));
    }
    judge(policy, cache, id, rec, tier, now_ns).map(Some)
}

/// The second phase of a traced task (docs/trace.md): the recorded dependency sets of
/// its weak key, newest first (local, then the remote's); the first whose entries all
/// hold now names the strong key, looked up like any state key.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn lookup_traced(
    task: &Task,
    policy: &Policy,
    cache: &mut Cache,
    remote: Option<&Shared>,
    snap: &Snapshot,
    now_ns: i64,
) -> Result<Verdict> {
    use super::traced;
    let weak = traced::weak_key(task, &snap.state_key());
    let mut checker = crate::deps::trace::Checker::new(&task.ws);
    let mut tried: Vec<[u8; 32]> = Vec::new();
    let mut first_change = None;
    let local_sets = traced::load_sets(cache, &weak)?;
    let mut nsets = local_sets.len();
    let mut phase = |cache: &mut Cache, sets: &[Vec<u8>], local: bool| loop {
        match traced::first_holding(&mut checker, &snap.deps, sets, &tried) {
            traced::Phase::Holds(strong, i) => {
                tried.push(strong);
                if let Some(v) = by_state(task, policy, cache, remote, &strong, now_ns)? {
                    if local && v.is_hit() {
                        // Best effort: only spares the next lookups some hashing.
                        let _ = traced::refresh_set(&checker, cache, &weak, task, &sets[i], now_ns);
                    }
                    return Ok::<_, anyhow::Error>(Some((v, i)));
                }
            }
            traced::Phase::None { change, .. } => {
                if first_change.is_none() {
                    first_change = change;
                }
                return Ok(None);
            }
        }
    };
    if let Some((v, _)) = phase(cache, &local_sets, true)? {
        return Ok(v);
    }
    if remote.is_some() {
        let theirs = traced::remote_sets(remote, &weak);
        nsets += theirs.len();
        if let Some((v, i)) = phase(cache, &theirs, false)? {
            if v.is_hit() {
                // Adopted: the next lookup finds the set locally (best effort).
                let set = theirs[i].clone();
                let _ = cache.db.add_trace_sets(&weak, &task.key, &[set], now_ns);
            }
            return Ok(v);
        }
    }
    Ok(Verdict::Miss(Miss::Traced {
        sets: nsets,
        change: first_change,
    }))
}

/// The local record for (task, state): from the task's hot file when it has it (no
/// SQLite), else from the database, refreshing the hot file so the next hit skips it.
fn local(
    cache: &mut Cache,
    task_key: &[u8; 32],
    state_key: &[u8; 32],
) -> Result<Option<(i64, Record)>> {
    let in_hot = match hot::lookup(&cache.dir, task_key, state_key) {
        hot::Found::Record(id, rec) => return Ok(Some((id, *rec))),
        hot::Found::NotInFile { count } => count < hot::MAX_RECORDS,
        hot::Found::NoFile => true,
    };
    let found = cache.db.lookup_for_replay(task_key, state_key)?;
    if found.is_some() && in_hot {
        // Best effort: without a hot file the next hit only pays for SQLite again.
        let _ = cache.db.refresh_hot(task_key);
    }
    Ok(found)
}

/// A found record: too old, not replayable, or a hit.
fn judge(
    policy: &Policy,
    cache: &Cache,
    id: i64,
    rec: Record,
    tier: Tier,
    now_ns: i64,
) -> Result<Verdict> {
    let age = Age::of(&rec, now_ns);
    if policy.ttl.is_some_and(|ttl| age.beyond(ttl)) {
        return Ok(Verdict::Expired { id, age });
    }
    // Presence and size by stat only: contents are verified while replaying.
    if let Some(b) = rec.blobs().iter().find(|b| !cache.blobs.contains(b)) {
        return Ok(Verdict::Unreplayable {
            id,
            reason: format!(
                "blob {} is missing or has the wrong size",
                crate::encode::hex(&b.hash)
            ),
        });
    }
    Ok(Verdict::Hit {
        id,
        record: Box::new(rec),
        tier,
    })
}

/// `--key K`: the key's history decides, whatever the inputs.
fn lookup_exec_key(task: &Task, policy: &Policy, cache: &Cache, now_ns: i64) -> Result<Verdict> {
    let Some(k) = &task.exec_key else {
        return Ok(Verdict::Miss(Miss::KeyNotRun));
    };
    let Some(row) = cache.db.exec_key(&k.key)? else {
        return Ok(Verdict::Miss(Miss::KeyNotRun));
    };
    let latest = cache.db.latest_for_exec_key(&k.key)?;
    if let Some((id, rec)) = &latest {
        let age = Age::of(rec, now_ns);
        if policy.ttl.is_some_and(|ttl| age.beyond(ttl)) {
            return Ok(Verdict::Expired { id: *id, age });
        }
    }
    if row.identity != task.spec.identity() && k.reuse == super::KeyReuse::Deny {
        return Ok(Verdict::KeyReused { argv: row.argv });
    }
    if row.successes < k.max_runs {
        return Ok(Verdict::Miss(Miss::KeyRunsLeft {
            ran: row.successes,
            allowed: k.max_runs,
        }));
    }
    Ok(match latest {
        Some((id, rec)) => Verdict::Hit {
            id,
            record: Box::new(rec),
            tier: Tier::Local,
        },
        None => Verdict::KeySpentNoRecord,
    })
}

/// Why this is not a hit, in one phrase (for `-v`, `status -v`, `explain`). For
/// [`Miss::NoMatch`] it names the first dependency that changed since the task's newest
/// record (one extra query: only called when a person will read the answer).
pub fn describe(verdict: &Verdict, task: &Task, cache: &Cache, snap: &Snapshot) -> String {
    match verdict {
        Verdict::Hit { id, .. } => format!("hit: record {id}"),
        Verdict::Unreplayable { id, reason } => format!("record {id} cannot be replayed: {reason}"),
        Verdict::Expired { id, age } => match age {
            Age::Past(_) => format!("record {id} expired (older than --ttl)"),
            Age::Future(_) => format!("record {id} is dated {age}: treated as expired"),
        },
        Verdict::KeyReused { argv } => {
            let key = task.exec_key.as_ref().map_or("", |k| k.key.as_str());
            format!("key '{key}' was used for another command ({argv})")
        }
        Verdict::KeySpentNoRecord => {
            let key = task.exec_key.as_ref().map_or("", |k| k.key.as_str());
            format!("key '{key}' already ran but its record is gone (a run would do nothing)")
        }
        Verdict::Miss(m) => describe_miss(m, task, cache, snap),
    }
}

fn describe_miss(miss: &Miss, task: &Task, cache: &Cache, snap: &Snapshot) -> String {
    let key = task.exec_key.as_ref().map_or("", |k| k.key.as_str());
    match miss {
        Miss::Forced => "--force".into(),
        Miss::StateUnknown(names) => format!(
            "state unknown: {}",
            names
                .iter()
                .map(|n| crate::ui::redact(n))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Miss::FailureNotReplayed { exit_code } => format!(
            "the matching record is a failure (exit {exit_code}), replayed only with --cache-failures"
        ),
        Miss::KeyNotRun => format!("key '{key}' has not run yet"),
        Miss::KeyRunsLeft { ran, allowed } => {
            format!("key '{key}' ran {ran} of {allowed} allowed time(s)")
        }
        // No set for these declared inputs: name the declared one that changed since the
        // task's newest record, if any.
        Miss::Traced { sets: 0, .. } => match cache.db.latest_for_task(&task.key) {
            Ok(Some((_, rec))) => {
                let declared: Vec<deps::DepState> = rec
                    .deps
                    .into_iter()
                    .filter(|d| !d.kind.is_traced())
                    .collect();
                match first_change(&declared, &snap.deps) {
                    Some(c) => c,
                    None => "no traced record for these declared inputs yet".into(),
                }
            }
            _ => "no traced record for this task yet".into(),
        },
        Miss::Traced {
            change: Some(c), ..
        } => c.clone(),
        Miss::Traced { sets, change: None } => format!(
            "{sets} recorded dependency set(s) hold, but their records are gone"
        ),
        Miss::NoMatch => match cache.db.latest_for_task(&task.key) {
            Ok(Some((_, rec))) => first_change(&rec.deps, &snap.deps)
                .unwrap_or_else(|| "the last record was made under other options".into()),
            _ => "no record for this task yet".into(),
        },
    }
}

/// "file a.c changed (and 2 more)": the first difference between a record's
/// dependencies and the current ones, `None` when there is none.
fn first_change(old: &[deps::DepState], new: &[deps::DepState]) -> Option<String> {
    let changes = deps::diff(old, new);
    let (d, change, detail) = changes.first()?;
    let what = match change {
        deps::Change::Changed => "changed",
        deps::Change::Added => "added",
        deps::Change::Removed => "removed",
    };
    let more = if changes.len() > 1 {
        format!(" (and {} more)", changes.len() - 1)
    } else {
        String::new()
    };
    Some(match detail {
        Some(det) => format!("{} {what}: {det}{more}", d.display_name()),
        None => format!("{} {what}{more}", d.display_name()),
    })
}
