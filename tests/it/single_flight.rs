//! Integration tests for single flight (leases), execution keys (`--key`), and time
//! bounds (`--ttl`, `--stale`, `--cache-only`, `--no-wait`). Synchronization is by
//! files the commands create or wait for, never by sleeping a fixed time.

use crate::common::{stderr, stdout, wait_until, Ws};
use std::process::{Child, Stdio};
use std::time::Duration;

/// Waits (bounded) until `cond` holds, polling.
/// A command that counts its runs, then blocks until `release` exists.
const BLOCKING: &str =
    "echo run >> count; until [ -e release ]; do sleep 0.01; done; echo done; echo warn >&2";

fn spawn(ws: &Ws, args: &[&str]) -> Child {
    let mut full = vec!["run"];
    full.extend_from_slice(args);
    ws.idem(&full)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn thirty_two_identical_requests_run_once() {
    let ws = Ws::new();
    let children: Vec<Child> = (0..32)
        .map(|_| spawn(&ws, &["--", "sh", "-c", BLOCKING]))
        .collect();
    wait_until(Duration::from_secs(60), "the first run", || {
        ws.count("count") >= 1
    });
    ws.write("release", "");
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success());
        assert_eq!(stdout(&o), "done\n");
        assert_eq!(stderr(&o), "warn\n");
    }
    assert_eq!(
        ws.count("count"),
        1,
        "identical concurrent requests run once"
    );
}

#[test]
fn killed_holder_is_taken_over_and_runs_exactly_once_more() {
    let ws = Ws::new();
    let mut holder = spawn(&ws, &["--", "sh", "-c", BLOCKING]);
    wait_until(Duration::from_secs(60), "the holder's run", || {
        ws.count("count") == 1
    });
    let waiter = spawn(&ws, &["--", "sh", "-c", BLOCKING]);
    unsafe { libc::kill(holder.id() as i32, libc::SIGKILL) };
    holder.wait().unwrap();
    wait_until(Duration::from_secs(60), "the waiter's takeover", || {
        ws.count("count") == 2
    });
    ws.write("release", "");
    let o = waiter.wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(stdout(&o), "done\n");
    let again = ws.run(&["--", "sh", "-c", BLOCKING]);
    assert_eq!(stdout(&again), "done\n");
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn failing_holder_lets_exactly_one_waiter_rerun() {
    let ws = Ws::new();
    // Fails the first time only; waits for release so the waiters pile up.
    let script = "echo run >> count; until [ -e release ]; do sleep 0.01; done; \
                  if [ -e failed-once ]; then echo ok; else touch failed-once; exit 1; fi";
    let first = spawn(&ws, &["--", "sh", "-c", script]);
    wait_until(Duration::from_secs(60), "the first run", || {
        ws.count("count") == 1
    });
    let waiters: Vec<Child> = (0..5)
        .map(|_| spawn(&ws, &["--", "sh", "-c", script]))
        .collect();
    ws.write("release", "");
    assert_eq!(first.wait_with_output().unwrap().status.code(), Some(1));
    for w in waiters {
        let o = w.wait_with_output().unwrap();
        assert!(o.status.success());
        assert_eq!(stdout(&o), "ok\n");
    }
    assert_eq!(
        ws.count("count"),
        2,
        "one waiter re-runs, the others replay its record"
    );
}

#[test]
fn no_wait_exits_75_while_another_runs() {
    let ws = Ws::new();
    let holder = spawn(&ws, &["--", "sh", "-c", BLOCKING]);
    wait_until(Duration::from_secs(60), "the holder's run", || {
        ws.count("count") == 1
    });
    let o = ws.run(&["--no-wait", "--", "sh", "-c", BLOCKING]);
    assert_eq!(o.status.code(), Some(75));
    assert!(stderr(&o).contains("already running"), "{}", stderr(&o));
    let o = ws.run(&[
        "--no-wait",
        "--wait-timeout",
        "50ms",
        "--",
        "sh",
        "-c",
        BLOCKING,
    ]);
    assert_eq!(o.status.code(), Some(75));
    ws.write("release", "");
    holder.wait_with_output().unwrap();
    assert_eq!(ws.count("count"), 1);
}

#[test]
fn wait_timeout_without_no_wait_runs_the_command_too() {
    let ws = Ws::new();
    let holder = spawn(&ws, &["--", "sh", "-c", BLOCKING]);
    wait_until(Duration::from_secs(60), "the holder's run", || {
        ws.count("count") == 1
    });
    ws.write("release-later", "");
    let waiter = spawn(
        &ws,
        &["--wait-timeout", "100ms", "--", "sh", "-c", BLOCKING],
    );
    wait_until(
        Duration::from_secs(60),
        "the impatient waiter's own run",
        || ws.count("count") == 2,
    );
    ws.write("release", "");
    assert!(waiter.wait_with_output().unwrap().status.success());
    assert!(holder.wait_with_output().unwrap().status.success());
}

#[test]
fn execution_key_runs_once_whatever_the_inputs() {
    let ws = Ws::new();
    ws.write("in.txt", "1");
    let run = || {
        ws.run(&[
            "--key",
            "deploy-1",
            "-f",
            "in.txt",
            "--",
            "sh",
            "-c",
            "echo run >> count; echo deployed",
        ])
    };
    assert_eq!(stdout(&run()), "deployed\n");
    ws.write("in.txt", "2");
    let o = run();
    assert_eq!(stdout(&o), "deployed\n", "replayed");
    assert_eq!(ws.count("count"), 1);
}

#[test]
fn execution_key_max_runs() {
    let ws = Ws::new();
    for _ in 0..4 {
        ws.run(&[
            "--key",
            "k",
            "--max-runs",
            "2",
            "--force",
            "--",
            "sh",
            "-c",
            "echo run >> count",
        ]);
    }
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn concurrent_key_duplicates_run_once() {
    let ws = Ws::new();
    let a = spawn(&ws, &["--key", "k1", "--", "sh", "-c", BLOCKING]);
    wait_until(Duration::from_secs(60), "the first run", || {
        ws.count("count") == 1
    });
    // Another command line with the same key would be refused; the duplicate is the
    // same command run in a different input state.
    ws.write("other-input", "x");
    let b = spawn(&ws, &["--key", "k1", "--", "sh", "-c", BLOCKING]);
    ws.write("release", "");
    for c in [a, b] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success());
        assert_eq!(stdout(&o), "done\n");
    }
    assert_eq!(ws.count("count"), 1);
}

