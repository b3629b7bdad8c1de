//! The subtle rules of traced entries, on real temporary files and hand-built logs (and
//! one run of the real tracer): first access, strongest kind, listings without the
//! command's own names, races, keys, the fast path and its racy rule, relocation.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::*;
use crate::encode::{Decoder, Encoder};
use crate::spec::Workspace;
use crate::trace::{Access, Inputs, Reason, TraceLog, Writes};

fn workspace() -> (tempfile::TempDir, Workspace) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().canonicalize().unwrap();
    (
        d,
        Workspace {
            root: root.clone(),
            cwd: root,
        },
    )
}

fn write(p: &Path, content: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// A start after every write so far: the fine clock is never behind a file timestamp.
fn started_now() -> i64 {
    crate::clock::real_now_ns() + 1
}

fn run(log: &TraceLog, ws: &Workspace, started_ns: i64) -> Findings {
    run_ignoring(log, ws, started_ns, &GlobSet::empty())
}

fn run_ignoring(log: &TraceLog, ws: &Workspace, started_ns: i64, ignore: &GlobSet) -> Findings {
    findings(
        log,
        &TraceOpts {
            ws,
            ignore,
            started_ns,
        },
    )
    .unwrap()
}

fn input(log: &mut TraceLog, p: &Path, k: Inputs) {
    log.record(1, p.to_path_buf(), Access::Input(k));
}

fn wrote(log: &mut TraceLog, p: &Path, w: Writes) {
    log.record(1, p.to_path_buf(), Access::Write(w));
}

fn entry<'a>(f: &'a Findings, key: &str) -> &'a Entry {
    f.entries
        .iter()
        .find(|e| e.dep.name == key.as_bytes())
        .unwrap_or_else(|| panic!("no entry {key}: {:#?}", f.entries))
}

fn state_of(f: &Findings, key: &str) -> String {
    String::from_utf8_lossy(&entry(f, key).dep.state).into_owned()
}

/// The fingerprints as if recorded long after every change: the fast path applies.
fn settled(entries: &[Entry]) -> Vec<Entry> {
    entries
        .iter()
        .cloned()
        .map(|mut e| {
            if e.fp.mode != 0 {
                e.fp.observed_at_ns = e.fp.mtime_ns.max(e.fp.ctime_ns) + 10_000_000_000;
            }
            e
        })
        .collect()
}

fn changed(c: Check) -> String {
    match c {
        Check::Changed(c) => c.to_string(),
        Check::Unchanged => panic!("expected a change"),
    }
}

#[test]
fn first_access_a_write_is_an_output_or_a_temporary_never_an_input() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path().canonicalize().unwrap();
    let mut log = TraceLog::default();
    write(&r.join("out.o"), "obj");
    wrote(&mut log, &r.join("out.o"), Writes::CREATED);
    input(&mut log, &r.join("out.o"), Inputs::READ); // its own doing
    wrote(&mut log, &r.join("tmp"), Writes::CREATED);
    wrote(&mut log, &r.join("tmp"), Writes::REMOVED);
    wrote(&mut log, &out.join("tmp.x"), Writes::CREATED);
    wrote(&mut log, &out.join("tmp.x"), Writes::REMOVED);
    write(&out.join("log"), "x");
    wrote(&mut log, &out.join("log"), Writes::CREATED);
    let f = run(&log, &ws, started_now());
    assert!(f.entries.is_empty(), "{:#?}", f.entries);
    assert_eq!(f.outputs, vec![b"out.o".to_vec()]);
    assert_eq!(f.side_effects, vec![out.join("log")]);
    assert!(f.unrecordable.is_empty(), "{:?}", f.unrecordable);
}

