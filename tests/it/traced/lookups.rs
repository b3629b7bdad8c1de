//! What a traced record depends on that no `-f` named: a header found later in an include
//! path (and the one earlier that was absent), a Python module that a new file shadows, a
//! directory listing, a file read by a statically linked program; and that workspace paths
//! are stored relative to the root, so a relocated checkout hits.

use super::*;
use crate::common::{assert_hit, assert_miss, Ws};

const SHADOW_MAIN: &str = "#include \"v.h\"\nint v = V;\n";

/// gcc -Iinc1 -Iinc2: v.h is found in inc2, after a failed lookup in inc1. A v.h
/// appearing in inc1 must miss; removing it again must hit the first recorded set.
#[test]
fn gcc_header_appearing_earlier_in_the_include_path_misses() {
    let Some(gcc) = gcc() else { return };
    let gcc = gcc.to_str().unwrap();
    let ws = Ws::new();
    std::fs::create_dir(ws.path("inc1")).unwrap();
    ws.write("inc2/v.h", "#define V 2\n");
    ws.write("main.c", SHADOW_MAIN);
    let cmd = ["--", gcc, "-Iinc1", "-Iinc2", "-E", "-P", "main.c"];

    let (o, out) = traced_ok(&ws, &cmd);
    assert_miss(&o);
    assert!(out.contains("int v = 2;"), "{out}");
    let (o, out) = traced_ok(&ws, &cmd);
    assert_hit(&o);
    assert!(out.contains("int v = 2;"), "replayed stdout: {out}");

    // The shadowing header: only the failed lookup of inc1/v.h records that it matters.
    ws.write("inc1/v.h", "#define V 1\n");
    let (o, out) = traced_ok(&ws, &cmd);
    assert_miss(&o);
    assert!(
        stderr(&o).contains("inc1/v.h"),
        "-v must name the entry that changed: {}",
        stderr(&o)
    );
    assert!(out.contains("int v = 1;"), "{out}");
    let (o, out) = traced_ok(&ws, &cmd);
    assert_hit(&o);
    assert!(out.contains("int v = 1;"), "{out}");

    // Gone again: the older dependency set (inc1/v.h absent) holds once more.
    std::fs::remove_file(ws.path("inc1/v.h")).unwrap();
    let (o, out) = traced_ok(&ws, &cmd);
    assert_hit(&o);
    assert!(out.contains("int v = 2;"), "{out}");

    // And the header that was read is an input too.
    ws.write("inc2/v.h", "#define V 22\n");
    let (o, out) = traced_ok(&ws, &cmd);
    assert_miss(&o);
    assert!(out.contains("int v = 22;"), "{out}");
}

/// `import mod` with sys.path = [lib1, lib2]: mod.py created in lib1 shadows lib2's.
#[test]
fn python_module_shadowing_another_misses() {
    let Some(py) = python() else { return };
    let py = py.to_str().unwrap();
    let ws = Ws::new();
    std::fs::create_dir(ws.path("lib1")).unwrap();
    ws.write("lib2/mod.py", "X = 2\n");
    ws.write(
        "main.py",
        "import sys\nsys.path[:0] = ['lib1', 'lib2']\nimport mod\nprint('X =', mod.X)\n",
    );
    // -B: no __pycache__ written (that would be outputs, not the point here).
    let cmd = ["--", py, "-S", "-B", "main.py"];

    let (o, out) = traced_ok(&ws, &cmd);
    assert_miss(&o);
    assert_eq!(out, "X = 2\n");
    let (o, out) = traced_ok(&ws, &cmd);
    assert_hit(&o);
    assert_eq!(out, "X = 2\n");

    ws.write("lib1/mod.py", "X = 1\n");
    let (o, out) = traced_ok(&ws, &cmd);
    assert_miss(&o);
    assert_eq!(out, "X = 1\n");
    let (o, _) = traced_ok(&ws, &cmd);
    assert_hit(&o);

    // The module that was imported is an input by content.
    ws.write("lib1/mod.py", "X = 11\n");
    let (o, out) = traced_ok(&ws, &cmd);
    assert_miss(&o);
    assert_eq!(out, "X = 11\n");
}

#[test]
fn ls_of_a_directory_gaining_a_file_misses() {
    let ws = Ws::new();
    ws.write("dir/a", "");
    ws.write("dir/b", "");
    let cmd = ["--", "ls", "dir"];
    let (o, out) = traced_ok(&ws, &cmd);
    assert_miss(&o);
    assert_eq!(out, "a\nb\n");
    let (o, out) = traced_ok(&ws, &cmd);
    assert_hit(&o);
    assert_eq!(out, "a\nb\n");

    ws.write("dir/c", "");
    let (o, out) = traced_ok(&ws, &cmd);
    assert_miss(&o);
    assert_eq!(out, "a\nb\nc\n");
    let (o, _) = traced_ok(&ws, &cmd);
    assert_hit(&o);

    // A removal changes the listing as much as an addition.
    std::fs::remove_file(ws.path("dir/a")).unwrap();
    let (o, out) = traced_ok(&ws, &cmd);
    assert_miss(&o);
    assert_eq!(out, "b\nc\n");
}

