//! The tracer against real programs: gcc include probing, python imports, ls, a static
//! busybox, grandchildren, chdir, dirfds, posix_spawn/vfork, rename-over, sockets,
//! threads, exit codes, signals, group-stop and ptrace refused. Calls idem::trace directly.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

mod common;

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};

use common::require_binary;
use idem::trace::{self, Exit, Inputs, Reason, TraceCommand, TraceError, TraceOptions, Writes};

struct Run {
    traced: trace::Traced,
    stdout: String,
}

/// Traces `argv` in `cwd` with stdout captured through a file, stderr inherited.
fn traced_in(cwd: &Path, argv: &[&str]) -> Result<Run, TraceError> {
    traced_with(cwd, argv, &TraceOptions::default())
}

fn traced_with(cwd: &Path, argv: &[&str], opts: &TraceOptions) -> Result<Run, TraceError> {
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

fn traced(cwd: &Path, argv: &[&str]) -> Run {
    traced_in(cwd, argv).unwrap_or_else(|e| panic!("tracing {argv:?}: {e}"))
}

fn ws() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    // Canonical, so that it matches what /proc/PID/cwd reports (no /tmp symlinks).
    let root = dir.path().canonicalize().expect("canonicalize");
    (dir, root)
}

fn write(p: &Path, content: &str) {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(p, content).expect("write");
}

fn inputs_of(r: &Run, p: &Path) -> Inputs {
    r.traced.log.get(p).map(|u| u.inputs).unwrap_or_else(|| {
        panic!(
            "{} not in the trace: {:#?}",
            p.display(),
            r.traced.log.paths.keys()
        )
    })
}

fn writes_of(r: &Run, p: &Path) -> Writes {
    r.traced.log.get(p).map(|u| u.writes).unwrap_or_default()
}

fn python() -> Option<PathBuf> {
    require_binary("python3")
}

#[test]
fn gcc_records_the_header_it_found_and_the_one_it_did_not() {
    let Some(gcc) = require_binary("gcc") else {
        return;
    };
    let (_d, root) = ws();
    std::fs::create_dir(root.join("inc1")).unwrap();
    write(&root.join("inc2/v.h"), "#define V 2\n");
    write(
        &root.join("main.c"),
        "#include \"v.h\"\nint v(void) { return V; }\n",
    );
    let gcc = gcc.to_str().unwrap();
    let r = traced(
        &root,
        &[gcc, "-Iinc1", "-Iinc2", "-c", "main.c", "-o", "main.o"],
    );
    assert_eq!(r.traced.exit, Exit::Code(0));
    assert!(inputs_of(&r, &root.join("inc1/v.h")).contains(Inputs::ABSENT));
    assert!(inputs_of(&r, &root.join("inc2/v.h")).contains(Inputs::READ));
    assert!(inputs_of(&r, &root.join("main.c")).contains(Inputs::READ));
    // The object is created; the driver looked for it first (found absent): that probe is
    // all of its pre-run state, never its content.
    let obj = r
        .traced
        .log
        .get(root.join("main.o"))
        .expect("main.o traced");
    assert!(obj.writes.contains(Writes::CREATED), "{obj:?}");
    assert_eq!(obj.inputs, Inputs::ABSENT, "{obj:?}");
    // The compiler proper is executed by the driver (a grandchild program).
    let execs: Vec<_> = r
        .traced
        .log
        .paths
        .iter()
        .filter(|(_, u)| u.inputs.contains(Inputs::EXEC))
        .map(|(p, _)| p.clone())
        .collect();
    assert!(execs.iter().any(|p| p.ends_with("cc1")), "{execs:?}");
    assert!(
        r.traced.log.unknowable.is_empty(),
        "{:?}",
        r.traced.log.unknowable
    );
    assert!(r.traced.log.stops > 100);
    // Noise is never recorded.
    assert!(r.traced.log.paths.keys().all(|p| !p.starts_with("/proc")));
}

