//! findings(): the first-access rule, the strongest kind, listings, races, keys, noise.

use super::*;

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
    // Not recordable (a replay would not delete d/old), but the listing is still right.
    assert_eq!(f.unrecordable.len(), 1, "{:?}", f.unrecordable);
    assert!(f.unrecordable[0].starts_with("deleted d/old"));
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

#[test]
fn missing_through_a_path_and_present_as_itself_must_be_a_dangling_symlink() {
    let (_d, ws) = workspace();
    let r = &ws.root;
    std::os::unix::fs::symlink("nowhere", r.join("dangling")).unwrap();
    write(&r.join("plain"), "p");
    let mut log = TraceLog::default();
    for p in ["dangling", "plain"] {
        input(&mut log, &r.join(p), Inputs::ABSENT);
        input(&mut log, &r.join(p), Inputs::PROBE_NOFOLLOW);
    }
    let f = run(&log, &ws, started_now());
    assert_eq!(state_of(&f, "dangling"), "both:absent <- symlink:nowhere");
    assert_eq!(
        f.unrecordable,
        vec!["plain was both missing and present while the command ran".to_string()]
    );
}

#[test]
fn deleting_a_file_that_existed_before_the_run_is_unrecordable() {
    // A replay restores outputs but never deletes: recording `rm old` would leave `old`
    // in place on every hit.
    let (_d, ws) = workspace();
    let r = &ws.root;
    let mut log = TraceLog::default();
    wrote(&mut log, &r.join("old"), Writes::REMOVED); // existed: unlink succeeded
    wrote(&mut log, &r.join("tmp"), Writes::CREATED);
    wrote(&mut log, &r.join("tmp"), Writes::REMOVED); // its own temporary: fine
    let f = run(&log, &ws, started_now());
    assert_eq!(f.unrecordable.len(), 1, "{:?}", f.unrecordable);
    assert!(
        f.unrecordable[0].contains("deleted old"),
        "{:?}",
        f.unrecordable
    );
}

#[test]
fn a_write_through_a_symlink_makes_its_target_an_output_or_a_side_effect() {
    // The tracer names the link; the bytes land on its target, which a hit must restore
    // (inside the workspace) or at least list (outside it).
    let (_d, ws) = workspace();
    let r = &ws.root;
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path().canonicalize().unwrap();
    write(&r.join("real.txt"), "new");
    std::os::unix::fs::symlink("real.txt", r.join("alias")).unwrap();
    write(&out.join("far"), "new");
    std::os::unix::fs::symlink(out.join("far"), r.join("esc")).unwrap();
    let mut log = TraceLog::default();
    wrote(&mut log, &r.join("alias"), Writes::TRUNCATED);
    wrote(&mut log, &r.join("esc"), Writes::CREATED);
    let f = run(&log, &ws, started_now());
    assert!(f.unrecordable.is_empty(), "{:?}", f.unrecordable);
    assert_eq!(
        f.outputs,
        vec![b"alias".to_vec(), b"esc".to_vec(), b"real.txt".to_vec()]
    );
    assert_eq!(f.side_effects, vec![out.join("far")]);
}
