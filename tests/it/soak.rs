//! The concurrent soak: 8 processes at a time on one cache (and one redis remote),
//! doing runs, replays, identical concurrent requests, `gc --max-size`, `forget`,
//! `verify` and `stats`; every outcome is byte-checked (stdout, stderr, exit code,
//! output files), and no idem prints an error, a warning or "database is locked" —
//! except docs/gc.md's documented cost of a concurrent gc, counted and reported.
//! Each worker has its own workspace (keys are root-relative, so all share records).
//!
//! Short in `cargo test`; `IDEM_SOAK_SECS=600 cargo test --release --test it soak::` (or
//! scripts/reliability.sh) is the long version. `IDEM_TEST_SEED=S` changes the choices.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::servers::Redis;
use crate::rng::Rng;

const WORKERS: usize = 8;
const TASKS: u64 = 4;
const VERSIONS: u64 = 3;

/// Task k, version v: 40·(k+1) lines out, one err, two output files; k = 3 fails.
const SCRIPT: &str = r#"k=$1; v=$2; cat "inputs/$k-$v.txt" > /dev/null
i=0; n=$((40 * (k + 1))); while [ $i -lt $n ]; do echo "$k $v line $i"; i=$((i+1)); done
echo "$k $v err" >&2
mkdir -p "out/$k-$v/sub"; printf '%s' "$k $v" > "out/$k-$v/f"; echo "$v" > "out/$k-$v/sub/g"
[ "$k" = 3 ] && exit 2; exit 0"#;

fn expected_stdout(k: u64, v: u64) -> Vec<u8> {
    (0..40 * (k + 1))
        .flat_map(|i| format!("{k} {v} line {i}\n").into_bytes())
        .collect()
}

struct Worker {
    dir: tempfile::TempDir,
    cache: PathBuf,
    remote: Option<String>,
}

impl Worker {
    fn new(cache: &Path, remote: Option<String>) -> Worker {
        let dir = tempfile::tempdir().expect("workspace");
        std::fs::create_dir(dir.path().join(".git")).expect(".git");
        std::fs::create_dir(dir.path().join("inputs")).expect("inputs");
        for k in 0..TASKS {
            for v in 0..VERSIONS {
                std::fs::write(
                    dir.path().join(format!("inputs/{k}-{v}.txt")),
                    format!("{k} {v}"),
                )
                .expect("input");
            }
        }
        Worker {
            dir,
            cache: cache.to_path_buf(),
            remote,
        }
    }

    fn idem(&self, args: &[&str]) -> Output {
        let mut c = Command::new(crate::common::idem_bin());
        c.args(args)
            .current_dir(self.dir.path())
            .env("IDEM_CACHE_DIR", &self.cache)
            .env_remove("IDEM_ROOT")
            .env_remove("IDEM_NOW")
            .env_remove("IDEM_REMOTE")
            .stdin(Stdio::null());
        if let Some(url) = &self.remote {
            c.env("IDEM_REMOTE", url);
        }
        c.output().expect("spawn idem")
    }

    fn task_args(k: u64, v: u64) -> Vec<String> {
        let input = format!("inputs/{k}-{v}.txt");
        let out = format!("out/{k}-{v}");
        [
            "-f",
            &input,
            "-o",
            &out,
            "--",
            "sh",
            "-c",
            SCRIPT,
            "sh",
            &k.to_string(),
            &v.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn with_task(&self, verb: &str, k: u64, v: u64) -> Output {
        let args = Self::task_args(k, v);
        let mut all = vec![verb];
        all.extend(args.iter().map(String::as_str));
        self.idem(&all)
    }
}

/// Every line idem itself printed: none is allowed in the soak.
fn idem_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.starts_with("idem") || l.contains("database is locked"))
        .map(String::from)
        .collect()
}

fn check_run(w: &Worker, o: &Output, k: u64, v: u64) -> Result<(), String> {
    let want_code = if k == 3 { 2 } else { 0 };
    if o.status.code() != Some(want_code) {
        return Err(format!("task {k}-{v}: exit {:?}", o.status.code()));
    }
    if o.stdout != expected_stdout(k, v) {
        return Err(format!(
            "task {k}-{v}: stdout differs ({} bytes)",
            o.stdout.len()
        ));
    }
    if !String::from_utf8_lossy(&o.stderr).contains(&format!("{k} {v} err\n")) {
        return Err(format!("task {k}-{v}: stderr lacks its line"));
    }
    let root = w.dir.path();
    let f = std::fs::read(root.join(format!("out/{k}-{v}/f"))).unwrap_or_default();
    let g = std::fs::read(root.join(format!("out/{k}-{v}/sub/g"))).unwrap_or_default();
    if f != format!("{k} {v}").as_bytes() || g != format!("{v}\n").as_bytes() {
        return Err(format!("task {k}-{v}: output files differ"));
    }
    Ok(())
}

