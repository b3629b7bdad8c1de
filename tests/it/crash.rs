//! Crash consistency: SIGKILL idem at seeded random moments during record, restore,
//! gc, forget, verify and remote upload; after each kill `idem verify` is clean and the
//! next run gives the task's exact outcome (stdout, stderr, exit code, output files),
//! then the run after it replays. The kill moment is either "after K bytes of output
//! were seen" or a random delay — the delay is the fault, never a wait for a state.
//!
//! `IDEM_CRASH_ITERS=N` (default 40) and `IDEM_TEST_SEED=S` make the long run.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::servers::Redis;
use crate::common::Ws;
use crate::procs::Tracked;
use crate::rng::Rng;

/// Prints 400 lines, one to stderr, writes two outputs, counts its runs; the version
/// in in.txt decides every byte, and version numbers ≡ 3 (mod 5) fail with exit 3.
const SCRIPT: &str = r#"v=$(cat in.txt); echo x >> runs.log
i=0; while [ $i -lt 400 ]; do echo "$v line $i"; i=$((i+1)); done
echo "$v to stderr" >&2
mkdir -p out; printf '%s' "$v" > out/a
i=0; while [ $i -lt 300 ]; do echo "$v $i"; i=$((i+1)); done > out/b
case $v in *3|*8) exit 3;; esac"#;

fn expected_stdout(v: &str) -> Vec<u8> {
    (0..400)
        .flat_map(|i| format!("{v} line {i}\n").into_bytes())
        .collect()
}

fn expected_b(v: &str) -> Vec<u8> {
    (0..300)
        .flat_map(|i| format!("{v} {i}\n").into_bytes())
        .collect()
}

fn expected_code(n: u64) -> i32 {
    if n % 5 == 3 {
        3
    } else {
        0
    }
}

const TASK: [&str; 8] = ["-f", "in.txt", "-o", "out", "--", "sh", "-c", SCRIPT];

fn idem(ws: &Ws, args: &[&str], remote: Option<&str>) -> Command {
    let mut c = ws.idem(args);
    if let Some(url) = remote {
        c.env("IDEM_REMOTE", url);
    }
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Record,
    Restore,
    Gc,
    Forget,
    Verify,
    Upload,
}

/// Runs `cmd`, SIGKILLs it at a random moment, waits for its whole tree; true when the
/// kill landed while idem was still running.
fn kill_at_random(rng: &mut Rng, cmd: &mut Command, max_delay_us: u64) -> bool {
    let mut t = Tracked::spawn(cmd);
    let mut out = t.stdout();
    let mut err = t.child.stderr.take().expect("stderr piped");
    let drain_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
    });
    if rng.below(2) == 0 {
        // After K bytes of replayed or teed output.
        let k = rng.below(7000);
        let mut seen = vec![0u8; k];
        let _ = out.read_exact(&mut seen);
    } else {
        std::thread::sleep(Duration::from_micros(rng.next() % max_delay_us.max(1)));
    }
    let landed = t.child.try_wait().expect("try_wait").is_none();
    t.kill();
    let mut rest = Vec::new();
    let _ = out.read_to_end(&mut rest);
    t.wait_tree();
    drain_err.join().expect("stderr drained");
    landed
}

/// The task's exact outcome for version `n` in `ws` (replayed or run).
fn check_outcome(ws: &Ws, n: u64, remote: Option<&str>, context: &str) {
    let v = format!("v{n}");
    // A killed uploader's remote lease outlives it (docs/remote.md: 30 s): do not
    // wait for it, run.
    let o = idem(ws, &["run", "--wait-timeout", "0s"], remote)
        .args(TASK)
        .output()
        .expect("run idem");
    assert_eq!(
        o.status.code(),
        Some(expected_code(n)),
        "{context}: exit code; stderr {}",
        crate::common::stderr(&o)
    );
    assert!(o.stdout == expected_stdout(&v), "{context}: stdout differs");
    assert!(
        crate::common::stderr(&o).contains(&format!("{v} to stderr")),
        "{context}: stderr {}",
        crate::common::stderr(&o)
    );
    assert_eq!(ws.read("out/a"), v.as_bytes(), "{context}: out/a");
    assert!(
        ws.read("out/b") == expected_b(&v),
        "{context}: out/b differs"
    );
}