#[test]
fn the_strongest_input_kind_wins() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("a.h"), "a");
    write(&r.join("tool"), "#!/bin/sh\n");
    std::fs::set_permissions(
        r.join("tool"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    write(&r.join("d/x"), "x");
    write(&r.join("p"), "pp");
    std::os::unix::fs::symlink("a.h", r.join("l")).unwrap();
    let mut log = TraceLog::default();
    input(&mut log, &r.join("a.h"), Inputs::PROBE);
    input(&mut log, &r.join("a.h"), Inputs::READ);
    input(&mut log, &r.join("a.h"), Inputs::PROBE_NOFOLLOW);
    input(&mut log, &r.join("tool"), Inputs::READ);
    input(&mut log, &r.join("tool"), Inputs::EXEC);
    input(&mut log, &r.join("d"), Inputs::READ); // opened without O_DIRECTORY
    input(&mut log, &r.join("d"), Inputs::LISTING);
    input(&mut log, &r.join("d"), Inputs::PROBE);
    input(&mut log, &r.join("l"), Inputs::PROBE_NOFOLLOW);
    input(&mut log, &r.join("l"), Inputs::LINK);
    input(&mut log, &r.join("p"), Inputs::PROBE);
    input(&mut log, &r.join("d/x"), Inputs::PROBE_NOFOLLOW);
    let f = run(&log, &ws, started_now());
    assert!(f.unrecordable.is_empty(), "{:?}", f.unrecordable);
    let kinds: Vec<(Kind, &[u8])> = f
        .entries
        .iter()
        .map(|e| (e.dep.kind, e.dep.name.as_slice()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (Kind::TraceRead, &b"a.h"[..]),
            (Kind::TraceProbe, b"d/x"),
            (Kind::TraceProbe, b"p"),
            (Kind::TraceListing, b"d"),
            (Kind::TraceLink, b"l"),
            (Kind::TraceExec, b"tool"),
        ],
        "one per path, sorted by (kind, name)"
    );
    let hex = |s: &str| blake3::hash(s.as_bytes()).to_hex().to_string();
    assert_eq!(state_of(&f, "a.h"), format!("blake3:{}", hex("a")));
    assert_eq!(
        state_of(&f, "tool"),
        format!("blake3:{}+x", hex("#!/bin/sh\n"))
    );
    assert_eq!(state_of(&f, "l"), "lstat:symlink:a.h");
    let p = state_of(&f, "p");
    assert!(p.starts_with("stat:file size=2 mode=644 mtime="), "{p}");
    assert!(state_of(&f, "d/x").starts_with("lstat:file size=1"));
}

#[test]
fn a_directory_read_or_probed_is_only_a_directory() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("d/x"), "x");
    let mut log = TraceLog::default();
    input(&mut log, &r.join("d"), Inputs::READ);
    let f = run(&log, &ws, started_now());
    assert_eq!(entry(&f, "d").dep.kind, Kind::TraceProbe);
    assert_eq!(state_of(&f, "d"), "stat:dir");
    // Its entries changing does not matter, only that it is a directory.
    write(&r.join("d/y"), "y");
    assert_eq!(Checker::new(&ws).check(&f.entries), Check::Unchanged);
    std::fs::remove_dir_all(r.join("d")).unwrap();
    write(&r.join("d"), "now a file");
    assert_eq!(
        changed(Checker::new(&ws).check(&f.entries)),
        "path d changed"
    );
}

#[test]
fn read_then_rewritten_is_unrecordable_but_read_and_left_alone_is_an_input() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("log.txt"), "one\n");
    write(&r.join("same.txt"), "same\n");
    let started = started_now();
    let mut log = TraceLog::default();
    input(&mut log, &r.join("log.txt"), Inputs::READ);
    wrote(&mut log, &r.join("log.txt"), Writes::MODIFIED);
    // Appended to during the run: its content before the run is gone.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(r.join("log.txt"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"two\n").unwrap();
    f.set_modified(
        std::time::SystemTime::UNIX_EPOCH
            + std::time::Duration::from_nanos(started as u64 + 1_000_000_000),
    )
    .unwrap();
    // Opened for writing but left as it was (its stat predates the run).
    input(&mut log, &r.join("same.txt"), Inputs::READ);
    wrote(&mut log, &r.join("same.txt"), Writes::MODIFIED);
    let f = run(&log, &ws, started);
    assert_eq!(
        f.unrecordable,
        vec!["read, then wrote log.txt: its content before the run is gone".to_string()]
    );
    assert_eq!(
        state_of(&f, "same.txt"),
        format!("blake3:{}", blake3::hash(b"same\n").to_hex())
    );
    assert!(f.outputs.contains(&b"same.txt".to_vec()));
}

