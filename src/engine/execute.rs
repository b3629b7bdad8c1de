//! Executing the command and recording its outcome: run it live (teed and captured),
//! then — only for a clean exit under unchanged inputs (the race guard) — store blobs,
//! then the record, then upload. Errors while recording never change the exit code.

use std::ffi::OsString;
use std::fs::File;
use std::path::PathBuf;

use anyhow::Result;

use super::runner::Runner;
use super::snapshot::{self, Probe, Snapshot, Urls};
use super::{ChildEnv, Failures, Task};
use crate::deps::{self, DepState, Kind};
use crate::exec::{self, ExecCommand, Exit};
use crate::store::record::Record;
use crate::store::Counter;
use crate::ui;

/// The command's whole environment under `--strict-env` (`None`: inherit idem's).
pub fn child_env_vars(env: &ChildEnv) -> Option<Vec<(OsString, OsString)>> {
    match env {
        ChildEnv::Inherit => None,
        ChildEnv::Only(names) => Some(
            names
                .iter()
                .filter_map(|n| std::env::var_os(n).map(|v| (OsString::from(n), v)))
                .collect(),
        ),
    }
}

/// How the command is started.
fn command(task: &Task, program: PathBuf, stdin: Option<File>) -> ExecCommand {
    ExecCommand {
        program,
        argv: task.spec.argv.clone(),
        env: child_env_vars(&task.child_env),
        stdin,
    }
}

/// Runs the command as if idem were not there (the cache is broken).
pub fn uncached(task: &Task, program: PathBuf, stdin: Option<File>) -> i32 {
    let mut cmd = command(task, program, stdin);
    match exec::run_plain(&mut cmd) {
        Ok(exit) => exit.code(),
        Err((code, msg)) => {
            eprintln!("{msg}");
            code
        }
    }
}

/// An execution key to count a success against: (key, identity of the command line).
pub type Counted<'a> = Option<(&'a str, [u8; 32])>;

/// Runs the command live and records the outcome when it may be.
pub fn execute_and_record(runner: &mut Runner, snap: Snapshot, exec_key: Counted<'_>) -> i32 {
    let stdin = runner.stdin.take().map(|(f, _)| f);
    let mut cmd = command(&runner.task, snap.program.clone(), stdin);
    let outcome = match exec::run_captured(&mut cmd, &runner.cache.blobs) {
        Ok(Ok(o)) => o,
        Ok(Err((code, msg))) => {
            eprintln!("{msg}");
            return code;
        }
        Err(e) => {
            ui::warn(format!(
                "cannot capture output ({e:#}); running the command uncached"
            ));
            return match exec::run_plain(&mut cmd) {
                Ok(exit) => exit.code(),
                Err((code, msg)) => {
                    eprintln!("{msg}");
                    code
                }
            };
        }
    };
    let code = outcome.exit.code();
    if let Err(e) = runner.cache.db.add_stat(Counter::Misses, 1) {
        ui::warn(format!("cannot count the miss: {e:#}"));
    }
    let Exit::Code(exit_code) = outcome.exit else {
        return code;
    };
    let recordable = exit_code == 0 || runner.policy.failures == Failures::Replay;
    if outcome.interrupted || !recordable {
        return code;
    }
    let Some(captured) = outcome.captured else {
        return code;
    };
    // Unknown URL state (even trusted with --url-offline=hit): run, never record.
    if !snap.unknown.is_empty() {
        return code;
    }
    let run = Run {
        exit_code,
        duration: outcome.duration,
        captured,
    };
    if let Err(e) = record(runner, &snap, run, exec_key) {
        ui::warn(format!("not recorded: {e:#}"));
    }
    code
}

/// What one execution produced.
struct Run {
    exit_code: i32,
    duration: std::time::Duration,
    captured: exec::Captured,
}

/// Race guard, output capture, the record (last), the stat cache, the upload, auto-gc.
fn record(runner: &mut Runner, snap: &Snapshot, run: Run, exec_key: Counted<'_>) -> Result<()> {
    let task = &runner.task;
    let state_key = snap.state_key();
    // Race guard: an outcome is stored only under the exact state it was computed from.
    let stdin_state = snap.deps.iter().find(|d| d.kind == Kind::Stdin).cloned();
    let url_states: Vec<DepState> = snap
        .deps
        .iter()
        .filter(|d| d.kind == Kind::Url)
        .cloned()
        .collect();
    let after = snapshot::snapshot(
        task,
        &runner.policy,
        Probe {
            program: &snap.program,
            old: &snap.stat_cache,
            stdin: stdin_state.as_ref(),
            urls: Urls::Reuse(&url_states),
            warn_missing: false,
        },
    )?;
    if after.state_key() != state_key {
        let changes = deps::diff(&snap.deps, &after.deps);
        let names: Vec<String> = changes
            .iter()
            .take(3)
            .map(|(d, _, _)| d.display_name())
            .collect();
        anyhow::bail!("{} changed while the command ran", names.join(", "));
    }
    let (outputs, warnings) = if run.exit_code == 0 {
        task.outputs.capture(&task.ws, &runner.cache.blobs)?
    } else {
        (Vec::new(), Vec::new())
    };
    for w in warnings {
        ui::warn(w);
    }
    let now = crate::clock::now_ns();
    let rec = Record {
        task_key: task.key,
        state_key,
        exec_key: exec_key.map(|(k, _)| k.to_string()),
        created_ns: now,
        duration_ns: run.duration.as_nanos() as u64,
        exit_code: run.exit_code,
        stdout: run.captured.stdout,
        stderr: run.captured.stderr,
        chunks: run.captured.chunks,
        outputs,
        deps: snap.deps.clone(),
        argv: task
            .spec
            .argv
            .iter()
            .map(|a| std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str()).to_vec())
            .collect(),
        cwd: task.spec.cwd_key.clone(),
        host: crate::host::name(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let argv_text = task.spec.display_argv();
    let counted = exec_key.filter(|_| run.exit_code == 0);
    runner.cache.db.insert_record_counting(
        &rec,
        now,
        counted
            .as_ref()
            .map(|(k, id)| (*k, &id[..], argv_text.as_str())),
    )?;
    let key = task.key;
    snapshot::save_stat_cache(&mut runner.cache, &key, &after.stat_cache, &snap.stat_cache);
    if let Some(r) = &runner.remote {
        r.upload(&mut runner.cache, &rec);
    }
    crate::store::gc::maybe_auto(&mut runner.cache);
    Ok(())
}
