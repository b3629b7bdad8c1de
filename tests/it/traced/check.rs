//! `--trace=check`: the declared dependencies decide as without tracing; the trace only
//! reports the workspace inputs no `-f` covers, each with a spec that would, and
//! `--strict` turns such a finding into a failure.

use super::*;
use crate::common::{assert_hit, assert_miss, Ws};

fn project(ws: &Ws) {
    ws.write("src/main.c", "#include \"v.h\"\nint v = V;\n");
    ws.write("inc/v.h", "#define V 2\n");
    std::fs::create_dir(ws.path("inc0")).unwrap();
}

#[test]
fn check_names_undeclared_inputs_with_the_spec_that_covers_them() {
    let Some(gcc) = gcc() else { return };
    let gcc = gcc.to_str().unwrap();
    let ws = Ws::new();
    project(&ws);
    let cmd = [
        "--trace=check",
        "-v",
        "-f",
        "src/",
        "--",
        gcc,
        "-Iinc0",
        "-Iinc",
        "-E",
        "-P",
        "src/main.c",
    ];
    let o = ws.run(&cmd);
    assert!(o.status.success(), "exit code unchanged: {}", stderr(&o));
    assert_miss(&o);
    assert!(stdout(&o).contains("int v = 2;"));
    let err = stderr(&o);
    // Read but undeclared, with the -f that would cover it.
    let line = err
        .lines()
        .find(|l| l.contains("inc/v.h"))
        .unwrap_or_else(|| panic!("inc/v.h not reported:\n{err}"));
    assert!(
        err.contains("-f inc/v.h") || err.contains("-f inc/") || err.contains("-f 'inc/"),
        "no -f spec covering inc/v.h in the findings ({line}):\n{err}"
    );
    // Probed and absent, undeclared: its appearance would change the outcome.
    assert!(err.contains("inc0/v.h"), "inc0/v.h not reported:\n{err}");
    // Declared inputs and files outside the workspace are not findings.
    assert!(
        !err.lines().any(|l| l.contains("src/main.c")),
        "a declared input was reported:\n{err}"
    );
    assert!(
        !err.contains("/usr/"),
        "only workspace inputs are findings:\n{err}"
    );

    // The declared deps decide, as without tracing: an undeclared edit still hits.
    ws.write("inc/v.h", "#define V 3\n");
    let o = ws.run(&cmd);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_hit(&o);
    assert!(stdout(&o).contains("int v = 2;"));
}

#[test]
fn check_with_strict_fails_on_findings_and_passes_without() {
    let ws = Ws::new();
    ws.write("src/a.txt", "a\n");
    ws.write("cfg/settings", "s\n");
    let run = |specs: &[&str]| {
        let mut args = vec!["--trace=check", "--strict"];
        for s in specs {
            args.extend(["-f", s]);
        }
        args.extend(["--", "cat", "src/a.txt", "cfg/settings"]);
        ws.run(&args)
    };
    let o = run(&["src/"]);
    assert_eq!(
        o.status.code(),
        Some(5),
        "--strict fails with exit 5 on an undeclared input (docs/exit-codes.md); stderr:\n{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "a\ns\n", "the command still ran");
    assert!(stderr(&o).contains("cfg/settings"), "{}", stderr(&o));

    let o = run(&["src/", "cfg/"]);
    assert!(
        o.status.success(),
        "everything declared: --strict passes; stderr:\n{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "a\ns\n");
    assert!(!stderr(&o).contains("cfg/settings"), "{}", stderr(&o));
}
