//! `idem run --trace` end to end (issue 13): the real binary, real programs (gcc, python3,
//! ls, a static busybox, sh, make), never a mock. Each test changes something only tracing
//! can see and asserts the miss, or leaves it alone and asserts the hit.
//! Helpers here; the scenarios in the submodules, grouped by what they exercise.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

mod blind;
mod check;
mod lookups;
mod make;
mod outputs;
mod processes;
mod unknowable;
mod unrecorded;

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{require_binary, stderr, stdout, Ws};

/// `idem run --trace -v ARGS` in the workspace root; ARGS holds `--` and the command.
pub fn traced(ws: &Ws, args: &[&str]) -> Output {
    let mut full = vec!["--trace", "-v"];
    full.extend_from_slice(args);
    ws.run(&full)
}

/// A traced run that must succeed; returns its stdout.
#[track_caller]
pub fn traced_ok(ws: &Ws, args: &[&str]) -> (Output, String) {
    let o = traced(ws, args);
    assert!(
        o.status.success(),
        "idem run --trace {args:?} failed ({:?}); stderr:\n{}",
        o.status,
        stderr(&o)
    );
    let out = stdout(&o);
    (o, out)
}

/// The real python3 (not a pyenv shim, which would be a shell script around it).
pub fn python() -> Option<PathBuf> {
    let system = Path::new("/usr/bin/python3");
    if system.is_file() {
        return Some(system.to_path_buf());
    }
    require_binary("python3")
}

pub fn gcc() -> Option<PathBuf> {
    require_binary("gcc")
}

/// Makes a file executable (scripts written by the tests).
pub fn chmod_x(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Compiles a small C program into `dir` (outside any workspace: building it is not
/// part of what a test traces) and returns its path.
pub fn compile_c(gcc: &Path, dir: &Path, name: &str, source: &str, libs: &[&str]) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).expect("write C source");
    let exe = dir.join(name);
    let o = std::process::Command::new(gcc)
        .arg("-O1")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .args(libs)
        .output()
        .expect("run gcc");
    assert!(o.status.success(), "gcc {name}.c: {}", stderr(&o));
    exe
}

/// Lines of stderr that are idem warnings.
pub fn warnings(o: &Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| l.starts_with("idem: warning"))
        .map(str::to_owned)
        .collect()
}