#[test]
fn probed_then_written_keeps_only_existence_and_kind() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("main.o"), "old");
    write(&r.join("dest"), "new");
    let mut log = TraceLog::default();
    // gcc probes its output, then truncates it: the same inode, so its kind counts.
    input(&mut log, &r.join("main.o"), Inputs::PROBE);
    wrote(&mut log, &r.join("main.o"), Writes::TRUNCATED);
    // mv stats its destination, then renames over it: only that it existed counts.
    input(&mut log, &r.join("dest"), Inputs::PROBE_NOFOLLOW);
    wrote(&mut log, &r.join("dest"), Writes::RENAMED_INTO);
    // Looked for, missing, then created.
    write(&r.join("new.o"), "n");
    input(&mut log, &r.join("new.o"), Inputs::ABSENT);
    wrote(&mut log, &r.join("new.o"), Writes::CREATED);
    let f = run(&log, &ws, started_now());
    assert!(f.unrecordable.is_empty(), "{:?}", f.unrecordable);
    assert_eq!(state_of(&f, "main.o"), "stat:file");
    assert_eq!(state_of(&f, "dest"), "lstat:exists");
    assert_eq!(state_of(&f, "new.o"), "absent");
    assert_eq!(entry(&f, "new.o").dep.kind, Kind::TraceAbsent);
    assert_eq!(
        f.outputs,
        vec![b"dest".to_vec(), b"main.o".to_vec(), b"new.o".to_vec()]
    );
    // The next run sees the outputs of this one: main.o and dest still match (their
    // mtimes and sizes never counted), new.o appeared.
    write(&r.join("main.o"), "rebuilt, longer");
    let msg = changed(Checker::new(&ws).check(&f.entries));
    assert_eq!(msg, "file new.o appeared");
    let without_new: Vec<Entry> = f
        .entries
        .iter()
        .filter(|e| e.dep.name != b"new.o")
        .cloned()
        .collect();
    assert_eq!(Checker::new(&ws).check(&without_new), Check::Unchanged);
}

#[test]
fn a_listing_leaves_out_what_the_command_created() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("src/a.c"), "a");
    std::fs::create_dir(r.join("src/sub")).unwrap();
    let before = {
        let mut log = TraceLog::default();
        input(&mut log, &r.join("src"), Inputs::LISTING);
        run(&log, &ws, started_now())
    };
    // The command lists src/, then creates src/a.o: the pre-run listing is recorded.
    let mut log = TraceLog::default();
    input(&mut log, &r.join("src"), Inputs::LISTING);
    write(&r.join("src/a.o"), "o");
    wrote(&mut log, &r.join("src/a.o"), Writes::CREATED);
    let f = run(&log, &ws, started_now());
    assert!(f.unrecordable.is_empty(), "{:?}", f.unrecordable);
    assert_eq!(state_of(&f, "src"), state_of(&before, "src"));
    // Before this run a.o was not there: now that it is, a real run could differ.
    assert_eq!(
        changed(Checker::new(&ws).check(&f.entries)),
        "dir src/ listing changed"
    );
    // A name written before the listing is left out for good (the command will write it
    // again before it lists, whatever was there): the state says so.
    let mut log = TraceLog::default();
    wrote(&mut log, &r.join("src/a.o"), Writes::TRUNCATED);
    input(&mut log, &r.join("src"), Inputs::LISTING);
    let f = run(&log, &ws, started_now());
    assert!(
        state_of(&f, "src").ends_with("/-a.o"),
        "{}",
        state_of(&f, "src")
    );
    std::fs::remove_file(r.join("src/a.o")).unwrap();
    assert_eq!(Checker::new(&ws).check(&f.entries), Check::Unchanged);
    write(&r.join("src/b.c"), "b");
    assert_eq!(
        changed(Checker::new(&ws).check(&f.entries)),
        "dir src/ listing changed"
    );
}

#[test]
fn a_listed_name_removed_by_the_command_still_counts_as_there_before() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("d/old"), "o");
    write(&r.join("d/keep"), "k");
    let before = {
        let mut log = TraceLog::default();
        input(&mut log, &r.join("d"), Inputs::LISTING);
        run(&log, &ws, started_now())
    };
    let mut log = TraceLog::default();
    input(&mut log, &r.join("d"), Inputs::LISTING);
    wrote(&mut log, &r.join("d/old"), Writes::REMOVED);
    std::fs::remove_file(r.join("d/old")).unwrap();
    let f = run(&log, &ws, started_now());
    assert!(f.unrecordable.is_empty(), "{:?}", f.unrecordable);
    // Present with any kind (unlink does not say what it removed).
    assert!(
        state_of(&f, "d").ends_with("/?old"),
        "{}",
        state_of(&f, "d")
    );
    assert_ne!(state_of(&f, "d"), state_of(&before, "d"));
    assert_eq!(
        changed(Checker::new(&ws).check(&f.entries)),
        "dir d/ listing changed"
    );
    std::fs::create_dir(r.join("d/old")).unwrap();
    assert_eq!(Checker::new(&ws).check(&f.entries), Check::Unchanged);
    // Renamed over after the listing: whether it was there before is unknown.
    let mut log = TraceLog::default();
    input(&mut log, &r.join("d"), Inputs::LISTING);
    wrote(&mut log, &r.join("d/keep"), Writes::RENAMED_INTO);
    let f = run(&log, &ws, started_now());
    assert_eq!(f.unrecordable.len(), 1, "{:?}", f.unrecordable);
    assert!(f.unrecordable[0].contains("renamed over keep"));
}