/// busybox-static: no dynamic loader, no libc to interpose on; ptrace still sees its reads.
#[test]
fn a_statically_linked_program_reading_a_file() {
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "/bin/busybox is required in CI (.ci/run installs busybox-static)"
        );
        eprintln!("skipping: /bin/busybox not installed (apt-get install busybox-static)");
        return;
    }
    assert!(
        !has_interpreter(&std::fs::read(busybox).unwrap()),
        "/bin/busybox is dynamically linked: install busybox-static, not busybox"
    );
    let ws = Ws::new();
    ws.write("data.txt", "one\n");
    let cmd = ["--", "/bin/busybox", "cat", "data.txt"];
    let (o, out) = traced_ok(&ws, &cmd);
    assert_miss(&o);
    assert_eq!(out, "one\n");
    let (o, out) = traced_ok(&ws, &cmd);
    assert_hit(&o);
    assert_eq!(out, "one\n");
    ws.write("data.txt", "two\n");
    let (o, out) = traced_ok(&ws, &cmd);
    assert_miss(&o);
    assert_eq!(out, "two\n");
}

/// An ELF64 (little-endian) file with a PT_INTERP program header: dynamically linked.
fn has_interpreter(elf: &[u8]) -> bool {
    assert!(elf.starts_with(b"\x7fELF\x02\x01"), "not an ELF64 LE file");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

/// The same checkout copied elsewhere (new inodes, new mtimes, another root), same cache:
/// the traced record's workspace paths are relative, so it hits there; and an edit in the
/// copy still misses.
#[test]
fn a_relocated_checkout_hits() {
    let Some(gcc) = gcc() else { return };
    let gcc = gcc.to_str().unwrap();
    let shared = tempfile::tempdir().unwrap();
    let mut first = Ws::new();
    first.cache = shared.path().join("cache");
    std::fs::create_dir(first.path("inc1")).unwrap();
    first.write("inc2/v.h", "#define V 2\n");
    first.write("main.c", SHADOW_MAIN);
    let cmd = ["--", gcc, "-Iinc1", "-Iinc2", "-E", "-P", "main.c"];
    let (o, _) = traced_ok(&first, &cmd);
    assert_miss(&o);

    let mut moved = Ws::new();
    moved.cache = first.cache.clone();
    std::fs::create_dir(moved.path("inc1")).unwrap();
    moved.write("inc2/v.h", "#define V 2\n");
    moved.write("main.c", SHADOW_MAIN);
    let (o, out) = traced_ok(&moved, &cmd);
    assert_hit(&o);
    assert!(out.contains("int v = 2;"), "{out}");

    // Relative, not blind: the shadowing header still counts in the copy.
    moved.write("inc1/v.h", "#define V 1\n");
    let (o, out) = traced_ok(&moved, &cmd);
    assert_miss(&o);
    assert!(out.contains("int v = 1;"), "{out}");
}

/// The coarse clock file timestamps usually come from, in ns.
fn coarse_now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) },
        0
    );
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

fn changed_ns(p: &Path) -> i64 {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(p).unwrap();
    (md.mtime() * 1_000_000_000 + md.mtime_nsec()).max(md.ctime() * 1_000_000_000 + md.ctime_nsec())
}

/// A file edited an instant before a traced run (a build's previous step writing a
/// header) is an input, not a change during the run: the run is recorded and the next
/// one hits. Since Linux 6.13 ("multigrain" timestamps) such an edit carries a fine
/// timestamp *ahead* of the coarse clock, and idem took the run's start from the
/// coarse clock: 18 of 20 such runs of the release binary went unrecorded. The debug
/// binary starts slowly enough for the coarse clock to catch up, so the guard of the
/// rule itself is the unit test `deps::trace::tests::start`; this is the scenario end
/// to end. On a kernel without fine timestamps an edit in the very tick the run starts
/// cannot be told from one during the run, so there the test lets that tick pass first.
#[test]
fn a_file_edited_just_before_the_run_is_recorded() {
    let ws = Ws::new();
    // Fine timestamps: a file changed twice within a tick, its times read in between,
    // is stamped ahead of the coarse clock (unless the tick ends in between: so, ten
    // tries).
    let probe = ws.path("probe");
    let fine_stamps = (0..10).any(|_| {
        std::fs::write(&probe, "").unwrap();
        for _ in 0..2 {
            std::fs::metadata(&probe).unwrap();
            std::fs::write(&probe, "x").unwrap();
        }
        changed_ns(&probe) > coarse_now_ns()
    });
    for round in 0..5 {
        ws.write("in.txt", "old\n");
        std::fs::metadata(ws.path("in.txt")).unwrap(); // as idem's last run did
        let content = format!("round {round}\n");
        ws.write("in.txt", &content);
        if !fine_stamps {
            let edited = changed_ns(&ws.path("in.txt"));
            while coarse_now_ns() <= edited {
                std::thread::yield_now();
            }
        }
        let (o, out) = traced_ok(&ws, &["--", "cat", "in.txt"]);
        assert_eq!(out, content);
        assert!(
            !stderr(&o).contains("not recorded"),
            "round {round}: {}",
            stderr(&o)
        );
        let (o, out) = traced_ok(&ws, &["--", "cat", "in.txt"]);
        assert_eq!(out, content);
        assert_hit(&o);
    }
}
