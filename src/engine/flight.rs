//! Single flight: identical requests (same task and state) run the command once. Locally
//! an `flock` lease (the kernel frees it however its holder dies); across hosts the
//! remote's lease. Waiters replay the holder's outcome; they never run alongside it.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::replay::Replayed;
use super::runner::Runner;
use super::snapshot::Snapshot;
use super::{Verdict, Wait};
use crate::exit::Code;
use crate::lease::{self, Acquire, Lease};
use crate::store::remote::{Claim, RemoteLease};
use crate::ui::{self, progress};

/// The local lease's name for one (task, state).
pub fn lease_name(task_key: &[u8; 32], state_key: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"idem-lease");
    h.update(task_key);
    h.update(state_key);
    *h.finalize().as_bytes()
}

/// The local lease's name for an execution key.
pub fn exec_key_lease_name(key: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"idem-exec-key");
    h.update(key.as_bytes());
    *h.finalize().as_bytes()
}

pub enum Local {
    Got(Lease),
    /// `--no-wait` and someone holds it: exit 75 (the message is printed).
    Busy,
    /// Waited `--wait-timeout`; run anyway.
    TimedOut,
}

/// Takes the local lease `name`, waiting for its holder as the policy says.
pub fn acquire(runner: &Runner, name: &[u8; 32]) -> Result<Local> {
    let dir = &runner.cache.dir;
    let wait = runner.policy.wait;
    let holder = match lease::try_acquire(dir, name)? {
        Acquire::Got(l) => return Ok(Local::Got(l)),
        Acquire::Busy(holder) => holder,
    };
    let limit = match wait {
        Wait::NoWait => {
            ui::note(format!(
                "pid {} is already running this (--no-wait): nothing was run",
                holder.pid
            ));
            return Ok(Local::Busy);
        }
        Wait::Forever => None,
        Wait::Upto { limit, .. } => Some(limit),
    };
    let bar = progress::spinner(runner.policy.progress);
    let got = lease::wait_acquire(dir, name, limit, |h| {
        if let Some(bar) = &bar {
            let running = Duration::from_nanos(
                crate::clock::real_now_ns()
                    .saturating_sub(h.started_ns)
                    .max(0) as u64,
            );
            bar.set_message(format!(
                "waiting for pid {} (running {} s)",
                h.pid,
                running.as_secs()
            ));
            bar.tick();
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(match (got, wait) {
        (Some(l), _) => Local::Got(l),
        (None, Wait::Upto { then_run: true, .. }) => {
            ui::warn(
                "gave up waiting for the other idem (--wait-timeout); running the command too",
            );
            Local::TimedOut
        }
        (None, _) => {
            ui::note("still running elsewhere after --wait-timeout (--no-wait): nothing was run");
            Local::Busy
        }
    })
}

pub enum Remote {
    /// Run the command (holding the remote lease when there is one).
    Run(Option<RemoteLease>),
    /// Another host ran it and its outcome was replayed (or --no-wait said stop).
    Done(i32),
}

/// Cross-host single flight: take the remote lease, or wait for its holder and replay
/// what it uploads. The wait ends when the record appears, when the holder's lease is
/// released or expires (a dead host stops renewing it), or at --wait-timeout.
pub fn remote(runner: &mut Runner, snap: &Snapshot) -> Result<Remote> {
    let state_key = snap.state_key();
    let deadline = match runner.policy.wait {
        Wait::Upto { limit, .. } => Some(Instant::now() + limit),
        _ => None,
    };
    let mut delay = Duration::from_millis(50);
    let mut announced = false;
    loop {
        let Some(shared) = runner.remote.as_ref() else {
            return Ok(Remote::Run(None));
        };
        let holder = match shared.try_lease(&runner.task.key, &state_key) {
            Claim::Got(l) => return Ok(Remote::Run(Some(l))),
            Claim::Unavailable => return Ok(Remote::Run(None)),
            Claim::Busy(holder) => ui::escape_controls(&holder).into_owned(),
        };
        match runner.policy.wait {
            Wait::NoWait => {
                ui::note(format!(
                    "{holder} is already running this (remote lease, --no-wait): nothing was run"
                ));
                return Ok(Remote::Done(Code::Busy.into()));
            }
            _ if runner.policy.verbose && !announced => {
                ui::note(format!(
                    "waiting for {holder} (remote lease on {})",
                    shared.name()
                ));
                announced = true;
            }
            _ => {}
        }
        if deadline.is_some_and(|d| Instant::now() + delay >= d) {
            if let Wait::Upto {
                then_run: false, ..
            } = runner.policy.wait
            {
                ui::note(
                    "still running elsewhere after --wait-timeout (--no-wait): nothing was run",
                );
                return Ok(Remote::Done(Code::Busy.into()));
            }
            ui::warn(
                "gave up waiting for the other host (--wait-timeout); running the command too",
            );
            return Ok(Remote::Run(None));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(1));
        match runner.decide(snap)? {
            Verdict::Hit { id, record, tier } => {
                return Ok(match runner.replay(id, &record, tier)? {
                    Replayed::Exit(code) => Remote::Done(code),
                    // The other host's record arrived but cannot be replayed here: run.
                    Replayed::Failed => Remote::Run(None),
                });
            }
            Verdict::Unreplayable { .. } => return Ok(Remote::Run(None)),
            _ => {}
        }
    }
}
