//! Hostile servers, beyond what tests/it/remote.rs and tests/it/url.rs cover (hangs,
//! trickles, oversized records, tampering): a remote that serves records under other
//! tasks' ids, blobs whose bytes lie, HTTP remotes and URL servers whose lengths lie.
//! Each case: the outcome is exactly the command's, bounded in time and memory.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::servers::Redis;
use crate::common::Ws;

fn task(ws: &Ws, name: &str, remote: &str) -> std::process::Output {
    let script = format!("echo {name} >> runs.log; i=0; while [ $i -lt 2000 ]; do echo {name}-$i; i=$((i+1)); done; mkdir -p out; echo {name} > out/{name}");
    ws.idem(&[
        "run",
        "-f",
        "in.txt",
        "-o",
        &format!("out/{name}"),
        "--",
        "sh",
        "-c",
        &script,
    ])
    .env("IDEM_REMOTE", remote)
    .output()
    .expect("run idem")
}

fn assert_exact(ws: &Ws, o: &std::process::Output, name: &str) {
    let want: String = (0..2000).map(|i| format!("{name}-{i}\n")).collect();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{name}: {}",
        crate::common::stderr(o)
    );
    assert!(
        crate::common::stdout(o) == want,
        "{name}: stdout is not the command's"
    );
    assert_eq!(
        ws.read(&format!("out/{name}")),
        format!("{name}\n").as_bytes()
    );
}

fn runs_of(ws: &Ws, name: &str) -> usize {
    std::fs::read_to_string(ws.path("runs.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == name)
        .count()
}

fn redis_keys(conn: &mut redis::Connection, pattern: &str) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(conn).expect("KEYS");
    keys.sort();
    keys
}

#[test]
fn records_served_under_another_tasks_id_are_never_replayed() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let (a, b) = (Ws::new(), Ws::new());
    for ws in [&a, &b] {
        ws.write("in.txt", "same");
    }
    assert_exact(&a, &task(&a, "x", &redis.url()), "x");
    assert_exact(&a, &task(&a, "y", &redis.url()), "y");
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let recs = redis_keys(&mut conn, "idem:v1:rec:*");
    assert_eq!(recs.len(), 2, "{recs:?}");
    // Swap the two records: each id now holds a well-formed record of the other task.
    let (r0, r1): (Vec<u8>, Vec<u8>) = (
        redis::cmd("GET").arg(&recs[0]).query(&mut conn).unwrap(),
        redis::cmd("GET").arg(&recs[1]).query(&mut conn).unwrap(),
    );
    let _: () = redis::cmd("SET")
        .arg(&recs[0])
        .arg(r1)
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&recs[1])
        .arg(r0)
        .query(&mut conn)
        .unwrap();
    for name in ["x", "y"] {
        let o = task(&b, name, &redis.url());
        assert_exact(&b, &o, name);
        assert_eq!(
            runs_of(&b, name),
            1,
            "{name} ran instead of replaying another task"
        );
    }
}

#[test]
fn remote_blobs_whose_bytes_lie_are_never_replayed() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let (a, b) = (Ws::new(), Ws::new());
    for ws in [&a, &b] {
        ws.write("in.txt", "same");
    }
    assert_exact(&a, &task(&a, "z", &redis.url()), "z");
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let blobs = redis_keys(&mut conn, "idem:v1:blob:*");
    assert!(!blobs.is_empty());
    for key in &blobs {
        let mut v: Vec<u8> = redis::cmd("GET").arg(key).query(&mut conn).unwrap();
        // Same length, other bytes: only the hash can tell.
        for byte in v.iter_mut() {
            *byte = byte.wrapping_add(1);
        }
        let _: () = redis::cmd("SET").arg(key).arg(v).query(&mut conn).unwrap();
    }
    let o = task(&b, "z", &redis.url());
    assert_exact(&b, &o, "z");
    assert_eq!(runs_of(&b, "z"), 1, "lying blobs make it run");
    let v = b.idem(&["verify"]).output().unwrap();
    assert_eq!(
        v.status.code(),
        Some(0),
        "nothing lying was kept: {}",
        crate::common::stdout(&v)
    );
}

