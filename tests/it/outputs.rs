//! Integration tests for output files (`-o`): capture on success, all-or-nothing
//! restore on a hit, modes, symlinks, inode reuse, make, tampering and corruption.

use crate::common::{stderr, Ws};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, SystemTime};

const BUILD: &[&str] = &[
    "-f", "src/", "-o", "out/", "--", "sh", "-c",
    "echo run >> count; mkdir -p out/sub; cat src/* > out/app; echo lib > out/sub/lib.a; \
     chmod 755 out/app; echo secret > out/key; chmod 600 out/key; ln -sf app out/link; mkdir -p out/empty",
];

#[test]
fn outputs_come_back_after_deletion_with_modes_and_symlinks() {
    let ws = Ws::new();
    ws.write("src/a.c", "A");
    assert!(ws.run(BUILD).status.success());
    std::fs::remove_dir_all(ws.path("out")).unwrap();
    let o = ws.run(BUILD);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 1, "the command must not run again");
    assert_eq!(ws.read("out/app"), b"A");
    assert_eq!(ws.read("out/sub/lib.a"), b"lib\n");
    let mode = |p: &str| std::fs::symlink_metadata(ws.path(p)).unwrap().mode() & 0o777;
    assert_eq!(mode("out/app"), 0o755);
    assert_eq!(mode("out/key"), 0o600);
    assert_eq!(mode("out/sub/lib.a"), 0o644);
    let link = std::fs::symlink_metadata(ws.path("out/link")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(ws.path("out/link")).unwrap().to_str(),
        Some("app")
    );
    assert!(
        ws.path("out/empty").is_dir(),
        "empty directories are outputs too"
    );
}

#[test]
fn matching_file_keeps_its_inode_and_gets_a_fresh_mtime() {
    let ws = Ws::new();
    ws.write("src/a.c", "A");
    ws.run(BUILD);
    let old = SystemTime::now() - Duration::from_secs(3600);
    let f = std::fs::File::options()
        .write(true)
        .open(ws.path("out/app"))
        .unwrap();
    f.set_modified(old).unwrap();
    drop(f);
    let ino = std::fs::metadata(ws.path("out/app")).unwrap().ino();
    std::fs::remove_file(ws.path("out/sub/lib.a")).unwrap();
    ws.run(BUILD);
    assert_eq!(ws.count("count"), 1);
    let md = std::fs::metadata(ws.path("out/app")).unwrap();
    assert_eq!(
        md.ino(),
        ino,
        "a file with the right content is not rewritten"
    );
    assert!(
        md.modified().unwrap() > old + Duration::from_secs(3000),
        "but its mtime is now"
    );
    assert_eq!(ws.read("out/sub/lib.a"), b"lib\n");
}

#[test]
fn make_clean_then_make_restores_without_running_the_compiler() {
    let ws = Ws::new();
    if crate::common::require_binary("make").is_none() {
        return;
    }
    ws.write("main.c", "int main(){return 0;}\n");
    let idem = crate::common::idem_bin();
    ws.write(
        "Makefile",
        format!(
            "IDEM = IDEM_CACHE_DIR={cache} {idem}\n\
             build/app: main.c\n\
             \t$(IDEM) run -f main.c -o build/app -- sh -c 'echo cc >> compiles; mkdir -p build; cp main.c build/app'\n\
             clean:\n\trm -rf build\n",
            cache = ws.cache.display(),
            idem = idem.display()
        ),
    );
    let make = |args: &[&str]| {
        std::process::Command::new("make")
            .args(args)
            .current_dir(ws.root())
            .output()
            .unwrap()
    };
    assert!(make(&[]).status.success());
    assert!(make(&["clean"]).status.success());
    assert!(!ws.path("build/app").exists());
    let o = make(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        ws.count("compiles"),
        1,
        "make clean && make must restore, not compile"
    );
    assert_eq!(ws.read("build/app"), ws.read("main.c"));
    // make considers the restored target up to date (fresh mtime).
    let q = make(&["-q", "build/app"]);
    assert_eq!(q.status.code(), Some(0));
}

fn tamper_outputs(ws: &Ws, f: impl Fn(&mut Vec<idem::store::record::OutputEntry>)) {
    let conn = rusqlite::Connection::open(ws.cache.join("idem.db")).unwrap();
    let (id, data): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT id, data FROM records ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let mut rec = idem::store::record::Record::decode(&data).unwrap();
    f(&mut rec.outputs);
    conn.execute(
        "UPDATE records SET data=?1 WHERE id=?2",
        rusqlite::params![rec.encode(), id],
    )
    .unwrap();
    // The tampered row must be what the next hit reads: drop the hot files (rebuilt from
    // the database by that hit).
    std::fs::remove_dir_all(ws.cache.join("hot")).unwrap();
}

