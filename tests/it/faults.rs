//! I/O faults under the cache: a full disk (a small tmpfs as the cache), a read-only
//! cache, and a cache made read-only by the command itself mid-run. In every case the
//! command's output and exit code are intact, and the cache heals once space (or write
//! access) is back: the next run records and the one after replays byte for byte.
//! Needs root for `mount` (CI runs as root); skipped with a reason otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{stderr, Ws};

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                std::env::var_os("CI").is_none(),
                "the fault suite needs root in CI (mount -t tmpfs)"
            );
            eprintln!("skipping: mounting a tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("mount point");
        mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            dir.path(),
        );
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, opts: &str) {
        mount(&["-o", &format!("remount,{opts}")], self.path());
    }
}

fn mount(args: &[&str], at: &Path) {
    let st = Command::new("mount")
        .args(args)
        .arg(at)
        .status()
        .expect("run mount");
    assert!(st.success(), "mount {args:?} {}", at.display());
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// A workspace whose cache lives inside `mnt` (a subdirectory: idem creates it 0700).
fn ws_on(mnt: &Tmpfs) -> Ws {
    let mut ws = Ws::new();
    ws.cache = mnt.path().join("cache");
    ws
}

/// 3 MB of stdout, a 600 KB output file, a line on stderr, exit 0; counts its runs.
const BIG: &str = r#"echo x >> runs.log; v=$(cat in.txt)
head -c 3000000 /dev/zero | tr '\0' "$v"
mkdir -p out; head -c 600000 /dev/zero | tr '\0' "$v" > out/big
echo "$v done" >&2"#;

fn big_task(ws: &Ws) -> Output {
    ws.run(&["-f", "in.txt", "-o", "out", "--", "sh", "-c", BIG])
}

/// The outcome is exactly the command's, whatever the cache did.
fn assert_exact(ws: &Ws, o: &Output, v: char, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: exit code; stderr {}",
        crate::common::stderr(o)
    );
    assert_eq!(o.stdout.len(), 3_000_000, "{what}: stdout length");
    assert!(
        o.stdout.iter().all(|&b| b == v as u8),
        "{what}: stdout bytes"
    );
    assert!(
        crate::common::stderr(o).contains(&format!("{v} done")),
        "{what}: stderr"
    );
    let big = ws.read("out/big");
    assert!(
        big.len() == 600_000 && big.iter().all(|&b| b == v as u8),
        "{what}: out/big"
    );
}

/// Prints whether a hit under a fault replayed or ran uncached (both are correct).
fn note_path(ws: &Ws, runs_before: usize, o: &Output, what: &str) {
    let ran = ws.count("runs.log") > runs_before;
    let why = crate::common::stderr(o)
        .lines()
        .filter(|l| l.starts_with("idem"))
        .collect::<Vec<_>>()
        .join("; ");
    eprintln!(
        "{what}: {}; {why}",
        if ran { "ran uncached" } else { "replayed" }
    );
}

/// After the fault is gone: one run records, the next replays (the command does not
/// run again), both exact, and verify is clean.
fn assert_heals(ws: &Ws, v: char) {
    let o = big_task(ws);
    assert_exact(ws, &o, v, "first run after the fault");
    let runs = ws.count("runs.log");
    let o = big_task(ws);
    assert_exact(ws, &o, v, "replay after the fault");
    assert_eq!(ws.count("runs.log"), runs, "the healed cache replays");
    let v = ws.idem(&["verify"]).output().expect("verify");
    assert_eq!(
        v.status.code(),
        Some(0),
        "verify: {}",
        crate::common::stdout(&v)
    );
}

#[test]
fn a_full_disk_never_changes_the_outcome_and_the_cache_heals() {
    let Some(mnt) = Tmpfs::mount("1m") else {
        return;
    };
    let ws = ws_on(&mnt);
    ws.write("in.txt", "a");
    // The blobs (3.6 MB) cannot fit in 1 MB: recording fails part-way.
    for attempt in 0..2 {
        let o = big_task(&ws);
        assert_exact(&ws, &o, 'a', &format!("full disk, attempt {attempt}"));
    }
    mnt.remount("size=32m");
    assert_heals(&ws, 'a');

    // Now fill what is left to the last byte, with a record already in the database.
    let filler = mnt.path().join("filler");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cat /dev/zero > '{}' 2>/dev/null; true",
            filler.display()
        ))
        .status()
        .expect("fill the disk");
    assert!(st.success());
    ws.write("in.txt", "b");
    let o = big_task(&ws);
    assert_exact(&ws, &o, 'b', "disk filled to the last byte");
    // A hit still replays on a full disk (its hits.log line may be lost).
    ws.write("in.txt", "a");
    let runs = ws.count("runs.log");
    let o = big_task(&ws);
    assert_exact(&ws, &o, 'a', "replay on a full disk");
    // SQLite cannot map its WAL index on a full disk: the cache is unavailable and
    // the command runs uncached ("when in doubt, run"). Either way the outcome is exact.
    note_path(&ws, runs, &o, "hit on a full disk");
    std::fs::remove_file(&filler).expect("free the space");
    ws.write("in.txt", "b");
    assert_heals(&ws, 'b');
}