#[test]
fn python_import_lists_the_first_dir_and_reads_from_the_second() {
    let Some(py) = python() else { return };
    let (_d, root) = ws();
    std::fs::create_dir(root.join("a")).unwrap();
    write(&root.join("b/shadowed.py"), "X = 'from b'\n");
    let script = "import sys; sys.path[:0] = ['a', 'b']; import shadowed; print(shadowed.X)";
    let r = traced(&root, &[py.to_str().unwrap(), "-S", "-B", "-c", script]);
    assert_eq!(r.stdout, "from b\n");
    // Python's finder lists each path directory once and looks names up in the listing:
    // a module appearing in a/ changes a's listing.
    assert!(inputs_of(&r, &root.join("a")).contains(Inputs::LISTING));
    assert!(inputs_of(&r, &root.join("b/shadowed.py")).contains(Inputs::READ));
}

#[test]
fn ls_lists_the_directory() {
    let (_d, root) = ws();
    write(&root.join("d/one"), "1");
    let r = traced(&root, &["ls", "d"]);
    assert_eq!(r.stdout, "one\n");
    assert!(inputs_of(&r, &root.join("d")).contains(Inputs::LISTING));
    assert!(r
        .traced
        .log
        .get("/usr/bin/ls")
        .or(r.traced.log.get("/bin/ls"))
        .is_some());
}

#[test]
fn a_statically_linked_program_is_seen() {
    let Some(bb) = require_binary("busybox") else {
        return;
    };
    let (_d, root) = ws();
    write(&root.join("f"), "static\n");
    write(&root.join("sub/g"), "g\n");
    let bb = bb.to_str().unwrap();
    let r = traced(
        &root,
        &[bb, "sh", "-c", "cat f; cd sub && cat g; test -e nothere"],
    );
    assert_eq!(r.stdout, "static\ng\n");
    assert!(inputs_of(&r, &root.join("f")).contains(Inputs::READ));
    assert!(inputs_of(&r, &root.join("sub/g")).contains(Inputs::READ));
    assert!(inputs_of(&r, &root.join("sub/nothere")).contains(Inputs::ABSENT));
    assert!(inputs_of(&r, Path::new(bb)).contains(Inputs::EXEC));
}

#[test]
fn grandchildren_and_chdir() {
    let (_d, root) = ws();
    write(&root.join("sub/deep/f"), "deep\n");
    let r = traced(
        &root,
        &[
            "/bin/sh",
            "-c",
            "sh -c 'cd sub && (cd deep; cat f) && cat deep/f'",
        ],
    );
    assert_eq!(r.stdout, "deep\ndeep\n");
    let pids: std::collections::HashSet<i32> = r
        .traced
        .log
        .events
        .iter()
        .filter(|e| e.path == root.join("sub/deep/f"))
        .map(|e| e.pid)
        .collect();
    assert_eq!(pids.len(), 2, "two different cat processes read the file");
    assert!(inputs_of(&r, &root.join("sub/deep/f")).contains(Inputs::READ));
}

#[test]
fn openat_with_a_dirfd_and_posix_spawn() {
    let Some(py) = python() else { return };
    let (_d, root) = ws();
    write(&root.join("sub/f"), "f\n");
    write(&root.join("sub/g"), "g\n");
    let script = r#"
import os
fd = os.open('sub', os.O_RDONLY | os.O_DIRECTORY)
os.close(os.open('f', os.O_RDONLY, dir_fd=fd))
os.rename('sub', 'moved')           # the dirfd follows the directory
os.close(os.open('g', os.O_RDONLY, dir_fd=fd))
pid = os.posix_spawn('/bin/cat', ['cat', 'moved/f'], os.environ)
os.waitpid(pid, 0)
"#;
    let r = traced(&root, &[py.to_str().unwrap(), "-S", "-c", script]);
    assert_eq!(r.stdout, "f\n");
    assert!(inputs_of(&r, &root.join("sub/f")).contains(Inputs::READ));
    assert!(inputs_of(&r, &root.join("moved/g")).contains(Inputs::READ));
    assert!(inputs_of(&r, &root.join("moved/f")).contains(Inputs::READ));
    assert!(writes_of(&r, &root.join("moved")).contains(Writes::RENAMED_INTO));
    assert!(writes_of(&r, &root.join("sub")).contains(Writes::REMOVED));
}