#[test]
fn inputs_that_changed_while_the_command_ran_make_it_unrecordable() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("a.h"), "a");
    write(&r.join("d/x"), "x");
    let started = started_now();
    let mut log = TraceLog::default();
    input(&mut log, &r.join("a.h"), Inputs::READ);
    input(&mut log, &r.join("late.h"), Inputs::ABSENT);
    input(&mut log, &r.join("d"), Inputs::LISTING);
    input(&mut log, &r.join("gone"), Inputs::PROBE);
    input(&mut log, &r.join("flip"), Inputs::ABSENT);
    input(&mut log, &r.join("flip"), Inputs::READ);
    let quiet = run(&log, &ws, started);
    // Nothing moved, except that `gone` and `flip` were never there at all.
    assert_eq!(
        quiet.unrecordable,
        vec![
            "flip was both missing and present while the command ran".to_string(),
            "gone disappeared while the command ran".to_string(),
        ]
    );
    let later = std::time::SystemTime::UNIX_EPOCH
        + std::time::Duration::from_nanos(started as u64 + 1_000_000_000);
    std::fs::File::options()
        .append(true)
        .open(r.join("a.h"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    write(&r.join("late.h"), "appeared");
    write(&r.join("d/y"), "y");
    std::fs::File::open(r.join("d"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    let f = run(&log, &ws, started);
    for want in [
        "a.h changed while the command ran",
        "late.h was missing to the command but exists now",
        "dir d/ changed while the command ran",
    ] {
        assert!(
            f.unrecordable.contains(&want.to_string()),
            "{want}: {:?}",
            f.unrecordable
        );
    }
}

#[test]
fn workspace_paths_are_keys_and_others_absolute_and_ignore_globs_apply_to_both() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    let outside = tempfile::tempdir().unwrap();
    let o = outside.path().canonicalize().unwrap();
    write(&r.join("inc/v.h"), "v");
    write(&o.join("sys.h"), "s");
    write(&r.join("__pycache__/m.pyc"), "c");
    write(&o.join("skip/x"), "x");
    let mut log = TraceLog::default();
    for p in [
        r.join("inc/v.h"),
        o.join("sys.h"),
        r.join("__pycache__/m.pyc"),
        o.join("skip/x"),
    ] {
        input(&mut log, &p, Inputs::READ);
    }
    let mut b = GlobSetBuilder::new();
    b.add(Glob::new("**/__pycache__/**").unwrap());
    b.add(Glob::new(&format!("{}/skip/**", o.display())).unwrap());
    // A path through the root with `..` may lead anywhere: it keeps its absolute name,
    // and writing it is a side effect, never an output to restore under the root.
    let escaping = r
        .join("inc/../../")
        .join(o.file_name().unwrap())
        .join("sys.h");
    input(&mut log, &escaping, Inputs::PROBE);
    let escaping_out = r.join("inc/../out.txt");
    write(&escaping_out, "o");
    wrote(&mut log, &escaping_out, Writes::CREATED);
    let f = run_ignoring(&log, &ws, started_now(), &b.build().unwrap());
    assert!(f.outputs.is_empty(), "{:?}", f.outputs);
    assert_eq!(f.side_effects, vec![escaping_out]);
    let mut names: Vec<Vec<u8>> = f.entries.iter().map(|e| e.dep.name.clone()).collect();
    names.sort();
    let abs = o.join("sys.h").into_os_string().into_encoded_bytes();
    let esc = escaping.into_os_string().into_encoded_bytes();
    let mut want = vec![abs, b"inc/v.h".to_vec(), esc];
    want.sort();
    assert_eq!(names, want);
}

#[test]
fn an_unchanged_fingerprint_proves_a_file_unchanged_without_hashing() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("a.h"), "a");
    let mut log = TraceLog::default();
    input(&mut log, &r.join("a.h"), Inputs::READ);
    let f = run(&log, &ws, started_now());
    let mut entries = settled(&f.entries);
    // A wrong recorded hash with a trusted fingerprint: the fast path never looks.
    entries[0].dep.state = format!("blake3:{}", blake3::hash(b"other").to_hex()).into_bytes();
    let mut c = Checker::new(&ws);
    assert_eq!(c.check(&entries), Check::Unchanged);
    assert_eq!(c.work().hashed, 0);
    // Racy (observed within a tick of the file's change): hashed, and the lie is found.
    entries[0].fp.observed_at_ns = entries[0].fp.ctime_ns;
    let mut c = Checker::new(&ws);
    assert_eq!(changed(c.check(&entries)), "file a.h changed");
    assert_eq!(c.work().hashed, 1);
    // A touched file (new fingerprint) is hashed and still unchanged: states are
    // semantic.
    let entries = settled(&f.entries);
    std::fs::File::options()
        .append(true)
        .open(r.join("a.h"))
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    let mut c = Checker::new(&ws);
    assert_eq!(c.check(&entries), Check::Unchanged);
    assert_eq!(c.work().hashed, 1);
}

