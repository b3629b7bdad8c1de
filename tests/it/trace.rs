//! The tracer against real programs: what gcc, python, ls, a static busybox, sh, scripts
//! and threads read, probe, list, execute and write, and what makes a run unknowable.
//! Calls idem::trace directly (the engine does not use it yet).
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::path::Path;

use crate::common::require_binary;
use crate::trace_support::*;
use idem::trace::{Exit, Inputs, Reason, TraceOptions, Writes};

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