#[test]
fn outputs_renamed_over_and_files_modified_in_place() {
    let (_d, root) = ws();
    write(&root.join("log"), "old\n");
    write(&root.join("out"), "previous\n");
    let r = traced(
        &root,
        &[
            "/bin/sh",
            "-c",
            "echo new > out.tmp && mv -f out.tmp out && echo more >> log",
        ],
    );
    assert_eq!(r.traced.exit, Exit::Code(0));
    let tmp = r.traced.log.get(root.join("out.tmp")).expect("out.tmp");
    assert!(tmp.writes.contains(Writes::CREATED) && tmp.writes.contains(Writes::REMOVED));
    assert!(!tmp.is_input(), "first access was the write: {tmp:?}");
    assert!(writes_of(&r, &root.join("out")).contains(Writes::RENAMED_INTO));
    // Appending keeps the old content: an input as well as an output.
    let log = r.traced.log.get(root.join("log")).expect("log");
    assert!(
        log.read_before_write() && log.writes.contains(Writes::MODIFIED),
        "{log:?}"
    );
}

#[test]
fn an_inet_client_is_unknowable_a_unix_socket_is_not() {
    let Some(py) = python() else { return };
    let (_d, root) = ws();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let script = format!("import socket; socket.create_connection(('127.0.0.1', {port})).close()");
    let r = traced(&root, &[py.to_str().unwrap(), "-S", "-c", &script]);
    assert_eq!(r.traced.exit, Exit::Code(0));
    assert!(
        r.traced
            .log
            .unknowable
            .iter()
            .any(|u| u.reason == Reason::InetSocket { family: 2 }),
        "{:?}",
        r.traced.log.unknowable
    );
    drop(listener);

    let script = "import socket; a, b = socket.socketpair(); a.sendall(b'x'); print(b.recv(1))\n\
                  s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind('u'); \
                  socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'y', 'u')";
    let r = traced(&root, &[py.to_str().unwrap(), "-S", "-c", script]);
    assert_eq!(r.traced.exit, Exit::Code(0));
    assert!(
        r.traced.log.unknowable.is_empty(),
        "{:?}",
        r.traced.log.unknowable
    );
}

#[test]
fn threads_reads_are_attributed_to_their_thread() {
    let Some(py) = python() else { return };
    let (_d, root) = ws();
    for i in 0..4 {
        write(&root.join(format!("t{i}")), "x");
    }
    let script = "import threading, os\n\
                  def rd(i): open('t%d' % i).read()\n\
                  ts = [threading.Thread(target=rd, args=(i,)) for i in range(4)]\n\
                  [t.start() for t in ts]; [t.join() for t in ts]";
    let r = traced(&root, &[py.to_str().unwrap(), "-S", "-c", script]);
    assert_eq!(r.traced.exit, Exit::Code(0));
    let mut tids = std::collections::HashSet::new();
    for i in 0..4 {
        let p = root.join(format!("t{i}"));
        assert!(inputs_of(&r, &p).contains(Inputs::READ));
        tids.extend(
            r.traced
                .log
                .events
                .iter()
                .filter(|e| e.path == p)
                .map(|e| e.pid),
        );
    }
    let root_pid = r.traced.log.events[0].pid;
    assert!(
        !tids.contains(&root_pid),
        "reads happen on threads, not the main thread"
    );
}