#[test]
fn a_path_shared_by_several_sets_is_hashed_once_per_checker() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("a.h"), "a");
    write(&r.join("b.h"), "b");
    let mut log = TraceLog::default();
    input(&mut log, &r.join("a.h"), Inputs::READ);
    input(&mut log, &r.join("b.h"), Inputs::READ);
    let f = run(&log, &ws, started_now());
    // Racy fingerprints: every check must hash, but only once per path.
    let mut c = Checker::new(&ws);
    for _ in 0..5 {
        assert_eq!(c.check(&f.entries), Check::Unchanged);
    }
    assert_eq!(c.work().hashed, 2);
}

#[test]
fn a_listing_is_read_again_only_when_the_directory_changed() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("d/a"), "a");
    let mut log = TraceLog::default();
    input(&mut log, &r.join("d"), Inputs::LISTING);
    let f = run(&log, &ws, started_now());
    let entries = settled(&f.entries);
    let mut c = Checker::new(&ws);
    assert_eq!(c.check(&entries), Check::Unchanged);
    assert_eq!(c.work().listed, 0);
    write(&r.join("d/b"), "b");
    let mut c = Checker::new(&ws);
    assert_eq!(changed(c.check(&entries)), "dir d/ listing changed");
    assert_eq!(c.work().listed, 1);
    // Removed again: the directory's stat changed, its listing did not.
    std::fs::remove_file(r.join("d/b")).unwrap();
    assert_eq!(Checker::new(&ws).check(&entries), Check::Unchanged);
}

#[test]
fn a_relocated_workspace_checks_unchanged() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("src/a.c"), "a");
    write(&r.join("inc/v.h"), "v");
    std::os::unix::fs::symlink("a.c", r.join("src/link")).unwrap();
    let mut log = TraceLog::default();
    input(&mut log, &r.join("src/a.c"), Inputs::READ);
    input(&mut log, &r.join("inc/v.h"), Inputs::PROBE);
    input(&mut log, &r.join("src"), Inputs::LISTING);
    input(&mut log, &r.join("src/link"), Inputs::LINK);
    input(&mut log, &r.join("inc/w.h"), Inputs::ABSENT);
    input(
        &mut log,
        &PathBuf::from("/nonexistent-idem-test/x"),
        Inputs::ABSENT,
    );
    let f = run(&log, &ws, started_now());
    assert!(f.unrecordable.is_empty(), "{:?}", f.unrecordable);
    assert_eq!(f.entries.len(), 6);
    // The same files under another root, copied (new inodes, new mtimes: every
    // fingerprint differs). A probe's mtime is part of its state: keep it.
    let (_d2, ws2) = workspace();
    let r2 = &ws2.root;
    write(&r2.join("src/a.c"), "a");
    write(&r2.join("inc/v.h"), "v");
    std::fs::File::options()
        .append(true)
        .open(r2.join("inc/v.h"))
        .unwrap()
        .set_modified(
            std::fs::metadata(r.join("inc/v.h"))
                .unwrap()
                .modified()
                .unwrap(),
        )
        .unwrap();
    std::os::unix::fs::symlink("a.c", r2.join("src/link")).unwrap();
    assert_eq!(Checker::new(&ws2).check(&f.entries), Check::Unchanged);
    write(&r2.join("inc/w.h"), "w");
    assert_eq!(
        changed(Checker::new(&ws2).check(&f.entries)),
        "file inc/w.h appeared"
    );
}

#[test]
fn change_messages_name_the_entry() {
    let dep = |kind, name: &str| DepState::new(kind, name, "blake3:00");
    let msg = |kind, name: &str, now: Option<&str>| {
        Change {
            dep: dep(kind, name),
            now: now.map(|n| n.as_bytes().to_vec()),
        }
        .to_string()
    };
    assert_eq!(
        msg(Kind::TraceAbsent, "inc1/v.h", Some("present file size=1")),
        "file inc1/v.h appeared"
    );
    assert_eq!(
        msg(Kind::TraceAbsent, "sub", Some("present dir")),
        "dir sub appeared"
    );
    assert_eq!(
        msg(Kind::TraceListing, "src", Some("listing:00")),
        "dir src/ listing changed"
    );
    assert_eq!(
        msg(Kind::TraceExec, "/usr/bin/cc", Some("blake3:11")),
        "program /usr/bin/cc changed"
    );
    assert_eq!(
        msg(Kind::TraceRead, "a.h", Some("blake3:11")),
        "file a.h changed"
    );
    assert_eq!(
        msg(Kind::TraceRead, "x.conf", None),
        "file x.conf disappeared"
    );
    assert_eq!(msg(Kind::TraceLink, "l", None), "link l disappeared");
}

