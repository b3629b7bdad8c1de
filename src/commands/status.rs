//! `idem status`: would `idem run` with these arguments be a hit? Exit 0 on hit, 1 on
//! anything else, silent without -v. It asks the engine's one verdict — the same that
//! `run` acts on — and never runs, replays or records anything.

use anyhow::Result;

use crate::cli::RunArgs;
use crate::engine::lookup::{self, Age};
use crate::engine::{self, Verdict};
use crate::ui::{self, units};

/// Entry point of `idem status`.
pub fn run(args: &RunArgs) -> Result<i32> {
    let task = crate::plan::task(args)?;
    let policy = crate::plan::policy(args)?;
    let mut seen = engine::inspect(&task, &policy)?;
    let snap = match &seen.snap {
        Ok(s) => s,
        Err(m) => {
            if policy.verbose {
                ui::note(format!("miss: {}", ui::escape_controls(m)));
            }
            return Ok(1);
        }
    };
    let remote = engine::runner::connect_remote(&policy)?;
    let now = crate::clock::now_ns();
    let verdict = engine::lookup(&task, &policy, &mut seen.cache, remote.as_ref(), snap, now)?;
    if !policy.verbose {
        return Ok(if verdict.is_hit() { 0 } else { 1 });
    }
    match &verdict {
        Verdict::Hit { id, record, .. } => {
            ui::note(format!(
                "hit: record {id} (recorded {}, would save {})",
                Age::of(record, now),
                units::duration_ns(record.duration_ns as i64)
            ));
            Ok(0)
        }
        other => {
            let why = lookup::describe(other, &task, &seen.cache, snap);
            ui::note(format!("miss: {}", ui::escape_controls(&why)));
            Ok(1)
        }
    }
}
