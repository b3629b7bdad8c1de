//! `trace_check [--iters N]`: the cost of checking traced entry lists (the hit path of a
//! traced record, docs/trace.md §1) against a plain loop of `lstat` over the same paths,
//! as a ratio. Two sets: the entries of a real traced `gcc -c` (when gcc exists) and a
//! 1,000-entry set of system headers and directories (reads, probes, absent names,
//! listings). For docs/benchmarks.md; not installed, never a test.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use idem::deps::trace::{findings, Check, Checker, Entry, TraceOpts};

use idem::spec::Workspace;
use idem::trace::{Access, Inputs, TraceLog};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let iters: usize = match args.as_slice() {
        [flag, n] if flag == "--iters" => n.parse().unwrap_or(200),
        _ => 200,
    };
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path().canonicalize().expect("canonical tempdir");
    let ws = Workspace {
        root: root.clone(),
        cwd: root.clone(),
    };
    if let Some(entries) = gcc_set(&ws) {
        report("gcc -c (real traced set)", &ws, &entries, iters);
    } else {
        println!("gcc not found: the real-compile row is skipped");
    }
    let entries = header_set(&ws);
    report("1,000 system paths", &ws, &entries, iters);
}

fn opts<'a>(ws: &'a Workspace, ignore: &'a globset::GlobSet) -> TraceOpts<'a> {
    TraceOpts {
        ws,
        ignore,
        started_ns: idem::deps::trace::run_start_ns(&ws.root.join(".clock")),
    }
}

/// The entries of `gcc -O1 -c` of a file including five system headers and a local one.
fn gcc_set(ws: &Workspace) -> Option<Vec<Entry>> {
    let gcc = ["/usr/bin/gcc", "/usr/bin/cc"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())?;
    let r = &ws.root;
    std::fs::create_dir_all(r.join("include")).ok()?;
    std::fs::write(r.join("include/common.h"), "#define COMMON 1\n").ok()?;
    std::fs::write(
        r.join("unit.c"),
        "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <math.h>\n\
         #include <errno.h>\n#include \"common.h\"\n\
         int unit(int c) { char b[64]; snprintf(b, sizeof b, \"%d %f\", c, sqrt(c)); \
         return (int)strlen(b) + COMMON + errno; }\n",
    )
    .ok()?;
    // Sources are older than a clock tick when they are compiled (the racy rule would
    // otherwise re-hash them on every check, as it must for files that just changed).
    std::thread::sleep(Duration::from_millis(250));
    let argv: Vec<OsString> = ["gcc", "-O1", "-Iinclude", "-c", "unit.c", "-o", "unit.o"]
        .iter()
        .map(OsString::from)
        .collect();
    // Twice: the first run finds unit.o missing, the second records the set that
    // holds from then on (the sets converge, docs/trace.md §1).
    let mut entries = None;
    for _ in 0..2 {
        let mut cmd = idem::trace::TraceCommand::new(&gcc, argv.clone());
        cmd.cwd = Some(r.clone());
        let started = idem::deps::trace::run_start_ns(&r.join(".clock"));
        let traced = idem::trace::trace(cmd, &idem::trace::TraceOptions::default()).ok()?;
        let ignore = globset::GlobSet::empty();
        let mut o = opts(ws, &ignore);
        o.started_ns = started;
        let f = findings(&traced.log, &o).ok()?;
        if !f.unrecordable.is_empty() {
            println!("gcc run unrecordable: {:?}", f.unrecordable);
            return None;
        }
        entries = Some(f.entries);
    }
    entries
}

