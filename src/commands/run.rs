//! `idem run`: parsed flags → the engine's task and policy → the engine's run. The
//! adapter only; every decision is `engine`'s.

use anyhow::Result;

use crate::cli::RunArgs;

/// Entry point of `idem run`.
pub fn run(args: &RunArgs) -> Result<i32> {
    let task = match crate::plan::task(args) {
        Ok(t) => t,
        // As a shell would, run the command from a deleted working directory: uncached,
        // since the task (whose key holds the directory) cannot be known.
        Err(_) if !args.command.is_empty() && std::env::current_dir().is_err() => {
            crate::ui::warn("the working directory is gone; running the command uncached");
            let env = crate::engine::execute::child_env_vars(&crate::plan::child_env(args));
            return Ok(crate::exec::run_argv_plain(&args.command, env));
        }
        Err(e) => return Err(e),
    };
    let policy = crate::plan::policy(args)?;
    crate::engine::run(task, policy)
}
