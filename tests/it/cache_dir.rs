//! The cache directory belongs to its user: private modes, no one else's directory or
//! database used, no symlink written through, a corrupt database repaired by idem
//! itself, and a damaged hit log costing only its bad lines.

use crate::common::{stderr, stdout, Ws};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Tests that need another owner: as root, chown to nobody; otherwise skip, except in CI.
fn can_chown() -> bool {
    if is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI runs as root: this test needs chown to another user");
    }
    eprintln!("skipping: needs root to give a directory to another user (uid 65534)");
    false
}

fn chown_nobody(p: &Path) {
    std::os::unix::fs::lchown(p, Some(65534), Some(65534)).unwrap();
}

#[test]
fn a_new_cache_is_private_to_its_user() {
    let ws = Ws::new();
    ws.write("tool", "#!/bin/sh\n");
    std::fs::set_permissions(ws.path("tool"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    let cmd = [
        "-o",
        "out",
        "--",
        "sh",
        "-c",
        "mkdir -p out; cp tool out/; echo secret",
    ];
    ws.run(&cmd);
    let o = ws.run(&cmd);
    assert_eq!(stdout(&o), "secret\n", "{}", stderr(&o));
    assert_eq!(mode(&ws.cache), 0o700, "the cache directory");
    for name in ["idem.db", "hits.log", "init.lock"] {
        assert_eq!(mode(&ws.cache.join(name)), 0o600, "{name}");
    }
    let mut files = 0;
    let mut stack = vec![ws.cache.join("blobs"), ws.cache.join("locks")];
    while let Some(dir) = stack.pop() {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files += 1;
                assert_eq!(mode(&p), 0o600, "{}", p.display());
            }
        }
    }
    assert!(files >= 2, "stdout and the output file are blobs");
}

#[test]
fn a_cache_directory_owned_by_someone_else_is_not_used() {
    if !can_chown() {
        return;
    }
    let ws = Ws::new();
    std::fs::create_dir_all(&ws.cache).unwrap();
    chown_nobody(&ws.cache);
    let cmd = ["--", "sh", "-c", "echo run >> count; echo out"];
    for _ in 0..2 {
        let o = ws.run(&cmd);
        assert_eq!(o.status.code(), Some(0));
        assert_eq!(stdout(&o), "out\n");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "one warning: {err}");
        assert!(
            err.contains(&ws.cache.display().to_string()) && err.contains("chown"),
            "names the path and the fix: {err}"
        );
    }
    assert_eq!(ws.count("count"), 2, "ran uncached both times");
    assert!(!ws.cache.join("idem.db").exists(), "nothing written there");
    for sub in ["stats", "gc", "verify", "list"] {
        let o = ws.idem(&[sub]).output().unwrap();
        assert_ne!(o.status.code(), Some(0), "{sub}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{sub}: one line: {err}");
        assert!(err.contains("owned by uid 65534"), "{sub}: {err}");
    }
    let o = ws.idem(&["clear", "--yes"]).output().unwrap();
    assert_ne!(o.status.code(), Some(0));
}

