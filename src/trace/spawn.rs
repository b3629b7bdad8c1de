//! Starting the traced command: fork, put the caller's fds on 0/1/2, wait until the parent
//! has seized us with ptrace, install the seccomp filter, exec. Between fork and exec the
//! child only makes async-signal-safe syscalls on memory prepared before the fork.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::filter;
use super::syscalls::Sys;
use super::TraceError;

/// What to run under the tracer. The program is exec'd as given (no PATH search when it
/// contains a slash; otherwise PATH of the command's environment is searched).
pub struct TraceCommand {
    pub program: PathBuf,
    /// argv, including argv[0].
    pub argv: Vec<OsString>,
    /// `Some` replaces the whole environment; `None` inherits idem's.
    pub env: Option<Vec<(OsString, OsString)>>,
    /// Working directory; `None` inherits idem's.
    pub cwd: Option<PathBuf>,
    /// Descriptors that become the command's 0, 1, 2; `None` inherits idem's.
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// Give the command SIGCHLD ignored (idem's own caller had it ignored).
    pub sigchld_ignored: bool,
}

impl TraceCommand {
    /// A command with inherited environment, cwd and stdio.
    pub fn new(program: impl Into<PathBuf>, argv: Vec<OsString>) -> Self {
        TraceCommand {
            program: program.into(),
            argv,
            env: None,
            cwd: None,
            stdin: None,
            stdout: None,
            stderr: None,
            sigchld_ignored: false,
        }
    }
}

/// What the child reports on its error pipe before `_exit(127)`: [stage, errno].
pub const STAGE_FILTER: i32 = 1;
pub const STAGE_EXEC: i32 = 2;
pub const STAGE_CWD: i32 = 3;

pub const PTRACE_OPTIONS: libc::c_int = libc::PTRACE_O_TRACESECCOMP
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_EXITKILL;

/// A forked, seized child, released to install its filter and exec.
pub struct Spawned {
    pub pid: i32,
    /// Read end of the child's error pipe (EOF once the exec succeeded).
    pub errors: OwnedFd,
}

fn cstring(bytes: &[u8], what: &str) -> Result<CString, TraceError> {
    CString::new(bytes).map_err(|_| {
        TraceError::Spawn(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        ))
    })
}

fn pipe() -> Result<(OwnedFd, OwnedFd), TraceError> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(TraceError::Failed(format!(
            "pipe2: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The file `program` names: itself when it has a slash, else the first executable
/// regular file of that name in PATH.
fn find_program(program: &Path, path_var: Option<&OsStr>) -> Option<PathBuf> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return Some(program.to_path_buf());
    }
    let path_var = path_var.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(path_var)
        .map(|dir| dir.join(program))
        .find(|cand| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(cand)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Forks the command, seizes it, releases it. On `Refused` the child is already reaped.
pub fn spawn(cmd: TraceCommand, skip: &[Sys]) -> Result<Spawned, TraceError> {
    let env: Vec<(OsString, OsString)> = match &cmd.env {
        Some(e) => e.clone(),
        None => std::env::vars_os().collect(),
    };
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_os_str());
    let program = find_program(&cmd.program, path_var)
        .ok_or_else(|| TraceError::Spawn(std::io::Error::from_raw_os_error(libc::ENOENT)))?;
    let c_program = cstring(program.as_os_str().as_bytes(), "the program path")?;
    let c_argv = cmd
        .argv
        .iter()
        .map(|a| cstring(a.as_bytes(), "an argument"))
        .collect::<Result<Vec<_>, _>>()?;
    let c_env = env
        .iter()
        .map(|(k, v)| {
            let mut kv = k.clone().into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            cstring(&kv, "an environment variable")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let c_cwd = match &cmd.cwd {
        Some(d) => Some(cstring(d.as_os_str().as_bytes(), "the working directory")?),
        None => None,
    };
    let mut argv_ptrs: Vec<*const libc::c_char> = c_argv.iter().map(|c| c.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = c_env.iter().map(|c| c.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let prog = filter::program(skip);
    let stdio: [Option<RawFd>; 3] = [
        cmd.stdin.as_ref().map(|f| f.as_raw_fd()),
        cmd.stdout.as_ref().map(|f| f.as_raw_fd()),
        cmd.stderr.as_ref().map(|f| f.as_raw_fd()),
    ];
    let (go_r, go_w) = pipe()?;
    let (err_r, err_w) = pipe()?;

    // SAFETY: the child branch below only calls async-signal-safe functions on memory
    // prepared above, and always ends in execve or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(TraceError::Failed(format!(
            "fork: {}",
            std::io::Error::last_os_error()
        )));
    }
    if pid == 0 {
        // SAFETY: we are the freshly forked child; see child_main's contract.
        unsafe {
            child_main(ChildSetup {
                go: go_r.as_raw_fd(),
                go_w: go_w.as_raw_fd(),
                err: err_w.as_raw_fd(),
                stdio,
                cwd: c_cwd.as_ref().map(|c| c.as_ptr()),
                sigchld_ignored: cmd.sigchld_ignored,
                program: c_program.as_ptr(),
                argv: argv_ptrs.as_ptr(),
                envp: env_ptrs.as_ptr(),
                filter: &prog,
            })
        }
    }
    drop(go_r);
    drop(err_w);
    drop(cmd);
    // SAFETY: plain ptrace request on our own child.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_SEIZE,
            pid,
            std::ptr::null_mut::<libc::c_void>(),
            PTRACE_OPTIONS as usize as *mut libc::c_void,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        // The child is still blocked before its exec: it never ran the command.
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        return Err(TraceError::Refused(format!(
            "ptrace(PTRACE_SEIZE) failed: {e}"
        )));
    }
    // Release the child. If this write fails the child sees EOF and exits 127.
    // SAFETY: writing one byte from a valid buffer to our pipe.
    unsafe {
        libc::write(go_w.as_raw_fd(), b"g".as_ptr().cast(), 1);
    }
    drop(go_w);
    Ok(Spawned { pid, errors: err_r })
}

struct ChildSetup<'a> {
    go: RawFd,
    go_w: RawFd,
    err: RawFd,
    stdio: [Option<RawFd>; 3],
    cwd: Option<*const libc::c_char>,
    sigchld_ignored: bool,
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    filter: &'a [filter::SockFilter],
}

