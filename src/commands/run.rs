//! `idem run`: parsed flags → the engine's task and policy → the engine's run. The
//! adapter only; every decision is `engine`'s.

use anyhow::Result;

use crate::cli::RunArgs;

/// Entry point of `idem run`.
pub fn run(args: &RunArgs) -> Result<i32> {
    let task = crate::plan::task(args)?;
    let policy = crate::plan::policy(args)?;
    crate::engine::run(task, policy)
}