#[derive(Default, Debug)]
struct Tally {
    ops: BTreeMap<&'static str, usize>,
    errors: Vec<String>,
    /// docs/gc.md's documented cost: a gc removed a blob a concurrent run had just
    /// written (or deduplicated into), so that run's record was refused.
    unrecorded: usize,
    /// A gc evicted the record between this run's lookup and its replay (the blob
    /// check caught it and the command ran; the outcome is still exact), or between
    /// its recording and its upload (the upload is skipped).
    evicted_mid_replay: usize,
}

impl Tally {
    fn idem_line(&mut self, op: &str, line: String) {
        if line.contains("vanished before its record was stored (a concurrent gc?)") {
            self.unrecorded += 1;
        } else if (line.contains("cannot replay record")
            && line.contains("is missing or has the wrong size); running the command"))
            || (line.contains("cannot restore outputs (blob for")
                && line.contains("is missing")
                && line.ends_with("running the command"))
            || (line.contains("not uploading record") && line.contains("is missing"))
            // The same sweep between the upload's check and its read of the blob.
            || (line.contains("blob upload failed (blob") && line.contains("is missing"))
        {
            // The same race seen later: the record was evicted (and its blobs swept)
            // between this run's lookup or record and its replay or upload.
            self.evicted_mid_replay += 1;
        } else {
            self.errors.push(format!("{op}: {line}"));
        }
    }
}

fn soak(remote: Option<String>, label: &str) {
    let cache = tempfile::tempdir().expect("cache");
    let cache_dir = cache.path().join("cache");
    let secs: Option<u64> = std::env::var("IDEM_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok());
    let ops_per_worker = crate::rng::iterations("IDEM_SOAK_OPS", 14);
    let deadline = secs.map(|s| Instant::now() + Duration::from_secs(s));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let base_seed = Rng::from_env(0x50a4).0;
    let started = Instant::now();
    let handles: Vec<_> = (0..WORKERS)
        .map(|n| {
            let tally = Arc::clone(&tally);
            // With a remote, odd workers are other hosts: their own local cache.
            let local = match (&remote, n % 2) {
                (Some(_), 1) => cache.path().join(format!("host-{n}")),
                _ => cache_dir.clone(),
            };
            let worker = Worker::new(&local, remote.clone());
            std::thread::spawn(move || {
                let mut rng = Rng((base_seed ^ (n as u64).wrapping_mul(0x9e37_79b9)) | 1);
                let mut done = 0;
                loop {
                    let more = match deadline {
                        Some(d) => Instant::now() < d,
                        None => done < ops_per_worker,
                    };
                    if !more {
                        break;
                    }
                    done += 1;
                    // Two workers often pick the same (task, version) at once.
                    let (k, v) = (
                        rng.below(TASKS as usize) as u64,
                        rng.below(VERSIONS as usize) as u64,
                    );
                    let (name, o, check) = match rng.below(20) {
                        0..=12 => {
                            let o = worker.with_task("run", k, v);
                            let check = check_run(&worker, &o, k, v);
                            ("run", o, check)
                        }
                        13 => {
                            let size = format!("{}", rng.below(60_000));
                            ("gc", worker.idem(&["gc", "--max-size", &size]), Ok(()))
                        }
                        14 | 15 => ("forget", worker.with_task("forget", k, v), Ok(())),
                        16 | 17 => {
                            let o = worker.idem(&["verify"]);
                            let check = if o.status.code() == Some(0) {
                                Ok(())
                            } else {
                                Err(format!(
                                    "verify exit {:?}: {}",
                                    o.status.code(),
                                    String::from_utf8_lossy(&o.stdout)
                                ))
                            };
                            ("verify", o, check)
                        }
                        _ => ("stats", worker.idem(&["stats"]), Ok(())),
                    };
                    let mut t = tally.lock().expect("tally");
                    *t.ops.entry(name).or_default() += 1;
                    if name != "run" && !o.status.success() {
                        t.errors.push(format!("{name}: exit {:?}", o.status.code()));
                    }
                    if let Err(e) = check {
                        t.errors.push(e);
                    }
                    for line in idem_lines(&o) {
                        t.idem_line(name, line);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("worker");
    }
    let t = tally.lock().expect("tally");
    let total: usize = t.ops.values().sum();
    eprintln!(
        "soak {label}: {WORKERS} workers, {total} operations in {:.1?}: {:?}; {} errors; \
         {} runs unrecorded and {} replays re-run or uploads skipped because a concurrent gc \
         removed their blob",
        started.elapsed(),
        t.ops,
        t.errors.len(),
        t.unrecorded,
        t.evicted_mid_replay
    );
    assert!(t.errors.is_empty(), "soak {label}: {:#?}", t.errors);
}

#[test]
fn soak_local_cache() {
    soak(None, "local");
}

#[test]
fn soak_with_a_redis_remote() {
    let Some(redis) = Redis::start() else {
        return;
    };
    soak(Some(redis.url()), "redis");
}
