//! Integration tests for the cache commands (status, explain, stats, list, show, gc,
//! forget, clear, verify, completions): they run the real binary on a temporary
//! workspace and check the database and the blob directory never drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::{stderr, stdout, Ws};
use serde_json::Value;

const SH: &str = "sh";

/// `idem <args>` with extra environment variables; never inherits limits from the
/// developer's environment.
fn idem_env(ws: &Ws, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = ws.idem(args);
    c.env_remove("IDEM_MAX_SIZE")
        .env_remove("IDEM_MAX_AGE")
        .env_remove("IDEM_TEST_GC_PAUSE_AT")
        .env_remove("NO_COLOR");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("spawn idem")
}

fn idem(ws: &Ws, args: &[&str]) -> Output {
    idem_env(ws, args, &[])
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "idem failed: {}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {}", stdout(o)))
}

/// A task printing `n` bytes of `ch`, at time `now` (IDEM_NOW, seconds).
fn make_task(ws: &Ws, name: &str, bytes: usize, now: u64) -> Output {
    let script = format!("head -c {bytes} /dev/zero | tr '\\0' '{name}'");
    let now = now.to_string();
    idem_env(ws, &["run", "--", SH, "-c", &script], &[("IDEM_NOW", &now)])
}

fn task_argv(name: &str, bytes: usize) -> Vec<String> {
    vec![
        SH.to_string(),
        "-c".to_string(),
        format!("head -c {bytes} /dev/zero | tr '\\0' '{name}'"),
    ]
}

fn status_of(ws: &Ws, argv: &[String]) -> i32 {
    let mut args = vec!["status", "--"];
    args.extend(argv.iter().map(String::as_str));
    idem(ws, &args).status.code().expect("exit code")
}

/// Hashes referenced by records, and blob files present, as hex.
fn cache_sets(ws: &Ws) -> (BTreeMap<String, u64>, BTreeSet<String>) {
    let conn = rusqlite::Connection::open(ws.cache.join("idem.db")).expect("open db");
    let mut stmt = conn
        .prepare("SELECT DISTINCT hash, size FROM record_blobs")
        .expect("prepare");
    let referenced: BTreeMap<String, u64> = stmt
        .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
        .expect("query")
        .map(|r| {
            let (h, s) = r.expect("row");
            (h.iter().map(|b| format!("{b:02x}")).collect(), s as u64)
        })
        .collect();
    let mut files = BTreeSet::new();
    let blobs = ws.cache.join("blobs");
    if let Ok(top) = std::fs::read_dir(&blobs) {
        for sub in top.flatten() {
            let prefix = sub.file_name().to_string_lossy().into_owned();
            if prefix == "tmp" {
                continue;
            }
            for f in std::fs::read_dir(sub.path())
                .expect("read blob dir")
                .flatten()
            {
                files.insert(format!("{prefix}{}", f.file_name().to_string_lossy()));
            }
        }
    }
    (referenced, files)
}

/// No record whose blob is gone (or of the wrong size).
fn assert_no_missing_blobs(ws: &Ws) {
    let (referenced, _) = cache_sets(ws);
    for (h, size) in &referenced {
        let p = ws.cache.join("blobs").join(&h[..2]).join(&h[2..]);
        let md =
            std::fs::metadata(&p).unwrap_or_else(|_| panic!("record references missing blob {h}"));
        assert_eq!(md.len(), *size, "blob {h} has the wrong size");
    }
}

/// The database and the blob directory agree exactly.
fn assert_consistent(ws: &Ws) {
    assert_no_missing_blobs(ws);
    let (referenced, files) = cache_sets(ws);
    let referenced: BTreeSet<String> = referenced.into_keys().collect();
    let orphans: Vec<_> = files.difference(&referenced).collect();
    assert!(orphans.is_empty(), "orphan blobs: {orphans:?}");
}

