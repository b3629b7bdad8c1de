//! `--stale D`: a replay older than D starts a detached `idem run --background-refresh`
//! with the same arguments; that refresher runs the command once (lease) and only if the
//! record is still stale. The caller never waits for it.

use std::ffi::OsString;

use anyhow::Result;

use super::execute;
use super::lookup::Age;
use super::runner::Runner;
use super::snapshot::Snapshot;
use crate::lease::{self, Acquire};
use crate::ui;

/// Starts a detached `idem run --background-refresh …` with the same arguments.
pub fn spawn() {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    let Some(pos) = argv.iter().position(|a| a == "run") else {
        return;
    };
    argv.insert(pos + 1, OsString::from("--background-refresh"));
    let Ok(me) = std::env::current_exe() else {
        return;
    };
    let mut c = std::process::Command::new(me);
    // The same argv from the same directory: a named task moved us into its own.
    if let Some(dir) = crate::spec::invocation_dir() {
        c.current_dir(dir);
    }
    c.args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe; it detaches the refresher from our terminal
    // and process group so a Ctrl-C meant for the caller does not kill it.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    if let Err(e) = c.spawn() {
        ui::warn(format!("cannot start the background refresh: {e}"));
    }
}

/// The detached refresher: one at a time (lease), and only if still stale.
pub fn refresh(runner: &mut Runner, snap: Snapshot) -> Result<i32> {
    let name = super::flight::lease_name(&runner.task.key, &snap.state_key());
    let Acquire::Got(lease) = lease::try_acquire(&runner.cache.dir, &name)? else {
        return Ok(0);
    };
    if let (Some(stale), Ok(Some((_, rec)))) = (
        runner.policy.stale,
        runner.cache.db.lookup(&runner.task.key, &snap.state_key()),
    ) {
        if !Age::of(&rec, crate::clock::now_ns()).beyond(stale) {
            return Ok(0);
        }
    }
    let code = execute::execute_and_record(runner, snap, None);
    drop(lease);
    Ok(code)
}