#[test]
fn a_database_owned_by_someone_else_is_not_used() {
    if !can_chown() {
        return;
    }
    let ws = Ws::new();
    let cmd = ["--", "sh", "-c", "echo run >> count; echo out"];
    ws.run(&cmd);
    chown_nobody(&ws.cache.join("idem.db"));
    let o = ws.run(&cmd);
    assert_eq!(stdout(&o), "out\n");
    assert!(
        stderr(&o).contains("idem.db is owned by uid 65534"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        ws.count("count"),
        2,
        "not replayed from someone else's database"
    );
}

#[test]
fn a_cache_directory_others_can_write_is_not_used() {
    let ws = Ws::new();
    let cmd = ["--", "sh", "-c", "echo run >> count; echo out"];
    ws.run(&cmd);
    std::fs::set_permissions(&ws.cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = ws.run(&cmd);
    assert_eq!(stdout(&o), "out\n");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("writable by group and others") && err.contains("chmod go-w"),
        "{err}"
    );
    assert_eq!(ws.count("count"), 2, "the record was not replayed");
    let o = ws.idem(&["stats"]).output().unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("chmod go-w"), "{}", stderr(&o));
    // Fixed as the message says, the cache works again.
    std::fs::set_permissions(&ws.cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    let o = ws.run(&cmd);
    assert_eq!(stderr(&o), "");
    assert_eq!(ws.count("count"), 2, "replayed");
}

#[test]
fn a_symlinked_hit_log_is_never_written_through() {
    let ws = Ws::new();
    let cmd = ["--", "echo", "out"];
    ws.run(&cmd);
    ws.write("victim", "precious\n");
    let log = ws.cache.join("hits.log");
    let _ = std::fs::remove_file(&log);
    std::os::unix::fs::symlink(ws.path("victim"), &log).unwrap();
    let o = ws.run(&cmd);
    assert_eq!(stdout(&o), "out\n", "the hit is still replayed");
    assert_eq!(ws.read("victim"), b"precious\n");
}

#[test]
fn a_symlinked_init_lock_never_creates_its_target() {
    let ws = Ws::new();
    std::fs::create_dir_all(&ws.cache).unwrap();
    std::os::unix::fs::symlink(ws.path("created"), ws.cache.join("init.lock")).unwrap();
    let o = ws.run(&["--", "echo", "out"]);
    assert_eq!(stdout(&o), "out\n");
    assert!(!ws.path("created").exists(), "{}", stderr(&o));
}

#[test]
fn a_symlinked_lock_file_is_never_written_through() {
    let ws = Ws::new();
    // Learn the lock file's name while the command holds it.
    let mut child = ws
        .idem(&["run", "--", "sh", "-c", "echo started; read x; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "started\n");
    let locks: Vec<_> = std::fs::read_dir(ws.cache.join("locks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(locks.len(), 1);
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(child.wait().unwrap().success());
    // The same lease again (--force), with a link planted where its lock file goes.
    ws.write("victim", "precious\n");
    std::os::unix::fs::symlink(ws.path("victim"), &locks[0]).unwrap();
    let o = ws
        .idem(&[
            "run",
            "--force",
            "--",
            "sh",
            "-c",
            "echo started; read x; echo done",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "started\ndone\n", "the command still runs");
    assert_eq!(ws.read("victim"), b"precious\n", "{}", stderr(&o));
}

fn corrupt_pages(db: &Path) {
    // Everything after the first page (schema and header stay readable).
    let len = std::fs::metadata(db).unwrap().len();
    let page = 65536;
    assert!(len > page, "a database of more than one page");
    let mut bytes = std::fs::read(db).unwrap();
    for b in &mut bytes[page as usize..] {
        *b = 0xde;
    }
    std::fs::write(db, bytes).unwrap();
}

#[test]
fn a_malformed_database_is_repaired_by_clear() {
    for (how, damage) in [
        (
            "garbage header",
            (|db: &Path| std::fs::write(db, b"not a database at all".repeat(100)).unwrap())
                as fn(&Path),
        ),
        ("malformed pages", corrupt_pages),
    ] {
        let ws = Ws::new();
        let cmd = ["--", "sh", "-c", "echo run >> count; echo out"];
        ws.run(&cmd);
        damage(&ws.cache.join("idem.db"));
        // A hit is answered from hot/ without opening the database; damage only shows
        // on the first run that needs it.
        let _ = std::fs::remove_dir_all(ws.cache.join("hot"));
        let o = ws.run(&cmd);
        assert_eq!(stdout(&o), "out\n", "{how}");
        assert!(
            stderr(&o).contains("idem clear --yes"),
            "{how}: says how to repair: {}",
            stderr(&o)
        );
        let o = ws.idem(&["clear", "--yes"]).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{how}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("moved it aside"),
            "{how}: {}",
            stderr(&o)
        );
        let aside = std::fs::read_dir(&ws.cache)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("idem.db.corrupt-")
            })
            .count();
        assert_eq!(aside, 1, "{how}: the damaged file is kept aside");
        ws.run(&cmd);
        let o = ws.run(&cmd);
        assert_eq!(stderr(&o), "", "{how}");
        assert_eq!(ws.count("count"), 3, "{how}: recorded and replayed afresh");
    }
}

#[test]
fn maintenance_commands_work_on_a_malformed_database() {
    for sub in ["gc", "verify", "stats"] {
        let ws = Ws::new();
        ws.run(&["--", "echo", "out"]);
        corrupt_pages(&ws.cache.join("idem.db"));
        let o = ws.idem(&[sub]).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{sub}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("moved it aside"),
            "{sub}: {}",
            stderr(&o)
        );
        let o = ws.idem(&[sub]).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{sub} again: {}", stderr(&o));
        assert!(!stderr(&o).contains("aside"), "{sub}: repaired once");
    }
}

#[test]
fn garbage_in_the_hit_log_costs_only_its_own_lines() {
    let ws = Ws::new();
    let cmd = ["--", "echo", "out"];
    ws.run(&cmd);
    ws.run(&cmd);
    ws.run(&cmd);
    let log = ws.cache.join("hits.log");
    let good = std::fs::read(&log).unwrap();
    assert_eq!(
        good.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        2
    );
    let mut damaged = b"\xff\xfe\x00 binary junk\n1 1 x 5 hits\n1 1 5 hits\n-1\n".to_vec();
    damaged.extend_from_slice(&good);
    damaged.extend_from_slice(b"1 1 123 4"); // a torn last write
    std::fs::write(&log, damaged).unwrap();
    let o = ws.idem(&["stats", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["hits"], 2, "{}", stdout(&o));
}

/// The database is the source of truth: once a damaged one is moved aside, what was
/// derived from it (hot files that answer hits without it, its hit log) goes with it.
#[test]
fn a_database_moved_aside_takes_its_hot_files_and_hit_log_along() {
    let ws = Ws::new();
    ws.write("in.txt", "one\n");
    let cmd = [
        "-v",
        "-f",
        "in.txt",
        "--",
        "sh",
        "-c",
        "echo run >> count; cat in.txt",
    ];
    ws.run(&cmd);
    crate::common::assert_hit(&ws.run(&cmd));
    assert!(ws.cache.join("hits.log").exists(), "the hit was logged");
    let db = ws.cache.join("idem.db");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(8192)
        .unwrap();
    let o = ws.idem(&["stats", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("moved it aside"), "{}", stderr(&o));
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        stats["hits"], 0,
        "the old database's hits are not folded in: {stats}"
    );
    let o = ws.idem(&["list"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("in.txt"), "no records: {}", stdout(&o));
    let o = ws.run(&cmd);
    crate::common::assert_miss(&o);
    assert_eq!(stdout(&o), "one\n");
    assert_eq!(
        ws.count("count"),
        2,
        "no hit from the old database's hot files"
    );
    crate::common::assert_hit(&ws.run(&cmd));
    assert_eq!(ws.count("count"), 2);
}