fn verify_clean(ws: &Ws, context: &str) {
    let o = ws.idem(&["verify"]).output().expect("verify");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{context}: verify found problems:\n{}{}",
        crate::common::stdout(&o),
        crate::common::stderr(&o)
    );
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_broken_cache() {
    let mut rng = Rng::from_env(0xc4a5_4e55);
    let iters = crate::rng::iterations("IDEM_CRASH_ITERS", 40);
    let redis = Redis::start();
    let remote = redis.as_ref().map(|r| r.url());
    let ws = Ws::new();
    // A second machine: its own workspace and cache, the same remote.
    let other = Ws::new();
    let mut kills: BTreeMap<Op, (usize, usize)> = BTreeMap::new();
    let mut fresh = 1000u64;
    let mut current = 0u64;
    ws.write("in.txt", "v0");
    for iter in 0..iters {
        let mut ops = vec![Op::Record, Op::Restore, Op::Gc, Op::Forget, Op::Verify];
        if remote.is_some() {
            ops.push(Op::Upload);
        }
        let op = *rng.pick(&ops);
        let context = format!("iteration {iter} ({op:?}, seed {:#x})", rng.0);
        let mut remote_for_check = None;
        let landed = match op {
            Op::Record | Op::Upload => {
                current = if op == Op::Upload || rng.below(2) == 0 {
                    fresh += 1;
                    fresh
                } else {
                    rng.below(6) as u64
                };
                ws.write("in.txt", format!("v{current}"));
                let url = (op == Op::Upload).then(|| remote.clone().expect("redis"));
                remote_for_check = url.clone();
                let mut cmd = idem(&ws, &["run"], url.as_deref());
                cmd.args(TASK);
                kill_at_random(&mut rng, &mut cmd, 60_000)
            }
            Op::Restore => {
                let _ = std::fs::remove_dir_all(ws.path("out"));
                let mut cmd = idem(&ws, &["run"], None);
                cmd.args(TASK);
                kill_at_random(&mut rng, &mut cmd, 30_000)
            }
            Op::Gc => {
                let size = format!("{}", rng.below(40_000));
                kill_at_random(
                    &mut rng,
                    &mut idem(&ws, &["gc", "--max-size", &size], None),
                    20_000,
                )
            }
            Op::Forget => {
                let mut cmd = idem(&ws, &["forget"], None);
                cmd.args(TASK);
                kill_at_random(&mut rng, &mut cmd, 20_000)
            }
            Op::Verify => kill_at_random(&mut rng, &mut idem(&ws, &["verify"], None), 20_000),
        };
        let entry = kills.entry(op).or_default();
        entry.0 += 1;
        entry.1 += landed as usize;
        verify_clean(&ws, &context);
        check_outcome(&ws, current, None, &context);
        let runs_before = ws.count("runs.log");
        check_outcome(&ws, current, None, &context);
        if expected_code(current) == 0 {
            assert_eq!(
                ws.count("runs.log"),
                runs_before,
                "{context}: a recorded success replays"
            );
        }
        if let Some(url) = remote_for_check {
            // The other machine gets the exact outcome too: a remote hit, or a run.
            other.write("in.txt", format!("v{current}"));
            let _ = std::fs::remove_dir_all(other.path("out"));
            check_outcome(
                &other,
                current,
                Some(&url),
                &format!("{context}, other host"),
            );
            verify_clean(&other, &context);
        }
    }
    let landed: usize = kills.values().map(|k| k.1).sum();
    eprintln!("crash: {iters} iterations, {landed} kills landed while idem ran; per op (attempts, landed): {kills:?}");
    assert!(landed > 0, "at least some kills must land mid-operation");
}
