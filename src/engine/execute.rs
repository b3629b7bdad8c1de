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
        Err(not_run) => not_run.report(),
    }
}

/// An execution key to count a success against: (key, identity of the command line).
pub type Counted<'a> = Option<(&'a str, [u8; 32])>;

/// What a traced run adds to its record (`--trace`), when it may be recorded.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
type TracedFindings = crate::deps::trace::Findings;
/// No tracing on this platform: never constructed.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
enum TracedFindings {}

/// Runs the command live and records the outcome when it may be.
pub fn execute_and_record(runner: &mut Runner, snap: Snapshot, exec_key: Counted<'_>) -> i32 {
    let stdin = runner.stdin.take().map(|(f, _)| f);
    let mut cmd = command(&runner.task, snap.program.clone(), stdin);
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    let setup = runner
        .task
        .trace
        .as_ref()
        .map(|_| super::traced::setup(&runner.task, &runner.policy));
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    let setup: Option<exec::TraceSetup> = None;
    // Inputs whose ctime is at or after this changed while the command ran (race guard);
    // as file timestamps see it (a private marker file in the cache, touched).
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    let started_ns = crate::deps::trace::run_start_ns(&runner.cache.dir.join("clock"));
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    let started_ns = crate::clock::real_now_ns();
    let ran = if setup.is_some() {
        crate::ui::progress::during_quiet(runner.policy.progress, "traced", &stops_so_far, || {
            exec::run_captured(&mut cmd, &runner.cache.blobs, setup.as_ref())
        })
    } else {
        exec::run_captured(&mut cmd, &runner.cache.blobs, None)
    };
    let mut outcome = match ran {
        Ok(o) => o,
        Err(exec::CaptureError::NotRun(not_run)) => return not_run.report(),
        Err(exec::CaptureError::Setup(e)) => {
            ui::warn(format!(
                "cannot capture output ({e:#}); running the command uncached"
            ));
            return match exec::run_plain(&mut cmd) {
                Ok(exit) => exit.code(),
                Err(not_run) => not_run.report(),
            };
        }
    };
    let mut code = outcome.exit.code();
    if let Err(e) = runner.cache.db.add_stat(Counter::Misses, 1) {
        ui::warn(format!("cannot count the miss: {e:#}"));
    }
    let recordable = match outcome.exit {
        Exit::Code(c) => {
            (c == 0 || runner.policy.failures == Failures::Replay) && !outcome.interrupted
        }
        Exit::Signal(_) => false,
    };
    // Before the exit-code checks: `--trace=check` reports whatever the exit code.
    let traced = match after_trace(
        runner,
        &snap,
        &mut outcome,
        started_ns,
        recordable,
        &mut code,
    ) {
        Some(t) => t,
        None => return code,
    };
    let Exit::Code(exit_code) = outcome.exit else {
        return code;
    };
    if !recordable {
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
        traced,
        started_ns,
    };
    if let Err(e) = record(runner, &snap, run, exec_key) {
        ui::warn(format!("not recorded: {e:#}"));
    }
    code
}

/// The traced run's spinner status: the syscall stops so far.
fn stops_so_far() -> String {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        format!(": {} syscalls", crate::trace::stops_so_far())
    }
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    String::new()
}

/// What tracing means for recording: `None` when this run must not be recorded (the
/// reason was said), else the traced findings (`Some(None)` for an untraced or checked
/// run). `--trace=check` prints its report here and, with `--strict`, turns findings
/// into exit 5 (and no record).
#[allow(unused_variables)]
fn after_trace(
    runner: &Runner,
    snap: &Snapshot,
    outcome: &mut exec::Outcome,
    started_ns: i64,
    recordable: bool,
    code: &mut i32,
) -> Option<Option<TracedFindings>> {
    let Some(tracing) = &runner.task.trace else {
        return Some(None);
    };
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        let log = match &mut outcome.trace {
            exec::TraceResult::Log(log) => log,
            // A traced task's record would lack its inputs: never recorded. A checked
            // run has nothing to report, and its declared record stands.
            exec::TraceResult::Refused(why) if runner.task.traced() => {
                ui::warn(format!(
                    "cannot trace here ({why}); ran the command untraced and did not record it"
                ));
                return None;
            }
            exec::TraceResult::Refused(why) => {
                ui::warn(format!(
                    "cannot trace here ({why}); ran the command untraced, nothing was checked"
                ));
                return Some(None);
            }
            _ if runner.task.traced() => return None,
            _ => return Some(None),
        };
        if runner.policy.verbose {
            ui::note(format!(
                "traced: {} syscall stops, {} paths",
                log.stops,
                log.paths.len()
            ));
        }
        if tracing.mode == super::TraceMode::Check {
            let undeclared = super::traced::report_check(&runner.task, snap, log);
            if undeclared > 0 && tracing.strict {
                if *code == 0 {
                    *code = crate::exit::Code::UndeclaredInputs.into();
                }
                return None;
            }
            return Some(None);
        }
        if !recordable {
            // A failure or an interrupted run: nothing to record, nothing to warn about.
            return Some(None);
        }
        super::traced::findings(&runner.task, &runner.policy, log, started_ns).map(Some)
    }
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    {
        let _ = tracing;
        None
    }
}

