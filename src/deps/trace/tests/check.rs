//! The Checker: fast path, racy re-hash, memo, listings, relocation, messages, refresh;
//! and the entry-list encoding.

use super::*;

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
