//! `idem status` must say exactly what `idem run` then does: for every kind of verdict,
//! status's exit code (0 = hit) is compared with whether the following run executed
//! the command (counted by a line it appends).

use crate::common::*;

/// The command under test appends a line to `count` and exits with `code`.
fn cmd(code: i32) -> String {
    format!("echo ran >> count; exit {code}")
}

/// `status` then `run` with the same flags; asserts they agree and returns whether it
/// was a hit. `env` applies to both.
fn agree(ws: &Ws, flags: &[&str], code: i32, env: &[(&str, &str)]) -> bool {
    let script = cmd(code);
    let mut args: Vec<&str> = vec!["status", "-v"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "sh", "-c", &script]);
    let mut status = ws.idem(&args);
    for (k, v) in env {
        status.env(k, v);
    }
    let status = status.output().expect("status");
    let said_hit = match status.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("status exited {other:?}: {}", stderr(&status)),
    };
    let before = ws.count("count");
    args[0] = "run";
    let mut run = ws.idem(&args);
    for (k, v) in env {
        run.env(k, v);
    }
    let run = run.output().expect("run");
    let ran = ws.count("count") > before;
    assert_eq!(
        said_hit,
        !ran,
        "status said {} but run {}\nstatus: {}\nrun: {}",
        if said_hit { "hit" } else { "miss" },
        if ran { "ran the command" } else { "replayed" },
        stderr(&status),
        stderr(&run)
    );
    said_hit
}

fn record(ws: &Ws, flags: &[&str], code: i32, env: &[(&str, &str)]) {
    let script = cmd(code);
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "sh", "-c", &script]);
    let mut c = ws.idem(&args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run");
}

#[test]
fn plain_hit_and_changed_input() {
    let ws = Ws::new();
    ws.write("in.txt", "a");
    assert!(!agree(&ws, &["-f", "in.txt"], 0, &[]), "first: miss");
    assert!(agree(&ws, &["-f", "in.txt"], 0, &[]), "second: hit");
    ws.write("in.txt", "bb");
    assert!(
        !agree(&ws, &["-f", "in.txt"], 0, &[]),
        "changed input: miss"
    );
}

#[test]
fn failure_recorded_under_cache_failures() {
    let ws = Ws::new();
    record(&ws, &["--cache-failures"], 3, &[]);
    // Without --cache-failures a recorded failure is not replayed: both say miss.
    assert!(!agree(&ws, &[], 3, &[]));
    // With it, the failure is replayed: both say hit.
    assert!(agree(&ws, &["--cache-failures"], 3, &[]));
}

#[test]
fn expired_ttl_and_a_record_from_the_future() {
    let ws = Ws::new();
    record(&ws, &[], 0, &[("IDEM_NOW", "1000000")]);
    assert!(agree(&ws, &["--ttl", "1m"], 0, &[("IDEM_NOW", "1000030")]));
    assert!(!agree(&ws, &["--ttl", "1m"], 0, &[("IDEM_NOW", "1000120")]));

    // Recorded by a machine whose clock runs an hour ahead: never "0 s old".
    let ws = Ws::new();
    record(&ws, &[], 0, &[("IDEM_NOW", "2003600")]);
    assert!(!agree(&ws, &["--ttl", "1h"], 0, &[("IDEM_NOW", "2000000")]));
    let o = ws
        .idem(&["status", "-v", "--ttl", "1h", "--", "sh", "-c", &cmd(0)])
        .env("IDEM_NOW", "1999000")
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("in the future") && stderr(&o).contains("expired"),
        "{}",
        stderr(&o)
    );
    // Without --ttl a record's date does not matter.
    assert!(agree(&ws, &[], 0, &[("IDEM_NOW", "1999000")]));
}

#[test]
fn execution_key() {
    let ws = Ws::new();
    ws.write("in.txt", "a");
    assert!(!agree(&ws, &["--key", "k1", "-f", "in.txt"], 0, &[]));
    ws.write("in.txt", "changed, but the key already ran");
    assert!(agree(&ws, &["--key", "k1", "-f", "in.txt"], 0, &[]));
    assert!(!agree(
        &ws,
        &["--key", "k2", "--max-runs", "2", "-f", "in.txt"],
        0,
        &[]
    ));
    assert!(!agree(
        &ws,
        &["--key", "k2", "--max-runs", "2", "-f", "in.txt"],
        0,
        &[]
    ));
    assert!(agree(
        &ws,
        &["--key", "k2", "--max-runs", "2", "-f", "in.txt"],
        0,
        &[]
    ));
}

/// Every blob file in the cache (the command writes no stdout or stderr, so the only
/// blob is the output file's).
fn blob_files(ws: &Ws) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(ws.cache.join("blobs")).unwrap().flatten() {
        if sub.file_name().len() == 2 {
            for f in std::fs::read_dir(sub.path()).unwrap().flatten() {
                out.push(f.path());
            }
        }
    }
    out
}

#[test]
fn output_blob_missing_or_of_the_wrong_size() {
    for damage in ["missing", "truncated"] {
        let ws = Ws::new();
        let script = "echo ran >> count; printf hello-output > out.txt";
        let run = |verb: &str| {
            ws.idem(&[verb, "-v", "-o", "out.txt", "--", "sh", "-c", script])
                .output()
                .unwrap()
        };
        run("run");
        let blobs = blob_files(&ws);
        assert_eq!(blobs.len(), 1, "one blob: the output file");
        match damage {
            "missing" => std::fs::remove_file(&blobs[0]).unwrap(),
            _ => std::fs::write(&blobs[0], "hel").unwrap(),
        }
        let status = run("status");
        assert_eq!(
            status.status.code(),
            Some(1),
            "{damage}: {}",
            stderr(&status)
        );
        assert!(
            stderr(&status).contains("cannot be replayed"),
            "{}",
            stderr(&status)
        );
        let before = ws.count("count");
        let o = run("run");
        assert_eq!(
            ws.count("count"),
            before + 1,
            "{damage}: run must execute: {}",
            stderr(&o)
        );
        assert_eq!(ws.read("out.txt"), b"hello-output");
        // And the run healed the cache: both agree on a hit now.
        assert_eq!(run("status").status.code(), Some(0));
        let before = ws.count("count");
        run("run");
        assert_eq!(ws.count("count"), before);
    }
}
