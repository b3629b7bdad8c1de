//! Regression tests for the ways idem could change a command's result: symlinked
//! inputs, full disks, ignored signals, background processes, corrupt records,
//! concurrent first use, caches inside the workspace, absolute specs.

use crate::common::{stderr, stdout, Ws};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn editing_the_file_behind_a_symlinked_input_is_a_miss() {
    let ws = Ws::new();
    ws.write("shared/cfg", "v1");
    std::os::unix::fs::symlink("shared/cfg", ws.path("cfg")).unwrap();
    let run = || ws.run(&["-f", "cfg", "--", "cat", "cfg"]);
    assert_eq!(stdout(&run()), "v1");
    assert_eq!(stdout(&run()), "v1");
    ws.write("shared/cfg", "v2");
    assert_eq!(
        stdout(&run()),
        "v2",
        "the link's target content is part of its state"
    );
}

#[test]
fn a_full_cache_disk_never_breaks_the_command() {
    let ws = Ws::new();
    // The database exists before the disk "fills up".
    ws.run(&["--", "true"]);
    // A file-size limit makes every write past 2 MB fail (EFBIG), like a full disk;
    // the pipe to the command is not a file, so only idem's capture is affected.
    let idem = crate::common::idem_bin();
    let script = format!(
        "trap '' XFSZ; ulimit -f 4000; exec '{}' run -- sh -c 'head -c 5000000 /dev/zero; echo done >&2'",
        idem.display()
    );
    let o = std::process::Command::new("sh")
        .args(["-c", &script])
        .current_dir(ws.root())
        .env("IDEM_CACHE_DIR", &ws.cache)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        o.stdout.len(),
        5_000_000,
        "the command's whole output still flows"
    );
    assert!(stderr(&o).contains("done"));
    assert!(stderr(&o).contains("not recorded"), "{}", stderr(&o));
}

#[test]
fn stdin_survives_a_cache_fault_after_it_was_read() {
    let ws = Ws::new();
    ws.run(&["--", "true"]);
    // The lease directory cannot be created: a cache fault after stdin was spooled.
    std::fs::remove_dir_all(ws.cache.join("locks")).ok();
    std::fs::write(ws.cache.join("locks"), "not a directory").unwrap();
    let mut child = ws
        .idem(&["run", "--stdin", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "hello\n", "{}", stderr(&o));
    assert!(stderr(&o).contains("warning"));
}

#[test]
fn failures_cached_on_request_are_not_replayed_to_others() {
    let ws = Ws::new();
    let script = "echo run >> count; exit 1";
    ws.run(&["--cache-failures", "--", "sh", "-c", script]);
    ws.run(&["--cache-failures", "--", "sh", "-c", script]);
    assert_eq!(ws.count("count"), 1);
    assert_eq!(ws.run(&["--", "sh", "-c", script]).status.code(), Some(1));
    assert_eq!(
        ws.count("count"),
        2,
        "a caller without --cache-failures runs it"
    );
}

#[test]
fn an_inherited_ignored_sigchld_does_not_run_the_command_twice() {
    let ws = Ws::new();
    let Some(python) = crate::common::require_binary("python3") else {
        return;
    };
    // sh cannot hand a command an ignored SIGCHLD; python can.
    let o = std::process::Command::new(python)
        .args([
            "-c",
            "import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])",
        ])
        .arg(crate::common::idem_bin())
        .args(["run", "--", "sh", "-c", "echo run >> count"])
        .current_dir(ws.root())
        .env("IDEM_CACHE_DIR", &ws.cache)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 1);
}

#[test]
fn an_ignored_sigint_stays_ignored_for_the_command() {
    let ws = Ws::new();
    let script = format!(
        "trap '' INT; exec '{}' run -- sh -c 'kill -INT $$; echo survived'",
        crate::common::idem_bin().display()
    );
    let o = std::process::Command::new("sh")
        .args(["-c", &script])
        .current_dir(ws.root())
        .env("IDEM_CACHE_DIR", &ws.cache)
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "survived\n");
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn a_background_process_holding_the_output_does_not_hang_idem() {
    let ws = Ws::new();
    // Files, not pipes: whoever reads a pipe waits for every writer, idem or not.
    let out = std::fs::File::create(ws.path("out.txt")).unwrap();
    let err = std::fs::File::create(ws.path("err.txt")).unwrap();
    let start = Instant::now();
    let status = ws
        .idem(&[
            "run",
            "--",
            "sh",
            "-c",
            "echo run >> count; sleep 30 & echo $! > bg.pid; echo hi",
        ])
        .stdout(out)
        .stderr(err)
        .status()
        .unwrap();
    let took = start.elapsed();
    if let Ok(pid) = std::fs::read_to_string(ws.path("bg.pid")) {
        unsafe { libc::kill(pid.trim().parse().unwrap_or(0), libc::SIGKILL) };
    }
    assert!(
        took < Duration::from_secs(20),
        "idem waited {took:?} for a background process"
    );
    assert_eq!(status.code(), Some(0));
    assert_eq!(String::from_utf8(ws.read("out.txt")).unwrap(), "hi\n");
    let err = String::from_utf8(ws.read("err.txt")).unwrap();
    assert!(err.contains("still holds its output open"), "{err}");
    let status = ws
        .idem(&[
            "status",
            "--",
            "sh",
            "-c",
            "echo run >> count; sleep 30 & echo $! > bg.pid; echo hi",
        ])
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "that run must not have been recorded"
    );
}