/// How a fake server lies about the length of what it sends.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// Claims a petabyte, sends 20 bytes, closes.
    Huge,
    /// Claims 5 bytes, sends 100 KB.
    Short,
    /// A chunked body whose first chunk claims 2^48 bytes, then closes.
    HugeChunk,
}

/// A loopback HTTP server answering every request with `lie` (PUT bodies are read
/// and acknowledged); it stops when the test ends.
fn lying_server(lie: Lie) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = answer(conn, lie);
            });
        }
    });
    port
}

fn answer(mut conn: TcpStream, lie: Lie) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    if head.starts_with("put") {
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len.min(1 << 24)];
        conn.read_exact(&mut body)?;
        return conn
            .write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    match lie {
        Lie::Huge => {
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000\r\nETag: \"e\"\r\nConnection: close\r\n\r\n")?;
            conn.write_all(&[b'a'; 20])?;
        }
        Lie::Short => {
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")?;
            conn.write_all(&vec![b'b'; 100_000])?;
        }
        Lie::HugeChunk => {
            conn.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nffffffffffff\r\n")?;
            conn.write_all(&[b'c'; 64])?;
        }
    }
    conn.flush()
}

/// Runs `cmd`, returning its output, wall time and peak RSS (KiB) from wait4.
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which std cannot see
fn measured(cmd: &mut Command) -> (std::process::Output, Duration, i64) {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn idem");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut stdout = Vec::new();
    let _ = out.read_to_end(&mut stdout);
    let stderr = err_reader.join().unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 reaps our own child exactly once (the
    // std Child is never waited on).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4");
    let code = std::os::unix::process::ExitStatusExt::from_raw(status);
    (
        std::process::Output {
            status: code,
            stdout,
            stderr,
        },
        started.elapsed(),
        usage.ru_maxrss,
    )
}

const MEMORY_CAP_KIB: i64 = 200 * 1024;
const TIME_CAP: Duration = Duration::from_secs(30);

#[test]
fn http_remotes_that_lie_about_lengths_cost_bounded_time_and_memory() {
    for lie in [Lie::Huge, Lie::Short, Lie::HugeChunk] {
        let port = lying_server(lie);
        let ws = Ws::new();
        ws.write("in.txt", "same");
        let url = format!("http://127.0.0.1:{port}/cache");
        for attempt in 0..2 {
            let mut cmd = ws.idem(&["run", "-f", "in.txt", "-o", "out/h", "--", "sh", "-c"]);
            cmd.arg("i=0; while [ $i -lt 2000 ]; do echo h-$i; i=$((i+1)); done; mkdir -p out; echo h > out/h")
                .env("IDEM_REMOTE", &url);
            let (o, took, rss) = measured(&mut cmd);
            assert_exact(&ws, &o, "h");
            assert!(took < TIME_CAP, "{lie:?} attempt {attempt}: took {took:?}");
            assert!(
                rss < MEMORY_CAP_KIB,
                "{lie:?} attempt {attempt}: {rss} KiB peak"
            );
            eprintln!("http remote {lie:?} attempt {attempt}: {took:.1?}, {rss} KiB peak");
        }
    }
}

#[test]
fn url_servers_that_lie_about_lengths_cost_bounded_time_and_memory() {
    for lie in [Lie::Huge, Lie::Short, Lie::HugeChunk] {
        let port = lying_server(lie);
        let ws = Ws::new();
        let url = format!("http://127.0.0.1:{port}/data");
        for flag in ["-u", "--url-content"] {
            let mut cmd = ws.idem(&["run", flag, &url, "--url-timeout", "5s", "--", "sh", "-c"]);
            cmd.arg("echo ran >> runs.log; echo url-out");
            let (o, took, rss) = measured(&mut cmd);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{lie:?} {flag}: {}",
                crate::common::stderr(&o)
            );
            assert_eq!(crate::common::stdout(&o), "url-out\n", "{lie:?} {flag}");
            assert!(took < TIME_CAP, "{lie:?} {flag}: took {took:?}");
            assert!(rss < MEMORY_CAP_KIB, "{lie:?} {flag}: {rss} KiB peak");
            eprintln!("url {lie:?} {flag}: {took:.1?}, {rss} KiB peak");
        }
    }
}
