//! Named tasks in idem.toml, through the real binary: a task runs in its own directory
//! from anywhere in the workspace, shares its records with the spelled-out command line,
//! takes flags and extra arguments, and every bad file stops idem with exit 2 and a
//! message naming the file, line, column and field.

use std::process::Output;

use crate::common::{stderr, stdout, Ws};
use serde_json::Value;

/// A task that counts its runs in `count` (at the workspace root) and prints its input.
const BUILD: &str = r#"
[task.build]
description = "count and print"
run = "echo run >> count; cat src/in.txt"
files = ["src/"]
env = ["IDEM_TEST_VAR"]
"#;

fn ws_with(toml: &str) -> Ws {
    let ws = Ws::new();
    ws.write("src/in.txt", "one\n");
    ws.write("idem.toml", toml);
    ws
}

fn idem(ws: &Ws, args: &[&str]) -> Output {
    ws.idem(args).output().expect("spawn idem")
}

fn idem_in(ws: &Ws, dir: &str, args: &[&str]) -> Output {
    ws.idem(args)
        .current_dir(ws.path(dir))
        .output()
        .expect("spawn idem")
}

fn ok(o: &Output) -> &Output {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    o
}

fn usage_error(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    let e = stderr(o);
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    e
}

#[test]
fn a_task_runs_in_its_directory_from_anywhere_in_the_workspace() {
    let ws = ws_with(BUILD);
    std::fs::create_dir_all(ws.path("deep/er")).unwrap();
    assert_eq!(stdout(ok(&idem(&ws, &["run", "build"]))), "one\n");
    // From a subdirectory: the same task (a hit), and it would run at the root.
    let o = idem_in(&ws, "deep/er", &["run", "-v", "build"]);
    assert_eq!(stdout(ok(&o)), "one\n");
    assert!(stderr(&o).contains("idem: hit"), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 1);
    ws.write("src/in.txt", "two\n");
    assert_eq!(
        stdout(ok(&idem_in(&ws, "deep/er", &["run", "build"]))),
        "two\n"
    );
    assert_eq!(ws.count("count"), 2, "it ran at the root, where count is");
    assert!(!ws.path("deep/er/count").exists());
}

