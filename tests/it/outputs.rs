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
