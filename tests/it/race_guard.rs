//! The race guard (engine/execute.rs): an outcome is recorded only when no input changed
//! while the command ran — by content, or touched and restored (its ctime is after the
//! run's start) — while outputs written during the run never block the record.

use crate::common::{assert_hit, assert_miss, stderr, stdout, Ws};

/// Writes NEW into its own declared input and puts the old content back before reading
/// it: the content is the same after the run, but the file changed while it ran (the
/// same as another process editing and restoring it mid-run, without timing).
const EDIT_AND_RESTORE: &[&str] = &[
    "-v",
    "-f",
    "aba.txt",
    "--",
    "sh",
    "-c",
    "echo run >> count; echo NEW > aba.txt; echo old > aba.txt; cat aba.txt",
];

#[test]
fn an_input_edited_and_restored_during_the_run_is_not_recorded() {
    let ws = Ws::new();
    ws.write("aba.txt", "old\n");
    let o = ws.run(EDIT_AND_RESTORE);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "old\n");
    let warnings: Vec<&str> = std::str::from_utf8(&o.stderr)
        .unwrap()
        .lines()
        .filter(|l| l.contains("warning"))
        .collect();
    assert_eq!(
        warnings,
        ["idem: warning: not recorded: input aba.txt changed while the command ran (touched, even if its content is back)"],
        "{}",
        stderr(&o)
    );
    assert_eq!(ws.read("aba.txt"), b"old\n");
    // The same command again is a miss: nothing was recorded.
    let o = ws.run(EDIT_AND_RESTORE);
    assert_miss(&o);
    assert_eq!(
        ws.count("count"),
        2,
        "the first outcome must not be recorded"
    );
}

#[test]
fn outputs_written_during_the_run_and_inputs_written_just_before_are_recorded() {
    let ws = Ws::new();
    ws.write("src/in.txt", "one\n");
    // The output lies inside the input directory: declared outputs are not inputs.
    let cmd = &[
        "-v",
        "-f",
        "src",
        "-o",
        "src/out.txt",
        "--",
        "sh",
        "-c",
        "echo run >> count; cat src/in.txt > src/out.txt; cat src/out.txt",
    ];
    let o = ws.run(cmd);
    assert!(!stderr(&o).contains("not recorded"), "{}", stderr(&o));
    assert_hit(&ws.run(cmd));
    // An input edited right before the run (a build step before this one) is recorded.
    ws.write("src/in.txt", "two\n");
    let o = ws.run(cmd);
    assert_eq!(stdout(&o), "two\n");
    assert!(!stderr(&o).contains("not recorded"), "{}", stderr(&o));
    let o = ws.run(cmd);
    assert_hit(&o);
    assert_eq!(stdout(&o), "two\n");
    assert_eq!(ws.count("count"), 2);
}
