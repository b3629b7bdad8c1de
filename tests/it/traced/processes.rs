//! Reads the tracer must follow across processes, threads and path resolutions: a
//! grandchild, a chdir, openat relative to a directory fd, posix_spawn and vfork children,
//! a multithreaded reader, and the executed helper script itself.

use super::*;
use crate::common::{assert_hit, assert_miss, Ws};

/// Runs `cmd` traced three times around an edit (miss, hit, write `content` to `edited`
/// → miss) and checks stdout each time: `before`, `before`, then `after`.
#[track_caller]
fn miss_hit_edit_miss(
    ws: &Ws,
    cmd: &[&str],
    (edited, content): (&str, &str),
    before: &str,
    after: &str,
) {
    let (o, out) = traced_ok(ws, cmd);
    assert_miss(&o);
    assert_eq!(out, before);
    let (o, out) = traced_ok(ws, cmd);
    assert_hit(&o);
    assert_eq!(out, before);
    ws.write(edited, content);
    let (o, out) = traced_ok(ws, cmd);
    assert_miss(&o);
    assert_eq!(out, after, "after editing {edited}");
}

#[test]
fn a_read_in_a_grandchild() {
    let ws = Ws::new();
    ws.write("data.txt", "v1\n");
    // sh → sh → cat: the trailing `true`s keep each shell from exec'ing its last command.
    let cmd = ["--", "sh", "-c", "sh -c 'cat data.txt; true'; true"];
    miss_hit_edit_miss(&ws, &cmd, ("data.txt", "v2\n"), "v1\n", "v2\n");
}

/// cat reads `data.txt` relative to `sub/`: sub/data.txt is the input, not the root's.
#[test]
fn a_read_after_chdir_resolves_against_the_new_cwd() {
    let ws = Ws::new();
    ws.write("data.txt", "root\n");
    ws.write("sub/data.txt", "v1\n");
    let cmd = ["--", "sh", "-c", "cd sub && cat data.txt"];
    miss_hit_edit_miss(&ws, &cmd, ("sub/data.txt", "v2\n"), "v1\n", "v2\n");
    ws.write("data.txt", "root, edited\n");
    let (o, out) = traced_ok(&ws, &cmd);
    assert_hit(&o);
    assert_eq!(out, "v2\n");
}

/// openat(dirfd of sub/, "data.txt"): resolved against the directory, not the cwd.
#[test]
fn openat_relative_to_a_directory_fd() {
    let Some(py) = python() else { return };
    let ws = Ws::new();
    ws.write("data.txt", "root\n");
    ws.write("sub/data.txt", "v1\n");
    let script = "import os, sys\n\
                  d = os.open('sub', os.O_RDONLY | os.O_DIRECTORY)\n\
                  f = os.open('data.txt', os.O_RDONLY, dir_fd=d)\n\
                  sys.stdout.write(os.read(f, 100).decode())\n";
    let cmd = ["--", py.to_str().unwrap(), "-S", "-c", script];
    miss_hit_edit_miss(&ws, &cmd, ("sub/data.txt", "v2\n"), "v1\n", "v2\n");
    ws.write("data.txt", "root, edited\n");
    let (o, _) = traced_ok(&ws, &cmd);
    assert_hit(&o);
}

/// glibc's posix_spawn clones with CLONE_VM | CLONE_VFORK: the child must be traced from
/// its first instruction.
#[test]
fn a_read_in_a_posix_spawn_child() {
    let Some(py) = python() else { return };
    let ws = Ws::new();
    ws.write("data.txt", "v1\n");
    let script = "import os, sys\n\
                  pid = os.posix_spawn('/bin/cat', ['cat', 'data.txt'], os.environ)\n\
                  _, st = os.waitpid(pid, 0)\n\
                  sys.exit(os.waitstatus_to_exitcode(st))\n";
    let cmd = ["--", py.to_str().unwrap(), "-S", "-c", script];
    miss_hit_edit_miss(&ws, &cmd, ("data.txt", "v2\n"), "v1\n", "v2\n");
}

const VFORK_C: &str = r#"
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) return 2;
    pid_t pid = vfork();
    if (pid == 0) {
        execl("/bin/cat", "cat", argv[1], (char *)0);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return 3;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 4;
}
"#;

