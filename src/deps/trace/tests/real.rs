//! findings() and the Checker on what the real tracer saw (sh, gcc).

use super::*;

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

/// The headline case on the real tracer and gcc: a header that appears earlier
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