#[test]
fn a_read_only_cache_runs_the_command_and_heals() {
    let Some(mnt) = Tmpfs::mount("64m") else {
        return;
    };
    let ws = ws_on(&mnt);
    ws.write("in.txt", "a");
    assert_heals(&ws, 'a');
    mnt.remount("ro");
    let runs = ws.count("runs.log");
    let o = big_task(&ws);
    assert_exact(&ws, &o, 'a', "replay from a read-only cache");
    note_path(&ws, runs, &o, "hit on a read-only cache");
    ws.write("in.txt", "c");
    let o = big_task(&ws);
    assert_exact(&ws, &o, 'c', "miss on a read-only cache");
    mnt.remount("rw");
    assert_heals(&ws, 'c');
}

#[test]
fn a_cache_made_read_only_mid_run_keeps_the_outcome_and_heals() {
    let Some(mnt) = Tmpfs::mount("64m") else {
        return;
    };
    let ws = ws_on(&mnt);
    ws.write("in.txt", "d");
    // Warm the database (WAL open, schema written), then flip it mid-run: the command
    // itself remounts the cache read-only before producing its output.
    let warm = ws.run(&["--", "true"]);
    assert_eq!(warm.status.code(), Some(0));
    let flip: PathBuf = ws.path("flip");
    std::fs::write(&flip, "").unwrap();
    let script = format!(
        "if [ -e flip ]; then rm flip; mount -o remount,ro '{}'; fi; {BIG}",
        mnt.path().display()
    );
    let o = ws.run(&["-f", "in.txt", "-o", "out", "--", "sh", "-c", &script]);
    assert_exact(&ws, &o, 'd', "cache made read-only mid-run");
    assert!(!flip.exists(), "the command flipped the mount");
    mnt.remount("rw");
    let o = ws.run(&["-f", "in.txt", "-o", "out", "--", "sh", "-c", &script]);
    assert_exact(&ws, &o, 'd', "first run after the flip");
    let runs = ws.count("runs.log");
    let o = ws.run(&["-f", "in.txt", "-o", "out", "--", "sh", "-c", &script]);
    assert_exact(&ws, &o, 'd', "replay after the flip");
    assert_eq!(ws.count("runs.log"), runs, "the cache healed");
}

/// EIO and ENOSPC from the disk under the blob store (injected through the test hook
/// `IDEM_TEST_BLOB_FAULT`, since no real disk can be made to fail on demand here): on the
/// captured stdout, or on an output file's copy. The command's output, files and exit
/// code are exactly what it produced, nothing is recorded, and the next run without the
/// fault records and then replays. Needs no root.
#[test]
fn injected_eio_and_enospc_on_blob_writes_keep_the_outcome_and_record_nothing() {
    // 4 KiB of stdout and a 64 KiB output file: the fault hits one or both of them.
    let script = "echo ran >> count; head -c 4096 /dev/zero | tr '\\0' s; \
                  head -c 65536 /dev/zero | tr '\\0' o > out.bin; echo err >&2";
    for (fault, what) in [
        ("eio:100", "stdout capture fails with EIO"),
        ("enospc:100", "stdout capture fails with ENOSPC"),
        ("eio:8192", "only the output file's copy fails with EIO"),
    ] {
        let ws = Ws::new();
        let args = ["run", "-o", "out.bin", "--", "sh", "-c", script];
        let o = ws
            .idem(&args)
            .env("IDEM_TEST_BLOB_FAULT", fault)
            .output()
            .expect("idem");
        assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(&o));
        assert_eq!(o.stdout, vec![b's'; 4096], "{what}: stdout intact");
        // The command's own stderr, whole; idem adds one warning of its own.
        let err = stderr(&o);
        let theirs: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("idem: warning:"))
            .collect::<Vec<_>>();
        assert_eq!(theirs, ["err"], "{what}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("not recorded"),
            "{what}: {}",
            stderr(&o)
        );
        assert_eq!(
            ws.read("out.bin"),
            vec![b'o'; 65536],
            "{what}: output intact"
        );
        // Nothing was recorded: the next run executes again, records, then replays.
        let again = ws.idem(&args).output().expect("idem");
        assert_eq!(ws.count("count"), 2, "{what}: not recorded under the fault");
        assert_eq!(again.stdout, vec![b's'; 4096]);
        std::fs::remove_file(ws.path("out.bin")).unwrap();
        let replay = ws.idem(&args).output().expect("idem");
        assert_eq!(ws.count("count"), 2, "{what}: the healed cache replays");
        assert_eq!(replay.status.code(), Some(0));
        assert_eq!(replay.stdout, vec![b's'; 4096]);
        assert_eq!(ws.read("out.bin"), vec![b'o'; 65536]);
    }
}
