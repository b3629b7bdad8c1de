//! Integration tests for `idem run`: hits and misses for every dependency kind,
//! byte-exact replay, exit codes, signals, cache faults and bad input.

use crate::common::{assert_hit, stderr, stdout, Ws};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

/// A shell command that counts its runs in `count` and prints something.
const COUNTING: &[&str] = &["sh", "-c", "echo run >> count; echo out; echo err >&2"];

fn args<'a>(pre: &[&'a str], cmd: &[&'a str]) -> Vec<&'a str> {
    let mut v = pre.to_vec();
    v.push("--");
    v.extend_from_slice(cmd);
    v
}

#[test]
fn second_run_is_a_hit_with_identical_output() {
    let ws = Ws::new();
    ws.write("in.txt", "hello");
    let a = ws.run(&args(&["-f", "in.txt"], COUNTING));
    let b = ws.run(&args(&["-f", "in.txt"], COUNTING));
    assert!(a.status.success() && b.status.success());
    assert_eq!(ws.count("count"), 1, "second run must be replayed");
    assert_eq!(a.stdout, b"out\n");
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(a.stderr, b.stderr);
}

#[test]
fn verbose_says_hit_or_miss_and_why() {
    let ws = Ws::new();
    ws.write("src/main.c", "int main;");
    let a = ws.run(&args(&["-v", "-f", "src/"], COUNTING));
    assert!(
        stderr(&a).contains("idem: miss: no record"),
        "{}",
        stderr(&a)
    );
    let b = ws.run(&args(&["-v", "-f", "src/"], COUNTING));
    assert!(stderr(&b).contains("idem: hit (saved"), "{}", stderr(&b));
    ws.write("src/main.c", "int main2;");
    let c = ws.run(&args(&["-v", "-f", "src/"], COUNTING));
    assert!(
        stderr(&c).contains("idem: miss: file src/main.c changed"),
        "{}",
        stderr(&c)
    );
    // Without -v idem prints nothing of its own.
    let d = ws.run(&args(&["-f", "src/"], COUNTING));
    assert_eq!(stderr(&d), "err\n");
}

#[test]
fn file_content_change_is_a_miss_but_touch_is_a_hit() {
    let ws = Ws::new();
    ws.write("a.txt", "one");
    let run = || ws.run(&args(&["-f", "a.txt"], COUNTING));
    run();
    run();
    assert_eq!(ws.count("count"), 1);
    // Same content, new mtime: content decides.
    let f = std::fs::File::options()
        .write(true)
        .open(ws.path("a.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    run();
    assert_eq!(ws.count("count"), 1, "touch without change must still hit");
    ws.write("a.txt", "two");
    run();
    assert_eq!(ws.count("count"), 2, "content change must miss");
}

#[test]
fn racy_same_size_edit_in_the_same_tick_is_a_miss() {
    let ws = Ws::new();
    ws.write("a.txt", "aaaa");
    let mtime = std::fs::metadata(ws.path("a.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let run = || ws.run(&args(&["-f", "a.txt"], &["cat", "a.txt"]));
    assert_eq!(run().stdout, b"aaaa");
    // Same size, and the mtime forced back to the very same value, as if both writes
    // landed within one timestamp tick.
    std::fs::write(ws.path("a.txt"), "bbbb").unwrap();
    let f = std::fs::File::options()
        .write(true)
        .open(ws.path("a.txt"))
        .unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    assert_eq!(run().stdout, b"bbbb", "a racy file must be re-hashed");
}

#[test]
fn directory_walk_sees_added_files_and_respects_gitignore() {
    let ws = Ws::new();
    ws.write("data/a.txt", "a");
    ws.write("data/.gitignore", "*.log\n");
    ws.write("data/x.log", "1");
    let run = |extra: &[&'static str]| {
        let mut a = vec!["-f", "data/"];
        a.extend_from_slice(extra);
        ws.run(&args(&a, COUNTING))
    };
    run(&[]);
    ws.write("data/x.log", "2");
    run(&[]);
    assert_eq!(ws.count("count"), 1, "ignored files are not inputs");
    ws.write("data/sub/b.txt", "b");
    run(&[]);
    assert_eq!(
        ws.count("count"),
        2,
        "a new file in the directory must miss"
    );
    run(&["--no-ignore"]);
    assert_eq!(ws.count("count"), 3, "--no-ignore is another task");
    ws.write("data/x.log", "3");
    run(&["--no-ignore"]);
    assert_eq!(
        ws.count("count"),
        4,
        "with --no-ignore, ignored files are inputs"
    );
}

#[test]
fn globs_and_excludes() {
    let ws = Ws::new();
    ws.write("src/a.c", "a");
    ws.write("src/deep/b.c", "b");
    ws.write("src/notes.txt", "n");
    ws.write("src/gen/g.c", "g");
    let run = || ws.run(&args(&["-f", "src/**/*.c", "-f", "!src/gen/"], COUNTING));
    run();
    ws.write("src/notes.txt", "changed");
    ws.write("src/gen/g.c", "changed");
    run();
    assert_eq!(
        ws.count("count"),
        1,
        "non-matching and excluded files are not inputs"
    );
    ws.write("src/deep/b.c", "changed");
    run();
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn env_dependency_changes_miss_and_values_are_not_stored() {
    let ws = Ws::new();
    let run = |v: Option<&str>| {
        let mut c = ws.idem(&args(&["run", "-e", "MY_SECRET_VAR"], COUNTING));
        match v {
            Some(v) => c.env("MY_SECRET_VAR", v),
            None => c.env_remove("MY_SECRET_VAR"),
        };
        c.output().unwrap()
    };
    run(Some("hunter2-value"));
    run(Some("hunter2-value"));
    assert_eq!(ws.count("count"), 1);
    run(Some("other-value"));
    assert_eq!(ws.count("count"), 2);
    run(None);
    assert_eq!(ws.count("count"), 3, "unset differs from set");
    run(None);
    assert_eq!(ws.count("count"), 3);
    for entry in std::fs::read_dir(&ws.cache).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !bytes.windows(13).any(|w| w == b"hunter2-value"),
                "env value leaked into {}",
                p.display()
            );
        }
    }
}

#[test]
fn program_change_is_a_miss() {
    let ws = Ws::new();
    ws.write("tool.sh", "#!/bin/sh\necho v1\necho run >> count\n");
    std::fs::set_permissions(ws.path("tool.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(ws.run(&["--", "./tool.sh"]).stdout, b"v1\n");
    assert_eq!(ws.run(&["--", "./tool.sh"]).stdout, b"v1\n");
    assert_eq!(ws.count("count"), 1);
    ws.write("tool.sh", "#!/bin/sh\necho v2\necho run >> count\n");
    assert_eq!(
        ws.run(&["--", "./tool.sh"]).stdout,
        b"v2\n",
        "the program itself is an input"
    );
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn program_behind_a_symlink_is_hashed_by_its_target_content() {
    let ws = Ws::new();
    ws.write("real-tool", "#!/bin/sh\necho v1\necho run >> count\n");
    std::fs::set_permissions(ws.path("real-tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("real-tool", ws.path("tool")).unwrap();
    assert_eq!(ws.run(&["--", "./tool"]).stdout, b"v1\n");
    assert_eq!(ws.run(&["--", "./tool"]).stdout, b"v1\n");
    ws.write("real-tool", "#!/bin/sh\necho v2\necho run >> count\n");
    assert_eq!(ws.run(&["--", "./tool"]).stdout, b"v2\n");
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn stdin_is_an_input_only_with_flag() {
    let ws = Ws::new();
    let run = |input: &[u8]| {
        let mut c = ws.idem(&["run", "--stdin", "--", "sh", "-c", "echo run >> count; cat"]);
        c.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    assert_eq!(run(b"abc").stdout, b"abc");
    assert_eq!(run(b"abc").stdout, b"abc");
    assert_eq!(ws.count("count"), 1);
    assert_eq!(
        run(b"xyz").stdout,
        b"xyz",
        "the command gets the same bytes"
    );
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn absent_input_is_a_state_with_a_warning() {
    let ws = Ws::new();
    let a = ws.run(&args(&["-f", "later.txt"], COUNTING));
    assert!(
        stderr(&a).contains("later.txt does not exist"),
        "{}",
        stderr(&a)
    );
    ws.run(&args(&["-f", "later.txt"], COUNTING));
    assert_eq!(ws.count("count"), 1);
    ws.write("later.txt", "now");
    ws.run(&args(&["-f", "later.txt"], COUNTING));
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn scope_separates_tasks() {
    let ws = Ws::new();
    ws.run(&args(&["--scope", "a"], COUNTING));
    ws.run(&args(&["--scope", "b"], COUNTING));
    ws.run(&args(&["--scope", "a"], COUNTING));
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn binary_output_of_50mb_replays_byte_exact() {
    let ws = Ws::new();
    let mut data = Vec::with_capacity(50 << 20);
    let mut x: u32 = 12345;
    while data.len() < (50 << 20) + 7 {
        x = x.wrapping_mul(1664525).wrapping_add(1013904223);
        data.push((x >> 24) as u8);
    }
    data.extend_from_slice(b"\0\xff\xfe no newline");
    ws.write("big.bin", &data);
    let a = ws.run(&["-f", "big.bin", "--", "cat", "big.bin"]);
    let b = ws.run(&["-f", "big.bin", "--", "cat", "big.bin"]);
    assert!(a.stdout == data, "live output must be exact");
    assert!(b.stdout == data, "replayed output must be exact");
    let small = ws.run(&["--", "printf", "a\\000b\\377c"]);
    let small2 = ws.run(&["--", "printf", "a\\000b\\377c"]);
    assert_eq!(small.stdout, b"a\0b\xffc");
    assert_eq!(small2.stdout, b"a\0b\xffc");
}

#[test]
fn interleaving_under_2_and_1_is_preserved_live_and_on_replay() {
    let ws = Ws::new();
    let out = ws.path("merged.txt");
    // Each write waits until idem has forwarded the previous one, so the order idem
    // sees is the order the command wrote in (no sleeps involved).
    let script = "w() { until grep -qx \"$1\" merged.txt 2>/dev/null; do :; done; }; \
                  echo o1; w o1; echo e1 >&2; w e1; echo o2; w o2; echo e2 >&2; w e2; echo o3";
    let run = || {
        let f = std::fs::File::create(&out).unwrap();
        let status = ws
            .idem(&["run", "--", "sh", "-c", script])
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read_to_string(&out).unwrap()
    };
    assert_eq!(run(), "o1\ne1\no2\ne2\no3\n");
    // The replay writes into a fresh file; the order must be the same.
    assert_eq!(run(), "o1\ne1\no2\ne2\no3\n");
    // Separated streams still get their own bytes.
    let sep = ws.run(&["--", "sh", "-c", script]);
    assert_eq!(stdout(&sep), "o1\no2\no3\n");
    assert_eq!(stderr(&sep), "e1\ne2\n");
}

#[test]
fn exit_codes_and_failure_caching() {
    let ws = Ws::new();
    let fail = |code: &str, extra: &[&str]| {
        let script = format!("echo run >> count; echo failing; exit {code}");
        let mut a: Vec<&str> = extra.to_vec();
        a.extend(["--", "sh", "-c", &script]);
        ws.run(&a).status.code().unwrap()
    };
    assert_eq!(fail("0", &[]), 0);
    assert_eq!(fail("1", &[]), 1);
    assert_eq!(fail("1", &[]), 1);
    assert_eq!(
        ws.count("count"),
        3,
        "exit 0 once, then failures are never recorded"
    );
    assert_eq!(fail("42", &["--cache-failures"]), 42);
    assert_eq!(fail("42", &["--cache-failures"]), 42);
    assert_eq!(
        ws.count("count"),
        4,
        "with --cache-failures the failure is replayed"
    );
}

#[test]
fn killed_by_signal_exits_128_plus_n_and_records_nothing() {
    let ws = Ws::new();
    let run = || ws.run(&["--", "sh", "-c", "echo run >> count; kill -TERM $$"]);
    assert_eq!(run().status.code(), Some(143));
    assert_eq!(run().status.code(), Some(143));
    assert_eq!(ws.count("count"), 2);
}

/// Starts a command that spins once it has started, sends `sig` to idem (not to the
/// command), and returns idem's exit code.
fn interrupt_with(ws: &Ws, sig: i32) -> Option<i32> {
    ws.write("go", "");
    let mut child = ws
        .idem(&[
            "run",
            "--",
            "sh",
            "-c",
            "echo run >> count; rm go; while :; do :; done",
        ])
        .spawn()
        .unwrap();
    while ws.path("go").exists() {
        std::thread::yield_now();
    }
    unsafe { libc::kill(child.id() as i32, sig) };
    child.wait().unwrap().code()
}

#[test]
fn sigint_to_idem_reaches_the_child_and_nothing_is_recorded() {
    let ws = Ws::new();
    assert_eq!(interrupt_with(&ws, libc::SIGINT), Some(130));
    assert_eq!(interrupt_with(&ws, libc::SIGTERM), Some(143));
    assert_eq!(ws.count("count"), 2, "an interrupted run is never replayed");
}

#[test]
fn command_not_found_127_and_not_executable_126() {
    let ws = Ws::new();
    let a = ws.run(&["--", "no-such-command-xyz"]);
    assert_eq!(a.status.code(), Some(127));
    assert!(stderr(&a).contains("no-such-command-xyz: command not found"));
    ws.write("noexec.sh", "echo hi");
    let b = ws.run(&["--", "./noexec.sh"]);
    assert_eq!(b.status.code(), Some(126));
    assert_eq!(stderr(&b).lines().count(), 1);
}

#[test]
fn non_utf8_arguments_and_file_names() {
    let ws = Ws::new();
    let name = std::ffi::OsStr::from_bytes(b"dir/f\xffe.txt");
    std::fs::create_dir_all(ws.path("dir")).unwrap();
    std::fs::write(ws.root().join(name), "x").unwrap();
    let arg = std::ffi::OsStr::from_bytes(b"arg\xfe");
    let run = || {
        ws.idem(&[
            "run",
            "-f",
            "dir",
            "--",
            "sh",
            "-c",
            "echo run >> count; printf '%s' \"$0\"",
        ])
        .arg(arg)
        .output()
        .unwrap()
    };
    assert_eq!(run().stdout, b"arg\xfe");
    assert_eq!(run().stdout, b"arg\xfe");
    assert_eq!(ws.count("count"), 1);
    std::fs::write(ws.root().join(name), "y").unwrap();
    run();
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn unusable_cache_dir_still_runs_the_command() {
    let ws = Ws::new();
    ws.write("not-a-dir", "file");
    let out = ws
        .idem(&["run", "--", "sh", "-c", "echo hi; exit 42"])
        .env("IDEM_CACHE_DIR", ws.path("not-a-dir/cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(42));
    assert_eq!(out.stdout, b"hi\n");
    assert!(
        stderr(&out).contains("idem: warning: cache unavailable"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1);
}

#[test]
fn read_only_cache_database_still_runs_the_command() {
    let ws = Ws::new();
    ws.run(&["--", "true"]);
    // A database file that cannot be opened for writing (a directory in its place
    // works even for root, who ignores permission bits).
    std::fs::remove_dir_all(&ws.cache).unwrap();
    std::fs::create_dir_all(ws.cache.join("idem.db")).unwrap();
    let out = ws.run(&["--", "sh", "-c", "echo hi; exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout, b"hi\n");
    assert!(stderr(&out).contains("warning"));
}

#[test]
fn corrupt_database_warns_and_runs() {
    let ws = Ws::new();
    ws.run(&args(&[], COUNTING));
    std::fs::write(ws.cache.join("idem.db"), vec![0x5a; 8192]).unwrap();
    // A hit is answered from the hot files without opening the database; this test is
    // about the database, so the run must need it.
    std::fs::remove_dir_all(ws.cache.join("hot")).unwrap();
    let _ = std::fs::remove_file(ws.cache.join("idem.db-wal"));
    let _ = std::fs::remove_file(ws.cache.join("idem.db-shm"));
    let out = ws.run(&args(&[], COUNTING));
    assert!(out.status.success());
    assert_eq!(out.stdout, b"out\n");
    assert!(stderr(&out).contains("idem: warning"), "{}", stderr(&out));
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn newer_schema_is_refused_and_command_runs() {
    let ws = Ws::new();
    ws.run(&args(&[], COUNTING));
    let conn = rusqlite::Connection::open(ws.cache.join("idem.db")).unwrap();
    conn.execute_batch("PRAGMA user_version=99").unwrap();
    drop(conn);
    // A newer idem keeps its own hot files; without them the run must read the database.
    std::fs::remove_dir_all(ws.cache.join("hot")).unwrap();
    let out = ws.run(&args(&[], COUNTING));
    assert!(out.status.success());
    assert!(stderr(&out).contains("newer idem"), "{}", stderr(&out));
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn twenty_concurrent_different_commands_all_succeed() {
    let ws = Ws::new();
    let children: Vec<_> = (0..20)
        .map(|i| {
            ws.idem(&["run", "--", "sh", "-c", &format!("echo {i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), format!("{i}\n"));
        assert_eq!(stderr(&o), "", "no warnings (database is locked…)");
    }
    for i in 0..20 {
        let o = ws
            .idem(&["run", "-v", "--", "sh", "-c", &format!("echo {i}")])
            .output()
            .unwrap();
        assert_hit(&o);
    }
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    let ws = Ws::new();
    for a in [
        vec!["run", "--no-such-flag", "--", "true"],
        vec!["run", "true"],
        vec!["run", "--"],
        vec!["run"],
        vec!["run", "--ttl", "soon", "--", "true"],
        vec!["run", "-f", "src/[", "--", "true"],
        vec!["run", "-e", "A=B", "--", "true"],
        vec!["run", "-o", "../outside", "--", "true"],
        vec!["run", "-f", "x", "-o", "x", "--", "true"],
        vec!["run", "--stale", "2h", "--ttl", "1h", "--", "true"],
    ] {
        let o = ws.idem(&a).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{a:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).trim_end().lines().count(),
            1,
            "{a:?}: {}",
            stderr(&o)
        );
        assert!(stderr(&o).starts_with("idem: "), "{a:?}: {}", stderr(&o));
    }
}

#[test]
fn strict_env_hides_undeclared_variables() {
    let ws = Ws::new();
    let o = ws
        .idem(&[
            "run",
            "--strict-env",
            "-e",
            "DECLARED",
            "--pass-env",
            "PASSED",
            "--",
            "sh",
            "-c",
            "echo \"$DECLARED:$PASSED:$UNDECLARED\"",
        ])
        .env("DECLARED", "d")
        .env("PASSED", "p")
        .env("UNDECLARED", "u")
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "d:p:\n");
}

#[test]
fn keys_are_portable_across_checkout_paths() {
    let a = Ws::new();
    let b = Ws::new();
    for ws in [&a, &b] {
        ws.write("src/x.c", "same");
    }
    let cmd = [
        "-f",
        "src/",
        "--",
        "sh",
        "-c",
        "echo built; echo run >> \"$RUNS\"",
    ];
    let shared = a.path("shared-cache");
    let runs = a.path("runs");
    let run = |ws: &Ws| {
        ws.idem(&[&["run"][..], &cmd[..]].concat())
            .env("IDEM_CACHE_DIR", &shared)
            .env("RUNS", &runs)
            .output()
            .unwrap()
    };
    assert_eq!(run(&a).stdout, b"built\n");
    let o = run(&b);
    assert_eq!(o.stdout, b"built\n");
    assert_eq!(a.count("runs"), 1, "the second checkout must hit");
}

#[test]
fn force_runs_and_re_records() {
    let ws = Ws::new();
    ws.run(&args(&[], COUNTING));
    ws.run(&args(&["--force"], COUNTING));
    ws.run(&args(&[], COUNTING));
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn input_edited_while_running_is_not_recorded() {
    let ws = Ws::new();
    ws.write("in.txt", "v1");
    let cmd = [
        "-f",
        "in.txt",
        "--",
        "sh",
        "-c",
        "echo run >> count; echo edited >> in.txt",
    ];
    let o = ws.run(&cmd);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("file in.txt changed while the command ran"),
        "{}",
        stderr(&o)
    );
    ws.write("in.txt", "v1");
    ws.run(&cmd);
    assert_eq!(
        ws.count("count"),
        2,
        "the first outcome must not have been recorded"
    );
}

/// `ls dir; cat dir/f`-like command that counts its runs (in `count`, outside `dir`).
fn listing(dir: &str) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!("echo run >> count; ls -p {dir}; cat {dir}/f 2>/dev/null; true"),
    ]
}

fn run_listing(ws: &Ws, specs: &[&str], dir: &str) -> std::process::Output {
    let cmd = listing(dir);
    let mut a: Vec<&str> = Vec::new();
    for s in specs {
        a.extend(["-f", s]);
    }
    a.push("--");
    a.extend(cmd.iter().map(String::as_str));
    let o = ws.run(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

#[test]
fn directory_named_through_a_symlink_is_walked_with_and_without_slash() {
    for spec in ["dl/", "dl"] {
        let ws = Ws::new();
        ws.write("realdir/f", "one");
        ws.write("other/f", "two");
        std::os::unix::fs::symlink("realdir", ws.path("dl")).unwrap();
        let run = || run_listing(&ws, &[spec], "dl");
        assert_eq!(run().stdout, b"f\none");
        run();
        assert_eq!(ws.count("count"), 1, "{spec}: unchanged target must hit");
        ws.write("realdir/f", "two");
        assert_eq!(run().stdout, b"f\ntwo", "{spec}: edit behind the link");
        assert_eq!(ws.count("count"), 2);
        // Same content behind another target: the link text is part of the state.
        std::fs::remove_file(ws.path("dl")).unwrap();
        std::os::unix::fs::symlink("other", ws.path("dl")).unwrap();
        run();
        assert_eq!(ws.count("count"), 3, "{spec}: retargeted link must miss");
        // A dangling link is not the same as a link to an empty directory.
        std::fs::remove_file(ws.path("other/f")).unwrap();
        run();
        run();
        assert_eq!(ws.count("count"), 4, "{spec}: emptied target");
        std::fs::remove_dir(ws.path("other")).unwrap();
        run();
        assert_eq!(ws.count("count"), 5, "{spec}: target removed");
    }
}

#[test]
fn glob_based_at_a_symlink_follows_it_and_keeps_its_text() {
    let ws = Ws::new();
    ws.write("realdir/a.c", "a");
    ws.write("realdir/deep/b.c", "b");
    ws.write("copy/a.c", "a");
    ws.write("copy/deep/b.c", "b");
    std::os::unix::fs::symlink("realdir", ws.path("dl")).unwrap();
    let run = || run_listing(&ws, &["dl/**/*.c"], "dl");
    run();
    ws.write("realdir/deep/b.c", "changed");
    run();
    assert_eq!(ws.count("count"), 2, "an edit behind the link must miss");
    ws.write("copy/deep/b.c", "changed");
    std::fs::remove_file(ws.path("dl")).unwrap();
    std::os::unix::fs::symlink("copy", ws.path("dl")).unwrap();
    run();
    assert_eq!(
        ws.count("count"),
        3,
        "same files behind another target: miss"
    );
    // No membership for globs: a directory no glob matches is not an input.
    std::fs::create_dir(ws.path("copy/empty")).unwrap();
    ws.write("copy/notes.txt", "n");
    run();
    assert_eq!(ws.count("count"), 3, "glob-only spec: new dir must hit");
}

#[test]
fn symlink_to_a_directory_outside_the_workspace_is_keyed_as_named() {
    let ws = Ws::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("f"), "one").unwrap();
    std::os::unix::fs::symlink(outside.path(), ws.path("ext")).unwrap();
    let run = || run_listing(&ws, &["ext/"], "ext");
    assert_eq!(run().stdout, b"f\none");
    run();
    assert_eq!(ws.count("count"), 1);
    std::fs::write(outside.path().join("f"), "two").unwrap();
    let o = ws
        .idem(&["explain", "-f", "ext/", "--"])
        .args(listing("ext"))
        .output()
        .unwrap();
    // The entry is keyed by the path as named, never by the target's absolute path.
    assert!(stdout(&o).contains("file ext/f: changed"), "{}", stdout(&o));
    assert!(
        !stdout(&o).contains(&*outside.path().to_string_lossy()),
        "{}",
        stdout(&o)
    );
    assert_eq!(run().stdout, b"f\ntwo");
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn symlink_to_a_declared_output_directory_is_not_walked() {
    let ws = Ws::new();
    ws.write("src/a", "a");
    std::fs::create_dir(ws.path("out")).unwrap();
    std::os::unix::fs::symlink("out", ws.path("ol")).unwrap();
    let cmd = [
        "-f",
        "ol/",
        "-f",
        "src/",
        "-o",
        "out/",
        "--",
        "sh",
        "-c",
        "echo run >> count; date +%N > out/stamp",
    ];
    let o = ws.run(&cmd);
    assert!(!stderr(&o).contains("changed while"), "{}", stderr(&o));
    ws.run(&cmd);
    assert_eq!(ws.count("count"), 1, "outputs behind a link are not inputs");
}

#[test]
fn directory_membership_is_part_of_the_state() {
    let ws = Ws::new();
    ws.write("data/f", "x");
    ws.write("data/.gitignore", "build/\n");
    std::fs::create_dir(ws.path("data/keep")).unwrap();
    let run = || run_listing(&ws, &["data/"], "data");
    run();
    std::fs::create_dir(ws.path("data/build")).unwrap();
    ws.write("data/build/obj", "o");
    run();
    assert_eq!(ws.count("count"), 1, "an ignored directory is not an input");

    std::fs::create_dir(ws.path("data/sub")).unwrap();
    let o = ws
        .idem(&["explain", "-f", "data/", "--"])
        .args(listing("data"))
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains("file data/sub/: added"),
        "{}",
        stdout(&o)
    );
    assert_eq!(run().stdout, b"build/\nf\nkeep/\nsub/\nx");
    assert_eq!(ws.count("count"), 2, "an empty directory added must miss");
    run();
    assert_eq!(ws.count("count"), 2);

    std::fs::remove_dir(ws.path("data/keep")).unwrap();
    assert_eq!(run().stdout, b"build/\nf\nsub/\nx");
    assert_eq!(ws.count("count"), 3, "an empty directory removed must miss");

    std::fs::remove_file(ws.path("data/f")).unwrap();
    std::fs::create_dir(ws.path("data/f")).unwrap();
    run();
    assert_eq!(
        ws.count("count"),
        4,
        "a file replaced by a directory must miss"
    );

    // Nested: membership of every walked directory, not only the top one.
    std::fs::create_dir_all(ws.path("data/f/inner")).unwrap();
    run();
    assert_eq!(ws.count("count"), 5, "a nested empty directory must miss");
}

#[test]
fn an_output_directory_created_inside_a_walked_directory_is_not_an_input() {
    let ws = Ws::new();
    let counts = tempfile::tempdir().unwrap();
    let count = counts.path().join("count");
    ws.write("src/a", "a");
    let script = format!(
        "echo run >> {}; mkdir -p build/objs; echo o > build/objs/a.o",
        count.display()
    );
    let cmd = ["-f", ".", "-o", "build/", "--", "sh", "-c", &script];
    let o = ws.run(&cmd);
    assert!(!stderr(&o).contains("changed while"), "{}", stderr(&o));
    ws.run(&cmd);
    let runs = std::fs::read_to_string(&count).unwrap().lines().count();
    assert_eq!(
        runs, 1,
        "the output directory is not part of the membership"
    );
}

/// The plain command line of a hit (no `IDEM_*` variable, `--cache-dir` given) is read
/// without clap (src/cli_fast.rs): it must behave as clap's parse does, and still yield
/// to an idem.toml's [defaults].
#[test]
fn the_plain_command_line_behaves_as_parsed_by_clap() {
    let ws = Ws::new();
    ws.write("in", "a");
    let cache = ws.cache.display().to_string();
    let run = |extra: &[&str]| {
        let mut a = vec!["run", "--cache-dir", &cache, "-v", "-f", "in", "-e", "HOME"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--", "sh", "-c", "cat in; echo run >> count"]);
        ws.idem(&a).env_remove("IDEM_CACHE_DIR").output().unwrap()
    };
    let o = run(&[]);
    assert!(stderr(&o).contains("idem: miss"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "a");
    let o = run(&[]);
    assert_hit(&o);
    assert_eq!(stdout(&o), "a");
    ws.write("in", "b");
    assert_eq!(stdout(&run(&[])), "b");
    assert_eq!(ws.count("count"), 2);
    // [defaults] adds an input: the same command line is now another state.
    ws.write("extra", "x");
    ws.write("idem.toml", "[defaults]\nfile = [\"extra\"]\n");
    let o = run(&[]);
    assert!(stderr(&o).contains("idem: miss"), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 3);
    ws.write("extra", "y");
    assert!(stderr(&run(&[])).contains("idem: miss"));
    assert_eq!(ws.count("count"), 4, "the file from [defaults] is an input");
}
