//! `--key K`: at most `--max-runs` successful runs per key, whatever the inputs; later
//! calls replay the key's latest record. The key's lease serialises concurrent callers
//! so a key can never run twice; the count is stored with the record, atomically.

use anyhow::Result;

use super::execute;
use super::lookup::Verdict;
use super::replay::Replayed;
use super::runner::Runner;
use super::snapshot::Snapshot;
use super::CacheControl;
use crate::exit::Code;
use crate::ui;

pub fn run_keyed(runner: &mut Runner, snap: Snapshot) -> Result<i32> {
    let Some(k) = runner.task.exec_key.clone() else {
        return Ok(execute::execute_and_record(runner, snap, None));
    };
    let lease = match super::flight::acquire(runner, &super::flight::exec_key_lease_name(&k.key))? {
        super::flight::Local::Got(l) => Some(l),
        super::flight::Local::Busy => return Ok(Code::Busy.into()),
        super::flight::Local::TimedOut => None,
    };
    match runner.decide(&snap)? {
        Verdict::Expired { .. } => {
            runner.cache.db.delete_exec_key(&k.key)?;
        }
        Verdict::KeyReused { argv } => {
            ui::note(format!(
                "key '{}' was used for another command ({argv}); use another key, or --key-reuse=allow",
                k.key
            ));
            return Ok(Code::KeyReused.into());
        }
        Verdict::Hit { id, record, tier } => {
            if runner.policy.verbose {
                ui::note(format!("key '{}' already ran; replaying", k.key));
            }
            if let Replayed::Exit(code) = runner.replay(id, &record, tier)? {
                return Ok(code);
            }
            ui::warn(format!(
                "key '{}' already ran, but its record cannot be replayed; not running it again",
                k.key
            ));
            return Ok(record.exit_code);
        }
        Verdict::KeySpentNoRecord => {
            ui::warn(format!(
                "key '{}' already ran, but its record is gone; not running it again",
                k.key
            ));
            return Ok(0);
        }
        Verdict::Miss(_) | Verdict::Unreplayable { .. } => {}
    }
    if runner.policy.control == CacheControl::CacheOnly {
        ui::note(format!(
            "key '{}' has not run yet (--cache-only): nothing was run",
            k.key
        ));
        return Ok(Code::CacheOnlyMiss.into());
    }
    if runner.policy.verbose {
        ui::note(format!("miss: key '{}' has not run yet", k.key));
    }
    let identity = runner.task.spec.identity();
    let code = execute::execute_and_record(runner, snap, Some((&k.key, identity)));
    drop(lease);
    Ok(code)
}
