//! Spawning the command: stdin inherited (or fed from a spooled file), stdout and
//! stderr teed live to our own streams while being captured as blobs (exec/tee).
//! Signals meant for idem reach the child; nothing here decides what gets recorded.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::exit::Code;
use crate::store::blobs::BlobStore;
use crate::store::record::BlobRef;

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod traced;

mod tee;
use tee::{finish_capture, tee_result, tee_streams};

/// How to start the command.
pub struct ExecCommand {
    pub program: PathBuf,
    pub argv: Vec<OsString>,
    /// `Some` replaces the whole environment (--strict-env).
    pub env: Option<Vec<(OsString, OsString)>>,
    /// A spooled copy of stdin (--stdin); else stdin is inherited.
    pub stdin: Option<File>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// What idem exits with: the code, or 128+N for signal N (as shells report it).
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

pub struct Captured {
    pub stdout: BlobRef,
    pub stderr: BlobRef,
    pub chunks: Vec<(u8, u64)>,
}

pub struct Outcome {
    pub exit: Exit,
    pub duration: Duration,
    /// `None` when capture failed or a stream was cut short: never record that.
    pub captured: Option<Captured>,
    /// idem itself received SIGINT/SIGTERM/SIGHUP/SIGQUIT while the command ran.
    pub interrupted: bool,
    /// What tracing saw (`--trace`).
    pub trace: TraceResult,
}

static CHILD_PID: AtomicI32 = AtomicI32::new(0);
static GOT_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    GOT_SIGNAL.store(sig, Ordering::SeqCst);
    // A terminal's Ctrl-C already reached the whole foreground process group, child
    // included (si_code SI_KERNEL); forward only signals sent to idem by a process.
    let from_process = info.is_null() || unsafe { (*info).si_code } <= 0;
    let pid = CHILD_PID.load(Ordering::SeqCst);
    if pid > 0 && (from_process || sig == libc::SIGTERM || sig == libc::SIGHUP) {
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Publishes the child's pid to the signal handler. A signal that arrived while the
/// child was being spawned (before its pid was known) is forwarded now.
fn register_child(pid: u32) {
    CHILD_PID.store(pid as i32, Ordering::SeqCst);
    let pending = GOT_SIGNAL.load(Ordering::SeqCst);
    if pending != 0 {
        unsafe {
            libc::kill(pid as i32, pending);
        }
    }
}

/// The caller had SIGCHLD ignored: idem needs it for wait(), the command gets it back.
static CHLD_WAS_IGNORED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn install_forwarding() {
    unsafe {
        // An inherited "ignore SIGCHLD" would make wait() fail after the command ran.
        let old = libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        if old == libc::SIG_IGN {
            CHLD_WAS_IGNORED.store(true, Ordering::SeqCst);
        }
    }
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        unsafe {
            // A signal our caller ignores (nohup, `trap '' INT`, a background job) stays
            // ignored, so the command inherits exactly what it would without idem.
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut old);
            if old.sa_sigaction == libc::SIG_IGN {
                continue;
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn build(cmd: &ExecCommand) -> Command {
    let mut c = Command::new(&cmd.program);
    c.arg0(&cmd.argv[0]).args(&cmd.argv[1..]);
    if let Some(env) = &cmd.env {
        c.env_clear();
        c.envs(env.iter().map(|(k, v)| (k, v)));
    }
    let chld_ignored = CHLD_WAS_IGNORED.load(Ordering::SeqCst);
    let idem_pid = std::process::id() as libc::pid_t;
    // SAFETY: signal(), prctl() and getppid() are async-signal-safe, as pre_exec requires.
    unsafe {
        c.pre_exec(move || {
            if chld_ignored {
                libc::signal(libc::SIGCHLD, libc::SIG_IGN);
            }
            die_with_parent(idem_pid)
        });
    }
    c
}

/// In the forked child: ask the kernel for SIGTERM when idem dies, even by SIGKILL, so
/// the command never runs on orphaned into the next run's outputs (docs/security.md,
/// "The command's fate"). If idem died before the request was in place (the child's
/// parent is already someone else), the command is not started at all.
fn die_with_parent(idem_pid: libc::pid_t) -> std::io::Result<()> {
    // SAFETY: plain syscalls on the calling process; no memory is shared.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::getppid() != idem_pid {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}

/// The command could not be started (or waited for): what a shell would say, and the
/// code it would exit with.
#[derive(Debug)]
pub struct NotRun {
    pub code: i32,
    pub message: String,
}

impl NotRun {
    /// Prints the message; returns the exit code.
    pub fn report(self) -> i32 {
        eprintln!("{}", self.message);
        self.code
    }
}

/// Why [`run_captured`] did not produce an outcome.
pub enum CaptureError {
    /// The command could not start: report it, as a shell would.
    NotRun(NotRun),
    /// Capturing could not be set up (the cache is broken): nothing was started, so the
    /// command may still run uncached.
    Setup(anyhow::Error),
}

impl From<anyhow::Error> for CaptureError {
    fn from(e: anyhow::Error) -> Self {
        CaptureError::Setup(e)
    }
}

/// Spawn error → the shell's exit code and message.
pub fn spawn_error(cmd: &ExecCommand, e: &std::io::Error) -> NotRun {
    let name = cmd.argv[0].to_string_lossy();
    match e.kind() {
        std::io::ErrorKind::NotFound => NotRun {
            code: Code::NotFound.into(),
            message: format!("idem: {name}: command not found"),
        },
        _ => NotRun {
            code: Code::NotExecutable.into(),
            message: format!("idem: {name}: cannot execute: {e}"),
        },
    }
}

/// Which of fds 1 and 2 were not open at all when idem started (`cmd >&-`), seen before
/// Rust's runtime quietly reopens them on /dev/null (bit N = fd N).
static CLOSED_AT_START: AtomicI32 = AtomicI32::new(0);

/// Called first by `startup::init`, before it reopens closed standard descriptors on
/// /dev/null; async-signal-safe and allocation-free.
pub extern "C" fn probe_closed_stdio() {
    let mut closed = 0;
    for fd in [1, 2] {
        // SAFETY: F_GETFD only asks whether the descriptor exists.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            closed |= 1 << fd;
        }
    }
    CLOSED_AT_START.store(closed, Ordering::SeqCst);
}

/// "stdout", "stderr" or "stdout and stderr" when idem was started with them closed:
/// the command must then run uncached with them closed too (it would fail writing, and
/// a replay into /dev/null would claim a success it never had).
pub fn closed_stdio() -> Option<&'static str> {
    match CLOSED_AT_START.load(Ordering::SeqCst) {
        0 => None,
        0b10 => Some("stdout"),
        0b100 => Some("stderr"),
        _ => Some("stdout and stderr"),
    }
}

/// Runs the command with plain inherited stdio: what idem does when its cache is broken.
/// Standard descriptors that were closed when idem started are closed for it too.
pub fn run_plain(cmd: &mut ExecCommand) -> Result<Exit, NotRun> {
    install_forwarding();
    let mut c = build(cmd);
    let closed = CLOSED_AT_START.load(Ordering::SeqCst);
    if closed != 0 {
        // SAFETY: close() is async-signal-safe; these are the runtime's /dev/null fds.
        unsafe {
            c.pre_exec(move || {
                for fd in [1, 2] {
                    if closed & (1 << fd) != 0 {
                        libc::close(fd);
                    }
                }
                Ok(())
            });
        }
    }
    if let Some(f) = cmd.stdin.take() {
        c.stdin(Stdio::from(f));
    }
    let mut child = c.spawn().map_err(|e| spawn_error(cmd, &e))?;
    register_child(child.id());
    let status = child.wait().map_err(|e| NotRun {
        code: Code::Internal.into(),
        message: format!("idem: waiting for the command failed: {e}"),
    })?;
    Ok(status_to_exit(status))
}

/// Runs `argv` as a shell would (PATH lookup, inherited stdio and working directory):
/// for when idem cannot even work out the task, as in a deleted working directory.
pub fn run_argv_plain(argv: &[OsString], env: Option<Vec<(OsString, OsString)>>) -> i32 {
    let mut cmd = ExecCommand {
        program: PathBuf::from(&argv[0]),
        argv: argv.to_vec(),
        env,
        stdin: None,
    };
    match run_plain(&mut cmd) {
        Ok(exit) => exit.code(),
        Err(not_run) => not_run.report(),
    }
}

fn status_to_exit(status: std::process::ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        (None, None) => Exit::Code(1),
    }
}

/// Asks for the command to run under the tracer (`--trace`).
#[derive(Debug, Clone, Default)]
pub struct TraceSetup {
    /// Path prefixes never recorded, on top of /proc, /sys and /dev (the cache directory).
    pub ignore_prefixes: Vec<PathBuf>,
    /// Prefixes traced even under an ignored one, on top of /dev/shm (the workspace root).
    pub traced_prefixes: Vec<PathBuf>,
}

/// What tracing came to.
#[derive(Debug, Default)]
pub enum TraceResult {
    /// Not asked for.
    #[default]
    Off,
    /// The run was traced: what the command tree did.
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    Log(Box<crate::trace::TraceLog>),
    /// Tracing is not possible here (ptrace refused): the command ran untraced. Not
    /// warned about yet: what it means depends on the trace mode (the engine says it).
    Refused(String),
    /// The tracer failed while the command ran (warned about; the run is not recorded).
    Failed(String),
}

/// Runs the command, teeing and capturing its output into the blob store; under the
/// tracer when `trace` asks for it (a refused tracer warns once and runs it untraced).
pub fn run_captured(
    cmd: &mut ExecCommand,
    blobs: &BlobStore,
    trace: Option<&TraceSetup>,
) -> Result<Outcome, CaptureError> {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    if let Some(setup) = trace {
        match traced::run(cmd, blobs, setup)? {
            traced::Traced::Ran(outcome) => return Ok(outcome),
            traced::Traced::Refused(why) => {
                let mut outcome = run_untraced(cmd, blobs)?;
                outcome.trace = TraceResult::Refused(why);
                return Ok(outcome);
            }
        }
    }
    let _ = trace;
    run_untraced(cmd, blobs)
}

fn run_untraced(cmd: &mut ExecCommand, blobs: &BlobStore) -> Result<Outcome, CaptureError> {
    let mut out_w = blobs.writer().context("cannot capture stdout")?;
    let mut err_w = blobs.writer().context("cannot capture stderr")?;
    install_forwarding();
    let mut c = build(cmd);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(f) = cmd.stdin.take() {
        c.stdin(Stdio::from(f));
    }
    let start = Instant::now();
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => return Err(CaptureError::NotRun(spawn_error(cmd, &e))),
    };
    register_child(child.id());
    let child_out = child
        .stdout
        .take()
        .context("child stdout is piped by construction")?;
    let child_err = child
        .stderr
        .take()
        .context("child stderr is piped by construction")?;
    use std::os::fd::OwnedFd;
    let tee = tee_streams(
        child.id(),
        File::from(OwnedFd::from(child_out)),
        File::from(OwnedFd::from(child_err)),
        &mut out_w,
        &mut err_w,
    );
    let (chunks, mut complete) = tee_result(tee);
    let status = child.wait();
    let duration = start.elapsed();
    CHILD_PID.store(0, Ordering::SeqCst);
    // The command has run: whatever happens now, it must not run a second time.
    let exit = match status {
        Ok(status) => status_to_exit(status),
        Err(e) => {
            crate::ui::warn(format!("waiting for the command failed: {e}; not recorded"));
            complete = false;
            Exit::Code(crate::exit::Code::Internal.into())
        }
    };
    Ok(Outcome {
        exit,
        duration,
        captured: finish_capture(out_w, err_w, chunks, complete),
        interrupted: GOT_SIGNAL.load(Ordering::SeqCst) != 0,
        trace: TraceResult::Off,
    })
}
