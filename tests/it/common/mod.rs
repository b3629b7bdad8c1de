//! Shared helpers for integration tests: a temporary workspace with its own cache, a
//! builder for running the real `idem` binary in it (with no `IDEM_*` variable leaking
//! in from the caller), hit/miss assertions that show stderr, ports and polling.
#![allow(dead_code)]

pub mod servers;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Ws {
    pub dir: tempfile::TempDir,
    pub cache: PathBuf,
}

impl Ws {
    /// A fresh workspace (a `.git` directory marks its root) and cache directory.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(".git")).expect("mkdir .git");
        let cache = dir.path().join(".git").join("idem-cache");
        Ws { dir, cache }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, content).expect("write");
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).expect("read")
    }

    /// `idem <args>` with cwd = workspace root and this workspace's cache.
    pub fn idem(&self, args: &[&str]) -> Command {
        let mut c = Command::new(idem_bin());
        // Whatever the caller's environment says, only what a test sets reaches idem.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("IDEM_") {
                c.env_remove(name);
            }
        }
        c.args(args)
            .current_dir(self.root())
            .env("IDEM_CACHE_DIR", &self.cache)
            .stdin(Stdio::null());
        c
    }

    /// Runs `idem run <args>` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut full = vec!["run"];
        full.extend_from_slice(args);
        self.idem(&full).output().expect("spawn idem")
    }

    /// Number of times a counter file was appended to (one line per run).
    pub fn count(&self, rel: &str) -> usize {
        std::fs::read_to_string(self.path(rel))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

pub fn idem_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_idem"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A server binary a test needs: when missing, skip with a message, except in CI
/// (`CI` set) where a missing server is a failure.
pub fn require_binary(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    let found = found.or_else(|| {
        ["/usr/sbin", "/usr/bin", "/usr/local/sbin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("{name} is required in CI but was not found; .ci/run installs it");
        }
        eprintln!("skipping: {name} not installed (run .ci/run or apt-get install it)");
    }
    found
}

/// `-v` said the run replayed a record (the message prints stderr otherwise).
#[track_caller]
pub fn assert_hit(o: &Output) {
    assert!(is_hit(o), "expected a hit; stderr:\n{}", stderr(o));
}

/// `-v` said the run executed the command.
#[track_caller]
pub fn assert_miss(o: &Output) {
    assert!(
        stderr(o).contains("idem: miss"),
        "expected a miss; stderr:\n{}",
        stderr(o)
    );
}

/// `-v` said hit (locally or from a remote).
pub fn is_hit(o: &Output) -> bool {
    stderr(o).contains("idem: hit")
}

/// A TCP port free on loopback right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `ok` until it holds, failing the test after `limit` (a bound on a broken
/// run, never a synchronisation delay: `ok` checks the state itself).
#[track_caller]
pub fn wait_until(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `idem stats --json` of a workspace's cache: hits (folded from `hits.log` too),
/// misses, uploads… as idem itself reports them.
pub fn stats(ws: &Ws) -> serde_json::Value {
    let o = ws.idem(&["stats", "--json"]).output().expect("idem stats");
    assert!(o.status.success(), "idem stats: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("stats --json")
}

/// How many records the cache holds (`idem stats --json`).
pub fn record_count(ws: &Ws) -> i64 {
    stats(ws)["records"]
        .as_i64()
        .expect("records in stats --json")
}
