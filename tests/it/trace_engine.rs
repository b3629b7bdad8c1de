//! `idem run --trace` end to end, the engine's own mechanisms: a traced record hits on an
//! unchanged rerun and restores its outputs, misses when a read file changes or a probed
//! absent file appears, keeps 32 dependency sets per weak key, answers from the hot
//! files, degrades to an unrecorded run when ptrace is refused, agrees with status and
//! explain; `--trace=check` lists undeclared inputs and `--strict` fails on them.
//! (The big list of real-program cases lives in tests/it/traced.rs.)

use crate::common::{assert_hit, assert_miss, record_count, stderr, stdout, Ws};
use std::process::Output;

/// A workspace and a counter outside it (ignored by the tracer, so counting runs does
/// not make every run's inputs differ).
struct Traced {
    ws: Ws,
    counter: tempfile::TempDir,
}

impl Traced {
    fn new() -> Self {
        Traced {
            ws: Ws::new(),
            counter: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn counter_file(&self) -> String {
        self.counter.path().join("runs").display().to_string()
    }

    fn ignore(&self) -> String {
        format!("{}/**", self.counter.path().display())
    }

    /// `idem run -v --trace <extra> -- sh -c "<script>; echo >> counter"`.
    fn run(&self, extra: &[&str], script: &str) -> Output {
        let ignore = self.ignore();
        let full = format!("{script}; echo run >> {}", self.counter_file());
        let mut args = vec!["-v", "--trace", "--trace-ignore", &ignore];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", &full]);
        self.ws.run(&args)
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(self.counter_file())
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

const BUILD: &str = "cat in.txt > out.txt; cat in.txt";

#[test]
fn an_unchanged_rerun_hits_and_restores_the_traced_output() {
    let t = Traced::new();
    t.ws.write("in.txt", "one\n");
    let o = t.run(&[], BUILD);
    assert_miss(&o);
    assert_eq!(stdout(&o), "one\n");
    assert!(stderr(&o).contains("recorded"), "{}", stderr(&o));
    assert_eq!(record_count(&t.ws), 1);
    std::fs::remove_file(t.ws.path("out.txt")).unwrap();
    let o = t.run(&[], BUILD);
    assert_hit(&o);
    assert_eq!(stdout(&o), "one\n");
    assert_eq!(t.runs(), 1, "the hit did not run the command");
    assert_eq!(
        t.ws.read("out.txt"),
        b"one\n",
        "the traced output was restored"
    );
}

#[test]
fn editing_a_read_file_misses_and_names_it() {
    let t = Traced::new();
    t.ws.write("in.txt", "one\n");
    assert_miss(&t.run(&[], BUILD));
    t.ws.write("in.txt", "two\n");
    let o = t.run(&[], BUILD);
    assert_miss(&o);
    assert!(stderr(&o).contains("in.txt"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "two\n");
    assert_eq!(t.runs(), 2);
    // Both states are now recorded: going back hits the first record.
    t.ws.write("in.txt", "one\n");
    let o = t.run(&[], BUILD);
    assert_hit(&o);
    assert_eq!(stdout(&o), "one\n");
    assert_eq!(t.ws.read("out.txt"), b"one\n");
}

#[test]
fn an_absent_probed_file_that_appears_is_a_miss() {
    let t = Traced::new();
    t.ws.write("in.txt", "base\n");
    let script = "if test -e opt.conf; then cat opt.conf; fi; cat in.txt";
    assert_miss(&t.run(&[], script));
    assert_hit(&t.run(&[], script));
    t.ws.write("opt.conf", "extra\n");
    let o = t.run(&[], script);
    assert_miss(&o);
    assert!(stderr(&o).contains("opt.conf"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "extra\nbase\n");
    assert_eq!(t.runs(), 2);
}

#[test]
fn the_33rd_dependency_set_evicts_the_oldest() {
    let t = Traced::new();
    for i in 1..=33 {
        t.ws.write(&format!("f{i}"), format!("{i}\n"));
    }
    let script = "cat \"$(cat which)\"";
    for i in 1..=33 {
        t.ws.write("which", format!("f{i}"));
        let o = t.run(&[], script);
        assert_miss(&o);
        assert_eq!(stdout(&o), format!("{i}\n"));
    }
    assert_eq!(t.runs(), 33);
    // f2's set is the oldest kept: still a hit.
    t.ws.write("which", "f2");
    let o = t.run(&[], script);
    assert_hit(&o);
    assert_eq!(stdout(&o), "2\n");
    // f1's set was evicted: its record is unreachable, the command runs.
    t.ws.write("which", "f1");
    let o = t.run(&[], script);
    assert_miss(&o);
    assert_eq!(stdout(&o), "1\n");
    assert_eq!(t.runs(), 34);
}

#[test]
fn the_hot_files_answer_a_traced_hit_without_the_database() {
    let t = Traced::new();
    t.ws.write("in.txt", "one\n");
    assert_miss(&t.run(&[], BUILD));
    let sets: Vec<_> = std::fs::read_dir(t.ws.cache.join("hot"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "sets"))
        .collect();
    assert_eq!(sets.len(), 1, "one set-index hot file");
    let db = t.ws.cache.join("idem.db");
    std::fs::rename(&db, t.ws.cache.join("moved.db")).unwrap();
    std::fs::create_dir(&db).unwrap();
    let o = t.run(&[], BUILD);
    assert_hit(&o);
    assert_eq!(stdout(&o), "one\n");
    assert_eq!(t.runs(), 1);
}

/// The one `hot/*.sets` file of this cache.
fn sets_file(t: &Traced) -> Vec<u8> {
    let sets: Vec<_> = std::fs::read_dir(t.ws.cache.join("hot"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "sets"))
        .collect();
    assert_eq!(sets.len(), 1, "one set-index hot file");
    std::fs::read(sets[0].path()).unwrap()
}

#[test]
fn a_hit_that_had_to_rehash_an_input_stores_its_fingerprint_once() {
    // After the recording, in.txt's mtime moves (its content does not): whatever the
    // recorded fingerprint was (racy or not depends on how fast the recording ran), it
    // no longer matches, so the first hit must hash the file; it then stores the new
    // fingerprint, and later hits trust it.
    use std::os::unix::fs::MetadataExt;
    let t = Traced::new();
    t.ws.write("in.txt", "one\n");
    assert_miss(&t.run(&[], BUILD));
    let recorded = sets_file(&t);
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(t.ws.path("in.txt"))
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    // Not synchronisation: moving the mtime set the ctime to now, and a fingerprint
    // observed within the racy window (100 ms) of it is never stored; let it pass.
    let md = std::fs::metadata(t.ws.path("in.txt")).unwrap();
    let ctime =
        std::time::UNIX_EPOCH + std::time::Duration::new(md.ctime() as u64, md.ctime_nsec() as u32);
    while std::time::SystemTime::now() < ctime + std::time::Duration::from_millis(300) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_hit(&t.run(&[], BUILD));
    let refreshed = sets_file(&t);
    assert_ne!(
        recorded, refreshed,
        "the first hit stored the fingerprint it had to verify"
    );
    assert_hit(&t.run(&[], BUILD));
    assert_eq!(
        refreshed,
        sets_file(&t),
        "a later hit had nothing to refresh"
    );
    assert_eq!(t.runs(), 1);
}

#[test]
fn status_and_explain_agree_with_run() {
    let t = Traced::new();
    t.ws.write("in.txt", "one\n");
    let ignore = t.ignore();
    let full = format!("{BUILD}; echo run >> {}", t.counter_file());
    let ask = |cmd: &str| {
        t.ws.idem(&[
            cmd,
            "-v",
            "--trace",
            "--trace-ignore",
            &ignore,
            "--",
            "sh",
            "-c",
            &full,
        ])
        .output()
        .unwrap()
    };
    assert_eq!(ask("status").status.code(), Some(1));
    assert_miss(&t.run(&[], BUILD));
    assert_eq!(
        ask("status").status.code(),
        Some(0),
        "{}",
        stderr(&ask("status"))
    );
    assert!(stdout(&ask("explain")).contains("a run would be a hit"));
    t.ws.write("in.txt", "two\n");
    let st = ask("status");
    assert_eq!(st.status.code(), Some(1));
    assert!(stderr(&st).contains("in.txt"), "{}", stderr(&st));
    let ex = stdout(&ask("explain"));
    assert!(
        ex.contains("a run would be a miss") && ex.contains("in.txt"),
        "{ex}"
    );
    assert_miss(&t.run(&[], BUILD));
    assert_eq!(ask("status").status.code(), Some(0));
    assert_eq!(t.runs(), 2, "status and explain ran nothing");
}

#[test]
fn check_mode_lists_undeclared_inputs_and_strict_fails_on_them() {
    let ws = Ws::new();
    ws.write("a.txt", "a\n");
    ws.write("src/b.txt", "b\n");
    let cmd = [
        "--",
        "sh",
        "-c",
        "cat a.txt src/b.txt; test -e maybe.cfg; ls src > /dev/null",
    ];
    let mut args = vec!["--trace=check", "-f", "a.txt"];
    args.extend_from_slice(&cmd);
    let o = ws.run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("undeclared workspace input"), "{err}");
    assert!(err.contains("-f src/b.txt"), "{err}");
    assert!(err.contains("-f maybe.cfg"), "{err}");
    assert!(err.contains("-f src/"), "{err}");
    assert!(
        !err.contains("-f a.txt"),
        "a declared input is not listed: {err}"
    );
    // Recorded under the declared inputs, like an untraced run: the rerun replays.
    let mut untraced = vec!["-v", "-f", "a.txt"];
    untraced.extend_from_slice(&cmd);
    assert_hit(&ws.run(&untraced));

    let ws = Ws::new();
    ws.write("a.txt", "a\n");
    ws.write("src/b.txt", "b\n");
    let mut strict = vec!["--trace=check", "--strict", "-f", "a.txt"];
    strict.extend_from_slice(&cmd);
    let o = ws.run(&strict);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert_eq!(stdout(&o), "a\nb\n", "the command ran");
    assert_eq!(record_count(&ws), 0, "a strict failure is not recorded");
    // Declared: no findings, the command's own code.
    let mut clean = vec![
        "--trace=check",
        "--strict",
        "-f",
        "a.txt",
        "-f",
        "src/",
        "-f",
        "maybe.cfg",
    ];
    clean.extend_from_slice(&cmd);
    let o = ws.run(&clean);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn trace_options_without_trace_are_usage_errors() {
    let ws = Ws::new();
    for args in [
        &["--trace-ignore", "/tmp/**", "--", "true"][..],
        &["--trace-net=allow", "--", "true"][..],
        &["--strict", "--", "true"][..],
        &["--trace", "--strict", "--", "true"][..],
    ] {
        let o = ws.run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    }
}

/// Runs idem under a seccomp policy that fails ptrace with EPERM (as a container's
/// would): it must warn once, run the command untraced, and record nothing.
#[test]
fn refused_ptrace_warns_runs_and_does_not_record() {
    use std::os::unix::process::CommandExt;
    let ws = Ws::new();
    ws.write("in.txt", "one\n");
    let mut c = ws.idem(&[
        "run",
        "--trace",
        "--",
        "sh",
        "-c",
        "cat in.txt > out.txt; cat in.txt",
    ]);
    // SAFETY: prctl and seccomp are async-signal-safe syscalls on a prepared program.
    unsafe {
        c.pre_exec(crate::trace_support::deny_ptrace);
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "one\n");
    assert_eq!(ws.read("out.txt"), b"one\n");
    let err = stderr(&o);
    assert!(err.contains("cannot trace here"), "{err}");
    assert_eq!(err.matches("warning").count(), 1, "{err}");
    assert!(err.contains("did not record"), "{err}");
    assert_eq!(record_count(&ws), 0);
    // --trace=check under the same policy: its declared record still stands.
    let mut c = ws.idem(&[
        "run",
        "--trace=check",
        "-f",
        "in.txt",
        "--",
        "cat",
        "in.txt",
    ]);
    // SAFETY: as above.
    unsafe {
        c.pre_exec(crate::trace_support::deny_ptrace);
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing was checked"), "{}", stderr(&o));
    assert_eq!(record_count(&ws), 1);
}

/// A traced record and its dependency set travel through a remote: a second machine
/// (another checkout path, another cache) hits without running, outputs restored.
#[test]
fn a_traced_record_and_its_set_travel_through_a_remote() {
    let Some(redis) = crate::common::servers::Redis::start() else {
        return;
    };
    let url = redis.url();
    let a = Traced::new();
    let b = Ws::new();
    for ws in [&a.ws, &b] {
        ws.write("in.txt", "shared\n");
    }
    let o = a.run(&["--remote", &url], BUILD);
    assert_miss(&o);
    // Machine B: same command, same ignored counter, its own checkout and cache.
    let ignore = a.ignore();
    let full = format!("{BUILD}; echo run >> {}", a.counter_file());
    let o = b.run(&[
        "-v",
        "--trace",
        "--trace-ignore",
        &ignore,
        "--remote",
        &url,
        "--",
        "sh",
        "-c",
        &full,
    ]);
    assert_hit(&o);
    assert!(stderr(&o).contains("remote"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "shared\n");
    assert_eq!(b.read("out.txt"), b"shared\n");
    assert_eq!(a.runs(), 1, "machine B did not run the command");
    // Adopted locally: without the remote, B still hits.
    let o = b.run(&[
        "-v",
        "--trace",
        "--trace-ignore",
        &ignore,
        "--",
        "sh",
        "-c",
        &full,
    ]);
    assert_hit(&o);
}

/// idem.toml's `trace` field is `--trace`: a named traced task records, hits and
/// restores its outputs; a bad mode is refused before anything runs.
#[test]
fn a_named_task_can_be_traced() {
    let t = Traced::new();
    t.ws.write("in.txt", "one\n");
    t.ws.write(
        "idem.toml",
        format!(
            "[task.build]\nrun = \"{BUILD}; echo run >> {}\"\ntrace = \"record\"\ntrace-ignore = [\"{}\"]\n",
            t.counter_file(),
            t.ignore()
        ),
    );
    let o = t.ws.run(&["-v", "build"]);
    assert_miss(&o);
    assert!(stderr(&o).contains("traced"), "{}", stderr(&o));
    std::fs::remove_file(t.ws.path("out.txt")).unwrap();
    let o = t.ws.run(&["-v", "build"]);
    assert_hit(&o);
    assert_eq!(t.ws.read("out.txt"), b"one\n");
    assert_eq!(t.runs(), 1);
    t.ws.write(
        "idem.toml",
        "[task.build]\nrun = \"true\"\ntrace = \"bogus\"\n",
    );
    let o = t.ws.run(&["build"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// An inet connect makes a traced run unrecordable (one warning naming the way out);
/// `--trace-net=allow` records it anyway, under its own task key.
#[test]
fn the_network_is_not_recorded_unless_allowed() {
    let ws = Ws::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!("echo ping > /dev/tcp/127.0.0.1/{port}; echo done");
    let deny = ws.run(&["-v", "--trace", "--", "bash", "-c", &script]);
    assert_eq!(stdout(&deny), "done\n", "{}", stderr(&deny));
    assert!(stderr(&deny).contains("not recorded"), "{}", stderr(&deny));
    assert_eq!(record_count(&ws), 0);
    let plain = ws.run(&["--trace", "--", "bash", "-c", &script]);
    assert!(
        stderr(&plain).contains("--trace-net=allow"),
        "{}",
        stderr(&plain)
    );
    let allow = [
        "-v",
        "--trace",
        "--trace-net=allow",
        "--",
        "bash",
        "-c",
        &script,
    ];
    assert_miss(&ws.run(&allow));
    assert_eq!(record_count(&ws), 1);
    assert_hit(&ws.run(&allow));
    drop(listener);
}

/// Forgetting a traced task drops its dependency sets with its records (SQLite row and
/// hot file): the next run is a miss, not a set pointing at nothing.
#[test]
fn forget_drops_the_dependency_sets() {
    let t = Traced::new();
    t.ws.write("in.txt", "one\n");
    assert_miss(&t.run(&[], BUILD));
    let sets = || {
        std::fs::read_dir(t.ws.cache.join("hot"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "sets"))
            .count()
    };
    assert_eq!(sets(), 1);
    let ignore = t.ignore();
    let full = format!("{BUILD}; echo run >> {}", t.counter_file());
    let o =
        t.ws.idem(&[
            "forget",
            "--trace",
            "--trace-ignore",
            &ignore,
            "--",
            "sh",
            "-c",
            &full,
        ])
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains("forgot 1 record"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(sets(), 0, "the set-index hot file went with the records");
    let o = t.run(&[], BUILD);
    assert_miss(&o);
    assert!(stderr(&o).contains("no traced record"), "{}", stderr(&o));
}

/// Outputs named through `..` are captured where they really are and restored there;
/// a write under `.git/` is never recorded (the gate would refuse to restore it).
#[test]
fn outputs_through_dotdot_are_restored_and_git_writes_are_not_recorded() {
    let t = Traced::new();
    t.ws.write("sub/keep", "");
    let script = "echo made > sub/../made.txt";
    assert_miss(&t.run(&[], script));
    std::fs::remove_file(t.ws.path("made.txt")).unwrap();
    assert_hit(&t.run(&[], script));
    assert_eq!(t.ws.read("made.txt"), b"made\n");
    let o = t.run(&[], "echo x > .git/planted");
    assert!(stderr(&o).contains(".git/planted"), "{}", stderr(&o));
    assert_eq!(record_count(&t.ws), 1);
}
