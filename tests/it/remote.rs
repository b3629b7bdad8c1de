//! Shared remote caches against real servers on loopback (redis-server, a 3-node Redis
//! Cluster, nginx WebDAV), each started by the test in a temp dir and killed on drop.
//! Two "machines" are two workspaces with their own caches sharing one remote URL.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::servers::{make_ca, resp, Nginx, Proc, Redis};
use crate::common::{free_port, require_binary, stats, stderr, stdout, wait_until, Ws};
use idem::store::record::{OutputEntry, Record};
use idem::store::remote;

#[path = "remote_batch.rs"]
mod batch;

// ---------------------------------------------------------------------------------
// Servers

const TOKEN: &str = "t0ken-that-must-never-be-printed";

/// nginx with WebDAV PUT on `/cache/` (bearer token required) and a `/broken/` prefix
/// that always answers 503.
fn webdav() -> Option<Nginx> {
    Nginx::start(
        &format!(
            r#"location /broken/ {{ return 503; }}
    location /cache/ {{
      if ($http_authorization != "Bearer {TOKEN}") {{ return 401; }}
      dav_methods PUT DELETE;
      create_full_put_path on;
      dav_access user:rw;
    }}"#
        ),
        None,
    )
}

// ---------------------------------------------------------------------------------
// Machines and the task they share

/// A build step: counts its runs in a file shared by all machines, interleaves
/// stdout/stderr and writes outputs (one executable, one binary) from its input.
const BUILD: &str = r#"echo run >> "$0"; echo out1; echo err1 >&2; echo out2; mkdir -p dist/sub; cat src/in.txt > dist/app; chmod 755 dist/app; printf '\000\001bin' > dist/sub/data; echo err2 >&2"#;

struct Fleet {
    _dir: tempfile::TempDir,
    counter: PathBuf,
}

