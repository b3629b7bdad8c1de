//! Helpers for the tracer's tests (tests/trace.rs, tests/trace_process.rs): trace a
//! command in a directory with stdout captured, and look paths up in the result.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use idem::trace::{self, Inputs, TraceCommand, TraceError, TraceOptions, Writes};

use crate::common::require_binary;

pub struct Run {
    pub traced: trace::Traced,
    pub stdout: String,
}

/// Traces `argv` in `cwd` with stdout captured through a file, stderr inherited.
pub fn traced_in(cwd: &Path, argv: &[&str]) -> Result<Run, TraceError> {
    traced_with(cwd, argv, &TraceOptions::default())
}

pub fn traced_with(cwd: &Path, argv: &[&str], opts: &TraceOptions) -> Result<Run, TraceError> {
    let out = tempfile::tempfile().expect("tempfile");
    let mut cmd = TraceCommand::new(argv[0], argv.iter().map(OsString::from).collect::<Vec<_>>());
    cmd.cwd = Some(cwd.to_path_buf());
    cmd.stdout = Some(out.try_clone().expect("dup").into());
    let traced = trace::trace(cmd, opts)?;
    let mut out = out;
    use std::io::{Read, Seek};
    out.rewind().expect("rewind");
    let mut stdout = String::new();
    out.read_to_string(&mut stdout).expect("read stdout");
    Ok(Run { traced, stdout })
}

pub fn traced(cwd: &Path, argv: &[&str]) -> Run {
    traced_in(cwd, argv).unwrap_or_else(|e| panic!("tracing {argv:?}: {e}"))
}

pub fn ws() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    // Canonical, so that it matches what /proc/PID/cwd reports (no /tmp symlinks).
    let root = dir.path().canonicalize().expect("canonicalize");
    (dir, root)
}

pub fn write(p: &Path, content: &str) {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(p, content).expect("write");
}

pub fn inputs_of(r: &Run, p: &Path) -> Inputs {
    r.traced.log.get(p).map(|u| u.inputs).unwrap_or_else(|| {
        panic!(
            "{} not in the trace: {:#?}",
            p.display(),
            r.traced.log.paths.keys()
        )
    })
}

pub fn writes_of(r: &Run, p: &Path) -> Writes {
    r.traced.log.get(p).map(|u| u.writes).unwrap_or_default()
}

pub fn python() -> Option<PathBuf> {
    require_binary("python3")
}

/// For `Command::pre_exec`: a seccomp filter that fails ptrace with EPERM (what a
/// container's policy does), so a tracer started below it is refused.
pub fn deny_ptrace() -> std::io::Result<()> {
    #[repr(C)]
    struct Insn(u16, u8, u8, u32);
    #[repr(C)]
    struct Prog(u16, *const Insn);
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xC000_00B7;
    let filter = [
        Insn(0x20, 0, 0, 4),                                // ld arch
        Insn(0x15, 1, 0, ARCH),                             // native?
        Insn(0x06, 0, 0, 0x7fff_0000),                      // allow
        Insn(0x20, 0, 0, 0),                                // ld nr
        Insn(0x15, 0, 1, libc::SYS_ptrace as u32),          // ptrace?
        Insn(0x06, 0, 0, 0x0005_0000 | libc::EPERM as u32), // errno EPERM
        Insn(0x06, 0, 0, 0x7fff_0000),                      // allow
    ];
    let prog = Prog(filter.len() as u16, filter.as_ptr());
    // SAFETY: a valid filter program for seccomp(SECCOMP_SET_MODE_FILTER).
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::syscall(libc::SYS_seccomp, 1, 0, &prog as *const Prog) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