#[test]
fn tampered_manifest_escaping_the_root_writes_nothing_and_runs() {
    let ws = Ws::new();
    ws.write("src/a.c", "A");
    ws.run(BUILD);
    let victim = ws
        .root()
        .parent()
        .unwrap()
        .join(format!("idem-escape-{}", std::process::id()));
    let rel = format!("../{}", victim.file_name().unwrap().to_str().unwrap());
    tamper_outputs(&ws, |outs| {
        if let Some(idem::store::record::OutputEntry::File { path, .. }) = outs
            .iter_mut()
            .find(|e| matches!(e, idem::store::record::OutputEntry::File { .. }))
        {
            *path = rel.clone().into_bytes();
        }
    });
    std::fs::remove_dir_all(ws.path("out")).unwrap();
    let o = ws.run(BUILD);
    assert!(o.status.success());
    assert!(!victim.exists(), "nothing may be written outside the root");
    assert!(stderr(&o).contains("escape"), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 2, "the command runs instead");
}

#[test]
fn corrupted_blob_runs_the_command_and_the_cache_heals() {
    let ws = Ws::new();
    ws.write("src/a.c", vec![b'x'; 100_000]);
    ws.run(BUILD);
    let hash = blake3::hash(&vec![b'x'; 100_000]).to_hex().to_string();
    let blob = ws.cache.join("blobs").join(&hash[..2]).join(&hash[2..]);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[500] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    std::fs::remove_dir_all(ws.path("out")).unwrap();
    let o = ws.run(BUILD);
    assert!(o.status.success());
    assert!(stderr(&o).contains("corrupt"), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 2);
    assert_eq!(ws.read("out/app"), vec![b'x'; 100_000]);
    std::fs::remove_dir_all(ws.path("out")).unwrap();
    let o = ws.run(BUILD);
    assert_eq!(
        stderr(&o),
        "",
        "healed: the re-recorded outcome replays cleanly"
    );
    assert_eq!(ws.count("count"), 2);
    assert_eq!(ws.read("out/app"), vec![b'x'; 100_000]);
}