/// What one execution produced.
struct Run {
    exit_code: i32,
    duration: std::time::Duration,
    captured: exec::Captured,
    traced: Option<TracedFindings>,
    /// The run's start as file timestamps see it (the race guard's line).
    started_ns: i64,
}

/// Race guard, output capture, the record (last), the stat cache, the upload, auto-gc.
fn record(runner: &mut Runner, snap: &Snapshot, run: Run, exec_key: Counted<'_>) -> Result<()> {
    let task = &runner.task;
    if task.traced() && run.traced.is_none() {
        anyhow::bail!("a traced task's run without its traced inputs (a bug in idem)");
    }
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
    // Same content is not enough: an input edited and restored while the command ran
    // may have been read in between. Its ctime (which no one can set back, unlike the
    // mtime) says it changed after the start.
    let touched = changed_during_run(task, &after.stat_cache, run.started_ns);
    if !touched.is_empty() {
        anyhow::bail!(
            "{} changed while the command ran (touched, even if its content is back)",
            touched.join(", ")
        );
    }
    let (mut outputs, warnings) = if run.exit_code == 0 {
        task.outputs.capture(&task.ws, &runner.cache.blobs)?
    } else {
        (Vec::new(), Vec::new())
    };
    for w in warnings {
        ui::warn(w);
    }
    let mut deps_all = snap.deps.clone();
    let mut state_key = state_key;
    let mut side_effects = Vec::new();
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    let traced_set = match &run.traced {
        Some(f) => {
            if run.exit_code == 0 {
                super::traced::capture_outputs(
                    task,
                    &runner.cache.blobs,
                    &f.outputs,
                    &mut outputs,
                )?;
            }
            deps_all.extend(f.entries.iter().map(|e| e.dep.clone()));
            state_key = crate::deps::state_key(&deps_all);
            side_effects = f
                .side_effects
                .iter()
                .map(|p| std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec())
                .collect();
            Some((
                super::traced::weak_key(task, &snap.state_key()),
                super::traced::encode_set(&f.entries),
            ))
        }
        None => None,
    };
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
        deps: deps_all,
        argv: task
            .spec
            .argv
            .iter()
            .map(|a| std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str()).to_vec())
            .collect(),
        cwd: task.spec.cwd_key.clone(),
        host: crate::host::name(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        task: task.name.clone(),
        side_effects,
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
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    if let Some((weak, set)) = &traced_set {
        // After the record: a set found before its record would only be a miss.
        runner
            .cache
            .db
            .add_trace_sets(weak, &task.key, std::slice::from_ref(set), now)?;
        if runner.policy.verbose {
            let (n, by_kind) = super::traced::counts(
                rec.deps
                    .iter()
                    .filter(|d| d.kind.is_traced())
                    .map(|d| d.kind),
            );
            ui::note(format!(
                "recorded {n} traced entries ({by_kind}), {} output(s), {} side effect(s)",
                rec.outputs.len(),
                rec.side_effects.len()
            ));
        }
    }
    let key = task.key;
    snapshot::save_stat_cache(&mut runner.cache, &key, &after.stat_cache, &snap.stat_cache);
    if let Some(r) = &runner.remote {
        r.upload(&mut runner.cache, &rec);
        #[cfg(all(
            target_os = "linux",
            any(target_arch = "x86_64", target_arch = "aarch64")
        ))]
        if let Some((weak, set)) = &traced_set {
            r.put_trace_sets(weak, std::slice::from_ref(set));
        }
    }
    crate::store::gc::maybe_auto(&mut runner.cache);
    Ok(())
}

/// Up to three inputs (files and the program) whose ctime is at or after `started_ns`:
/// changed while the command ran, whatever their content is now. Declared outputs and
/// the cache directory are not inputs, so a command writing its outputs is still
/// recorded. Only the ctime: a future mtime (`touch -d`, an archive from a skewed
/// clock) would otherwise keep a task from ever being recorded, and an mtime set back
/// hides nothing from the ctime.
fn changed_during_run(
    task: &Task,
    stats: &crate::deps::stat_cache::StatCache,
    started_ns: i64,
) -> Vec<String> {
    use std::os::unix::ffi::OsStrExt;
    stats
        .entries()
        .filter(|(_, e)| e.ctime_ns >= started_ns)
        .take(3)
        .map(|(path, _)| {
            let key = task
                .ws
                .key_of(std::path::Path::new(std::ffi::OsStr::from_bytes(path)));
            format!(
                "input {}",
                crate::ui::escape_controls(&String::from_utf8_lossy(&key))
            )
        })
        .collect()
}
