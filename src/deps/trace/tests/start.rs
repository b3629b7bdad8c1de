//! `run_start_ns`: every file changed before it is older, every file changed after it
//! is at or after it, including files the kernel stamps ahead of the coarse clock
//! (multigrain timestamps, Linux 6.13+).

use super::*;

fn changed_ns(p: &Path) -> i64 {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(p).unwrap();
    let ns = |s: i64, n: i64| s * 1_000_000_000 + n;
    ns(md.mtime(), md.mtime_nsec()).max(ns(md.ctime(), md.ctime_nsec()))
}

/// Written twice within a tick with its times read in between: the second write takes
/// a fine timestamp where the kernel has them.
fn edit(p: &Path, content: &str) {
    std::fs::write(p, "old").unwrap();
    std::fs::metadata(p).unwrap();
    std::fs::write(p, content).unwrap();
}

#[test]
fn the_start_splits_changes_before_and_after_it() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("clock");
    let (before, after) = (d.path().join("before"), d.path().join("after"));
    let mut strictly_older = 0;
    for round in 0..50 {
        edit(&before, &format!("{round}"));
        let start = run_start_ns(&marker);
        edit(&after, &format!("{round}"));
        let (b, a) = (changed_ns(&before), changed_ns(&after));
        // A change after the start must never look older (a change during the run
        // would go unnoticed and its pre-run state would be recorded).
        assert!(
            a >= start,
            "round {round}: changed after at {a} < start {start}"
        );
        // Before it: never newer. Equal is possible only on a kernel without fine
        // timestamps, in the very tick of the start (an edit in that tick cannot be
        // told from one during the run: the run is not recorded, which is safe).
        assert!(
            b <= start,
            "round {round}: changed before at {b} > start {start}"
        );
        if b < start {
            strictly_older += 1;
        }
    }
    // With fine timestamps the start is strictly newer every time; with coarse ones an
    // edit and the start share a tick at most now and then, never in every round. The
    // coarse clock alone (the start before this test) fails this on Linux 6.13+.
    assert!(strictly_older > 0, "every edit looked as new as the start");
    let _ = std::fs::remove_file(&marker);
}

#[test]
fn an_unwritable_marker_falls_back_to_the_coarse_clock() {
    let d = tempfile::tempdir().unwrap();
    let before = crate::clock::real_now_ns();
    let start = run_start_ns(&d.path().join("missing-dir").join("clock"));
    // The coarse clock lags the fine one by at most a few ticks.
    assert!(start <= crate::clock::real_now_ns());
    assert!(start > before - 1_000_000_000, "{start} vs {before}");
}