impl Fleet {
    fn new() -> Fleet {
        let dir = tempfile::tempdir().expect("tempdir");
        let counter = dir.path().join("runs");
        Fleet { _dir: dir, counter }
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(&self.counter)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    fn machine(&self) -> Ws {
        let ws = Ws::new();
        ws.write("src/in.txt", "source v1\n");
        ws
    }
}

/// `idem run` on a machine, hermetic with respect to the remote's environment.
fn idem(ws: &Ws, remote: &str, extra: &[&str], env: &[(&str, &str)], cmd: &[&str]) -> Command {
    let mut args = vec!["run", "--remote", remote];
    if !extra.contains(&"--remote-timeout") {
        args.extend(["--remote-timeout", "2s"]);
    }
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(cmd);
    let mut c = ws.idem(&args);
    for v in [
        "IDEM_REMOTE_CA",
        "IDEM_REMOTE_KEY",
        "IDEM_REMOTE_TOKEN",
        "IDEM_REMOTE_READ_ONLY",
    ] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Runs idem to completion, failing the test (not hanging it) past a generous bound.
fn output(mut c: Command) -> Output {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn idem");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait idem") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("idem hung for 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn build_cmd(fleet: &Fleet) -> Vec<&str> {
    vec![
        "sh",
        "-c",
        BUILD,
        fleet.counter.to_str().expect("utf-8 temp path"),
    ]
}

fn build(fleet: &Fleet, ws: &Ws, remote: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec!["-f", "src/**", "-o", "dist/"];
    args.extend_from_slice(extra);
    output(idem(ws, remote, &args, env, &build_cmd(fleet)))
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777
}

/// B replayed exactly what A produced: streams, exit code, output files and modes.
fn assert_same_outcome(a: &Output, wa: &Ws, b: &Output, wb: &Ws) {
    assert_eq!(a.status.code(), b.status.code(), "exit codes differ");
    assert_eq!(stdout(a), stdout(b), "stdout differs");
    assert_eq!(stderr(a), stderr(b), "stderr differs");
    for f in ["dist/app", "dist/sub/data"] {
        assert_eq!(wa.read(f), wb.read(f), "{f} differs");
        assert_eq!(mode(&wa.path(f)), mode(&wb.path(f)), "{f} mode differs");
    }
}

/// A counter, as `idem stats --json` reports it.
fn stat(ws: &Ws, name: &str) -> i64 {
    stats(ws)[name]
        .as_i64()
        .unwrap_or_else(|| panic!("{name} in stats --json"))
}

fn warnings(o: &Output) -> usize {
    stderr(o)
        .lines()
        .filter(|l| l.contains("warning: remote cache"))
        .count()
}

/// The whole two-machine story over one remote URL.
fn two_machines_share(remote: &str, env: &[(&str, &str)]) -> (Ws, Ws) {
    let fleet = Fleet::new();
    let (a, b) = (fleet.machine(), fleet.machine());
    assert_ne!(a.root(), b.root());

    let ra = build(&fleet, &a, remote, &[], env);
    assert_eq!(ra.status.code(), Some(0), "A: {}", stderr(&ra));
    assert_eq!(fleet.runs(), 1);
    assert_eq!(stdout(&ra), "out1\nout2\n");
    assert_eq!(stderr(&ra), "err1\nerr2\n", "A warned: {}", stderr(&ra));
    assert_eq!(stat(&a, "uploads"), 1);

    let rb = build(&fleet, &b, remote, &[], env);
    assert_eq!(fleet.runs(), 1, "B ran the command: {}", stderr(&rb));
    assert_same_outcome(&ra, &a, &rb, &b);
    assert_eq!(stat(&b, "remote_hits"), 1);
    assert_eq!(stat(&b, "hits"), 0);
    assert_eq!(stat(&b, "uploads"), 0);

    // B now has it locally: -v names the tier.
    let rb2 = build(&fleet, &b, remote, &["-v"], env);
    assert_eq!(fleet.runs(), 1);
    assert!(
        stderr(&rb2).contains("idem: hit (saved"),
        "{}",
        stderr(&rb2)
    );
    assert_eq!(stat(&b, "hits"), 1);

    // A third machine says it came from the remote.
    let c = fleet.machine();
    let rc = build(&fleet, &c, remote, &["-v"], env);
    assert_eq!(fleet.runs(), 1);
    assert!(
        stderr(&rc).contains("hit from the remote cache"),
        "{}",
        stderr(&rc)
    );

    // A changed input is a miss everywhere, and the new outcome is shared too.
    b.write("src/in.txt", "source v2\n");
    let rb3 = build(&fleet, &b, remote, &[], env);
    assert_eq!(rb3.status.code(), Some(0));
    assert_eq!(fleet.runs(), 2);
    a.write("src/in.txt", "source v2\n");
    let ra3 = build(&fleet, &a, remote, &[], env);
    assert_eq!(fleet.runs(), 2, "A ran v2 again: {}", stderr(&ra3));
    assert_eq!(a.read("dist/app"), b"source v2\n");
    (a, b)
}

// ---------------------------------------------------------------------------------
// Tests

#[test]
fn redis_two_machines_share_outcomes() {
    let Some(redis) = Redis::start() else { return };
    two_machines_share(&redis.url(), &[]);
    // Every key is namespaced, and a record and its blobs are all there.
    let keys = redis.keys("*");
    assert!(keys.iter().all(|k| k.starts_with("idem:v1:")), "{keys:?}");
    assert_eq!(redis.keys("idem:v1:rec:*").len(), 2);
    assert!(
        redis.keys("idem:v1:lease:*").is_empty(),
        "a lease was left behind"
    );

    // A failing step recorded with --cache-failures is shared with its exit code.
    let fleet = Fleet::new();
    let (a, b) = (fleet.machine(), fleet.machine());
    let fail = [
        "sh",
        "-c",
        r#"echo run >> "$0"; echo failing; echo boom >&2; exit 3"#,
        fleet.counter.to_str().expect("utf-8"),
    ];
    let ra = output(idem(&a, &redis.url(), &["--cache-failures"], &[], &fail));
    let rb = output(idem(&b, &redis.url(), &["--cache-failures"], &[], &fail));
    assert_eq!(fleet.runs(), 1);
    assert_eq!(ra.status.code(), Some(3));
    assert_eq!(rb.status.code(), Some(3));
    assert_eq!(stdout(&ra), stdout(&rb));
    assert_eq!(stderr(&ra), stderr(&rb));
}

#[test]
fn redis_ttl_becomes_a_key_expiry() {
    let Some(redis) = Redis::start() else { return };
    let fleet = Fleet::new();
    let a = fleet.machine();
    let r = build(&fleet, &a, &redis.url(), &["--ttl", "1h"], &[]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let key = redis.record_key();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query(&mut redis.client())
        .expect("PTTL");
    assert!(pttl > 3_500_000 && pttl <= 3_600_000, "record PTTL {pttl}");
    for k in redis.keys("idem:v1:blob:*") {
        let t: i64 = redis::cmd("PTTL")
            .arg(&k)
            .query(&mut redis.client())
            .expect("PTTL");
        assert!(t > 0, "blob {k} has no TTL");
    }
}

#[test]
fn redis_cluster_two_machines_share_outcomes() {
    let Some(cluster) = Redis::start_cluster() else {
        return;
    };
    two_machines_share(&cluster.cluster_url(), &[]);
    check_leases(&cluster.cluster_url());
    // The keys really are spread over the nodes (the blobs land on several slots).
    let mut per_node = Vec::new();
    for &p in &cluster.ports {
        let r = resp(p, &["DBSIZE"]).unwrap_or_default();
        per_node.push(r.trim().trim_start_matches(':').parse::<i64>().unwrap_or(0));
    }
    assert!(
        per_node.iter().sum::<i64>() >= 4,
        "keys per node: {per_node:?}"
    );
}

#[test]
fn webdav_two_machines_share_outcomes() {
    let Some(nginx) = webdav() else { return };
    let url = nginx.url("/cache/team");
    let (a, b) = two_machines_share(&url, &[("IDEM_REMOTE_TOKEN", TOKEN)]);
    assert_eq!(nginx.files("cache/team/idem/v1/rec").len(), 2);
    assert!(nginx.files("cache/team/idem/v1/blob").len() >= 3);

    // Without the token the server refuses: one warning (token never shown), and the
    // command runs normally.
    let fleet = Fleet::new();
    let c = fleet.machine();
    let rc = build(&fleet, &c, &url, &[], &[]);
    assert_eq!(rc.status.code(), Some(0));
    assert_eq!(fleet.runs(), 1);
    assert_eq!(warnings(&rc), 1, "{}", stderr(&rc));
    assert!(stderr(&rc).contains("HTTP 401"), "{}", stderr(&rc));

    // user:password in the URL is sent as basic auth and never printed.
    let with_pass = format!("http://bob:hunter2@127.0.0.1:{}/cache/team", nginx.port);
    let rd = build(&fleet, &c, &with_pass, &["-v", "--force"], &[]);
    for o in [&rc, &rd] {
        assert!(
            !stderr(o).contains(TOKEN) && !stderr(o).contains("hunter2"),
            "{}",
            stderr(o)
        );
    }
    drop((a, b));
}

#[test]
fn concurrent_runners_run_once_across_hosts() {
    let Some(redis) = Redis::start() else { return };
    let fleet = Fleet::new();
    let release = fleet.counter.with_file_name("release");
    let (a, b) = (fleet.machine(), fleet.machine());
    // Counts its run, then blocks until the test releases it.
    let script =
        r#"echo run >> "$0"; while [ ! -e "$1" ]; do sleep 0.02; done; echo built; echo note >&2"#;
    let cmd = [
        "sh",
        "-c",
        script,
        fleet.counter.to_str().expect("utf-8"),
        release.to_str().expect("utf-8"),
    ];
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let (tx, rx) = mpsc::channel::<()>();
    let mut children = Vec::new();
    for ws in [&a, &b] {
        let mut child = idem(ws, &redis.url(), &["-f", "src/**", "-v"], &[], &cmd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn idem");
        let err = child.stderr.take().expect("piped stderr");
        let (log, tx) = (log.clone(), tx.clone());
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("waiting for") {
                    let _ = tx.send(());
                }
                log.lock().expect("log").push(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        children.push((child, reader));
    }
    // One of them runs the command, the other waits on the Redis lease: only then is
    // the runner released.
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            panic!(
                "nobody waited on the remote lease: {:?}",
                log.lock().map(|l| l.clone())
            )
        });
    wait_until(Duration::from_secs(30), "the command to start", || {
        fleet.runs() == 1
    });
    std::fs::write(&release, "").expect("release");
    let mut outs = Vec::new();
    for (mut child, reader) in children {
        let mut out = String::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("read");
        let status = child.wait().expect("wait");
        let err = reader.join().expect("reader");
        assert_eq!(status.code(), Some(0), "{err}");
        outs.push((out, err));
    }
    assert_eq!(fleet.runs(), 1, "the command ran on both hosts: {outs:?}");
    for (out, err) in &outs {
        assert_eq!(out, "built\n");
        assert!(err.contains("note\n"), "{err}");
    }
    assert!(
        outs.iter()
            .any(|(_, e)| e.contains("hit from the remote cache")),
        "{outs:?}"
    );
    assert!(
        redis.keys("idem:v1:lease:*").is_empty(),
        "the lease was not released"
    );
}

#[test]
fn tampered_or_unsigned_remote_records_are_ignored() {
    let Some(redis) = Redis::start() else { return };
    let key = [("IDEM_REMOTE_KEY", "team-secret")];
    let fleet = Fleet::new();
    let (a, b) = (fleet.machine(), fleet.machine());
    let ra = build(&fleet, &a, &redis.url(), &[], &key);
    assert_eq!(ra.status.code(), Some(0), "{}", stderr(&ra));

    // Flip one byte of the record body (its exit code, its outputs, anything).
    let rk = redis.record_key();
    let mut data = redis.get(&rk);
    let last = data.len() - 5;
    data[last] ^= 0x01;
    redis.set(&rk, &data);
    let rb = build(&fleet, &b, &redis.url(), &[], &key);
    assert_eq!(rb.status.code(), Some(0));
    assert_eq!(fleet.runs(), 2, "a tampered record was replayed");
    assert!(
        stderr(&rb).contains("MAC does not match"),
        "{}",
        stderr(&rb)
    );
    assert_eq!(stdout(&rb), "out1\nout2\n");
    assert_eq!(b.read("dist/app"), b"source v1\n");

    // An unsigned record is refused by a reader holding a key.
    let fleet = Fleet::new();
    let (c, d) = (fleet.machine(), fleet.machine());
    redis::cmd("FLUSHALL")
        .query::<()>(&mut redis.client())
        .expect("FLUSHALL");
    let rc = build(&fleet, &c, &redis.url(), &[], &[]);
    assert_eq!(rc.status.code(), Some(0));
    let rd = build(&fleet, &d, &redis.url(), &[], &key);
    assert_eq!(fleet.runs(), 2);
    assert!(stderr(&rd).contains("carries no MAC"), "{}", stderr(&rd));
    // A reader with the right key accepts what was signed with it.
    let e = fleet.machine();
    let rd2 = build(&fleet, &d, &redis.url(), &["--force"], &key);
    assert_eq!(rd2.status.code(), Some(0));
    let re = build(&fleet, &e, &redis.url(), &[], &key);
    assert_eq!(fleet.runs(), 3, "{}", stderr(&re));
}

#[test]
fn remote_records_escaping_the_workspace_are_never_restored() {
    let Some(redis) = Redis::start() else { return };
    let secret = "team-secret";
    let key = [("IDEM_REMOTE_KEY", secret)];
    let fleet = Fleet::new();
    let (a, b) = (fleet.machine(), fleet.machine());
    let ra = build(&fleet, &a, &redis.url(), &[], &key);
    assert_eq!(ra.status.code(), Some(0), "{}", stderr(&ra));

    // Whoever holds the key (or can write a record) points an output at ../
    let escape = format!("escaped-{}", std::process::id());
    let rk = redis.record_key();
    let mk = remote::mac_key(secret);
    let data = redis.get(&rk);
    let body = remote::unseal(Some(&mk), &data).expect("valid record");
    let mut rec = Record::decode(body).expect("decode");
    for o in &mut rec.outputs {
        if let OutputEntry::File { path, .. } = o {
            if path.as_slice() == b"dist/app" {
                *path = format!("../{escape}").into_bytes();
            }
        }
    }
    redis.set(&rk, &remote::seal(Some(&mk), &rec.encode()));

    let rb = build(&fleet, &b, &redis.url(), &[], &key);
    assert_eq!(rb.status.code(), Some(0));
    assert_eq!(fleet.runs(), 2, "the poisoned record was replayed");
    assert!(
        stderr(&rb).contains("escape the workspace"),
        "{}",
        stderr(&rb)
    );
    let outside = b.root().parent().expect("parent").join(&escape);
    assert!(!outside.exists(), "{} was written", outside.display());
    assert_eq!(b.read("dist/app"), b"source v1\n");
}

#[test]
fn an_unsigned_remote_record_cannot_restore_a_path_no_output_declares() {
    let Some(redis) = Redis::start() else { return };
    let fleet = Fleet::new();
    let (a, b) = (fleet.machine(), fleet.machine());
    let ra = build(&fleet, &a, &redis.url(), &[], &[]);
    assert_eq!(ra.status.code(), Some(0), "{}", stderr(&ra));

    // Anyone who can write to a remote without IDEM_REMOTE_KEY adds a setuid git hook.
    let rk = redis.record_key();
    let data = redis.get(&rk);
    let mut rec = Record::decode(remote::unseal(None, &data).expect("unsigned")).expect("decode");
    let blob = rec
        .outputs
        .iter()
        .find_map(|o| match o {
            OutputEntry::File { blob, .. } => Some(*blob),
            _ => None,
        })
        .expect("the record has a file");
    rec.outputs.push(OutputEntry::File {
        path: b".git/hooks/pre-commit".to_vec(),
        mode: 0o4755,
        blob,
    });
    redis.set(&rk, &remote::seal(None, &rec.encode()));

    let rb = build(&fleet, &b, &redis.url(), &[], &[]);
    assert_eq!(rb.status.code(), Some(0));
    assert!(
        !b.path(".git/hooks/pre-commit").exists(),
        "a remote record wrote outside the declared outputs"
    );
    assert_eq!(fleet.runs(), 2, "a refused record is a miss");
    assert!(
        stderr(&rb).contains("no -o of this task declares"),
        "{}",
        stderr(&rb)
    );
    assert_eq!(b.read("dist/app"), b"source v1\n");
}

#[test]
fn read_only_uploads_nothing() {
    let Some(redis) = Redis::start() else { return };
    let fleet = Fleet::new();
    let (a, b, c, d) = (
        fleet.machine(),
        fleet.machine(),
        fleet.machine(),
        fleet.machine(),
    );
    let ra = build(&fleet, &a, &redis.url(), &["--remote-read-only"], &[]);
    assert_eq!(ra.status.code(), Some(0));
    assert_eq!(redis.dbsize(), 0, "--remote-read-only wrote to the remote");
    assert_eq!(stat(&a, "uploads"), 0);
    let rb = build(
        &fleet,
        &b,
        &redis.url(),
        &[],
        &[("IDEM_REMOTE_READ_ONLY", "1")],
    );
    assert_eq!(rb.status.code(), Some(0));
    assert_eq!(fleet.runs(), 2);
    assert_eq!(
        redis.dbsize(),
        0,
        "IDEM_REMOTE_READ_ONLY=1 wrote to the remote"
    );
    // A trusted job uploads; read-only jobs still read.
    build(&fleet, &c, &redis.url(), &[], &[]);
    assert_eq!(fleet.runs(), 3);
    let before = redis.dbsize();
    let rd = build(&fleet, &d, &redis.url(), &["--remote-read-only"], &[]);
    assert_eq!(fleet.runs(), 3, "{}", stderr(&rd));
    assert_same_outcome(&rd, &d, &build(&fleet, &c, &redis.url(), &[], &[]), &c);
    assert_eq!(redis.dbsize(), before);
}

#[test]
fn remote_stopped_midway_warns_and_never_hangs() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let fleet = Fleet::new();
    let (a, b, c) = (fleet.machine(), fleet.machine(), fleet.machine());
    let pid = redis.procs[0].pid().to_string();
    // The step itself freezes the server between idem's lookup and its upload.
    let script = r#"echo run >> "$0"; kill -STOP "$1"; echo built"#;
    let cmd = [
        "sh",
        "-c",
        script,
        fleet.counter.to_str().expect("utf-8"),
        &pid,
    ];
    let args = ["-f", "src/**", "--remote-timeout", "1s"];
    let t = Instant::now();
    let ra = output(idem(&a, &redis.url(), &args, &[], &cmd));
    let took = t.elapsed();
    assert_eq!(ra.status.code(), Some(0), "{}", stderr(&ra));
    assert_eq!(stdout(&ra), "built\n");
    assert_eq!(warnings(&ra), 1, "{}", stderr(&ra));
    assert!(
        took < Duration::from_secs(6),
        "upload to a frozen server took {took:?}"
    );

    // Another machine against the frozen server: one warning, runs, bounded.
    let t = Instant::now();
    let plain = ["sh", "-c", r#"echo run >> "$0"; echo built"#, cmd[3]];
    let rb = output(idem(&b, &redis.url(), &args, &[], &plain));
    let took = t.elapsed();
    assert_eq!(rb.status.code(), Some(0), "{}", stderr(&rb));
    assert_eq!(stdout(&rb), "built\n");
    assert_eq!(warnings(&rb), 1, "{}", stderr(&rb));
    assert!(
        took < Duration::from_secs(6),
        "lookup on a frozen server took {took:?}"
    );

    // The server gone (connection refused): one warning, correct result.
    redis.procs[0].kill();
    let t = Instant::now();
    let rc = build(&fleet, &c, &redis.url(), &[], &[]);
    assert_eq!(rc.status.code(), Some(0));
    assert_eq!(stdout(&rc), "out1\nout2\n");
    assert_eq!(c.read("dist/app"), b"source v1\n");
    assert_eq!(warnings(&rc), 1, "{}", stderr(&rc));
    assert!(t.elapsed() < Duration::from_secs(6));
    // Local hits never touch the remote, so they do not even warn.
    let rc2 = build(&fleet, &c, &redis.url(), &[], &[]);
    assert_eq!(warnings(&rc2), 0, "{}", stderr(&rc2));
    assert_eq!(stderr(&rc2), "err1\nerr2\n");
    let _ = redis.procs[0].log();
}

#[test]
fn http_errors_are_retried_then_skipped() {
    let Some(nginx) = webdav() else { return };
    let fleet = Fleet::new();
    let a = fleet.machine();
    let t = Instant::now();
    let ra = build(
        &fleet,
        &a,
        &nginx.url("/broken/x"),
        &["--remote-timeout", "1s"],
        &[],
    );
    assert_eq!(ra.status.code(), Some(0));
    assert_eq!(stdout(&ra), "out1\nout2\n");
    assert_eq!(warnings(&ra), 1, "{}", stderr(&ra));
    assert!(stderr(&ra).contains("HTTP 503"), "{}", stderr(&ra));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn unreachable_remote_warns_once_and_runs() {
    let fleet = Fleet::new();
    let a = fleet.machine();
    let port = free_port();
    for url in [
        format!("redis://:hunter2@127.0.0.1:{port}/0"),
        format!("http://u:hunter2@127.0.0.1:{port}/cache"),
        format!("redis+cluster://:hunter2@127.0.0.1:{port},127.0.0.1:{port}"),
    ] {
        let t = Instant::now();
        let r = build(&fleet, &a, &url, &["--force"], &[]);
        assert_eq!(r.status.code(), Some(0), "{url}: {}", stderr(&r));
        assert_eq!(stdout(&r), "out1\nout2\n");
        assert_eq!(warnings(&r), 1, "{url}: {}", stderr(&r));
        assert!(!stderr(&r).contains("hunter2"), "{}", stderr(&r));
        assert!(
            t.elapsed() < Duration::from_secs(6),
            "{url}: {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn malformed_remote_url_is_a_usage_error() {
    let fleet = Fleet::new();
    let a = fleet.machine();
    for url in [
        "ftp://cache",
        "cache.internal:6379",
        "redis+cluster://",
        "redis+cluster://host-without-port",
        "http://host:port/x",
        "redis://:pw@host:notaport",
    ] {
        let r = build(&fleet, &a, url, &[], &[]);
        assert_eq!(r.status.code(), Some(2), "{url}: {}", stderr(&r));
        assert_eq!(stderr(&r).lines().count(), 1, "{url}: {}", stderr(&r));
        assert!(!stderr(&r).contains("pw@"), "{}", stderr(&r));
    }
    assert_eq!(fleet.runs(), 0);
}

#[test]
fn large_blobs_are_chunked_in_redis() {
    let Some(redis) = Redis::start() else { return };
    let fleet = Fleet::new();
    let (a, b) = (fleet.machine(), fleet.machine());
    // 9.5 MB of noise: three Redis values of at most 4 MiB.
    let script =
        r#"echo run >> "$0"; mkdir -p dist; head -c 9500000 /dev/urandom > dist/big; echo done"#;
    let cmd = ["sh", "-c", script, fleet.counter.to_str().expect("utf-8")];
    let ra = output(idem(&a, &redis.url(), &["-o", "dist/"], &[], &cmd));
    assert_eq!(ra.status.code(), Some(0), "{}", stderr(&ra));
    let chunks = redis.keys("idem:v1:blob:*:*");
    assert_eq!(
        chunks.len(),
        2,
        "expected chunks 1 and 2 besides chunk 0: {chunks:?}"
    );
    let rb = output(idem(&b, &redis.url(), &["-o", "dist/"], &[], &cmd));
    assert_eq!(fleet.runs(), 1, "{}", stderr(&rb));
    assert_eq!(stdout(&rb), "done\n");
    assert_eq!(a.read("dist/big"), b.read("dist/big"));

    // A missing chunk (evicted) is a miss, never a truncated file.
    redis::cmd("DEL")
        .arg(&chunks[0])
        .query::<()>(&mut redis.client())
        .expect("DEL");
    let c = fleet.machine();
    let rc = output(idem(&c, &redis.url(), &["-o", "dist/"], &[], &cmd));
    assert_eq!(rc.status.code(), Some(0));
    assert_eq!(fleet.runs(), 2, "{}", stderr(&rc));
    assert_eq!(
        std::fs::metadata(c.path("dist/big")).expect("big").len(),
        9_500_000
    );
}

#[test]
fn a_dead_hosts_lease_expires_and_the_step_runs() {
    let Some(redis) = Redis::start() else { return };
    let fleet = Fleet::new();
    let (a, b) = (fleet.machine(), fleet.machine());
    let ra = build(&fleet, &a, &redis.url(), &[], &[]);
    assert_eq!(ra.status.code(), Some(0));
    // Forget the record and leave a lease as if a host had died while running it.
    let rk = redis.record_key();
    let lease = rk.replace("idem:v1:rec:", "idem:v1:lease:");
    redis::cmd("DEL")
        .arg(&rk)
        .query::<()>(&mut redis.client())
        .expect("DEL");
    redis::cmd("SET")
        .arg(&lease)
        .arg("deadhost pid 1 0")
        .arg("PX")
        .arg(1500)
        .query::<()>(&mut redis.client())
        .expect("SET");
    let t = Instant::now();
    let rb = build(&fleet, &b, &redis.url(), &["-v"], &[]);
    assert_eq!(rb.status.code(), Some(0), "{}", stderr(&rb));
    assert!(
        stderr(&rb).contains("waiting for deadhost pid 1"),
        "{}",
        stderr(&rb)
    );
    assert_eq!(fleet.runs(), 2);
    assert!(
        t.elapsed() >= Duration::from_millis(1000),
        "did not wait: {:?}",
        t.elapsed()
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "waited too long: {:?}",
        t.elapsed()
    );
    // With --no-wait a held lease means "busy" (exit 75), and nothing runs.
    redis::cmd("SET")
        .arg(&lease)
        .arg("otherhost pid 2 0")
        .arg("PX")
        .arg(60_000)
        .query::<()>(&mut redis.client())
        .expect("SET");
    let c = fleet.machine();
    c.write("src/in.txt", "source v1\n");
    redis::cmd("DEL")
        .arg(&rk)
        .query::<()>(&mut redis.client())
        .expect("DEL");
    let rc = build(&fleet, &c, &redis.url(), &["--no-wait"], &[]);
    assert_eq!(rc.status.code(), Some(75), "{}", stderr(&rc));
    assert_eq!(fleet.runs(), 2);
}

/// Lease semantics through the backend itself (works on a cluster, where a key may live
/// on any node).
fn check_leases(url: &str) {
    use idem::store::remote::{redis::RedisRemote, LeaseTry, Remote};
    let r = RedisRemote::new(url, "test", Duration::from_secs(2)).expect("remote");
    for id in ["ab".repeat(32), "cd".repeat(32), "ef".repeat(32)] {
        let ttl = Duration::from_secs(5);
        let busy = |who: &str| Some(LeaseTry::Busy(who.into()));
        assert_eq!(r.try_lease(&id, "one", ttl).ok(), Some(LeaseTry::Got));
        assert_eq!(r.try_lease(&id, "two", ttl).ok(), busy("one"));
        assert_eq!(r.renew_lease(&id, "two", ttl).ok(), Some(false));
        assert_eq!(r.renew_lease(&id, "one", ttl).ok(), Some(true));
        assert!(r.release_lease(&id, "two").is_ok());
        assert_eq!(
            r.try_lease(&id, "three", ttl).ok(),
            busy("one"),
            "a stranger released it"
        );
        assert!(r.release_lease(&id, "one").is_ok());
        assert_eq!(r.try_lease(&id, "two", ttl).ok(), Some(LeaseTry::Got));
        assert!(r.release_lease(&id, "two").is_ok());
    }
}

#[test]
fn redis_leases_are_exclusive_renewable_and_released_only_by_their_holder() {
    let Some(redis) = Redis::start() else { return };
    check_leases(&redis.url());
    // Renewal really extends the expiry.
    use idem::store::remote::{redis::RedisRemote, Remote};
    let r = RedisRemote::new(&redis.url(), "test", Duration::from_secs(2)).expect("remote");
    let id = "12".repeat(32);
    r.try_lease(&id, "one", Duration::from_secs(5)).ok();
    assert_eq!(
        r.renew_lease(&id, "one", Duration::from_secs(60)).ok(),
        Some(true)
    );
    let key = format!("idem:v1:lease:{{{id}}}");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query(&mut redis.client())
        .expect("PTTL");
    assert!(pttl > 5_000, "renewal did not extend the lease: {pttl}");
}

#[test]
fn rediss_with_a_private_ca() {
    let Some(_) = require_binary("redis-server") else {
        return;
    };
    let Some(_) = require_binary("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((ca, cert, key)) = make_ca(dir.path()) else {
        return;
    };
    let port = free_port();
    let d = dir.path();
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        "0",
        "--tls-port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
    ])
    .args([
        "--save",
        "",
        "--appendonly",
        "no",
        "--tls-auth-clients",
        "no",
    ])
    .arg("--tls-cert-file")
    .arg(&cert)
    .arg("--tls-key-file")
    .arg(&key)
    .arg("--tls-ca-cert-file")
    .arg(&ca)
    .arg("--dir")
    .arg(d);
    let _server = Proc::spawn(&mut cmd, d.join("redis.log"));
    wait_until(Duration::from_secs(20), "redis-server TLS port", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let url = format!("rediss://127.0.0.1:{port}/0");
    let ca = d.join("ca.pem").display().to_string();
    let fleet = Fleet::new();
    let (a, b, c) = (fleet.machine(), fleet.machine(), fleet.machine());
    let ra = build(&fleet, &a, &url, &[], &[("IDEM_REMOTE_CA", &ca)]);
    assert_eq!(ra.status.code(), Some(0));
    assert_eq!(warnings(&ra), 0, "{}", stderr(&ra));
    let rb = build(&fleet, &b, &url, &[], &[("IDEM_REMOTE_CA", &ca)]);
    assert_eq!(fleet.runs(), 1, "{}", stderr(&rb));
    assert_same_outcome(&ra, &a, &rb, &b);
    // Without the CA the certificate is not trusted: one warning, and the step runs.
    let rc = build(&fleet, &c, &url, &[], &[]);
    assert_eq!(rc.status.code(), Some(0));
    assert_eq!(fleet.runs(), 2);
    assert_eq!(warnings(&rc), 1, "{}", stderr(&rc));
    assert!(stderr(&rc).contains("certificate"), "{}", stderr(&rc));
}

// ---------------------------------------------------------------------------------
// Hostile servers: tiny in-process HTTP and Redis servers that trickle answers one byte
// at a time (each byte well within any read timeout, so only an overall deadline stops
// them), redirect uploads, or report what they were sent.

/// One byte every this long: always far below a 1 s read timeout.
const TRICKLE_GAP: Duration = Duration::from_millis(100);
/// Bytes a trickle sends at most (about two minutes), so no thread outlives the suite.
const TRICKLE_BYTES: usize = 1200;

/// Writes `bytes` one at a time, `TRICKLE_GAP` apart, stopping when the client is gone.
fn trickle(conn: &mut TcpStream, bytes: &[u8]) {
    for b in bytes.iter().take(TRICKLE_BYTES) {
        if conn.write_all(std::slice::from_ref(b)).is_err() || conn.flush().is_err() {
            return;
        }
        std::thread::sleep(TRICKLE_GAP); // simulated slowness, not synchronization
    }
}

/// What a hostile server does with one request or command.
enum Answer {
    Now(Vec<u8>),
    Trickle(Vec<u8>),
}

#[derive(Clone, Debug)]
struct HttpSeen {
    method: String,
    path: String,
    authorization: Option<String>,
}

/// An HTTP/1.1 server (one thread per connection, `Connection: close`) whose answers
/// come from `answer(method, path)`; it records every request it was sent.
struct HttpServer {
    port: u16,
    seen: Arc<Mutex<Vec<HttpSeen>>>,
}

impl HttpServer {
    fn start(
        ip: &str,
        answer: impl Fn(&str, &str) -> Answer + Send + Sync + 'static,
    ) -> HttpServer {
        let listener = TcpListener::bind((ip, 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, answer) = (Arc::clone(&seen), Arc::new(answer));
        std::thread::spawn(move || {
            for conn in listener.incoming().take(64) {
                let Ok(conn) = conn else { continue };
                let (log, answer) = (Arc::clone(&log), Arc::clone(&answer));
                std::thread::spawn(move || http_exchange(conn, &log, &*answer));
            }
        });
        HttpServer { port, seen }
    }

    fn seen(&self) -> Vec<HttpSeen> {
        self.seen.lock().unwrap().clone()
    }
}

fn http_exchange(
    mut conn: TcpStream,
    log: &Mutex<Vec<HttpSeen>>,
    answer: &(dyn Fn(&str, &str) -> Answer + Send + Sync),
) {
    let Ok(read) = conn.try_clone() else { return };
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let (mut length, mut authorization) = (0u64, None);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            match n.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "authorization" => authorization = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let _ = std::io::copy(&mut reader.by_ref().take(length), &mut std::io::sink());
    log.lock().unwrap().push(HttpSeen {
        method: method.clone(),
        path: path.clone(),
        authorization,
    });
    match answer(&method, &path) {
        Answer::Now(bytes) => {
            let _ = conn.write_all(&bytes);
        }
        Answer::Trickle(bytes) => trickle(&mut conn, &bytes),
    }
}

fn http_answer(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn not_found() -> Answer {
    Answer::Now(http_answer("404 Not Found", &[], b""))
}

/// A long 200 answer (head included) sent one byte at a time.
fn trickled_ok() -> Answer {
    Answer::Trickle(http_answer("200 OK", &[], &[b'x'; 1000]))
}

/// A Redis server speaking just enough RESP: commands whose text contains `slow` get a
/// trickled bulk string, the rest the answer of an empty database.
fn fake_redis(slow: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(64) {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || {
                let _ = redis_session(conn, slow);
            });
        }
    });
    port
}

fn redis_session(mut conn: TcpStream, slow: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let n: usize = line.trim().trim_start_matches('*').parse().unwrap_or(0);
        let mut args = Vec::new();
        for _ in 0..n {
            line.clear();
            reader.read_line(&mut line)?;
            let len: usize = line.trim().trim_start_matches('$').parse().unwrap_or(0);
            let mut arg = vec![0u8; len + 2];
            reader.read_exact(&mut arg)?;
            arg.truncate(len);
            args.push(String::from_utf8_lossy(&arg).into_owned());
        }
        let text = args.join(" ");
        let name = args
            .first()
            .map(|a| a.to_ascii_uppercase())
            .unwrap_or_default();
        if !slow.is_empty() && text.contains(slow) {
            let mut big = b"$1000\r\n".to_vec();
            big.extend_from_slice(&[b'x'; 1000]);
            trickle(&mut conn, &big);
            return Ok(());
        }
        let reply: &[u8] = match name.as_str() {
            "GET" => b"$-1\r\n",
            "GETRANGE" => b"$0\r\n\r\n",
            "STRLEN" | "EXISTS" => b":0\r\n",
            "EVAL" => b":1\r\n",
            _ => b"+OK\r\n",
        };
        conn.write_all(reply)?;
    }
}

/// `idem run` of a step that prints and exits 0, against `remote` with a 1 s timeout:
/// it must keep the step's result, warn at most once and end well within 30 s; when it
/// warned, it must not claim an upload.
fn bounded_run(remote: &str, what: &str) -> Output {
    let ws = Ws::new();
    let t = Instant::now();
    let o = output(idem(
        &ws,
        remote,
        &["-v", "--remote-timeout", "1s"],
        &[],
        &["sh", "-c", "echo built; echo note >&2"],
    ));
    let took = t.elapsed();
    assert!(took < Duration::from_secs(30), "{what}: took {took:?}");
    assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(&o));
    assert_eq!(stdout(&o), "built\n", "{what}");
    assert!(warnings(&o) <= 1, "{what}: {}", stderr(&o));
    if warnings(&o) == 1 {
        assert!(!stderr(&o).contains("uploaded"), "{what}: {}", stderr(&o));
    }
    o
}

#[test]
fn a_trickling_http_remote_is_cut_off_at_the_deadline() {
    // Record lookup: the answer never ends.
    let srv = HttpServer::start("127.0.0.1", |_, _| trickled_ok());
    let o = bounded_run(&format!("http://127.0.0.1:{}/c", srv.port), "lookup");
    assert_eq!(warnings(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("record lookup failed (no complete answer within 1s)"),
        "{}",
        stderr(&o)
    );

    // Upload: lookups answer at once, the answer to a PUT never ends.
    let srv = HttpServer::start("127.0.0.1", |method, _| match method {
        "PUT" => trickled_ok(),
        _ => not_found(),
    });
    let o = bounded_run(&format!("http://127.0.0.1:{}/c", srv.port), "upload");
    assert_eq!(warnings(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("upload failed (no complete answer within 1s)"),
        "{}",
        stderr(&o)
    );
    // Skipped for the rest of the run: the one batch of blob PUTs (sent concurrently,
    // each blob once), and no record after it.
    let puts: Vec<String> = srv
        .seen()
        .into_iter()
        .filter(|s| s.method == "PUT")
        .map(|s| s.path)
        .collect();
    assert!(
        !puts.is_empty() && puts.iter().all(|p| p.contains("/blob/")),
        "{puts:?}"
    );
    let mut distinct = puts.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        puts.len(),
        "a blob was sent twice: {puts:?}"
    );
}

#[test]
fn a_trickling_redis_remote_is_cut_off_at_the_deadline() {
    for (slow, what) in [
        ("idem:v1:rec:", "record lookup failed"),
        ("idem:v1:lease:", "lease failed"),
        ("idem:v1:blob:", "blob"),
    ] {
        let port = fake_redis(slow);
        let o = bounded_run(&format!("redis://127.0.0.1:{port}/0"), slow);
        assert_eq!(warnings(&o), 1, "{slow}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(what) && err.contains("no complete answer within 1s"),
            "{slow}: {err}"
        );
    }
    // The lease's release (a Lua EVAL) after the upload: bounded too, and silent.
    let port = fake_redis("EVAL");
    let o = bounded_run(&format!("redis://127.0.0.1:{port}/0"), "release");
    assert_eq!(warnings(&o), 0, "{}", stderr(&o));
}

#[test]
fn a_redirected_upload_is_a_failed_upload_and_credentials_stay_home() {
    // Another host that notes whether credentials reached it; it has nothing.
    let other = HttpServer::start("127.0.0.2", |_, _| not_found());
    let elsewhere = format!("http://127.0.0.2:{}", other.port);
    for status in [
        "301 Moved Permanently",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let to = elsewhere.clone();
        let home = HttpServer::start("127.0.0.1", move |method, path| {
            let redirect =
                |s: &str| Answer::Now(http_answer(s, &[("Location", &format!("{to}{path}"))], b""));
            match method {
                // e.g. an http→https redirect in front of the cache.
                "PUT" => redirect(status),
                // Lookups may follow a redirect (to a mirror, a signed URL).
                "GET" => redirect("302 Found"),
                _ => not_found(),
            }
        });
        let ws = Ws::new();
        let remote = format!("http://idem:s3cret@127.0.0.1:{}/c", home.port);
        let o = output(idem(
            &ws,
            &remote,
            &["-v"],
            &[],
            &["sh", "-c", "echo built"],
        ));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{status}: {err}");
        assert_eq!(stdout(&o), "built\n");
        assert_eq!(warnings(&o), 1, "{status}: {err}");
        let code = &status[..3];
        assert!(
            err.contains(&format!("HTTP {code} redirect, not followed")),
            "{status}: {err}"
        );
        assert!(!err.contains("uploaded"), "{status}: {err}");
        assert!(!err.contains("s3cret"), "{err}");
        assert_eq!(stat(&ws, "uploads"), 0, "{status}");
        // Home got the credentials; the upload went nowhere else.
        assert!(
            home.seen().iter().all(|s| s.authorization.is_some()),
            "{:?}",
            home.seen()
        );
    }
    // The other host saw the redirected lookups, never a credential, never an upload.
    let seen = other.seen();
    assert!(seen.iter().any(|s| s.method == "GET"), "{seen:?}");
    assert!(seen.iter().all(|s| s.authorization.is_none()), "{seen:?}");
    assert!(seen.iter().all(|s| s.method == "GET"), "{seen:?}");
}

/// Bytes the Redis server has sent to all its clients so far.
fn redis_bytes_sent(redis: &Redis) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query(&mut redis.client())
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("total_net_output_bytes in INFO stats")
}

#[test]
fn an_oversized_redis_record_is_a_miss_and_never_read() {
    let Some(redis) = Redis::start() else { return };
    let fleet = Fleet::new();
    let (a, b, c) = (fleet.machine(), fleet.machine(), fleet.machine());
    let ra = build(&fleet, &a, &redis.url(), &[], &[]);
    assert_eq!(fleet.runs(), 1);
    // SETRANGE pads with zero bytes: the value grows past 64 MiB on the server alone.
    let key = redis.record_key();
    redis::cmd("SETRANGE")
        .arg(&key)
        .arg(64u64 << 20)
        .arg("x")
        .query::<i64>(&mut redis.client())
        .expect("SETRANGE");
    let before = redis_bytes_sent(&redis);
    let rb = build(&fleet, &b, &redis.url(), &[], &[]);
    let sent = redis_bytes_sent(&redis) - before;
    assert!(
        sent < 1 << 20,
        "idem was sent {sent} bytes of an oversized record"
    );
    assert_eq!(rb.status.code(), Some(0), "{}", stderr(&rb));
    assert_eq!(fleet.runs(), 2, "an oversized record is a miss");
    assert_eq!(warnings(&rb), 1, "{}", stderr(&rb));
    assert!(
        stderr(&rb).contains("larger than 64 MiB"),
        "{}",
        stderr(&rb)
    );
    // The remote stayed in use: b's upload replaced the record, c replays it.
    let rc = build(&fleet, &c, &redis.url(), &[], &[]);
    assert_eq!(fleet.runs(), 2, "{}", stderr(&rc));
    assert_same_outcome(&ra, &a, &rc, &c);
}

#[test]
fn an_oversized_http_record_is_a_miss_and_never_read() {
    // It announces 100 MB; idem must refuse it on the length alone and keep the remote.
    let srv = HttpServer::start("127.0.0.1", |method, path| match method {
        "GET" if path.contains("/rec/") => {
            let mut a =
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 100000000\r\n\r\n"
                    .to_vec();
            a.extend_from_slice(&[b'x'; 64 << 10]);
            Answer::Now(a)
        }
        "PUT" => Answer::Now(http_answer("201 Created", &[], b"")),
        _ => not_found(),
    });
    let ws = Ws::new();
    let remote = format!("http://127.0.0.1:{}/c", srv.port);
    let o = output(idem(
        &ws,
        &remote,
        &["-v"],
        &[],
        &["sh", "-c", "echo built"],
    ));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(stdout(&o), "built\n");
    assert_eq!(warnings(&o), 1, "{err}");
    assert!(err.contains("record larger than 64 MiB, not read"), "{err}");
    // A miss, not a remote fault: the run's own record was uploaded over it.
    assert!(err.contains("uploaded"), "{err}");
    assert_eq!(stat(&ws, "uploads"), 1);
}
