//! The tracer as a process supervisor: exit codes and signals passed through exactly,
//! group-stop kept, exec from a thread, the exec.rs pipe seam, ptrace refused.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::ffi::OsString;
use std::fs::File;
use std::path::Path;

use crate::trace_support::*;
use idem::trace::{self, Exit, Inputs, TraceCommand, TraceError, TraceOptions};

/// The seam exec.rs uses: the command's stdout is the write end of a pipe that another
/// thread tees, while the tracer runs on the thread that spawned the command.
#[test]
fn output_through_a_pipe_teed_on_another_thread() {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let (_d, root) = ws();
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fresh descriptors into fds.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors are fresh and owned here only.
    let (rd, wr) = unsafe {
        (
            File::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    let tee = std::thread::spawn(move || {
        let mut rd = rd;
        let mut all = String::new();
        rd.read_to_string(&mut all).map(|_| all)
    });
    let mut cmd = TraceCommand::new(
        "/bin/sh",
        [
            "sh",
            "-c",
            "for i in 1 2 3; do echo line $i; done; cat /etc/hostname >/dev/null",
        ]
        .iter()
        .map(OsString::from)
        .collect(),
    );
    cmd.cwd = Some(root.clone());
    cmd.stdout = Some(wr);
    let tracer = trace::Tracer::spawn(cmd, &TraceOptions::default()).expect("spawn");
    assert!(tracer.pid() > 0);
    let traced = tracer.run().expect("trace");
    // EOF arrives: no copy of the write end was left open in idem or leaked elsewhere.
    let out = tee.join().expect("tee thread").expect("read pipe");
    assert_eq!(out, "line 1\nline 2\nline 3\n");
    assert_eq!(traced.exit, Exit::Code(0));
    assert!(traced.log.get("/etc/hostname").is_some());
}

/// A thread other than the main one execs: the kernel gives it the leader's tid, and the
/// tracer must carry its pending exec over (the old tid never reports an exit).
#[test]
fn exec_from_a_non_leader_thread() {
    let Some(py) = python() else { return };
    let (_d, root) = ws();
    write(&root.join("f"), "from the new image\n");
    let script = "import os, threading\n\
                  t = threading.Thread(target=lambda: os.execv('/bin/cat', ['cat', 'f']))\n\
                  t.start(); t.join()";
    let r = traced(&root, &[py.to_str().unwrap(), "-S", "-c", script]);
    assert_eq!(r.stdout, "from the new image\n");
    assert_eq!(r.traced.exit, Exit::Code(0));
    assert!(inputs_of(&r, &root.join("f")).contains(Inputs::READ));
    assert!(inputs_of(&r, Path::new("/bin/cat")).contains(Inputs::EXEC));
}

#[test]
fn exit_codes_and_signals_pass_through() {
    let (_d, root) = ws();
    let r = traced(&root, &["/bin/sh", "-c", "exit 42"]);
    assert_eq!(r.traced.exit, Exit::Code(42));
    let r = traced(&root, &["/bin/sh", "-c", "kill -TERM $$"]);
    assert_eq!(
        r.traced.exit,
        Exit::Signal {
            signal: libc::SIGTERM,
            core_dumped: false
        }
    );
    // A signal caught by a handler is delivered to it (not swallowed by the tracer).
    let r = traced(
        &root,
        &[
            "/bin/sh",
            "-c",
            "trap 'echo caught; exit 3' USR1; kill -USR1 $$; exit 9",
        ],
    );
    assert_eq!(
        (r.traced.exit, r.stdout.as_str()),
        (Exit::Code(3), "caught\n")
    );
    match traced_in(&root, &["/nonexistent/program"]) {
        Err(TraceError::Spawn(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        other => panic!(
            "expected a spawn error, got {other:?}",
            other = other.map(|r| r.traced.exit)
        ),
    }
}

#[test]
fn a_stopped_child_stays_stopped_until_sigcont() {
    let Some(py) = python() else { return };
    let (_d, root) = ws();
    // The real parent sees the group-stop (WUNTRACED) only once it is complete, so the
    // child's state read after it is stable: stopped until the parent sends SIGCONT.
    let script = r#"
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.kill(os.getpid(), signal.SIGSTOP)
    print("resumed", flush=True)
    os._exit(7)
_, st = os.waitpid(pid, os.WUNTRACED)
state = open('/proc/%d/status' % pid).read().split('State:')[1].split()[0]
print("stopped", os.WIFSTOPPED(st), os.WSTOPSIG(st), state in ('T', 't'), flush=True)
os.kill(pid, signal.SIGCONT)
_, st = os.waitpid(pid, 0)
sys.exit(os.WEXITSTATUS(st))
"#;
    let r = traced(&root, &[py.to_str().unwrap(), "-S", "-c", script]);
    assert_eq!(r.stdout, "stopped True 19 True\nresumed\n");
    assert_eq!(r.traced.exit, Exit::Code(7));
}

/// Installs a seccomp filter that fails ptrace with EPERM (what a container's policy does),
/// then runs the tracer in this re-executed test binary.
#[test]
fn ptrace_refused_is_a_distinct_error() {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().expect("current_exe");
    let mut c = std::process::Command::new(exe);
    c.args([
        "--exact",
        "trace_process::ptrace_refused_child",
        "--ignored",
        "--nocapture",
    ])
    .env("IDEM_TRACE_REFUSED_CHILD", "1");
    // SAFETY: prctl and seccomp are async-signal-safe syscalls on a prepared program.
    unsafe {
        c.pre_exec(deny_ptrace);
    }
    let out = c.output().expect("run the child test");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("REFUSED: cannot trace here: ptrace(PTRACE_SEIZE) failed"),
        "{text}"
    );
}

#[test]
#[ignore = "helper: run by ptrace_refused_is_a_distinct_error under a seccomp policy"]
fn ptrace_refused_child() {
    if std::env::var_os("IDEM_TRACE_REFUSED_CHILD").is_none() {
        return;
    }
    let (_d, root) = ws();
    let marker = root.join("ran");
    let script = format!("touch {}", marker.display());
    match traced_in(&root, &["/bin/sh", "-c", &script]) {
        Err(e @ TraceError::Refused(_)) => println!("REFUSED: {e}"),
        Err(e) => panic!("another error: {e}"),
        Ok(r) => panic!("traced anyway: {:?}", r.traced.exit),
    }
    assert!(
        !marker.exists(),
        "a refused trace must not have run the command"
    );
}