#[test]
fn a_corrupt_record_is_replaced_by_the_next_run() {
    let ws = Ws::new();
    let cmd = ["--", "sh", "-c", "echo run >> count; echo out"];
    ws.run(&cmd);
    let conn = rusqlite::Connection::open(ws.cache.join("idem.db")).unwrap();
    conn.execute("UPDATE records SET data = substr(data, 1, 20)", [])
        .unwrap();
    drop(conn);
    // Hits read the hot files first: make this one read the corrupt row.
    std::fs::remove_dir_all(ws.cache.join("hot")).unwrap();
    let o = ws.run(&cmd);
    assert_eq!(stdout(&o), "out\n");
    assert!(stderr(&o).contains("corrupt"), "{}", stderr(&o));
    let o = ws.run(&cmd);
    assert_eq!(stderr(&o), "", "the record was stored afresh");
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn concurrent_first_use_of_a_new_cache_never_fails() {
    for round in 0..4 {
        let ws = Ws::new();
        let children: Vec<_> = (0..16)
            .map(|i| {
                ws.idem(&["run", "--", "sh", "-c", &format!("echo {round}-{i}")])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success());
            assert_eq!(stderr(&o), "", "round {round}: {}", stderr(&o));
        }
    }
}

#[test]
fn a_cache_directory_inside_the_workspace_is_not_an_input() {
    let ws = Ws::new();
    ws.write("src/a.c", "a");
    let run = || {
        ws.idem(&[
            "run",
            "-f",
            ".",
            "-f",
            "!count",
            "--",
            "sh",
            "-c",
            "echo run >> count",
        ])
        .env("IDEM_CACHE_DIR", ".idem-cache")
        .output()
        .unwrap()
    };
    let o = run();
    assert_eq!(stderr(&o), "", "{}", stderr(&o));
    assert!(ws.path(".idem-cache/idem.db").exists());
    let o = run();
    assert_eq!(stderr(&o), "");
    assert_eq!(
        ws.count("count"),
        1,
        "the cache's own files must not make every run a miss"
    );
}

#[test]
fn absolute_specs_inside_the_root_are_portable() {
    let a = Ws::new();
    let b = Ws::new();
    let shared = a.path("shared-cache");
    for ws in [&a, &b] {
        ws.write("src/x.c", "same");
        let spec = ws.path("src").display().to_string();
        let o = ws
            .idem(&[
                "run",
                "-f",
                &spec,
                "--",
                "sh",
                "-c",
                "echo built; echo run >> \"$RUNS\"",
            ])
            .env("IDEM_CACHE_DIR", &shared)
            .env("RUNS", a.path("runs"))
            .output()
            .unwrap();
        assert_eq!(stdout(&o), "built\n");
    }
    assert_eq!(
        a.count("runs"),
        1,
        "-f $PWD/src must hit from another checkout"
    );
}

#[test]
fn a_cache_directory_at_the_workspace_root_does_not_hide_inputs() {
    let ws = Ws::new();
    ws.write("src/a.c", "one");
    let run = || {
        ws.idem(&[
            "run",
            "--cache-dir",
            ".",
            "-f",
            "src",
            "--",
            "cat",
            "src/a.c",
        ])
        .env_remove("IDEM_CACHE_DIR")
        .output()
        .unwrap()
    };
    assert_eq!(stdout(&run()), "one");
    ws.write("src/a.c", "two");
    assert_eq!(
        stdout(&run()),
        "two",
        "inputs under the cache directory still count"
    );
}

#[test]
fn a_background_process_still_delivers_its_output_after_idem_exits() {
    let ws = Ws::new();
    let out = std::fs::File::create(ws.path("out.txt")).unwrap();
    let status = ws
        .idem(&[
            "run",
            "--",
            "sh",
            "-c",
            "(sleep 2; echo late; touch alive) & echo early",
        ])
        .stdout(out)
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ws.path("alive").exists() {
        assert!(
            Instant::now() < deadline,
            "the background process died (SIGPIPE?)"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(ws.path("out.txt")).unwrap();
        if text == "early\nlate\n" {
            break;
        }
        assert!(Instant::now() < deadline, "output so far: {text:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_symlink_into_a_declared_output_does_not_block_recording() {
    let ws = Ws::new();
    std::fs::create_dir_all(ws.path("build")).unwrap();
    std::os::unix::fs::symlink("build/cc.json", ws.path("cc.json")).unwrap();
    let cmd = [
        "-f",
        ".",
        "-f",
        "!count",
        "-o",
        "build/",
        "--",
        "sh",
        "-c",
        "echo run >> count; date +%s%N > build/cc.json",
    ];
    let o = ws.run(&cmd);
    assert_eq!(stderr(&o), "", "{}", stderr(&o));
    ws.run(&cmd);
    assert_eq!(ws.count("count"), 1);
}

#[test]
fn unreadable_stdin_runs_the_command_uncached() {
    let ws = Ws::new();
    let o = ws
        .idem(&["run", "--stdin", "--", "echo", "ran"])
        .stdin(std::fs::File::open("/").unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ran\n");
    assert!(stderr(&o).contains("warning"));
}

#[test]
fn an_ignored_sigchld_is_passed_on_to_the_command() {
    let ws = Ws::new();
    let Some(python) = crate::common::require_binary("python3") else {
        return;
    };
    let o = std::process::Command::new(&python)
        .args([
            "-c",
            "import os, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])",
        ])
        .arg(crate::common::idem_bin())
        .args(["run", "--"])
        .arg(&python)
        .args(["-c", "import signal; print(signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN)"])
        .current_dir(ws.root())
        .env("IDEM_CACHE_DIR", &ws.cache)
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "True\n", "{}", stderr(&o));
}

#[test]
fn control_characters_in_recorded_text_never_reach_the_terminal() {
    let ws = Ws::new();
    let evil = "f\x1b]0;pwned\x07\r";
    ws.write(evil, "v1");
    let cmd = ["-f", evil, "--", "sh", "-c", "echo hi", evil];
    let first = ws.run(&cmd);
    assert_eq!(stdout(&first), "hi\n", "{}", stderr(&first));
    ws.write(evil, "v2");
    let mut v = vec!["-v"];
    v.extend_from_slice(&cmd);
    let runs = ws.run(&v);
    assert!(
        stderr(&runs).contains("idem: miss: file f\\e]0;pwned"),
        "{}",
        stderr(&runs)
    );
    let mut explain = vec!["explain"];
    explain.extend_from_slice(&cmd);
    let shown = [
        runs,
        ws.idem(&["list"]).output().unwrap(),
        ws.idem(&["show", "2"]).output().unwrap(),
        ws.idem(&explain).output().unwrap(),
    ];
    for o in &shown {
        assert!(o.status.success(), "{}", stderr(o));
        for stream in [&o.stdout, &o.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert!(
                !stream.iter().any(|&b| b == 0x1b || b == 0x07 || b == b'\r'),
                "raw control characters in {text:?}"
            );
        }
    }
    // In the command line, as ANSI-C quoting a shell reads back (spec::display_argv).
    assert!(
        stdout(&shown[1]).contains(r"$'f\x1b]0;pwned\x07\r'"),
        "{}",
        stdout(&shown[1])
    );
}

#[test]
fn the_command_does_not_outlive_an_idem_killed_with_sigkill() {
    use std::io::BufRead;
    use std::os::fd::FromRawFd;
    let ws = Ws::new();
    let mut idem = ws
        .idem(&["run", "--", "sh", "-c", "echo $$; exec sleep 1000"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(idem.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: i32 = line.trim().parse().unwrap();
    // SAFETY: pidfd_open returns a new descriptor we own (or -1).
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    assert!(fd >= 0, "the command is running");
    let pidfd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    idem.kill().unwrap();
    idem.wait().unwrap();
    let mut p = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&pidfd),
        events: libc::POLLIN,
        revents: 0,
    };
    // Readable when the process has exited; the bound is a hang guard, not a sleep.
    let ready = unsafe { libc::poll(&mut p, 1, 20_000) };
    if ready != 1 {
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert_eq!(ready, 1, "the command kept running after idem was killed");
}

/// `idem run <args>` through `sh -c`, for what Command cannot set up (closed fds,
/// a deleted working directory); `prefix` runs in the shell first.
fn run_via_sh(ws: &Ws, prefix: &str, args: &str, redirect: &str) -> std::process::Output {
    let script = format!(
        "{prefix} exec '{}' run {args} {redirect}",
        crate::common::idem_bin().display()
    );
    std::process::Command::new("sh")
        .args(["-c", &script])
        .current_dir(ws.root())
        .env("IDEM_CACHE_DIR", &ws.cache)
        .env_remove("IDEM_ROOT")
        .env_remove("IDEM_REMOTE")
        .output()
        .unwrap()
}

#[test]
fn a_closed_stdout_is_closed_for_the_command_too() {
    let ws = Ws::new();
    let count = ws.path("count");
    let args = format!("-- sh -c 'echo hi && echo ran >> {}'", count.display());
    for _ in 0..2 {
        let o = run_via_sh(&ws, "", &args, ">&-");
        assert_eq!(
            o.status.code(),
            Some(1),
            "echo fails as without idem: {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("stdout closed"), "{}", stderr(&o));
    }
    assert_eq!(ws.count("count"), 0, "the command saw its stdout closed");
    let o = run_via_sh(&ws, "", &args, "");
    assert_eq!(stdout(&o), "hi\n");
    assert_eq!(
        ws.count("count"),
        1,
        "nothing was recorded by the closed runs"
    );
    // Redirected to /dev/null is not closed: cached as usual.
    let o = run_via_sh(&ws, "", &args, ">/dev/null");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stderr(&o), "");
    assert_eq!(ws.count("count"), 1, "replayed");
}

#[test]
fn a_closed_stdin_is_dev_null_for_the_command() {
    // idem's C `main` reopens a closed fd 0 on /dev/null, as Rust's runtime did:
    // otherwise the command's stdin is closed, or whatever file idem opened first. The
    // uncached run (the cache is a regular file) is the case SQLite does not paper over.
    let ws = Ws::new();
    ws.write("not-a-dir", "");
    let args = "-- sh -c 'readlink /proc/self/fd/0'";
    let not_a_dir = format!("IDEM_CACHE_DIR='{}'", ws.path("not-a-dir").display());
    for prefix in ["", &not_a_dir] {
        let o = run_via_sh(&ws, prefix, args, "<&-");
        assert_eq!(o.status.code(), Some(0), "{prefix}: {}", stderr(&o));
        assert_eq!(stdout(&o), "/dev/null\n", "{prefix}: {}", stderr(&o));
    }
}

#[test]
fn a_replay_into_a_closed_pipe_exits_141_instead_of_dying() {
    // SIGPIPE is ignored by idem (its C `main` does what Rust's runtime did), so the
    // failed write is seen and reported as the shell's 128 + SIGPIPE.
    let ws = Ws::new();
    let args = ["--", "head", "-c", "1048576", "/dev/zero"];
    let o = ws.run(&args);
    assert_eq!(o.stdout.len(), 1 << 20, "{}", stderr(&o));
    // A megabyte does not fit in a pipe: whenever the reader goes away, the replay's
    // write fails with EPIPE (before or after filling the buffer).
    let mut child = ws
        .idem(&{
            let mut a = vec!["run"];
            a.extend_from_slice(&args);
            a
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), None, "idem was killed: {}", stderr(&o));
    assert_eq!(o.status.code(), Some(141), "{}", stderr(&o));
}

#[test]
fn a_deleted_working_directory_runs_the_command_uncached() {
    let ws = Ws::new();
    std::fs::create_dir(ws.path("gone")).unwrap();
    let count = ws.path("count");
    let args = format!("-- sh -c 'echo hi; echo ran >> {}'", count.display());
    for _ in 0..2 {
        let o = run_via_sh(
            &ws,
            "mkdir -p gone && cd gone && rmdir ../gone &&",
            &args,
            "",
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(stdout(&o), "hi\n");
        assert!(
            stderr(&o).contains("working directory is gone"),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(ws.count("count"), 2, "ran both times, uncached");
}

#[test]
fn each_line_idem_prints_is_one_write() {
    // Two idem processes under `make -j` share stderr: a line written in pieces
    // interleaves with the other's (`idem: idem: hit (…)hit (…)`). strace shows
    // every write(2) to fd 2; each must be whole lines.
    let Some(strace) = crate::common::require_binary("strace") else {
        return;
    };
    let ws = Ws::new();
    ws.write("in", "x");
    let log = ws.path("strace.log");
    let mut c = std::process::Command::new(strace);
    c.args([
        "-f",
        "-e",
        "trace=write",
        "-e",
        "write=2",
        "-s",
        "300",
        "-o",
    ])
    .arg(&log)
    .arg(crate::common::idem_bin())
    .args(["run", "-v", "-f", "in", "-f", "missing", "--", "true"])
    .current_dir(ws.root())
    .env("IDEM_CACHE_DIR", &ws.cache)
    .stdin(Stdio::null());
    let out = c.output().expect("strace");
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("idem: warning:") && err.contains("idem: miss"),
        "{err}"
    );
    let log = std::fs::read_to_string(&log).unwrap();
    let writes: Vec<&str> = log.lines().filter(|l| l.contains("write(2, \"")).collect();
    assert!(writes.len() >= 2, "{log}");
    for w in writes {
        assert!(
            w.contains("\"idem: ") && w.contains("\\n\""),
            "a partial line: {w}"
        );
    }
}
