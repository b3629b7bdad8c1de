//! Hot files (store/hot.rs): a hit is answered without opening the database, and a hot
//! file that disagrees with the database (stale after forget/gc/clear/verify, corrupt,
//! another task's) is never replayed.

use crate::common::{stderr, stdout, Ws};
use std::path::PathBuf;

const CMD: &[&str] = &[
    "-f",
    "in.txt",
    "--",
    "sh",
    "-c",
    "echo run >> count; cat in.txt",
];

fn hot_files(ws: &Ws, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(ws.cache.join("hot"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == ext));
    v.sort();
    v
}

fn setup() -> Ws {
    let ws = Ws::new();
    ws.write("in.txt", "one\n");
    let o = ws.run(CMD);
    assert_eq!(stdout(&o), "one\n", "{}", stderr(&o));
    assert_eq!(
        hot_files(&ws, "rec").len(),
        1,
        "the record wrote a hot file"
    );
    assert_eq!(
        hot_files(&ws, "stat").len(),
        1,
        "the stat cache is a hot file"
    );
    ws
}

fn assert_hit(ws: &Ws, runs: usize) {
    let o = ws.run(CMD);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "one\n");
    assert_eq!(stderr(&o), "");
    assert_eq!(ws.count("count"), runs);
}

#[test]
fn a_hit_never_opens_the_database() {
    let ws = setup();
    // No database at all in its place: only the hot files can answer.
    let db = ws.cache.join("idem.db");
    std::fs::rename(&db, ws.cache.join("moved.db")).unwrap();
    std::fs::create_dir(&db).unwrap();
    assert_hit(&ws, 1);
}

#[test]
fn a_missing_hot_file_is_rebuilt_from_the_database() {
    let ws = setup();
    std::fs::remove_dir_all(ws.cache.join("hot")).unwrap();
    assert_hit(&ws, 1);
    assert_eq!(hot_files(&ws, "rec").len(), 1, "rebuilt by the hit");
    assert_hit(&ws, 1);
}