#[test]
fn a_script_records_itself_and_its_interpreter() {
    let (_d, root) = ws();
    write(&root.join("helper.sh"), "#!/bin/sh\necho helped\n");
    std::fs::set_permissions(
        root.join("helper.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let r = traced(&root, &["/bin/sh", "-c", "./helper.sh"]);
    assert_eq!(r.stdout, "helped\n");
    assert!(inputs_of(&r, &root.join("helper.sh")).contains(Inputs::EXEC));
    // The kernel opens the interpreter itself; it is found through /proc/PID/maps.
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    assert!(
        inputs_of(&r, &sh).contains(Inputs::EXEC),
        "{}",
        sh.display()
    );
}

#[test]
fn setuid_exec_and_io_uring_are_unknowable() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, root) = ws();
    let prog = root.join("suid-true");
    std::fs::copy("/bin/true", &prog).unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let r = traced(&root, &[prog.to_str().unwrap()]);
    assert_eq!(r.traced.exit, Exit::Code(0));
    assert!(
        r.traced
            .log
            .unknowable
            .iter()
            .any(|u| u.reason == Reason::SetuidExec(prog.clone())),
        "{:?}",
        r.traced.log.unknowable
    );
    let Some(py) = python() else { return };
    let script = "import ctypes; p = ctypes.create_string_buffer(120); \
                  ctypes.CDLL(None, use_errno=True).syscall(425, 1, p)";
    let r = traced(&root, &[py.to_str().unwrap(), "-S", "-c", script]);
    assert_eq!(r.traced.exit, Exit::Code(0));
    assert!(
        r.traced
            .log
            .unknowable
            .iter()
            .any(|u| u.reason == Reason::IoUring),
        "{:?}",
        r.traced.log.unknowable
    );
}

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

#[test]
fn readlink_is_traced_unless_turned_off() {
    let (_d, root) = ws();
    std::os::unix::fs::symlink("target", root.join("lnk")).unwrap();
    let r = traced(&root, &["readlink", "lnk"]);
    assert_eq!(r.stdout, "target\n");
    assert!(inputs_of(&r, &root.join("lnk")).contains(Inputs::LINK));
    let opts = TraceOptions {
        trace_readlink: false,
        ..TraceOptions::default()
    };
    let r = traced_with(&root, &["readlink", "lnk"], &opts).expect("trace");
    assert_eq!(r.stdout, "target\n");
    let link = r.traced.log.get(root.join("lnk"));
    assert!(
        link.is_none_or(|u| !u.inputs.contains(Inputs::LINK)),
        "{link:?}"
    );
}

/// A 64-bit program making a 32-bit syscall (`int $0x80`, what a compat binary does):
/// the filter's arch check traps it and the run is marked unknowable.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_foreign_abi_syscall_is_unknowable() {
    let Some(gcc) = require_binary("gcc") else {
        return;
    };
    let (_d, root) = ws();
    write(
        &root.join("compat.c"),
        "int main(void) { long r; __asm__ volatile(\"int $0x80\" : \"=a\"(r) : \"a\"(20L)); \
         return r > 0 ? 0 : 1; }\n",
    );
    let out = std::process::Command::new(&gcc)
        .args(["-O1", "compat.c", "-o", "compat"])
        .current_dir(&root)
        .status()
        .expect("gcc");
    assert!(out.success());
    let plain = std::process::Command::new(root.join("compat"))
        .status()
        .expect("run");
    if !plain.success() {
        eprintln!("skipping: this kernel has no 32-bit syscall emulation ({plain})");
        return;
    }
    let r = traced(&root, &["./compat"]);
    // i386 getpid (20) works through int $0x80 on a kernel with IA32 emulation.
    assert_eq!(r.traced.exit, Exit::Code(0));
    assert!(
        r.traced
            .log
            .unknowable
            .iter()
            .any(|u| u.reason == Reason::ForeignAbi { arch: 0x4000_0003 }),
        "{:?}",
        r.traced.log.unknowable
    );
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
        "ptrace_refused_child",
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

fn deny_ptrace() -> std::io::Result<()> {
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
    let _ = File::open(&root);
}