#[test]
fn a_task_and_its_spelled_out_command_line_share_records() {
    let ws = ws_with(BUILD);
    ok(&idem(&ws, &["run", "build"]));
    let spelled = [
        "run",
        "-v",
        "-f",
        "src/",
        "-e",
        "IDEM_TEST_VAR",
        "--",
        "sh",
        "-c",
        "echo run >> count; cat src/in.txt",
    ];
    let o = idem(&ws, &spelled);
    assert_eq!(stdout(ok(&o)), "one\n");
    assert!(stderr(&o).contains("idem: hit"), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 1);
    // And the other way round, after a change, from the spelled-out side first.
    ws.write("src/in.txt", "two\n");
    ok(&idem(&ws, &spelled));
    let o = idem_in(&ws, "src", &["run", "-v", "build"]);
    assert!(stderr(&o).contains("idem: hit"), "{}", stderr(&o));
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn show_and_list_name_the_task_that_recorded() {
    let ws = ws_with(BUILD);
    ok(&idem(&ws, &["run", "build"]));
    let show = stdout(ok(&idem(&ws, &["show", "1"])));
    assert!(
        show.lines()
            .any(|l| l.starts_with("task") && l.ends_with("build")),
        "{show}"
    );
    let list = stdout(ok(&idem(&ws, &["list"])));
    assert!(list.contains("[build] sh -c"), "{list}");
    let v: Value =
        serde_json::from_slice(&ok(&idem(&ws, &["show", "--json", "1"])).stdout).unwrap();
    assert_eq!(v["task"], "build");
    let v: Value = serde_json::from_slice(&ok(&idem(&ws, &["list", "--json"])).stdout).unwrap();
    assert_eq!(v["records"][0]["task"], "build");
    // An ad-hoc record names no task.
    ok(&idem(&ws, &["run", "--", "true"]));
    let v: Value = serde_json::from_slice(&ok(&idem(&ws, &["list", "--json"])).stdout).unwrap();
    assert_eq!(v["records"][0]["task"], Value::Null);
}

#[test]
fn command_line_flags_add_to_and_override_the_task() {
    let ws = ws_with(&format!("{BUILD}scope = \"one\"\n"));
    ok(&idem(&ws, &["run", "build"]));
    // The same value as the task's: the same task, a hit.
    let o = idem(&ws, &["run", "-v", "--scope", "one", "build"]);
    assert!(stderr(&o).contains("idem: hit"), "{}", stderr(&o));
    // Another scope overrides the task's: another task, a run; the spelled-out form of
    // the override then hits it.
    ok(&idem(&ws, &["run", "--scope", "two", "build"]));
    assert_eq!(ws.count("count"), 2);
    let o = idem(
        &ws,
        &[
            "run",
            "-v",
            "--scope",
            "two",
            "-f",
            "src/",
            "-e",
            "IDEM_TEST_VAR",
            "--",
            "sh",
            "-c",
            "echo run >> count; cat src/in.txt",
        ],
    );
    assert!(stderr(&o).contains("idem: hit"), "{}", stderr(&o));
    // A repeatable flag adds to the task's list: extra.txt becomes an input too.
    ws.write("extra.txt", "a");
    ok(&idem(&ws, &["run", "-f", "extra.txt", "build"]));
    assert_eq!(ws.count("count"), 3);
    ws.write("extra.txt", "b");
    ok(&idem(&ws, &["run", "-f", "extra.txt", "build"]));
    assert_eq!(ws.count("count"), 4, "extra.txt is an input");
    ws.write("src/in.txt", "changed\n");
    ok(&idem(&ws, &["run", "-f", "extra.txt", "build"]));
    assert_eq!(ws.count("count"), 5, "src/ is still an input");
    // A flag the task does not set: --force runs despite the hit.
    ok(&idem(&ws, &["run", "--force", "build"]));
    ok(&idem(&ws, &["run", "--force", "build"]));
    assert_eq!(ws.count("count"), 7);
}

#[test]
fn a_string_run_goes_through_sh_and_an_array_is_an_argv() {
    let ws = ws_with(
        r#"
[task.shell]
run = "printf '%s|' $HOME_LESS a 'b c'"

[task.argv]
run = ["printf", "%s|", "a", "$HOME", "b c"]
"#,
    );
    assert_eq!(stdout(ok(&idem(&ws, &["run", "shell"]))), "a|b c|");
    assert_eq!(stdout(ok(&idem(&ws, &["run", "argv"]))), "a|$HOME|b c|");
    let v: Value = serde_json::from_slice(&ok(&idem(&ws, &["tasks", "--json"])).stdout).unwrap();
    assert_eq!(v["tasks"][0]["run"][0], "sh");
    assert_eq!(v["tasks"][0]["run"][1], "-c");
    assert_eq!(v["tasks"][1]["run"][3], "$HOME");
}

#[test]
fn arguments_after_dashes_are_appended() {
    let ws = ws_with(
        r#"
[task.shell]
run = "printf '%s|'"

[task.argv]
run = ["printf", "%s|"]
"#,
    );
    let args = ["it's", "b c", "$HOME"];
    for task in ["shell", "argv"] {
        let mut a = vec!["run", task, "--"];
        a.extend(args);
        assert_eq!(stdout(ok(&idem(&ws, &a))), "it's|b c|$HOME|", "{task}");
    }
    // Other extra arguments are another task key: no false hit.
    assert_eq!(stdout(ok(&idem(&ws, &["run", "argv", "--", "x"]))), "x|");
    // The argv task with extra args is exactly the spelled-out argv.
    let o = idem(&ws, &["run", "-v", "--", "printf", "%s|", "x"]);
    assert!(stderr(&o).contains("idem: hit"), "{}", stderr(&o));
}

#[test]
fn defaults_apply_to_tasks_and_ad_hoc_runs() {
    let ws = ws_with(
        r#"
[defaults]
cache-dir = "my-cache"
files = ["shared.txt"]

[task.t]
run = "echo run >> count"
"#,
    );
    ws.write("shared.txt", "1");
    let run = |args: &[&str]| {
        ws.idem(args)
            .env_remove("IDEM_CACHE_DIR")
            .output()
            .expect("spawn idem")
    };
    ok(&run(&["run", "t"]));
    assert!(
        ws.path("my-cache/idem.db").is_file(),
        "cache-dir from [defaults], relative to idem.toml"
    );
    ok(&run(&["run", "t"]));
    assert_eq!(ws.count("count"), 1);
    ws.write("shared.txt", "2");
    ok(&run(&["run", "t"]));
    assert_eq!(ws.count("count"), 2, "files from [defaults] are inputs");
    // An ad-hoc run from a subdirectory: same cache, shared.txt (relative to idem.toml)
    // an input.
    std::fs::create_dir_all(ws.path("sub")).unwrap();
    let adhoc = |ws: &Ws| {
        ws.idem(&["run", "--", "sh", "-c", "echo run >> ../adhoc"])
            .env_remove("IDEM_CACHE_DIR")
            .current_dir(ws.path("sub"))
            .output()
            .expect("spawn idem")
    };
    ok(&adhoc(&ws));
    ok(&adhoc(&ws));
    assert_eq!(ws.count("adhoc"), 1);
    ws.write("shared.txt", "3");
    ok(&adhoc(&ws));
    assert_eq!(ws.count("adhoc"), 2);
    // list, like run, reads the cache directory of [defaults].
    let list = stdout(ok(&run(&["list"])));
    assert_eq!(list.lines().count(), 5, "a header and 4 records: {list}");
    // The command line (or IDEM_CACHE_DIR) still wins over [defaults].
    ok(&idem(&ws, &["run", "t"]));
    assert!(ws.cache.join("idem.db").is_file());
}

#[test]
fn a_task_may_run_in_a_subdirectory() {
    let ws = ws_with(
        r#"
[task.here]
cwd = "pkg"
run = "pwd; echo run >> count"
files = ["input"]
"#,
    );
    ws.write("pkg/input", "x");
    let o = idem(&ws, &["run", "here"]);
    let pwd = std::fs::canonicalize(ws.path("pkg")).unwrap();
    assert_eq!(stdout(ok(&o)).trim(), pwd.to_str().unwrap());
    assert_eq!(ws.count("pkg/count"), 1);
    ws.write("pkg/input", "y");
    ok(&idem(&ws, &["run", "here"]));
    assert_eq!(ws.count("pkg/count"), 2, "files are relative to cwd");
}

#[test]
fn config_and_idem_config_name_another_file() {
    let ws = Ws::new();
    ws.write("conf/tasks.toml", "[task.where]\nrun = \"pwd\"\n");
    let conf_dir = std::fs::canonicalize(ws.path("conf")).unwrap();
    let o = idem(&ws, &["run", "--config", "conf/tasks.toml", "where"]);
    assert_eq!(stdout(ok(&o)).trim(), conf_dir.to_str().unwrap());
    let o = ws
        .idem(&["run", "where"])
        .env("IDEM_CONFIG", ws.path("conf/tasks.toml"))
        .output()
        .unwrap();
    assert_eq!(stdout(ok(&o)).trim(), conf_dir.to_str().unwrap());
    // The root has no idem.toml: without --config the task is unknown.
    let e = usage_error(&idem(&ws, &["run", "where"]));
    assert!(
        e.contains("unknown task `where`") && e.contains("no idem.toml"),
        "{e}"
    );
    assert!(e.contains("idem run -- where"), "{e}");
    let e = usage_error(&idem(&ws, &["run", "--config", "nope.toml", "where"]));
    assert!(e.contains("config file nope.toml does not exist"), "{e}");
}

#[test]
fn status_explain_and_forget_take_a_task_name() {
    let ws = ws_with(BUILD);
    assert_eq!(idem(&ws, &["status", "build"]).status.code(), Some(1));
    ok(&idem(&ws, &["run", "build"]));
    ok(&idem_in(&ws, "src", &["status", "build"]));
    let e = stdout(ok(&idem(&ws, &["explain", "build"])));
    assert!(e.contains("no dependency changed"), "{e}");
    ws.write("src/in.txt", "two\n");
    let e = stdout(&idem(&ws, &["explain", "build"]));
    assert!(e.contains("src/in.txt"), "{e}");
    ok(&idem(&ws, &["forget", "build"]));
    assert_eq!(idem(&ws, &["status", "build"]).status.code(), Some(1));
    assert_eq!(
        ws.count("count"),
        1,
        "status, explain and forget run nothing"
    );
}

#[test]
fn tasks_lists_names_descriptions_and_json() {
    let ws = ws_with(&format!(
        "{BUILD}\n[task.other]\nrun = [\"true\"]\ncwd = \"src\"\n"
    ));
    let text = stdout(ok(&idem(&ws, &["tasks"])));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("build") && lines[0].contains("count and print"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("other") && lines[1].contains("true"),
        "{text}"
    );
    assert_eq!(
        stdout(ok(&idem(&ws, &["tasks", "--names"]))),
        "build\nother\n"
    );
    let v: Value = serde_json::from_slice(&ok(&idem(&ws, &["tasks", "--json"])).stdout).unwrap();
    assert_eq!(v["tasks"][0]["name"], "build");
    assert_eq!(v["tasks"][0]["description"], "count and print");
    assert_eq!(v["tasks"][1]["description"], Value::Null);
    assert_eq!(v["tasks"][1]["cwd"], "src");
    assert!(v["config"].as_str().unwrap().ends_with("idem.toml"));
    // No idem.toml: nothing to list, not an error.
    let bare = Ws::new();
    assert_eq!(stdout(ok(&idem(&bare, &["tasks", "--names"]))), "");
    let v: Value = serde_json::from_slice(&ok(&idem(&bare, &["tasks", "--json"])).stdout).unwrap();
    assert_eq!(v["tasks"], serde_json::json!([]));
}

/// Each bad file: exit 2, one line naming file:line:column and the field, and nothing
/// runs — for a task, and for an ad-hoc run (a config error is never ignored).
#[test]
fn every_config_error_names_the_place_and_stops_every_run() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "[task.build]\nrun = \"true\"\nfiels = [\"src/\"]\n",
            "idem.toml:3:1: task.build.fiels: unknown field `fiels`; did you mean `files`?",
            &[],
        ),
        (
            "[task.build]\nrun = \"true\"\nfiles = \"src/\"\n",
            "idem.toml:3:9: task.build.files: expected an array of strings, found a string",
            &[],
        ),
        (
            "[task.build]\nrun = \"true\"\nttl = \"10x\"\n",
            "idem.toml:3:7: task.build.ttl: invalid duration unit 'x' in '10x'",
            &[],
        ),
        (
            "[defaults]\nforce = \"yes\"\n",
            "idem.toml:2:9: defaults.force: expected a boolean (true or false), found a string",
            &[],
        ),
        (
            "[defaults]\nurl-offline = \"maybe\"\n",
            "idem.toml:2:15: defaults.url-offline: invalid value 'maybe' (possible values: run, hit)",
            &[],
        ),
        (
            "[task.build]\nfiles = [\"src/\"]\n",
            "idem.toml:1:7: task.build: no `run`",
            &[],
        ),
        (
            "[task.build]\nrun = [\"true\", 3]\n",
            "idem.toml:2:16: task.build.run: expected an array of strings, found an integer in it",
            &[],
        ),
        (
            "[tasks.build]\nrun = \"true\"\n",
            "idem.toml:1:2: unknown table `tasks`; did you mean `task`?",
            &[],
        ),
        (
            "[task.build]\nrun = \"true\n",
            "idem.toml:2:12: invalid basic string",
            &[],
        ),
        (
            "[defaults]\nrun = \"true\"\n",
            "idem.toml:2:1: defaults.run: `run` belongs in a [task.NAME] table",
            &[],
        ),
        (
            "[task.build]\nrun = \"true\"\nfile = [\"a\"]\nfiles = [\"b\"]\n",
            "idem.toml:4:1: task.build.files: `file` is given twice",
            &[],
        ),
    ];
    for (toml, expected, _) in cases {
        let ws = ws_with(toml);
        for args in [
            &["run", "build"][..],
            &["run", "--", "sh", "-c", "echo run >> count"][..],
            &["status", "--", "true"][..],
            &["tasks"][..],
        ] {
            let e = usage_error(&idem(&ws, args));
            assert!(
                e.contains(expected),
                "{toml:?} {args:?}:\n{e}\nexpected: {expected}"
            );
            assert!(e.starts_with("idem: /"), "names the file by its path: {e}");
        }
        assert_eq!(ws.count("count"), 0, "nothing ran for {toml:?}");
    }
}