#[test]
fn a_file_that_disappeared_says_so() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("x.conf"), "x");
    write(&r.join("p"), "p");
    let mut log = TraceLog::default();
    input(&mut log, &r.join("x.conf"), Inputs::READ);
    input(&mut log, &r.join("p"), Inputs::PROBE);
    let f = run(&log, &ws, started_now());
    std::fs::remove_file(r.join("x.conf")).unwrap();
    std::fs::remove_file(r.join("p")).unwrap();
    assert_eq!(
        changed(Checker::new(&ws).check(&f.entries)),
        "file x.conf disappeared"
    );
    assert_eq!(
        changed(Checker::new(&ws).check(&f.entries[1..])),
        "path p disappeared"
    );
}

#[test]
fn a_dangling_symlink_found_missing_must_stay_dangling() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    std::os::unix::fs::symlink("target.h", r.join("v.h")).unwrap();
    let mut log = TraceLog::default();
    input(&mut log, &r.join("v.h"), Inputs::ABSENT);
    let f = run(&log, &ws, started_now());
    assert!(f.unrecordable.is_empty(), "{:?}", f.unrecordable);
    assert_eq!(state_of(&f, "v.h"), "both:absent <- symlink:target.h");
    assert_eq!(Checker::new(&ws).check(&f.entries), Check::Unchanged);
    write(&r.join("target.h"), "t");
    assert_eq!(
        changed(Checker::new(&ws).check(&f.entries)),
        "file v.h appeared"
    );
}

#[test]
fn unknowable_reasons_are_phrases() {
    let (_d, ws) = workspace();
    let mut log = TraceLog::default();
    log.unknowable(1, Reason::InetSocket { family: 2 });
    log.unknowable(1, Reason::IoUring);
    log.unknowable(1, Reason::SetuidExec("/usr/bin/passwd".into()));
    let f = run(&log, &ws, started_now());
    assert_eq!(
        f.unrecordable,
        vec![
            "connected an inet socket (AF_INET)",
            "io_uring",
            "executed setuid /usr/bin/passwd"
        ]
    );
}

#[test]
fn entry_lists_roundtrip_and_malformed_ones_are_rejected() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("a"), "a");
    write(&r.join("d/x"), "x");
    let mut log = TraceLog::default();
    input(&mut log, &r.join("a"), Inputs::READ);
    input(&mut log, &r.join("d"), Inputs::LISTING);
    input(&mut log, &r.join("m"), Inputs::ABSENT);
    let f = run(&log, &ws, started_now());
    let mut e = Encoder::new();
    encode_entries(&mut e, &f.entries);
    let buf = e.finish();
    let back = decode_entries(&mut Decoder::new(&buf)).unwrap();
    assert_eq!(back, f.entries);
    for cut in 0..buf.len() {
        assert!(
            decode_entries(&mut Decoder::new(&buf[..cut])).is_err(),
            "cut {cut}"
        );
    }
    // A declared kind, an unknown version, an empty name: rejected.
    let mut bad = buf.clone();
    bad[16] = Kind::File as u8;
    assert!(decode_entries(&mut Decoder::new(&bad)).is_err());
    let mut bad = buf.clone();
    bad[0] = 9;
    assert!(decode_entries(&mut Decoder::new(&bad)).is_err());
    let mut e = Encoder::new();
    encode_entries(
        &mut e,
        &[Entry {
            dep: DepState::new(Kind::TraceRead, "", "x"),
            fp: Fingerprint::NONE,
        }],
    );
    assert!(decode_entries(&mut Decoder::new(&e.finish())).is_err());
}