#[test]
fn failed_key_run_does_not_count() {
    let ws = Ws::new();
    let script = "echo run >> count; if [ -e ok ]; then echo fine; else exit 9; fi";
    assert_eq!(
        ws.run(&["--key", "k", "--", "sh", "-c", script])
            .status
            .code(),
        Some(9)
    );
    ws.write("ok", "");
    assert_eq!(
        stdout(&ws.run(&["--key", "k", "--", "sh", "-c", script])),
        "fine\n"
    );
    assert_eq!(
        stdout(&ws.run(&["--key", "k", "--", "sh", "-c", script])),
        "fine\n"
    );
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn key_reused_for_another_command_is_refused() {
    let ws = Ws::new();
    ws.run(&["--key", "k", "--", "echo", "one"]);
    let o = ws.run(&["--key", "k", "--", "echo", "two"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(
        stderr(&o).contains("was used for another command"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).lines().count(), 1);
    let o = ws.run(&["--key", "k", "--key-reuse", "allow", "--", "echo", "two"]);
    assert!(o.status.success());
}

#[test]
fn ttl_expires_records_using_the_test_clock() {
    let ws = Ws::new();
    let run = |now: &str| {
        ws.idem(&["run", "--ttl", "1m", "--", "sh", "-c", "echo run >> count"])
            .env("IDEM_NOW", now)
            .output()
            .unwrap()
    };
    run("1000000");
    run("1000030");
    assert_eq!(ws.count("count"), 1, "30 s old: still fresh");
    run("1000061");
    assert_eq!(ws.count("count"), 2, "61 s old: expired");
    run("1000062");
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn key_ttl_lets_a_key_run_again() {
    let ws = Ws::new();
    let run = |now: &str| {
        ws.idem(&[
            "run",
            "--key",
            "k",
            "--ttl",
            "1h",
            "--",
            "sh",
            "-c",
            "echo run >> count",
        ])
        .env("IDEM_NOW", now)
        .output()
        .unwrap()
    };
    run("1000000");
    run("1001000");
    assert_eq!(ws.count("count"), 1);
    run("1004000");
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn stale_record_is_replayed_and_refreshed_once_in_the_background() {
    let ws = Ws::new();
    let script = "echo run >> count; if [ -e block ]; then until [ -e release ]; do sleep 0.01; done; fi; echo gen $(cat gen 2>/dev/null)";
    let run = |now: &str| {
        ws.idem(&[
            "run", "--stale", "10s", "--ttl", "1h", "--", "sh", "-c", script,
        ])
        .env("IDEM_NOW", now)
        .output()
        .unwrap()
    };
    ws.write("gen", "1");
    assert_eq!(stdout(&run("1000000")), "gen 1\n");
    ws.write("gen", "2");
    ws.write("block", "");
    // Past --stale: the old record comes back at once (the refresh is blocked on
    // `release`, so returning proves the caller did not wait for it).
    assert_eq!(stdout(&run("1000100")), "gen 1\n");
    wait_until(
        Duration::from_secs(60),
        "the background refresh to start",
        || ws.count("count") == 2,
    );
    assert_eq!(
        stdout(&run("1000100")),
        "gen 1\n",
        "still the old record while refreshing"
    );
    ws.write("release", "");
    wait_until(Duration::from_secs(60), "the refreshed record", || {
        stdout(&run("1000100")) == "gen 2\n"
    });
    // Quiescence: no refresher left running.
    wait_until(
        Duration::from_secs(60),
        "background refreshers to exit",
        || !refreshers_running(&ws),
    );
    assert_eq!(ws.count("count"), 2, "exactly one background refresh");
}

fn refreshers_running(ws: &Ws) -> bool {
    let cache = ws.cache.to_string_lossy().into_owned();
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
        cmdline.windows(20).any(|w| w == b"--background-refresh")
            && String::from_utf8_lossy(&environ).contains(&cache)
    })
}

#[test]
fn cache_only_miss_exits_3_and_runs_nothing() {
    let ws = Ws::new();
    let o = ws.run(&["--cache-only", "--", "sh", "-c", "echo run >> count"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(ws.count("count"), 0);
    ws.run(&["--", "sh", "-c", "echo run >> count"]);
    let o = ws.run(&["--cache-only", "--", "sh", "-c", "echo run >> count"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(ws.count("count"), 1);
}

#[test]
fn verbose_hit_reports_the_age() {
    let ws = Ws::new();
    ws.idem(&["run", "--", "true"])
        .env("IDEM_NOW", "1000000")
        .output()
        .unwrap();
    let o = ws
        .idem(&["run", "-v", "--", "true"])
        .env("IDEM_NOW", "1000300")
        .output()
        .unwrap();
    assert!(stderr(&o).contains("recorded 5m ago"), "{}", stderr(&o));
}