/// Reports `[stage, errno]` on the error pipe and exits 127.
unsafe fn child_fail(err: RawFd, stage: i32, errno: i32) -> ! {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&stage.to_ne_bytes());
    msg[4..].copy_from_slice(&errno.to_ne_bytes());
    libc::write(err, msg.as_ptr().cast(), msg.len());
    libc::_exit(127)
}

/// # Safety
/// Only in a freshly forked child: never returns, never allocates.
unsafe fn child_main(s: ChildSetup) -> ! {
    libc::close(s.go_w);
    for (target, fd) in s.stdio.iter().enumerate() {
        if let Some(fd) = *fd {
            let target = target as RawFd;
            if fd == target {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else {
                libc::dup2(fd, target);
            }
        }
    }
    // What std::process::Command does: an empty signal mask, SIGPIPE back to default
    // (Rust ignores it in idem itself).
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    if s.sigchld_ignored {
        libc::signal(libc::SIGCHLD, libc::SIG_IGN);
    }
    if let Some(dir) = s.cwd {
        if libc::chdir(dir) != 0 {
            child_fail(s.err, STAGE_CWD, *libc::__errno_location());
        }
    }
    // Wait until the parent has seized us: the filter's RET_TRACE without a tracer
    // would fail every traced syscall with ENOSYS.
    let mut b = [0u8; 1];
    loop {
        let n = libc::read(s.go, b.as_mut_ptr().cast(), 1);
        if n == 1 {
            break;
        }
        if n < 0 && *libc::__errno_location() == libc::EINTR {
            continue;
        }
        libc::_exit(127);
    }
    if let Err(errno) = filter::install(s.filter) {
        child_fail(s.err, STAGE_FILTER, errno);
    }
    libc::execve(s.program, s.argv, s.envp);
    child_fail(s.err, STAGE_EXEC, *libc::__errno_location())
}

/// After the child is gone: what it reported on the error pipe, if anything.
pub fn child_report(errors: &OwnedFd) -> Option<(i32, i32)> {
    let mut msg = [0u8; 8];
    // SAFETY: reading into our own buffer; the write end is closed (child exited).
    let n = unsafe { libc::read(errors.as_raw_fd(), msg.as_mut_ptr().cast(), msg.len()) };
    if n != 8 {
        return None;
    }
    let stage = i32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]);
    let errno = i32::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]);
    Some((stage, errno))
}