/// The real tracer on a shell that reads, lists and probes: findings, then the checker.
#[test]
fn findings_of_a_real_traced_shell() {
    use std::ffi::OsString;
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("a"), "hello");
    write(&r.join("d/one"), "1");
    let started = started_now();
    let argv: Vec<OsString> = ["sh", "-c", "cat a; ls d; test -e missing"]
        .iter()
        .map(OsString::from)
        .collect();
    let mut cmd = crate::trace::TraceCommand::new("/bin/sh", argv);
    cmd.cwd = Some(r.clone());
    cmd.stdout = Some(std::fs::File::create("/dev/null").unwrap().into());
    let traced = match crate::trace::trace(cmd, &crate::trace::TraceOptions::default()) {
        Err(crate::trace::TraceError::Refused(why)) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: tracing refused here: {why}");
            return;
        }
        other => other.unwrap(),
    };
    assert_eq!(
        traced.exit,
        crate::trace::Exit::Code(1),
        "test -e missing fails"
    );
    let f = run(&traced.log, &ws, started);
    assert!(f.unrecordable.is_empty(), "{:?}", f.unrecordable);
    assert!(f.outputs.is_empty() && f.side_effects.is_empty(), "{f:#?}");
    assert_eq!(entry(&f, "a").dep.kind, Kind::TraceRead);
    assert_eq!(entry(&f, "d").dep.kind, Kind::TraceListing);
    assert_eq!(entry(&f, "missing").dep.kind, Kind::TraceAbsent);
    assert!(
        f.entries
            .iter()
            .any(|e| e.dep.kind == Kind::TraceExec && e.dep.name.ends_with(b"/cat")),
        "{:#?}",
        f.entries
    );
    assert_eq!(Checker::new(&ws).check(&f.entries), Check::Unchanged);
    write(&r.join("missing"), "now");
    assert_eq!(
        changed(Checker::new(&ws).check(&f.entries)),
        "file missing appeared"
    );
    std::fs::remove_file(r.join("missing")).unwrap();
    write(&r.join("d/two"), "2");
    assert_eq!(
        changed(Checker::new(&ws).check(&f.entries)),
        "dir d/ listing changed"
    );
}

#[test]
fn a_rehashed_unchanged_entry_gets_a_fingerprint_the_next_lookup_trusts() {
    // A system file, changed long ago (a fresh temp file stays racy for a clock tick).
    let (_d, ws) = workspace();
    let sh = Path::new("/bin/sh").canonicalize().unwrap();
    let mut log = TraceLog::default();
    input(&mut log, &sh, Inputs::READ);
    let f = run(&log, &ws, started_now());
    let mut entries = f.entries.clone();
    // As if recorded from another inode with the same content (a relocated checkout).
    entries[0].fp.ino ^= 1;
    let before = entries.clone();
    let mut c = Checker::new(&ws);
    assert_eq!(c.check(&entries), Check::Unchanged);
    assert_eq!(c.work().hashed, 1);
    assert!(c.refresh(&mut entries));
    assert_eq!(entries[0].dep, before[0].dep, "states never change");
    assert_eq!(entries[0].fp.ino, before[0].fp.ino ^ 1);
    let mut c = Checker::new(&ws);
    assert_eq!(c.check(&entries), Check::Unchanged);
    assert_eq!(c.work().hashed, 0, "the refreshed fingerprint is trusted");
    assert!(!c.refresh(&mut entries), "nothing left to refresh");
}

/// The issue's headline case on the real tracer and gcc: a header that appears earlier
/// in the include path is a change; the set recorded once main.o exists holds.
#[test]
fn gcc_with_a_shadowing_header() {
    use std::ffi::OsString;
    let Some(gcc) = ["/usr/bin/gcc", "/usr/local/bin/gcc"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    else {
        assert!(std::env::var_os("CI").is_none(), "gcc is needed in CI");
        eprintln!("skipped: no gcc");
        return;
    };
    let (_d, ws) = workspace();
    let r = &ws.root;
    std::fs::create_dir(r.join("inc1")).unwrap();
    write(&r.join("inc2/v.h"), "#define V 2\n");
    write(
        &r.join("main.c"),
        "#include \"v.h\"\nint v(void) { return V; }\n",
    );
    let argv: Vec<OsString> = ["gcc", "-Iinc1", "-Iinc2", "-c", "main.c", "-o", "main.o"]
        .iter()
        .map(OsString::from)
        .collect();
    let compile = || {
        let mut cmd = crate::trace::TraceCommand::new(&gcc, argv.clone());
        cmd.cwd = Some(r.clone());
        let started = started_now();
        let traced = crate::trace::trace(cmd, &crate::trace::TraceOptions::default()).unwrap();
        assert_eq!(traced.exit, crate::trace::Exit::Code(0));
        run(&traced.log, &ws, started)
    };
    let first = compile();
    assert!(first.unrecordable.is_empty(), "{:?}", first.unrecordable);
    assert_eq!(first.outputs, vec![b"main.o".to_vec()]);
    assert_eq!(state_of(&first, "main.o"), "absent");
    assert_eq!(entry(&first, "inc1/v.h").dep.kind, Kind::TraceAbsent);
    assert_eq!(entry(&first, "inc2/v.h").dep.kind, Kind::TraceRead);
    // main.o now exists: the first set misses on it, the second holds.
    assert_eq!(
        changed(Checker::new(&ws).check(&first.entries)),
        "file main.o appeared"
    );
    let second = compile();
    assert!(second.unrecordable.is_empty(), "{:?}", second.unrecordable);
    assert_eq!(Checker::new(&ws).check(&second.entries), Check::Unchanged);
    write(&r.join("inc1/v.h"), "#define V 1\n");
    assert_eq!(
        changed(Checker::new(&ws).check(&second.entries)),
        "file inc1/v.h appeared"
    );
    std::fs::remove_file(r.join("inc1/v.h")).unwrap();
    write(&r.join("inc2/v.h"), "#define V 3\n");
    assert_eq!(
        changed(Checker::new(&ws).check(&second.entries)),
        "file inc2/v.h changed"
    );
}

#[test]
fn recording_again_reuses_the_hash_of_a_file_whose_fingerprint_is_unchanged() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("big.dat"), "data");
    let mut log = TraceLog::default();
    input(&mut log, &r.join("big.dat"), Inputs::READ);
    let first = run(&log, &ws, started_now());
    let mut known = settled(&first.entries);
    // A lie with a trusted fingerprint is reused as is: proof that nothing was hashed.
    let lie = format!("blake3:{}", blake3::hash(b"other").to_hex()).into_bytes();
    known[0].dep.state = lie.clone();
    let opts = TraceOpts {
        ws: &ws,
        ignore: &GlobSet::empty(),
        started_ns: started_now(),
    };
    let again = findings_reusing(&log, &opts, &known).unwrap();
    assert_eq!(again.entries[0].dep.state, lie);
    // A racy known fingerprint is not trusted: hashed again, the truth recorded.
    let again = findings_reusing(&log, &opts, &first.entries).unwrap();
    assert_eq!(again.entries[0].dep.state, first.entries[0].dep.state);
    known[0].fp.observed_at_ns = known[0].fp.ctime_ns;
    let again = findings_reusing(&log, &opts, &known).unwrap();
    assert_eq!(again.entries[0].dep.state, first.entries[0].dep.state);
}

