//! The build-system scenario of issue 13: a small C project whose Makefile wraps every
//! compile in `idem run --trace` with no dependency declared. After `make clean` every
//! object is replayed (no compiler runs); after editing one header exactly the translation
//! units that include it, directly or through another header, are compiled again.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use super::*;
use crate::common::{idem_bin, Ws};

/// fd on which the compiler wrapper reports each compile: an inherited descriptor is
/// invisible to the tracer (no path is opened), so counting does not become an input.
const COUNT_FD: i32 = 9;

const MAKEFILE: &str = "\
OBJS = a.o b.o c.o main.o
prog: $(OBJS)
\tgcc -o prog $(OBJS)
%.o: %.c
\t$(IDEM) run --trace -v -- ./cc.sh -Iinclude -c $< -o $@
clean:
\trm -f $(OBJS) prog
";

fn project(ws: &Ws, gcc: &Path) {
    ws.write("Makefile", MAKEFILE);
    ws.write(
        "cc.sh",
        format!(
            "#!/bin/sh\necho \"$*\" >&{COUNT_FD}\nexec {} \"$@\"\n",
            gcc.display()
        ),
    );
    chmod_x(&ws.path("cc.sh"));
    ws.write("include/config.h", "#define SCALE 3\n");
    ws.write("include/common.h", "#include \"config.h\"\n#define ADD 1\n");
    ws.write("include/other.h", "#define OTHER 5\n");
    // a.c includes config.h directly, b.c through common.h, c.c and main.c not at all.
    ws.write(
        "a.c",
        "#include \"config.h\"\nint a(void) { return SCALE; }\n",
    );
    ws.write(
        "b.c",
        "#include \"common.h\"\nint b(void) { return SCALE + ADD; }\n",
    );
    ws.write(
        "c.c",
        "#include \"other.h\"\nint c(void) { return OTHER; }\n",
    );
    ws.write(
        "main.c",
        "#include <stdio.h>\nint a(void); int b(void); int c(void);\n\
         int main(void) { printf(\"%d %d %d\\n\", a(), b(), c()); return 0; }\n",
    );
}

/// `make ARGS` in the workspace with this workspace's cache; the wrapper's compile
/// lines are appended to `counter`.
fn make(ws: &Ws, counter: &File, args: &[&str]) -> Output {
    let mut c = Command::new("make");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("IDEM_") {
            c.env_remove(name);
        }
    }
    c.args(args)
        .arg(format!("IDEM={}", idem_bin().display()))
        .current_dir(ws.root())
        .env("IDEM_CACHE_DIR", &ws.cache)
        .stdin(std::process::Stdio::null());
    let fd = counter.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe; `fd` stays open in the parent until spawn returns.
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(fd, COUNT_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = c.output().expect("run make");
    assert!(
        o.status.success(),
        "make {args:?} failed; stderr:\n{}",
        stderr(&o)
    );
    o
}

/// Compile lines the wrapper reported since the last call.
fn compiles(log: &Path, seen: &mut usize) -> Vec<String> {
    let all: Vec<String> = std::fs::read_to_string(log)
        .expect("counter")
        .lines()
        .map(str::to_owned)
        .collect();
    let new = all[*seen..].to_vec();
    *seen = all.len();
    new
}

fn compiled_units(lines: &[String]) -> Vec<String> {
    let mut units: Vec<String> = lines
        .iter()
        .filter_map(|l| l.split_whitespace().find(|w| w.ends_with(".c")))
        .map(str::to_owned)
        .collect();
    units.sort();
    units
}

fn hits(o: &Output) -> usize {
    stderr(o).matches("idem: hit").count()
}

fn run_prog(ws: &Ws) -> String {
    let o = Command::new(ws.path("prog")).output().expect("run prog");
    assert!(o.status.success());
    stdout(&o)
}

#[test]
fn make_clean_replays_every_object_and_a_header_edit_recompiles_its_includers() {
    let Some(gcc) = gcc() else { return };
    if require_binary("make").is_none() {
        return;
    }
    let ws = Ws::new();
    project(&ws, &gcc);
    let tools = tempfile::tempdir().unwrap();
    let log = tools.path().join("compiles");
    let counter = File::options()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let mut seen = 0;

    make(&ws, &counter, &[]);
    assert_eq!(
        compiled_units(&compiles(&log, &mut seen)),
        ["a.c", "b.c", "c.c", "main.c"],
        "the first build compiles everything (and the counter works)"
    );
    assert_eq!(run_prog(&ws), "3 4 5\n");

    make(&ws, &counter, &["clean"]);
    let o = make(&ws, &counter, &[]);
    assert_eq!(
        compiles(&log, &mut seen),
        Vec::<String>::new(),
        "after make clean every object must be replayed; make's stderr:\n{}",
        stderr(&o)
    );
    assert_eq!(hits(&o), 4, "{}", stderr(&o));
    assert_eq!(
        run_prog(&ws),
        "3 4 5\n",
        "the replayed objects link and run"
    );

    // One header, included by a.c directly and by b.c through common.h.
    ws.write("include/config.h", "#define SCALE 7\n");
    make(&ws, &counter, &["clean"]);
    let o = make(&ws, &counter, &[]);
    assert_eq!(
        compiled_units(&compiles(&log, &mut seen)),
        ["a.c", "b.c"],
        "exactly the includers of config.h recompile; make's stderr:\n{}",
        stderr(&o)
    );
    assert_eq!(hits(&o), 2, "{}", stderr(&o));
    assert_eq!(run_prog(&ws), "7 8 5\n");

    // And that new state replays in its turn.
    make(&ws, &counter, &["clean"]);
    let o = make(&ws, &counter, &[]);
    assert_eq!(compiles(&log, &mut seen), Vec::<String>::new());
    assert_eq!(hits(&o), 4, "{}", stderr(&o));
    assert_eq!(run_prog(&ws), "7 8 5\n");
}
