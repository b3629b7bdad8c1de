//! Places the tracer once could not see, each giving a wrong replay: a workspace in
//! /dev/shm or inside the cache directory, a file in /dev/shm, reads through
//! /proc/self/{cwd,root,fd/N} and /dev/fd/N. An edit there must miss and rerun.

use super::*;
use crate::common::{assert_hit, assert_miss, Ws};

/// A workspace (a `.git` marks its root) in a fresh directory under `parent`, with the
/// given cache directory.
fn ws_in(parent: &Path, cache: Option<PathBuf>) -> Ws {
    let dir = tempfile::tempdir_in(parent).expect("tempdir");
    std::fs::create_dir(dir.path().join(".git")).expect("mkdir .git");
    let cache = cache.unwrap_or_else(|| dir.path().join(".git").join("idem-cache"));
    Ws { dir, cache }
}

/// Runs `cmd` (which prints the content of `input`): a miss printing W1, a hit, then
/// after an edit of `input` a miss printing W2. The edit keeps the size and the mtime,
/// so only a read of the content (not a stat probe) can see it.
#[track_caller]
fn edit_misses(ws: &Ws, input: &Path, cmd: &[&str]) {
    std::fs::write(input, "W1\n").expect("write input");
    let mtime = std::fs::metadata(input)
        .and_then(|m| m.modified())
        .expect("mtime");
    let (o, out) = traced_ok(ws, cmd);
    assert_miss(&o);
    assert_eq!(out, "W1\n");
    let (o, out) = traced_ok(ws, cmd);
    assert_hit(&o);
    assert_eq!(out, "W1\n");
    std::fs::write(input, "W2\n").expect("edit input");
    std::fs::File::options()
        .write(true)
        .open(input)
        .and_then(|f| f.set_modified(mtime))
        .expect("restore the mtime");
    let (o, out) = traced_ok(ws, cmd);
    assert_miss(&o);
    assert_eq!(
        out,
        "W2\n",
        "an edit of {} was replayed over",
        input.display()
    );
}

#[test]
fn a_workspace_in_dev_shm_is_traced() {
    let ws = ws_in(Path::new("/dev/shm"), None);
    edit_misses(&ws, &ws.path("in.txt"), &["--", "sh", "-c", "cat in.txt"]);
}

#[test]
fn a_file_in_dev_shm_is_an_input() {
    let ws = Ws::new();
    let shm = tempfile::tempdir_in("/dev/shm").expect("tempdir in /dev/shm");
    let cfg = shm.path().join("cfg");
    let script = format!("cat {}", cfg.display());
    edit_misses(&ws, &cfg, &["--", "sh", "-c", &script]);
}

#[test]
fn a_workspace_inside_the_cache_directory_is_traced() {
    let cache = tempfile::tempdir().expect("tempdir");
    let ws = ws_in(cache.path(), Some(cache.path().to_path_buf()));
    edit_misses(&ws, &ws.path("in.txt"), &["--", "sh", "-c", "cat in.txt"]);
}

#[test]
fn a_read_through_proc_self_cwd_is_an_input() {
    let ws = Ws::new();
    edit_misses(
        &ws,
        &ws.path("in.txt"),
        &["--", "sh", "-c", "cat /proc/self/cwd/in.txt"],
    );
}

#[test]
fn a_read_through_proc_self_root_is_an_input() {
    let ws = Ws::new();
    let script = format!("cat /proc/self/root{}", ws.path("in.txt").display());
    edit_misses(&ws, &ws.path("in.txt"), &["--", "sh", "-c", &script]);
}

/// `open(O_PATH)` is only a probe; reopening its fd through /proc/self/fd/N or /dev/fd/N
/// reads the file.
#[test]
fn a_reopened_o_path_fd_is_an_input() {
    let Some(py) = python() else { return };
    let ws = Ws::new();
    for via in ["/proc/self/fd", "/dev/fd", "/proc/thread-self/fd"] {
        let script = format!(
            "import os\n\
             fd = os.open('in.txt', os.O_PATH)\n\
             print(open(f'{via}/{{fd}}').read(), end='')\n"
        );
        edit_misses(
            &ws,
            &ws.path("in.txt"),
            &["--", py.to_str().unwrap(), "-S", "-c", &script],
        );
    }
}

/// bash's `<(cmd)` is /dev/fd/63, a pipe: no file, and the run is still recorded.
#[test]
fn a_process_substitution_stays_recordable() {
    let ws = Ws::new();
    edit_misses(
        &ws,
        &ws.path("in.txt"),
        &["--", "bash", "-c", "cat <(cat in.txt)"],
    );
}

/// A deleted file read through its fd: what it held is gone, so the run is not recorded.
#[test]
fn a_read_through_the_fd_of_a_deleted_file_is_unrecorded() {
    let Some(py) = python() else { return };
    let ws = Ws::new();
    let script = "import os\n\
                  f = open('tmp.txt', 'w+')\n\
                  f.write('T1\\n'); f.flush()\n\
                  os.unlink('tmp.txt')\n\
                  print(open(f'/proc/self/fd/{f.fileno()}').read(), end='')\n";
    for round in 0..2 {
        let (o, out) = traced_ok(&ws, &["--", py.to_str().unwrap(), "-S", "-c", script]);
        assert_eq!(out, "T1\n");
        assert_miss(&o);
        assert!(
            stderr(&o).contains("whose target cannot be known"),
            "round {round}: the reason is shown under -v: {}",
            stderr(&o)
        );
    }
    assert_eq!(
        crate::common::record_count(&ws),
        0,
        "nothing may be recorded"
    );
}

/// `--stdin` spools stdin to an unnamed (deleted) file in the cache directory: reading
/// it through /dev/stdin is the declared input, and the run is recorded.
#[test]
fn dev_stdin_of_a_spooled_stdin_stays_recordable() {
    use std::io::Write;
    use std::process::Stdio;
    let ws = Ws::new();
    for (want_hit, input) in [(false, "S1\n"), (true, "S1\n"), (false, "S2\n")] {
        let mut c = ws.idem(&[
            "run",
            "--trace",
            "-v",
            "--stdin",
            "--",
            "sh",
            "-c",
            "cat /dev/stdin",
        ]);
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn idem");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let o = child.wait_with_output().expect("wait idem");
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), input);
        assert_eq!(
            crate::common::is_hit(&o),
            want_hit,
            "stderr:\n{}",
            stderr(&o)
        );
        assert!(warnings(&o).is_empty(), "{}", stderr(&o));
    }
}