#[test]
fn an_unknown_task_lists_the_defined_ones() {
    let ws = ws_with(&format!("{BUILD}\n[task.test]\nrun = \"true\"\n"));
    let e = usage_error(&idem(&ws, &["run", "biuld"]));
    assert!(e.contains("unknown task `biuld`"), "{e}");
    assert!(e.contains("defined: build, test"), "{e}");
    assert!(e.contains("did you mean `build`?"), "{e}");
    let e = usage_error(&idem(&ws, &["status", "make"]));
    assert!(e.contains("defined: build, test"), "{e}");
    assert!(e.contains("idem run -- make"), "{e}");
    // A task name followed by words without `--` is still a usage error.
    let o = idem(&ws, &["run", "build", "extra"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(ws.count("count"), 0);
}

#[test]
fn ad_hoc_runs_are_unchanged_without_a_task_file() {
    let ws = Ws::new();
    let o = idem(&ws, &["run", "-v", "--", "echo", "hi"]);
    assert_eq!(stdout(ok(&o)), "hi\n");
    let o = idem(&ws, &["run", "-v", "--", "echo", "hi"]);
    assert!(stderr(&o).contains("idem: hit"), "{}", stderr(&o));
}

/// The bash completion script calls `idem tasks --names` for the word after
/// run/status/explain/forget (not after `--`, not for an option's value).
#[test]
fn bash_completes_task_names() {
    let Some(bash) = crate::common::require_binary("bash") else {
        return;
    };
    let ws = ws_with(&format!("{BUILD}\n[task.bundle]\nrun = \"true\"\n"));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/idem.bash");
    let bin_dir = crate::common::idem_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let complete = |line: &str| -> String {
        let words: Vec<&str> = line.split(' ').collect();
        let program = format!(
            "source {script}\nCOMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_LINE='{line}'\nCOMP_POINT={point}\n_idem_with_tasks idem '{cur}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\" | grep -v -- '^-' | sort -u",
            script = script.display(),
            words = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
            cword = words.len() - 1,
            point = line.len(),
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        let o = std::process::Command::new(&bash)
            .args(["--norc", "-c", &program])
            .current_dir(ws.root())
            .env("PATH", &path)
            .env("IDEM_CACHE_DIR", &ws.cache)
            .output()
            .unwrap();
        stdout(&o)
    };
    assert_eq!(complete("idem run b"), "build\nbundle\n");
    assert_eq!(complete("idem explain -v bu"), "build\nbundle\n");
    assert!(!complete("idem run -- b").contains("build"));
    assert!(!complete("idem run --scope b").contains("build"));
}

#[test]
fn zsh_and_fish_scripts_call_idem_tasks() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let zsh = std::fs::read_to_string(root.join("completions/_idem")).unwrap();
    assert!(zsh.contains("idem tasks --names"));
    assert_eq!(
        zsh.matches(":_idem_tasks' \\").count(),
        4,
        "run, status, explain, forget"
    );
    let fish = std::fs::read_to_string(root.join("completions/idem.fish")).unwrap();
    assert_eq!(fish.matches("[1] tasks --names 2>/dev/null)").count(), 4);
}

/// docs/tasks.md has a row for every field, derived the way idem derives them.
#[test]
fn docs_list_every_field() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/tasks.md")).unwrap();
    let cmd = idem::config::fields::run_command();
    let mut names: Vec<String> = idem::config::fields::fields(&cmd)
        .into_iter()
        .map(|f| f.name)
        .collect();
    names.extend(
        idem::config::fields::TASK_ONLY
            .iter()
            .map(|s| s.to_string()),
    );
    for name in names {
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "docs/tasks.md has no row for `{name}`"
        );
    }
}