#[test]
fn a_program_losing_its_execute_bit_changed() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("tool.sh"), "#!/bin/sh\necho hi\n");
    std::fs::set_permissions(r.join("tool.sh"), PermissionsExt::from_mode(0o755)).unwrap();
    let mut log = TraceLog::default();
    input(&mut log, &r.join("tool.sh"), Inputs::EXEC);
    let f = run(&log, &ws, started_now());
    assert!(state_of(&f, "tool.sh").ends_with("+x"));
    assert_eq!(Checker::new(&ws).check(&f.entries), Check::Unchanged);
    std::fs::set_permissions(r.join("tool.sh"), PermissionsExt::from_mode(0o644)).unwrap();
    assert_eq!(
        changed(Checker::new(&ws).check(&f.entries)),
        "program tool.sh changed"
    );
}

#[test]
fn a_link_also_looked_up_through_keeps_where_it_leads() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("real.h"), "r");
    std::os::unix::fs::symlink("real.h", r.join("l.h")).unwrap();
    let mut log = TraceLog::default();
    input(&mut log, &r.join("l.h"), Inputs::LINK);
    input(&mut log, &r.join("l.h"), Inputs::PROBE);
    let f = run(&log, &ws, started_now());
    assert_eq!(entry(&f, "l.h").dep.kind, Kind::TraceLink);
    let st = state_of(&f, "l.h");
    assert!(
        st.starts_with("both:file size=1 ") && st.ends_with(" <- symlink:real.h"),
        "{st}"
    );
    assert_eq!(
        Checker::new(&ws).check(&settled(&f.entries)),
        Check::Unchanged
    );
    write(&r.join("real.h"), "longer");
    assert_eq!(
        changed(Checker::new(&ws).check(&settled(&f.entries))),
        "link l.h changed"
    );
}

#[test]
fn a_name_found_missing_then_created_is_not_in_the_listing_before_the_run() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    write(&r.join("d/a"), "a");
    let before = {
        let mut log = TraceLog::default();
        input(&mut log, &r.join("d"), Inputs::LISTING);
        run(&log, &ws, started_now())
    };
    let mut log = TraceLog::default();
    input(&mut log, &r.join("d/new"), Inputs::ABSENT);
    input(&mut log, &r.join("d"), Inputs::LISTING);
    write(&r.join("d/new"), "n");
    wrote(&mut log, &r.join("d/new"), Writes::CREATED);
    // Written in place after the listing: there before, with its kind.
    write(&r.join("d/a"), "rewritten");
    wrote(&mut log, &r.join("d/a"), Writes::TRUNCATED);
    let f = run(&log, &ws, started_now());
    assert!(f.unrecordable.is_empty(), "{:?}", f.unrecordable);
    assert_eq!(state_of(&f, "d"), state_of(&before, "d"));
    assert_eq!(state_of(&f, "d/new"), "absent");
}
