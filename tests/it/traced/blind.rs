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
/// after an edit of `input` a miss printing W2.
#[track_caller]
fn edit_misses(ws: &Ws, input: &Path, cmd: &[&str]) {
    std::fs::write(input, "W1\n").expect("write input");
    let (o, out) = traced_ok(ws, cmd);
    assert_miss(&o);
    assert_eq!(out, "W1\n");
    let (o, out) = traced_ok(ws, cmd);
    assert_hit(&o);
    assert_eq!(out, "W1\n");
    std::fs::write(input, "W2\n").expect("edit input");
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