#[test]
fn a_read_in_a_vfork_child() {
    let Some(gcc) = gcc() else { return };
    let tools = tempfile::tempdir().unwrap();
    let prog = compile_c(&gcc, tools.path(), "vforker", VFORK_C, &[]);
    let ws = Ws::new();
    ws.write("data.txt", "v1\n");
    let cmd = ["--", prog.to_str().unwrap(), "data.txt"];
    miss_hit_edit_miss(&ws, &cmd, ("data.txt", "v2\n"), "v1\n", "v2\n");
}

/// Four threads each read their own file; the main thread reads none of them.
#[test]
fn a_multithreaded_reader() {
    let Some(py) = python() else { return };
    let ws = Ws::new();
    for n in 0..4 {
        ws.write(&format!("d{n}.txt"), format!("{n}"));
    }
    let script = "import threading\n\
                  got = {}\n\
                  def read(n): got[n] = open('d%d.txt' % n).read()\n\
                  ts = [threading.Thread(target=read, args=(n,)) for n in range(4)]\n\
                  [t.start() for t in ts]\n\
                  [t.join() for t in ts]\n\
                  print(' '.join(got[n] for n in range(4)))\n";
    let cmd = ["--", py.to_str().unwrap(), "-S", "-c", script];
    let (o, out) = traced_ok(&ws, &cmd);
    assert_miss(&o);
    assert_eq!(out, "0 1 2 3\n");
    let (o, _) = traced_ok(&ws, &cmd);
    assert_hit(&o);
    // Every thread's read is an input, whichever thread made it.
    let mut want = ["0", "1", "2", "3"].map(String::from);
    for n in 0..4 {
        want[n] = format!("{n}{n}");
        ws.write(&format!("d{n}.txt"), &want[n]);
        let (o, out) = traced_ok(&ws, &cmd);
        assert_miss(&o);
        assert_eq!(
            out,
            format!("{}\n", want.join(" ")),
            "after editing d{n}.txt"
        );
    }
}

/// A script the command executes (not argv[0], which idem hashes anyway): editing it
/// must miss.
#[test]
fn an_executed_helper_script_edited() {
    let ws = Ws::new();
    ws.write("tools/helper.sh", "#!/bin/sh\necho helper v1\n");
    chmod_x(&ws.path("tools/helper.sh"));
    let cmd = ["--", "sh", "-c", "./tools/helper.sh; true"];
    miss_hit_edit_miss(
        &ws,
        &cmd,
        ("tools/helper.sh", "#!/bin/sh\necho helper v2\n"),
        "helper v1\n",
        "helper v2\n",
    );
}

/// A process the command leaves running is traced until it exits: idem says so instead
/// of waiting silently, and what it reads after the command exited is still an input.
#[test]
fn a_process_outliving_the_command_is_followed_and_said_so() {
    use std::io::{BufRead, BufReader};
    let ws = Ws::new();
    ws.write("late.txt", "v1\n");
    // The survivor polls for `stop` (its own loop, not the test's synchronisation), then
    // reads late.txt; its output goes nowhere, so only tracing keeps idem waiting.
    let script = "(while [ ! -e stop ]; do sleep 0.02; done; cat late.txt) >/dev/null 2>&1 & \
                  echo started";
    let mut child = ws
        .idem(&["run", "--trace", "-v", "--", "sh", "-c", script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn idem");
    // A bound on a broken run, not synchronisation: without the note the loop below
    // would wait forever, so after a minute the survivor is let go and the test fails.
    let (done, bound) = std::sync::mpsc::channel::<()>();
    let stop = ws.path("stop");
    let guard = std::thread::spawn(move || {
        let waited = bound.recv_timeout(std::time::Duration::from_secs(60));
        if waited == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            let _ = std::fs::write(stop, "");
        }
    });
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = err.read_line(&mut line).expect("read idem's stderr");
        assert!(n > 0, "idem ended without the note; stderr:\n{seen}");
        seen.push_str(&line);
        if line.contains("processes it started are still running") {
            break;
        }
    }
    drop(done);
    guard.join().unwrap();
    ws.write("stop", "");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).expect("read idem's stderr");
    let o = child.wait_with_output().expect("wait for idem");
    assert!(o.status.success(), "{seen}{rest}");
    assert_eq!(stdout(&o), "started\n");
    // With `stop` there from the start, the survivor reads late.txt at once, perhaps
    // after the command exited: still an input of the record.
    let cmd = ["--", "sh", "-c", script];
    miss_hit_edit_miss(&ws, &cmd, ("late.txt", "v2\n"), "started\n", "started\n");
}
