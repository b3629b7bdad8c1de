//! `trace [--no-readlink] [--summary FILE] -- CMD ARGS...`: runs CMD under idem's tracer with inherited
//! stdio and exits as it did; with --summary, writes counts and every input/output path
//! to FILE. For bench/trace.sh and for looking at what a command touches; not installed.

use std::ffi::OsString;
use std::io::Write;

use idem::trace::{self, Exit, Inputs, TraceCommand, TraceOptions};

fn main() {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut summary: Option<OsString> = None;
    let mut opts = TraceOptions::default();
    if args.first().is_some_and(|a| a == "--no-readlink") {
        opts.trace_readlink = false;
        args.remove(0);
    }
    if args.first().is_some_and(|a| a == "--summary") && args.len() > 1 {
        summary = Some(args.remove(1));
        args.remove(0);
    }
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    }
    if args.is_empty() {
        eprintln!("usage: trace [--no-readlink] [--summary FILE] -- CMD ARGS...");
        std::process::exit(2);
    }
    let cmd = TraceCommand::new(args[0].clone(), args.clone());
    let traced = match trace::trace(cmd, &opts) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("trace: {e}");
            std::process::exit(if matches!(e, trace::TraceError::Spawn(_)) {
                127
            } else {
                70
            });
        }
    };
    if let Some(path) = summary {
        if let Err(e) = write_summary(&path, &traced) {
            eprintln!("trace: writing the summary: {e}");
        }
    }
    match traced.exit {
        Exit::Code(c) => std::process::exit(c),
        Exit::Signal { signal, .. } => std::process::exit(128 + signal),
    }
}

fn write_summary(path: &OsString, t: &trace::Traced) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let log = &t.log;
    let count = |k: Inputs| log.paths.values().filter(|u| u.inputs.contains(k)).count();
    writeln!(f, "stops {}", log.stops)?;
    writeln!(f, "events {}", log.events.len())?;
    writeln!(f, "paths {}", log.paths.len())?;
    for (name, k) in [
        ("read", Inputs::READ),
        ("probe", Inputs::PROBE),
        ("probe_nofollow", Inputs::PROBE_NOFOLLOW),
        ("absent", Inputs::ABSENT),
        ("listing", Inputs::LISTING),
        ("link", Inputs::LINK),
        ("exec", Inputs::EXEC),
    ] {
        writeln!(f, "{name} {}", count(k))?;
    }
    writeln!(f, "written {}", log.written().count())?;
    for u in &log.unknowable {
        writeln!(f, "unknowable {:?}", u.reason)?;
    }
    for (p, u) in &log.paths {
        writeln!(
            f,
            "path {:?} inputs={:#x} writes={:#x}",
            p, u.inputs.0, u.writes.0
        )?;
    }
    f.flush()
}