#[test]
fn a_corrupt_hot_file_falls_back_to_the_database() {
    let ws = setup();
    for ext in ["rec", "stat"] {
        let path = &hot_files(&ws, ext)[0];
        let mut bytes = std::fs::read(path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        std::fs::write(path, &bytes).unwrap();
        assert_hit(&ws, 1);
        std::fs::write(path, &bytes[..mid]).unwrap();
        assert_hit(&ws, 1);
        std::fs::write(path, b"").unwrap();
        assert_hit(&ws, 1);
    }
    // An input change is still seen with the stat cache gone bad.
    ws.write("in.txt", "two\n");
    let o = ws.run(CMD);
    assert_eq!(stdout(&o), "two\n");
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn another_tasks_hot_file_is_never_replayed() {
    let ws = setup();
    let ours = hot_files(&ws, "rec")[0].clone();
    let other = &[
        "-f",
        "in.txt",
        "--",
        "sh",
        "-c",
        "echo other >> count; echo other",
    ];
    assert_eq!(stdout(&ws.run(other)), "other\n");
    let theirs: Vec<PathBuf> = hot_files(&ws, "rec")
        .into_iter()
        .filter(|p| *p != ours)
        .collect();
    // Our task's file replaced by the other task's (valid checksum, wrong task).
    std::fs::copy(&theirs[0], &ours).unwrap();
    assert_hit(&ws, 2);
}

#[test]
fn a_symlinked_hot_file_is_not_followed() {
    let ws = setup();
    let ours = hot_files(&ws, "rec")[0].clone();
    let elsewhere = ws.path("elsewhere.rec");
    std::fs::rename(&ours, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &ours).unwrap();
    assert_hit(&ws, 1);
    // The hit read the database and replaced the link with a private regular file.
    let md = std::fs::symlink_metadata(&ours).unwrap();
    assert!(md.file_type().is_file());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(md.permissions().mode() & 0o777, 0o600);
}

/// A command without output: its record needs no blob, so a stale hot entry would be
/// replayable (no missing blob would give it away).
const SILENT: &[&str] = &["-f", "in.txt", "--", "sh", "-c", "echo run >> count"];

/// Runs an idem maintenance command, then checks that the hit it must have undone is
/// not replayed from a stale hot file: the command runs again.
fn after_maintenance_the_command_runs(args: &[&str]) {
    let ws = Ws::new();
    ws.write("in.txt", "one\n");
    ws.run(SILENT);
    ws.run(SILENT);
    assert_eq!(ws.count("count"), 1);
    let o = ws.idem(args).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    ws.run(SILENT);
    assert_eq!(ws.count("count"), 2, "{args:?} left a hot file behind");
}

#[test]
fn forget_invalidates_the_hot_file() {
    let mut args = vec!["forget"];
    args.extend_from_slice(SILENT);
    after_maintenance_the_command_runs(&args);
}

#[test]
fn gc_invalidates_the_hot_file() {
    after_maintenance_the_command_runs(&["gc", "--max-size", "0"]);
}

#[test]
fn clear_invalidates_the_hot_file() {
    after_maintenance_the_command_runs(&["clear", "--yes"]);
}

#[test]
fn verify_drops_hot_files_that_disagree_with_the_database() {
    let ws = setup();
    // The database loses the record behind idem's back; the hot file still has it.
    let conn = rusqlite::Connection::open(ws.cache.join("idem.db")).unwrap();
    conn.execute_batch("DELETE FROM record_blobs; DELETE FROM records;")
        .unwrap();
    drop(conn);
    let o = ws.idem(&["verify"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(hot_files(&ws, "rec").is_empty());
    let o = ws.run(CMD);
    assert_eq!(stdout(&o), "one\n");
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn status_and_explain_agree_with_a_hot_hit() {
    let ws = setup();
    let mut args = vec!["status"];
    args.extend_from_slice(CMD);
    assert_eq!(ws.idem(&args).output().unwrap().status.code(), Some(0));
    let mut args = vec!["forget"];
    args.extend_from_slice(CMD);
    assert!(ws.idem(&args).output().unwrap().status.success());
    let mut args = vec!["status"];
    args.extend_from_slice(CMD);
    assert_eq!(ws.idem(&args).output().unwrap().status.code(), Some(1));
}

#[test]
fn a_rerecorded_state_replaces_its_hot_entry() {
    let ws = setup();
    // --force records the same state afresh (a new record id); the hot file must name
    // the new record, not the deleted one.
    let mut forced = vec!["--force"];
    forced.extend_from_slice(CMD);
    ws.run(&forced);
    assert_eq!(ws.count("count"), 2);
    let conn = rusqlite::Connection::open(ws.cache.join("idem.db")).unwrap();
    let id: i64 = conn
        .query_row("SELECT id FROM records", [], |r| r.get(0))
        .unwrap();
    drop(conn);
    let mut args = vec!["status", "-v"];
    args.extend_from_slice(CMD);
    let o = ws.idem(&args).output().unwrap();
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains(&format!("hit: record {id}")), "{all}");
    assert_hit(&ws, 2);
}

/// A hot record file the database no longer backs (the task was forgotten), put back
/// with a valid checksum for this very task: `meddle` makes it someone else's (or
/// writable by others). It must read as absent — the command runs — never be replayed.
fn a_planted_record_file_is_not_replayed(meddle: impl Fn(&std::path::Path)) {
    let ws = Ws::new();
    ws.write("in.txt", "one\n");
    ws.run(SILENT);
    let planted = hot_files(&ws, "rec")[0].clone();
    let saved = std::fs::read(&planted).unwrap();
    let mut forget = vec!["forget"];
    forget.extend_from_slice(SILENT);
    assert!(ws.idem(&forget).output().unwrap().status.success());
    assert!(!planted.exists(), "forget removed the hot file");
    std::fs::write(&planted, &saved).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o600)).unwrap();
    meddle(&planted);
    let o = ws.run(SILENT);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 2, "the planted hot file was replayed");
    // The run recorded afresh and replaced the planted file with one of its own.
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(&planted).unwrap();
    assert_eq!(md.uid(), unsafe { libc::geteuid() });
    assert_eq!(md.mode() & 0o777, 0o600);
    ws.run(SILENT);
    assert_eq!(ws.count("count"), 2, "and replays it");
}

#[test]
fn a_hot_file_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    for mode in [0o620, 0o602] {
        a_planted_record_file_is_not_replayed(|p| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        });
    }
}

#[test]
fn a_hot_file_owned_by_someone_else_is_not_used() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("CI").is_none(),
            "this test chowns a file to nobody: CI runs it as root"
        );
        eprintln!("skipping: chown to another user needs root");
        return;
    }
    a_planted_record_file_is_not_replayed(|p| {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap()
    });
}