/// `-o build/` where build is a symlink to a directory outside the workspace: the link
/// is the output (restoring through it could write anywhere), and the user is told that
/// the files written through it are not recorded.
#[test]
fn an_output_that_is_a_symlink_to_a_directory_warns_that_only_the_link_is_recorded() {
    let ws = Ws::new();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), ws.path("build")).unwrap();
    let cmd = ["-o", "build/", "--", "sh", "-c", "echo made > build/x.txt"];
    let o = ws.run(&cmd);
    assert!(o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("'build/' is a symlink to the directory")
            && err.contains("only the link is recorded")
            && err.contains("outside the workspace"),
        "{err}"
    );
    // Inside the workspace, the hint names the target to declare instead.
    std::fs::create_dir(ws.path("real")).unwrap();
    std::os::unix::fs::symlink("real", ws.path("alias")).unwrap();
    let o = ws.run(&["-o", "alias", "--", "sh", "-c", "echo made > alias/y.txt"]);
    assert!(
        stderr(&o).contains("declare its target (-o real/)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_output_is_a_warning_and_restores_nothing() {
    let ws = Ws::new();
    let cmd = ["-o", "never/", "--", "sh", "-c", "echo run >> count"];
    let o = ws.run(&cmd);
    assert!(o.status.success());
    assert!(stderr(&o).contains("matched nothing"), "{}", stderr(&o));
    let o = ws.run(&cmd);
    assert_eq!(ws.count("count"), 1);
    assert!(!ws.path("never").exists());
    assert_eq!(stderr(&o), "");
}

#[test]
fn clean_outputs_removes_stale_extras_only_when_asked() {
    let ws = Ws::new();
    ws.write("src/a.c", "A");
    ws.run(BUILD);
    ws.write("out/stale.o", "old");
    ws.run(BUILD);
    assert!(
        ws.path("out/stale.o").exists(),
        "extras are left alone by default"
    );
    let mut with_clean = vec!["--clean-outputs"];
    with_clean.extend_from_slice(BUILD);
    ws.run(&with_clean);
    ws.run(&with_clean);
    assert!(!ws.path("out/stale.o").exists());
    assert!(ws.path("out/app").exists());
}

#[test]
fn glob_outputs() {
    let ws = Ws::new();
    let cmd = ["-o", "build/*.o", "--", "sh", "-c", "echo run >> count; mkdir -p build; echo 1 > build/a.o; echo 2 > build/b.o; echo x > build/keep.txt"];
    ws.run(&cmd);
    std::fs::remove_dir_all(ws.path("build")).unwrap();
    ws.run(&cmd);
    assert_eq!(ws.count("count"), 1);
    assert_eq!(ws.read("build/a.o"), b"1\n");
    assert_eq!(ws.read("build/b.o"), b"2\n");
    assert!(
        !ws.path("build/keep.txt").exists(),
        "only matching files are outputs"
    );
}

#[test]
fn outputs_inside_an_input_directory_are_not_inputs() {
    let ws = Ws::new();
    ws.write("proj/src.c", "A");
    let cmd = [
        "-f",
        "proj/",
        "-o",
        "proj/out.bin",
        "--",
        "sh",
        "-c",
        "echo run >> count; cat proj/src.c > proj/out.bin; date +%N >> proj/out.bin",
    ];
    let o = ws.run(&cmd);
    assert_eq!(
        stderr(&o),
        "",
        "writing a declared output is not an input change"
    );
    ws.run(&cmd);
    assert_eq!(ws.count("count"), 1);
}

#[test]
fn large_output_is_restored_with_bounded_memory() {
    let ws = Ws::new();
    let Some(time) = crate::common::require_binary("time") else {
        return;
    };
    let cmd = [
        "-o",
        "big.bin",
        "--",
        "sh",
        "-c",
        "echo run >> count; head -c 200000000 /dev/zero | tr '\\0' 'z' > big.bin",
    ];
    ws.run(&cmd);
    std::fs::remove_file(ws.path("big.bin")).unwrap();
    let out = std::process::Command::new(time)
        .arg("-f")
        .arg("%M")
        .arg(crate::common::idem_bin())
        .arg("run")
        .args(cmd)
        .current_dir(ws.root())
        .env("IDEM_CACHE_DIR", &ws.cache)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(ws.count("count"), 1);
    assert_eq!(
        std::fs::metadata(ws.path("big.bin")).unwrap().len(),
        200_000_000
    );
    let peak_kb: u64 = stderr(&out).trim().lines().last().unwrap().parse().unwrap();
    assert!(
        peak_kb < 64 * 1024,
        "restoring 200 MB used {peak_kb} KB of memory"
    );
}

#[test]
fn output_modes_survive_umask_and_replace_existing_files() {
    let ws = Ws::new();
    let cmd = [
        "-o",
        "f.sh",
        "--",
        "sh",
        "-c",
        "echo run >> count; echo '#!/bin/sh' > f.sh; chmod 750 f.sh",
    ];
    ws.run(&cmd);
    ws.write("f.sh", "garbage");
    std::fs::set_permissions(ws.path("f.sh"), std::fs::Permissions::from_mode(0o600)).unwrap();
    ws.run(&cmd);
    assert_eq!(ws.count("count"), 1);
    assert_eq!(ws.read("f.sh"), b"#!/bin/sh\n");
    assert_eq!(
        std::fs::metadata(ws.path("f.sh")).unwrap().mode() & 0o777,
        0o750
    );
}

// ---- Hardening: restores confined to the declared outputs, whoever wrote the record.

/// The blob file that holds `content` in this workspace's cache.
fn blob_path(ws: &Ws, content: &[u8]) -> std::path::PathBuf {
    let hash = blake3::hash(content).to_hex().to_string();
    ws.cache.join("blobs").join(&hash[..2]).join(&hash[2..])
}

fn mtime_ns(p: &std::path::Path) -> i128 {
    let md = std::fs::symlink_metadata(p).unwrap();
    md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128
}

#[test]
fn an_output_touched_on_restore_is_never_newer_than_a_file_written_after() {
    // make compares mtimes: a source saved right after a restore must look newer than
    // the restored target. The wall clock runs ahead of the kernel's file-timestamp
    // clock, so "now" must come from the kernel (UTIME_NOW), not from SystemTime::now().
    let ws = Ws::new();
    let cmd = [
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "echo run >> count; echo x > out.txt",
    ];
    assert!(ws.run(&cmd).status.success());
    for round in 0..50 {
        let o = ws.run(&cmd);
        assert!(o.status.success(), "{}", stderr(&o));
        // A new file each round: an inode never stat'ed gets the coarse clock.
        let later = format!("later-{round}.c");
        ws.write(&later, "int x;");
        let (out, later) = (mtime_ns(&ws.path("out.txt")), mtime_ns(&ws.path(&later)));
        assert!(
            out <= later,
            "round {round}: the restored output ({out}) is newer than a file written after it ({later})"
        );
    }
    assert_eq!(ws.count("count"), 1, "every round was a restore");
}

#[test]
fn clean_outputs_never_follows_a_recorded_symlink_out_of_the_workspace() {
    let ws = Ws::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("precious"), "keep me").unwrap();
    let script = format!(
        "echo run >> count; ln -sfn {} out",
        outside.path().display()
    );
    let cmd = ["--clean-outputs", "-o", "out", "--", "sh", "-c", &script];
    assert!(ws.run(&cmd).status.success());
    let o = ws.run(&cmd);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 1, "the symlink itself is restored");
    assert!(std::fs::symlink_metadata(ws.path("out"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read(outside.path().join("precious")).unwrap(),
        b"keep me",
        "--clean-outputs must not clean what a recorded link points to"
    );
}

#[test]
fn a_symlink_planted_where_a_directory_was_recorded_is_not_replayed_through() {
    let ws = Ws::new();
    // The command itself stays out of a linked out/ (exit 3), so whatever lands behind
    // the link was put there by idem.
    let cmd = [
        "--clean-outputs", "-o", "out/", "--", "sh", "-c",
        "echo run >> count; if [ -L out ]; then exit 3; fi; mkdir -p out/sub; echo A > out/app; echo lib > out/sub/lib.a",
    ];
    assert!(ws.run(&cmd).status.success());
    // Someone replaces out/ by a link to another directory of the workspace.
    std::fs::remove_dir_all(ws.path("out")).unwrap();
    ws.write("elsewhere/precious", "keep me");
    std::os::unix::fs::symlink("elsewhere", ws.path("out")).unwrap();
    let o = ws.run(&cmd);
    let through: Vec<_> = std::fs::read_dir(ws.path("elsewhere"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        through,
        ["precious"],
        "nothing is written or cleaned through the link"
    );
    assert!(
        stderr(&o).contains("out is a symlink where the record has a directory"),
        "{}",
        stderr(&o)
    );
    assert_eq!(o.status.code(), Some(3), "cannot replay: the command runs");
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn a_record_cannot_write_outside_the_declared_outputs() {
    let ws = Ws::new();
    ws.write("src/a.c", "A");
    assert!(ws.run(BUILD).status.success());
    tamper_outputs(&ws, |outs| {
        let Some(idem::store::record::OutputEntry::File { blob, .. }) = outs
            .iter()
            .find(|e| matches!(e, idem::store::record::OutputEntry::File { .. }))
            .cloned()
        else {
            panic!("the record has a file");
        };
        outs.push(idem::store::record::OutputEntry::Dir {
            path: b".git/hooks".to_vec(),
            mode: 0o755,
        });
        outs.push(idem::store::record::OutputEntry::File {
            path: b".git/hooks/pre-commit".to_vec(),
            mode: 0o4755,
            blob,
        });
    });
    std::fs::remove_dir_all(ws.path("out")).unwrap();
    let o = ws.run(BUILD);
    assert!(o.status.success());
    assert!(
        !ws.path(".git/hooks").exists(),
        "a path no -o declares is never restored"
    );
    assert!(
        stderr(&o).contains("no -o of this task declares"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        stderr(&o).matches("idem:").count(),
        1,
        "one warning: {}",
        stderr(&o)
    );
    assert_eq!(ws.count("count"), 2, "a refused record is a miss");
}

#[test]
fn a_record_listing_one_path_as_a_directory_and_a_link_is_refused() {
    let ws = Ws::new();
    ws.write("src/a.c", "A");
    let outside = tempfile::tempdir().unwrap();
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(ws.run(BUILD).status.success());
    let target = outside.path().as_os_str().as_encoded_bytes().to_vec();
    tamper_outputs(&ws, |outs| {
        outs.push(idem::store::record::OutputEntry::Dir {
            path: b"out/d".to_vec(),
            mode: 0o700,
        });
        outs.push(idem::store::record::OutputEntry::Symlink {
            path: b"out/d".to_vec(),
            target: target.clone(),
        });
    });
    std::fs::remove_dir_all(ws.path("out")).unwrap();
    let o = ws.run(BUILD);
    assert!(o.status.success());
    assert_eq!(
        std::fs::metadata(outside.path()).unwrap().mode() & 0o7777,
        0o755,
        "no mode is ever applied through a link"
    );
    assert!(stderr(&o).contains("twice"), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 2, "a refused record is a miss");
    assert!(
        !ws.path("out/d").exists(),
        "nothing of the refused record is restored"
    );
}

#[test]
fn setuid_and_setgid_bits_are_neither_cached_nor_restored() {
    let ws = Ws::new();
    let cmd = [
        "-v",
        "-o",
        "out/",
        "--",
        "sh",
        "-c",
        "echo run >> count; mkdir -p out; echo tool > out/tool; chmod 6755 out/tool",
    ];
    assert!(ws.run(&cmd).status.success());
    let blob_mode = std::fs::metadata(blob_path(&ws, b"tool\n")).unwrap().mode();
    assert_eq!(blob_mode & 0o6000, 0, "the cached blob is {blob_mode:o}");
    std::fs::remove_dir_all(ws.path("out")).unwrap();
    let o = ws.run(&cmd);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 1);
    assert_eq!(ws.read("out/tool"), b"tool\n");
    let mode = |ws: &Ws| std::fs::metadata(ws.path("out/tool")).unwrap().mode() & 0o7777;
    assert_eq!(mode(&ws), 0o755);
    assert!(
        stderr(&o).contains("without its setuid/setgid bits"),
        "{}",
        stderr(&o)
    );
    // Already in place with the right content: the bits are dropped too.
    std::fs::set_permissions(ws.path("out/tool"), std::fs::Permissions::from_mode(0o6755)).unwrap();
    assert!(ws.run(&cmd).status.success());
    assert_eq!(ws.count("count"), 1);
    assert_eq!(mode(&ws), 0o755);
}

fn leftovers(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().as_encoded_bytes().starts_with(b".idem-") {
            found.push(e.path());
        }
        if e.file_type().unwrap().is_dir() && e.file_name() != ".git" {
            leftovers(&e.path(), found);
        }
    }
}

#[test]
fn an_interrupted_restore_leaves_no_temporaries_and_restores_nothing() {
    // strace delivers SIGTERM exactly when idem enters its 100th copy_file_range (about
    // the 50th file staged of a thousand): mid-restore, without any timing.
    let Some(strace) = crate::common::require_binary("strace") else {
        return;
    };
    let ws = Ws::new();
    let cmd = [
        "-o",
        "out/",
        "--",
        "sh",
        "-c",
        "echo run >> count; mkdir out; for i in $(seq 1000 1999); do echo f$i > out/f$i; done",
    ];
    assert!(ws.run(&cmd).status.success());
    std::fs::remove_dir_all(ws.path("out")).unwrap();
    let mut traced = std::process::Command::new(strace);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IDEM_") {
            traced.env_remove(name);
        }
    }
    let status = traced
        .args(["-o", "/dev/null", "-f", "-e", "trace=copy_file_range"])
        .args(["-e", "inject=copy_file_range:signal=SIGTERM:when=100", "--"])
        .arg(crate::common::idem_bin())
        .arg("run")
        .args(cmd)
        .current_dir(ws.root())
        .env("IDEM_CACHE_DIR", &ws.cache)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.signal() == Some(libc::SIGTERM) || status.code() == Some(128 + libc::SIGTERM),
        "idem must die of the SIGTERM: {status:?}"
    );
    let mut found = Vec::new();
    leftovers(ws.root(), &mut found);
    assert!(
        found.is_empty(),
        "temporaries left behind: {} of them, e.g. {:?}",
        found.len(),
        found.first()
    );
    assert!(
        !ws.path("out").exists(),
        "an interrupted restore restores nothing"
    );
    assert_eq!(ws.count("count"), 1);
    // A later --force records exactly what the command produced.
    let mut forced = vec!["--force"];
    forced.extend_from_slice(&cmd);
    assert!(ws.run(&forced).status.success());
    let conn = rusqlite::Connection::open(ws.cache.join("idem.db")).unwrap();
    let data: Vec<u8> = conn
        .query_row(
            "SELECT data FROM records ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let rec = idem::store::record::Record::decode(&data).unwrap();
    assert_eq!(
        rec.outputs.len(),
        1 + 1000,
        "out/ and its thousand files, nothing else"
    );
}