/// The cache commands have no --config, but IDEM_CONFIG's [defaults] still name their
/// cache directory, as for the runs that filled it.
#[test]
fn list_reads_the_cache_dir_of_idem_config() {
    let ws = Ws::new();
    ws.write("conf/x.toml", "[defaults]\ncache-dir = \"c\"\n");
    let with_conf = |args: &[&str]| {
        ws.idem(args)
            .env_remove("IDEM_CACHE_DIR")
            .env("IDEM_CONFIG", ws.path("conf/x.toml"))
            // Were IDEM_CONFIG ignored, list would read this empty cache instead.
            .env("XDG_CACHE_HOME", ws.path("xdg"))
            .output()
            .expect("spawn idem")
    };
    ok(&with_conf(&["run", "--", "true"]));
    assert!(ws.path("conf/c/idem.db").is_file());
    let list = stdout(ok(&with_conf(&["list"])));
    assert!(list.contains("true"), "{list}");
}

/// A `--stale` replay starts a background refresh that re-runs idem's own argv: a
/// relative `--config` must still name the same file, though the task moved idem into
/// the config's directory.
#[test]
fn a_background_refresh_finds_a_relative_config() {
    let ws = Ws::new();
    ws.write(
        "conf/tasks.toml",
        "[task.gen]\nrun = \"echo run >> ../count; echo gen $(cat ../gen)\"\nstale = \"10s\"\nttl = \"1h\"\n",
    );
    let run = |now: &str| {
        ws.idem(&["run", "--config", "conf/tasks.toml", "gen"])
            .env("IDEM_NOW", now)
            .output()
            .expect("spawn idem")
    };
    ws.write("gen", "1");
    assert_eq!(stdout(ok(&run("1000000"))), "gen 1\n");
    ws.write("gen", "2");
    // Past --stale: the old record now, and a refresh in the background.
    assert_eq!(stdout(ok(&run("1000100"))), "gen 1\n");
    crate::common::wait_until(
        std::time::Duration::from_secs(60),
        "the background refresh to run the task",
        || ws.count("count") == 2,
    );
    crate::common::wait_until(
        std::time::Duration::from_secs(60),
        "the refreshed record",
        || stdout(&run("1000100")) == "gen 2\n",
    );
}