/// 700 header reads, 150 absent names next to them, 100 probes, 50 listed directories.
fn header_set(ws: &Workspace) -> Vec<Entry> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    collect(Path::new("/usr/include"), &mut files, &mut dirs, 1_000);
    let mut log = TraceLog::default();
    let mut add = |p: &Path, k| log.record(1, p.to_path_buf(), Access::Input(k));
    for f in files.iter().take(700) {
        add(f, Inputs::READ);
    }
    for f in files.iter().skip(700).take(100) {
        add(f, Inputs::PROBE);
    }
    for f in files.iter().take(150) {
        let mut missing = f.clone().into_os_string();
        missing.push(".missing");
        add(Path::new(&missing), Inputs::ABSENT);
    }
    for d in dirs.iter().take(50) {
        add(d, Inputs::LISTING);
    }
    let ignore = globset::GlobSet::empty();
    let f = findings(&log, &opts(ws, &ignore)).expect("findings");
    assert!(f.unrecordable.is_empty(), "{:?}", f.unrecordable);
    f.entries
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>, want: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    dirs.push(dir.to_path_buf());
    for e in entries {
        if files.len() >= want {
            return;
        }
        match e.file_type() {
            Ok(t) if t.is_file() => files.push(e.path()),
            Ok(t) if t.is_dir() => collect(&e.path(), files, dirs, want),
            _ => {}
        }
    }
}

/// This thread's CPU time: unlike wall time, it does not count the time a loaded
/// machine kept us off the CPU.
fn cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the pointer it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn report(what: &str, ws: &Workspace, entries: &[Entry], iters: usize) {
    let paths: Vec<PathBuf> = entries.iter().map(|e| ws.path_of(&e.dep.name)).collect();
    // Wall and CPU time of each, interleaved: a check, then the lstat loop.
    let (mut checks, mut lstats) = (Vec::new(), Vec::new());
    let (mut checks_cpu, mut lstats_cpu) = (Vec::new(), Vec::new());
    let mut agains = Vec::new();
    let mut work = Default::default();
    for i in 0..iters + 5 {
        let (t, cpu) = (Instant::now(), cpu_now());
        let mut c = Checker::new(ws);
        let res = c.check(entries);
        let (d, dc) = (t.elapsed(), cpu_now() - cpu);
        if let Check::Changed(c) = &res {
            panic!("{what}: the set must hold, but {c}");
        }
        work = c.work();
        // A second set naming the same paths, in the same lookup: memoised.
        let cpu2 = cpu_now();
        std::hint::black_box(c.check(entries));
        let again = cpu_now() - cpu2;
        let (t, cpu) = (Instant::now(), cpu_now());
        let mut n = 0usize;
        for p in &paths {
            n += std::fs::symlink_metadata(p).is_ok() as usize;
        }
        let (l, lc) = (t.elapsed(), cpu_now() - cpu);
        std::hint::black_box(n);
        if i >= 5 {
            checks.push(d);
            lstats.push(l);
            checks_cpu.push(dc);
            lstats_cpu.push(lc);
            agains.push(again);
        }
    }
    let (c, l) = (median(checks), median(lstats));
    let (cc, lc) = (median(checks_cpu), median(lstats_cpu));
    let kinds = |k: &str| entries.iter().filter(|e| e.dep.kind.label() == k).count();
    println!(
        "{what}: {} entries ({} file, {} program, {} path, {} absent, {} dir, {} link); \
         wall: check {:.0} µs, {} lstat {:.0} µs, ratio {:.2}; \
         CPU: check {:.0} µs, lstat {:.0} µs, ratio {:.2}; the same set again in the same \
         lookup {:.0} µs; hashed {}, listed {} per check",
        entries.len(),
        kinds("file"),
        kinds("program"),
        kinds("path"),
        kinds("absent"),
        kinds("dir"),
        kinds("link"),
        c.as_secs_f64() * 1e6,
        paths.len(),
        l.as_secs_f64() * 1e6,
        c.as_secs_f64() / l.as_secs_f64(),
        cc.as_secs_f64() * 1e6,
        lc.as_secs_f64() * 1e6,
        cc.as_secs_f64() / lc.as_secs_f64(),
        median(agains).as_secs_f64() * 1e6,
        work.hashed,
        work.listed,
    );
}