fn record_ids(ws: &Ws) -> Vec<i64> {
    let v = json(&idem(ws, &["list", "--json"]));
    let mut ids: Vec<i64> = v["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    ids.sort();
    ids
}

#[test]
fn explain_names_exactly_the_changed_file_among_1000() {
    let ws = Ws::new();
    for i in 0..1001 {
        ws.write(&format!("src/f{i:04}.txt"), format!("content {i}\n"));
    }
    let o = ws.run(&["-f", "src/", "--", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    ws.write("src/f0500.txt", "changed content, longer than before\n");
    let o = idem(&ws, &["explain", "-f", "src/", "--", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.ends_with(": changed") || l.ends_with(": added") || l.ends_with(": removed"))
        .collect();
    assert_eq!(lines, vec!["file src/f0500.txt: changed"], "{out}");
    assert!(out.contains("a run would be a miss"), "{out}");

    ws.write("src/new.txt", "x");
    std::fs::remove_file(ws.path("src/f0001.txt")).unwrap();
    let v = json(&idem(
        &ws,
        &["explain", "--json", "-f", "src/", "--", "true"],
    ));
    let changes: Vec<(String, String)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["change"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            ("src/f0001.txt".to_string(), "removed".to_string()),
            ("src/f0500.txt".to_string(), "changed".to_string()),
            ("src/new.txt".to_string(), "added".to_string()),
        ]
    );
    assert_eq!(v["would_hit"], false);
}

#[test]
fn explain_without_record_names_the_closest_task() {
    let ws = Ws::new();
    ws.write("sub/a.txt", "a");
    let o = ws.run(&["-f", "sub/a.txt", "--", "true"]);
    assert!(o.status.success());
    let o = idem(&ws, &["explain", "-e", "HOME", "--", "true"]);
    let out = stdout(&o);
    assert!(out.contains("no record for this task yet"), "{out}");
    assert!(out.contains("closest known task: record 1"), "{out}");
    assert!(out.contains("only there: file sub/a.txt"), "{out}");
    assert!(out.contains("only here: env HOME"), "{out}");
    let o = idem(&ws, &["explain", "--", "false"]);
    assert!(
        stdout(&o).contains("no record of this command line"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn explain_says_env_changed_without_its_value() {
    let ws = Ws::new();
    let o = idem_env(&ws, &["run", "-e", "CC", "--", "true"], &[("CC", "gcc-13")]);
    assert!(o.status.success());
    let o = idem_env(
        &ws,
        &["explain", "-e", "CC", "--", "true"],
        &[("CC", "clang-17")],
    );
    let out = stdout(&o);
    assert!(out.lines().any(|l| l == "env CC: changed"), "{out}");
    assert!(!out.contains("gcc") && !out.contains("clang"), "{out}");
    let o = idem_env(
        &ws,
        &["explain", "-e", "CC", "--", "true"],
        &[("CC", "gcc-13")],
    );
    let out = stdout(&o);
    assert!(
        out.contains("no dependency changed") && out.contains("a run would be a hit"),
        "{out}"
    );
}

#[test]
fn env_values_never_appear_in_outputs_or_the_database() {
    let ws = Ws::new();
    let secret = "s3cr3t-Value-98765";
    let other = "0ther-s3cr3t-4321";
    let o = idem_env(
        &ws,
        &["run", "-e", "TOKEN", "--", "true"],
        &[("TOKEN", secret)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut outputs = Vec::new();
    for args in [
        vec!["explain", "-e", "TOKEN", "--", "true"],
        vec!["explain", "--json", "-e", "TOKEN", "--", "true"],
        vec!["status", "-v", "-e", "TOKEN", "--", "true"],
        vec!["show", "1"],
        vec!["show", "--json", "1"],
        vec!["list"],
        vec!["list", "--json"],
        vec!["stats", "--json"],
    ] {
        for value in [secret, other] {
            let o = idem_env(&ws, &args, &[("TOKEN", value)]);
            assert!(o.status.code() != Some(2), "{args:?}: {}", stderr(&o));
            outputs.push((args.clone(), stdout(&o) + &stderr(&o)));
        }
    }
    for (args, out) in &outputs {
        assert!(
            !out.contains(secret) && !out.contains(other),
            "{args:?} printed a value: {out}"
        );
    }
    let show = json(&idem(&ws, &["show", "--json", "1"]));
    let env = show["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "env")
        .expect("env dep");
    assert_eq!(env["state"], "set");
    for entry in std::fs::read_dir(&ws.cache).unwrap().flatten() {
        if entry.file_type().unwrap().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            for v in [secret, other] {
                assert!(
                    !bytes.windows(v.len()).any(|w| w == v.as_bytes()),
                    "{} contains an env value",
                    entry.path().display()
                );
            }
        }
    }
}

#[test]
fn status_exit_codes() {
    let ws = Ws::new();
    ws.write("in.txt", "1");
    let args = ["status", "-f", "in.txt", "--", SH, "-c", "echo hi >> runs"];
    let o = idem(&ws, &args);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        o.stdout.is_empty() && o.stderr.is_empty(),
        "status must be silent"
    );
    assert_eq!(ws.count("runs"), 0, "status must not run the command");
    assert!(ws
        .run(&["-f", "in.txt", "--", SH, "-c", "echo hi >> runs"])
        .status
        .success());
    assert_eq!(ws.count("runs"), 1);
    let o = idem(&ws, &args);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        o.stdout.is_empty() && o.stderr.is_empty(),
        "status must be silent"
    );
    let mut verbose = args.to_vec();
    verbose.insert(1, "-v");
    let o = idem(&ws, &verbose);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("hit: record 1"), "{}", stderr(&o));
    ws.write("in.txt", "2");
    let o = idem(&ws, &verbose);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("miss: file in.txt changed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(ws.count("runs"), 1, "status must not run the command");
    // Unknown program: a miss. Usage errors: 2.
    assert_eq!(
        idem(&ws, &["status", "--", "no-such-program-xyz"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        idem(&ws, &["status", "-f", "in.txt"]).status.code(),
        Some(2)
    );
    // --key: hit once the key has run.
    assert_eq!(
        idem(&ws, &["status", "--key", "k1", "--", "true"])
            .status
            .code(),
        Some(1)
    );
    assert!(ws.run(&["--key", "k1", "--", "true"]).status.success());
    assert_eq!(
        idem(&ws, &["status", "--key", "k1", "--", "true"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn stats_match_a_scripted_sequence() {
    let ws = Ws::new();
    ws.write("a.txt", "1");
    let a = ["-f", "a.txt", "--", SH, "-c", "echo a"];
    let b = ["--", SH, "-c", "echo b"];
    let mut hits = 0;
    let mut misses = 0;
    let mut replayed_ids = Vec::new();
    let mut step = |args: &[&str], hit: bool, id: i64| {
        let mut full = vec!["-v"];
        full.extend_from_slice(args);
        let o = ws.run(&full);
        assert!(o.status.success());
        assert_eq!(stderr(&o).contains("idem: hit"), hit, "{}", stderr(&o));
        if hit {
            hits += 1;
            replayed_ids.push(id);
        } else {
            misses += 1;
        }
    };
    step(&a, false, 1);
    step(&a, true, 1);
    step(&a, true, 1);
    step(&b, false, 2);
    step(&b, true, 2);
    ws.write("a.txt", "22");
    step(&a, false, 3);
    step(&a, true, 3);
    let v = json(&idem(&ws, &["stats", "--json"]));
    assert_eq!(v["hits"], hits);
    assert_eq!(v["misses"], misses);
    assert_eq!(v["records"], 3);
    let rate = v["hit_rate"].as_f64().unwrap();
    assert!((rate - 4.0 / 7.0).abs() < 1e-9, "{rate}");
    let list = json(&idem(&ws, &["list", "--json"]));
    let dur: BTreeMap<i64, i64> = list["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["duration_ns"].as_i64().unwrap(),
            )
        })
        .collect();
    let saved: i64 = replayed_ids.iter().map(|id| dur[id]).sum();
    assert_eq!(v["saved_ns"].as_i64().unwrap(), saved);
    let hits_col: i64 = list["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["hits"].as_i64().unwrap())
        .sum();
    assert_eq!(hits_col, 4);
    // Two blobs: "a\n" is shared by records 1 and 3, "b\n" by record 2.
    assert_eq!(v["blobs"], 2);
    assert_eq!(v["blob_bytes"], 4);
    assert!(v["disk_bytes"].as_u64().unwrap() > 0);
    let human = stdout(&idem(&ws, &["stats"]));
    assert!(human.contains("57.1%"), "{human}");
    assert!(idem(&ws, &["stats", "--zero"]).status.success());
    let v = json(&idem(&ws, &["stats", "--json"]));
    assert_eq!(
        (
            v["hits"].as_i64(),
            v["misses"].as_i64(),
            v["saved_ns"].as_i64()
        ),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(v["records"], 3, "--zero resets counters, not records");
}

#[test]
fn list_filters_and_show() {
    let ws = Ws::new();
    assert!(make_task(&ws, "x", 10, 1_000_000).status.success());
    assert!(make_task(&ws, "y", 20, 1_000_000 + 7200).status.success());
    let now = (1_000_000 + 7300).to_string();
    let v = json(&idem_env(
        &ws,
        &["list", "--json", "--since", "1h"],
        &[("IDEM_NOW", &now)],
    ));
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
    assert!(v["records"][0]["command"].as_str().unwrap().contains("'y'"));
    let v = json(&idem_env(
        &ws,
        &["log", "--json", "--cmd", "'x'"],
        &[("IDEM_NOW", &now)],
    ));
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
    assert_eq!(v["records"][0]["size"], 10);
    let human = stdout(&idem_env(&ws, &["list"], &[("IDEM_NOW", &now)]));
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines.len(), 3, "{human}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("COMMAND"));
    assert!(!human.contains('\x1b'), "no colour in a pipe");
    // Columns align: COMMAND starts at the same offset on every line.
    let col = lines[0].find("COMMAND").unwrap();
    assert!(
        lines[1..].iter().all(|l| l[col..].starts_with("sh -c")),
        "{human}"
    );
    // show: whole record, and its stdout bytes.
    let o = idem(&ws, &["show", "2", "--stdout"]);
    assert_eq!(o.stdout, vec![b'y'; 20]);
    let o = idem(&ws, &["show", "2"]);
    let out = stdout(&o);
    assert!(
        out.contains("stdout") && out.contains("20 B") && out.contains("dependencies (1)"),
        "{out}"
    );
    assert_eq!(idem(&ws, &["show", "99"]).status.code(), Some(2));
}

#[test]
fn gc_to_a_size_limit_keeps_most_recently_used_and_leaves_no_orphans() {
    let ws = Ws::new();
    let names = ["a", "b", "c", "d", "e"];
    for (i, n) in names.iter().enumerate() {
        assert!(make_task(&ws, n, 10_000, 1_000_000 + i as u64 * 10)
            .status
            .success());
    }
    // "a" is the oldest record but the most recently used.
    let o = make_task(&ws, "a", 10_000, 1_000_100);
    assert!(o.status.success());
    assert_eq!(o.stdout.len(), 10_000);
    // Room for two records (10 kB of blob plus a small encoded record each).
    let o = idem(&ws, &["gc", "--max-size", "22000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("evicted 3 record(s)"), "{}", stdout(&o));
    assert_eq!(record_ids(&ws), vec![1, 5]);
    assert_consistent(&ws);
    assert_eq!(status_of(&ws, &task_argv("a", 10_000)), 0);
    assert_eq!(status_of(&ws, &task_argv("e", 10_000)), 0);
    assert_eq!(status_of(&ws, &task_argv("b", 10_000)), 1);
    // Replays still work after gc.
    let o = make_task(&ws, "e", 10_000, 1_000_200);
    assert_eq!(o.stdout, vec![b'e'; 10_000]);
    // Age limit: everything not used within the last 50 s (of IDEM_NOW) goes.
    let o = idem_env(&ws, &["gc", "--max-age", "50s"], &[("IDEM_NOW", "1000210")]);
    assert!(o.status.success());
    assert_eq!(record_ids(&ws), vec![5]);
    assert_consistent(&ws);
}

#[test]
fn gc_removes_orphans_and_shared_blobs_survive() {
    let ws = Ws::new();
    ws.write("one", "1");
    // Two tasks with the same stdout share one blob.
    assert!(ws
        .run(&["-f", "one", "--", SH, "-c", "echo same"])
        .status
        .success());
    assert!(ws.run(&["--", SH, "-c", "echo same"]).status.success());
    // A stray orphan blob (as left by a killed gc).
    let orphan = "ab".to_string() + &"cd".repeat(31);
    std::fs::create_dir_all(ws.cache.join("blobs/ab")).unwrap();
    std::fs::write(ws.cache.join("blobs/ab").join(&orphan[2..]), "stray").unwrap();
    assert!(
        idem(&ws, &["forget", "-f", "one", "--", SH, "-c", "echo same"])
            .status
            .success()
    );
    assert_eq!(record_ids(&ws), vec![2]);
    assert_no_missing_blobs(&ws);
    let o = idem(&ws, &["gc"]);
    assert!(stdout(&o).contains("removed 1 blob(s)"), "{}", stdout(&o));
    assert_consistent(&ws);
}

/// Runs `idem gc --max-size 0` until it announces `point`, then SIGKILLs it.
fn kill_gc_at(ws: &Ws, point: &str) {
    let mut c: Command = ws.idem(&["gc", "--max-size", "0"]);
    c.env("IDEM_TEST_GC_PAUSE_AT", point)
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = c.spawn().expect("spawn gc");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = false;
    for line in lines.by_ref() {
        if line
            .expect("read stderr")
            .contains(&format!("test pause at {point}"))
        {
            seen = true;
            break;
        }
    }
    assert!(seen, "gc never reached {point}");
    child.kill().expect("SIGKILL gc");
    let status = child.wait().unwrap();
    assert!(!status.success());
}

#[test]
fn gc_killed_at_any_step_leaves_a_consistent_cache() {
    for point in ["after-records", "mid-blobs"] {
        let ws = Ws::new();
        for n in ["a", "b", "c", "d"] {
            assert!(make_task(&ws, n, 1000, 1_000_000).status.success());
        }
        kill_gc_at(&ws, point);
        // Records went first (one transaction), so none points at a deleted blob…
        assert_no_missing_blobs(&ws);
        assert!(
            record_ids(&ws).is_empty(),
            "{point}: records were deleted first"
        );
        let (_, files) = cache_sets(&ws);
        if point == "after-records" {
            assert_eq!(files.len(), 4, "no blob deleted yet");
        } else {
            assert_eq!(files.len(), 3, "one blob deleted before the kill");
        }
        // …and the next gc removes the orphans; the killed gc's lock is gone.
        let o = idem(&ws, &["gc"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_consistent(&ws);
        assert_eq!(idem(&ws, &["verify"]).status.code(), Some(0));
        let o = make_task(&ws, "a", 1000, 1_000_001);
        assert_eq!(o.stdout, vec![b'a'; 1000]);
        assert_eq!(status_of(&ws, &task_argv("a", 1000)), 0);
        assert_consistent(&ws);
    }
}

#[test]
fn automatic_gc_runs_at_most_hourly_past_the_limit() {
    let ws = Ws::new();
    let limit = [("IDEM_MAX_SIZE", "15000")];
    let run_at = |name: &str, now: u64| {
        let script = format!("head -c 10000 /dev/zero | tr '\\0' '{name}'");
        let now = now.to_string();
        let mut env = limit.to_vec();
        env.push(("IDEM_NOW", &now));
        let o = idem_env(&ws, &["run", "--", SH, "-c", &script], &env);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    run_at("a", 1_000_000); // first check: under the limit
    run_at("b", 1_000_100); // over, but checked less than an hour ago
    assert_eq!(record_ids(&ws).len(), 2);
    run_at("c", 1_003_700); // an hour later: gc down to the limit
    assert_eq!(record_ids(&ws), vec![3]);
    assert_consistent(&ws);
    // Without a limit, nothing is ever evicted automatically.
    for (i, n) in ["d", "e", "f"].iter().enumerate() {
        let script = format!("head -c 10000 /dev/zero | tr '\\0' '{n}'");
        let now = (1_010_000 + i * 4000).to_string();
        idem_env(
            &ws,
            &["run", "--", SH, "-c", &script],
            &[("IDEM_NOW", &now)],
        );
    }
    assert_eq!(record_ids(&ws).len(), 4);
    // An invalid limit is reported, and never fails the command.
    let o = idem_env(&ws, &["run", "--", "true"], &[("IDEM_MAX_SIZE", "lots")]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("IDEM_MAX_SIZE"), "{}", stderr(&o));
}

#[test]
fn verify_drops_records_with_corrupt_or_missing_blobs() {
    let ws = Ws::new();
    for n in ["a", "b", "c"] {
        assert!(make_task(&ws, n, 100, 1_000_000).status.success());
    }
    assert_eq!(idem(&ws, &["verify"]).status.code(), Some(0));
    let blob = |n: &str| {
        let h = blake3::hash(&[n.as_bytes()[0]; 100]).to_hex().to_string();
        ws.cache.join("blobs").join(&h[..2]).join(&h[2..])
    };
    std::fs::write(blob("a"), vec![b'z'; 100]).unwrap(); // same size, wrong content
    std::fs::remove_file(blob("b")).unwrap();
    let o = idem(&ws, &["verify", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["dropped_records"], serde_json::json!([1, 2]));
    assert_eq!(v["problems"].as_array().unwrap().len(), 2);
    assert_eq!(record_ids(&ws), vec![3]);
    assert!(!blob("a").exists(), "the corrupt blob file is removed");
    assert_consistent(&ws);
    // The dropped task runs again and is recorded afresh.
    let o = make_task(&ws, "a", 100, 1_000_001);
    assert_eq!(o.stdout, vec![b'a'; 100]);
    assert_eq!(idem(&ws, &["verify"]).status.code(), Some(0));
    assert_consistent(&ws);
}

#[test]
fn forget_and_clear() {
    let ws = Ws::new();
    assert!(ws.run(&["--", SH, "-c", "echo one"]).status.success());
    assert!(ws
        .run(&["--key", "deploy-1", "--", SH, "-c", "echo deploy >> runs"])
        .status
        .success());
    assert!(ws
        .run(&["--key", "deploy-1", "--", SH, "-c", "echo deploy >> runs"])
        .status
        .success());
    assert_eq!(ws.count("runs"), 1);
    let o = idem(&ws, &["forget", "--key", "deploy-1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(record_ids(&ws), vec![1]);
    assert_consistent(&ws);
    assert!(ws
        .run(&["--key", "deploy-1", "--", SH, "-c", "echo deploy >> runs"])
        .status
        .success());
    assert_eq!(ws.count("runs"), 2, "a forgotten key runs again");
    assert_eq!(idem(&ws, &["forget"]).status.code(), Some(2));
    assert!(idem(&ws, &["forget", "--", SH, "-c", "echo one"])
        .status
        .success());
    assert_eq!(
        status_of(&ws, &[SH.into(), "-c".into(), "echo one".into()]),
        1
    );
    assert_consistent(&ws);
    // stdin is not a terminal here: nobody to ask, so nothing is deleted without --yes.
    let before = record_ids(&ws);
    assert!(!before.is_empty());
    let o = idem(&ws, &["clear"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "idem: clear: refusing to delete the cache without --yes (no terminal to ask)\n"
    );
    assert_eq!(stdout(&o), "");
    assert_eq!(record_ids(&ws), before, "nothing deleted");
    assert_consistent(&ws);
    let o = idem(&ws, &["clear", "--yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(record_ids(&ws).is_empty());
    let (refs, files) = cache_sets(&ws);
    assert!(refs.is_empty() && files.is_empty());
}

#[test]
fn version_and_help_examples() {
    let ws = Ws::new();
    for flag in ["-V", "--version"] {
        let out = stdout(&idem(&ws, &[flag]));
        assert!(
            out.starts_with("idem ") && out.contains("cache schema 3"),
            "{out}"
        );
    }
    use clap::CommandFactory;
    let cmd = idem::cli::Cli::command();
    let mut names = vec![None];
    names.extend(
        cmd.get_subcommands()
            .map(|s| Some(s.get_name().to_string())),
    );
    for name in names {
        let mut args = Vec::new();
        if let Some(n) = &name {
            args.push(n.as_str());
        }
        args.push("--help");
        let out = stdout(&idem(&ws, &args));
        assert!(out.contains("Examples:"), "{name:?} --help has no examples");
    }
}

// ---- generated files: completions and man pages ----

fn generated() -> Vec<(String, Vec<u8>)> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let mut out = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "idem.bash"),
        (Shell::Zsh, "_idem"),
        (Shell::Fish, "idem.fish"),
        (Shell::Elvish, "idem.elv"),
        (Shell::PowerShell, "_idem.ps1"),
    ] {
        let mut buf = Vec::new();
        idem::completions::generate(shell, &mut buf);
        out.push((format!("completions/{file}"), buf));
    }
    let cmd = idem::cli::Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .expect("render man page");
    out.push(("docs/man/idem.1".to_string(), buf));
    for sub in cmd.get_subcommands() {
        let name = format!("idem-{}", sub.get_name());
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        let sub = sub.clone().name(leaked);
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub)
            .render(&mut buf)
            .expect("render man page");
        out.push((format!("docs/man/{name}.1"), buf));
    }
    out
}

/// Fails when completions or man pages drift from the CLI; `IDEM_BLESS=1` rewrites them.
#[test]
fn completions_and_man_pages_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var_os("IDEM_BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (rel, bytes) in generated() {
        let path = root.join(&rel);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            stale.push(rel);
        }
    }
    assert!(
        stale.is_empty(),
        "out of date: {stale:?}; regenerate with `IDEM_BLESS=1 cargo test --test it completions`"
    );
    // `idem completions SHELL` prints the same script.
    let ws = Ws::new();
    let o = idem(&ws, &["completions", "fish"]);
    assert_eq!(
        o.stdout,
        std::fs::read(root.join("completions/idem.fish")).unwrap()
    );
}

// ---- JSON outputs match docs/json.md ----

/// Field paths of a JSON value: `a`, `a.b`, `a[].b`.
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                paths(v, &p, out);
            }
        }
        Value::Array(a) => {
            for v in a {
                paths(v, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// Documented fields per section of docs/json.md: the first backticked cell of each
/// table row under a `## \`idem X --json\`` heading.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md"))
        .expect("docs/json.md");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            section = h.split('`').nth(1).map(|s| s.to_string());
            continue;
        }
        if let (Some(s), Some(rest)) = (&section, line.strip_prefix("| `")) {
            if let Some(field) = rest.split('`').next() {
                out.entry(s.clone()).or_default().insert(field.to_string());
            }
        }
    }
    out
}

#[test]
fn json_outputs_parse_and_match_their_documentation() {
    let ws = Ws::new();
    ws.write("a.txt", "1");
    ws.write(
        "idem.toml",
        "[task.t]\ndescription = \"d\"\nrun = [\"true\"]\ncwd = \".\"\n",
    );
    assert!(ws
        .run(&[
            "-f",
            "a.txt",
            "-o",
            "out.txt",
            "--",
            SH,
            "-c",
            "echo hi; echo x > out.txt"
        ])
        .status
        .success());
    ws.write("a.txt", "2");
    let docs = documented();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "idem explain --json",
            vec![
                "explain",
                "--json",
                "-f",
                "a.txt",
                "-o",
                "out.txt",
                "--",
                SH,
                "-c",
                "echo hi; echo x > out.txt",
            ],
        ),
        (
            "idem explain --json",
            vec!["explain", "--json", "--", "true"],
        ),
        // Same command line, other options: `closest` is filled in.
        (
            "idem explain --json",
            vec![
                "explain",
                "--json",
                "--",
                SH,
                "-c",
                "echo hi; echo x > out.txt",
            ],
        ),
        ("idem stats --json", vec!["stats", "--json"]),
        ("idem list --json", vec!["list", "--json"]),
        ("idem show --json", vec!["show", "--json", "1"]),
        ("idem verify --json", vec!["verify", "--json"]),
        ("idem tasks --json", vec!["tasks", "--json"]),
    ];
    for (section, args) in cases {
        let fields = docs
            .get(section)
            .unwrap_or_else(|| panic!("docs/json.md has no section for {section}"));
        let v = json(&idem(&ws, &args));
        let mut got = BTreeSet::new();
        paths(&v, "", &mut got);
        let undocumented: Vec<_> = got.difference(fields).collect();
        assert!(
            undocumented.is_empty(),
            "{section}: undocumented fields {undocumented:?}"
        );
        let top: BTreeSet<&String> = fields
            .iter()
            .filter(|f| !f.contains('.') && !f.contains('['))
            .collect();
        for f in top {
            assert!(
                v.get(f).is_some(),
                "{section}: documented field {f} is missing"
            );
        }
    }
}

/// gc sweeping over and over while runs write blobs and then insert their records:
/// every run succeeds with its own output, and no record ever points at a blob gc
/// removed (insert_record checks its blobs under the write lock gc sweeps under).
/// gc here only sweeps (no eviction), so records are never deleted and any record
/// with a missing blob, at any moment, is a real bug.
#[test]
fn gc_concurrent_with_runs_never_breaks_a_record() {
    let ws = Ws::new();
    assert!(make_task(&ws, "w", 10, 1).status.success()); // the database exists
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let gc = s.spawn(|| {
            let mut n = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) || n < 5 {
                let o = idem(&ws, &["gc"]);
                assert!(o.status.success(), "{}", stderr(&o));
                n += 1;
            }
        });
        let runners: Vec<_> = (0..3)
            .map(|t| {
                let ws = &ws;
                s.spawn(move || {
                    for i in 0..12 {
                        // New bytes every time: a fresh blob written before its record.
                        let bytes = 1000 + t * 100 + i;
                        let o = make_task(ws, "x", bytes, 1_000_000);
                        assert!(o.status.success(), "{}", stderr(&o));
                        assert_eq!(o.stdout, vec![b'x'; bytes]);
                        assert_no_missing_blobs(ws);
                    }
                })
            })
            .collect();
        // Stop the gc loop whatever happened to the runners, then report.
        let results: Vec<_> = runners.into_iter().map(|r| r.join()).collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        gc.join().expect("gc");
        for r in results {
            if let Err(panic) = r {
                std::panic::resume_unwind(panic);
            }
        }
    });
    assert_no_missing_blobs(&ws);
    assert!(idem(&ws, &["gc"]).status.success());
    assert_consistent(&ws);
    assert_eq!(idem(&ws, &["verify"]).status.code(), Some(0));
}

/// The other half of gc's rule, deterministically: a record whose blob file vanished
/// between writing it and inserting the record (a concurrent sweep) is refused.
#[test]
fn insert_refuses_a_record_whose_blob_is_gone() {
    let ws = Ws::new();
    assert!(make_task(&ws, "k", 300, 1_000_000).status.success());
    let mut cache = idem::store::Cache::open(&ws.cache).expect("open cache");
    let mut rec = cache.db.record_by_id(1).expect("read").expect("record 1");
    rec.state_key = [7; 32];
    let path = cache.blobs.path(&rec.stdout.hash);
    let bytes = std::fs::read(&path).expect("blob");
    std::fs::remove_file(&path).unwrap();
    let err = cache.db.insert_record(&rec, 1).expect_err("must refuse");
    assert!(format!("{err:#}").contains("vanished"), "{err:#}");
    std::fs::write(&path, bytes).unwrap();
    cache
        .db
        .insert_record(&rec, 1)
        .expect("accepted once the blob is back");
    drop(cache);
    assert_consistent(&ws);
}

/// SIGKILL at arbitrary moments (not only the hooked steps): after each kill no record
/// points at a missing blob, and the next gc leaves the cache exact. The delays only
/// spread the kill points; nothing waits on them for correctness.
#[test]
fn gc_killed_at_random_moments_leaves_a_consistent_cache() {
    let ws = Ws::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..12u64 {
        for n in ["a", "b", "c", "d", "e", "f"] {
            let o = make_task(&ws, n, 500 + round as usize, 1_000_000 + round);
            assert!(o.status.success());
        }
        let mut child = ws
            .idem(&["gc", "--max-size", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn gc");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_micros(seed % 15_000));
        let _ = child.kill();
        let _ = child.wait();
        assert_no_missing_blobs(&ws);
    }
    assert!(idem(&ws, &["gc"]).status.success());
    assert_consistent(&ws);
    assert_eq!(idem(&ws, &["verify"]).status.code(), Some(0));
}

#[test]
fn explain_and_show_describe_url_changes() {
    let ws = Ws::new();
    ws.write("remote.txt", "v1");
    let url = format!("file://{}", ws.path("remote.txt").display());
    assert!(ws.run(&["-u", &url, "--", "true"]).status.success());
    ws.write("remote.txt", "version 2");
    let out = stdout(&idem(&ws, &["explain", "-u", &url, "--", "true"]));
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("url {url}: ")))
        .unwrap_or_else(|| panic!("no url line: {out}"));
    assert!(line.contains('→'), "{line}");
    let v = json(&idem(&ws, &["explain", "--json", "-u", &url, "--", "true"]));
    assert_eq!(v["changes"][0]["kind"], "url");
    assert_eq!(v["changes"][0]["change"], "changed");
    assert!(v["changes"][0]["detail"].as_str().unwrap().contains('→'));
    let show = stdout(&idem(&ws, &["show", "1"]));
    assert!(show.contains(&url), "{show}");
}

/// `echo y | idem clear`: an answer on a pipe is no one's answer; without --yes and
/// without a terminal, clear refuses (usage, exit 2) and deletes nothing.
#[test]
fn clear_reads_no_answer_from_a_pipe() {
    use std::io::Write;
    let ws = Ws::new();
    assert!(ws.run(&["--", "echo", "kept"]).status.success());
    for answer in ["n\n", "y\n"] {
        let mut child = ws
            .idem(&["clear"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Refused before reading: the pipe may already be closed.
        let _ = child.stdin.take().unwrap().write_all(answer.as_bytes());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{answer:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        assert_eq!(record_ids(&ws).len(), 1, "{answer:?}: nothing deleted");
    }
    let o = ws.run(&["-v", "--", "echo", "kept"]);
    crate::common::assert_hit(&o);
}
