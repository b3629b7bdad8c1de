//! Property tests for the keys: distinct tasks never share a task key (argv splits,
//! working directory, specs moved between flags, non-UTF-8 bytes), equal tasks always
//! do (spec order and repetition), and state keys ignore the order of dependencies.
//! Tasks are planned through the real `cli` + `plan` path, as `idem run` plans them.
//!
//! `IDEM_KEYS_ITERS=N` and `IDEM_TEST_SEED=S` make a long run.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use crate::rng::Rng;
use clap::Parser;
use idem::deps::{state_key, DepState, Kind};

/// Pieces that collide when concatenated carelessly: spaces, separators, empty
/// strings, flag-like words, bytes that are not UTF-8.
const WORDS: [&[u8]; 12] = [
    b"a", b"b", b"a b", b"", b"ab", b"-f", b"--", b"x=y", b"\xff", b"a\0", b"@root/a", b"./a",
];
const FILES: [&str; 9] = [
    "src",
    "src/",
    "./src",
    "src/**/*.c",
    "!*.o",
    "a b",
    "@root/x",
    "x",
    "!src/gen/",
];
const ENVS: [&str; 4] = ["A", "B", "PATH", "A_B"];
const OUTPUTS: [&str; 3] = ["out", "build/x", "dist/"];
const URLS: [&str; 2] = ["http://127.0.0.1:9/a", "https://example.invalid/b?c=d"];

/// What makes two tasks the same: every list as a set, every flag as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Desc {
    argv: Vec<Vec<u8>>,
    files: Vec<OsString>,
    envs: Vec<String>,
    pass_envs: Vec<String>,
    outputs: Vec<String>,
    urls: Vec<String>,
    url_contents: Vec<String>,
    scope: Option<String>,
    key: Option<String>,
    flags: [bool; 3],
}

fn subset<T: Clone>(rng: &mut Rng, from: &[T], max: usize) -> Vec<T> {
    (0..rng.below(max + 1))
        .map(|_| rng.pick(from).clone())
        .collect()
}

fn set<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

fn random_desc(rng: &mut Rng, root: &std::path::Path) -> Desc {
    let mut argv: Vec<Vec<u8>> = (0..1 + rng.below(3))
        .map(|_| {
            if rng.below(6) == 0 {
                let n = rng.below(4);
                rng.bytes(n)
            } else {
                rng.pick(&WORDS).to_vec()
            }
        })
        .collect();
    if argv[0].is_empty() {
        argv[0] = b"cmd".to_vec();
    }
    let mut files: Vec<OsString> = subset(rng, &FILES, 3)
        .into_iter()
        .map(OsString::from)
        .collect();
    if rng.below(4) == 0 {
        // The absolute form of a path inside the root, next to its relative forms.
        files.push(root.join(rng.pick(&["x", "src"])).into_os_string());
    }
    if rng.below(6) == 0 {
        files.push(OsString::from_vec(b"\xfe\xff-dir".to_vec()));
    }
    Desc {
        argv,
        files,
        envs: subset(rng, &ENVS, 2)
            .into_iter()
            .map(String::from)
            .collect(),
        pass_envs: subset(rng, &ENVS, 1)
            .into_iter()
            .map(String::from)
            .collect(),
        outputs: subset(rng, &OUTPUTS, 2)
            .into_iter()
            .map(String::from)
            .collect(),
        urls: subset(rng, &URLS, 1)
            .into_iter()
            .map(String::from)
            .collect(),
        url_contents: subset(rng, &URLS, 1)
            .into_iter()
            .map(String::from)
            .collect(),
        scope: (rng.below(4) == 0).then(|| rng.pick(&["s", "t", ""]).to_string()),
        key: (rng.below(4) == 0).then(|| rng.pick(&["k", "k2"]).to_string()),
        flags: [rng.below(3) == 0, rng.below(3) == 0, rng.below(3) == 0],
    }
}

/// The same task with its lists shuffled and some specs repeated.
fn reshuffled(rng: &mut Rng, d: &Desc) -> Desc {
    fn mix<T: Clone>(rng: &mut Rng, v: &[T]) -> Vec<T> {
        let mut v = v.to_vec();
        if !v.is_empty() && rng.below(2) == 0 {
            let dup = rng.pick(&v).clone();
            v.push(dup);
        }
        rng.shuffle(&mut v);
        v
    }
    Desc {
        argv: d.argv.clone(),
        files: mix(rng, &d.files),
        envs: mix(rng, &d.envs),
        pass_envs: mix(rng, &d.pass_envs),
        outputs: mix(rng, &d.outputs),
        urls: mix(rng, &d.urls),
        url_contents: mix(rng, &d.url_contents),
        scope: d.scope.clone(),
        key: d.key.clone(),
        flags: d.flags,
    }
}

fn canonical(d: &Desc) -> Desc {
    Desc {
        files: set(&d.files),
        envs: set(&d.envs),
        pass_envs: set(&d.pass_envs),
        outputs: set(&d.outputs),
        urls: set(&d.urls),
        url_contents: set(&d.url_contents),
        ..d.clone()
    }
}

/// The task key `idem run` would use, or `None` when the flags are a usage error.
fn task_key(d: &Desc, root: &std::path::Path) -> Option<[u8; 32]> {
    let mut args: Vec<OsString> = vec!["idem".into(), "run".into(), "--root".into()];
    args.push(root.into());
    let mut flag = |f: &str, v: &std::ffi::OsStr| {
        args.push(f.into());
        args.push(v.into());
    };
    for f in &d.files {
        flag("-f", f);
    }
    for e in &d.envs {
        flag("-e", e.as_ref());
    }
    for e in &d.pass_envs {
        flag("--pass-env", e.as_ref());
    }
    for o in &d.outputs {
        flag("-o", o.as_ref());
    }
    for u in &d.urls {
        flag("-u", u.as_ref());
    }
    for u in &d.url_contents {
        flag("--url-content", u.as_ref());
    }
    if let Some(s) = &d.scope {
        flag("--scope", s.as_ref());
    }
    if let Some(k) = &d.key {
        flag("--key", k.as_ref());
    }
    for (on, name) in d
        .flags
        .iter()
        .zip(["--no-ignore", "--stdin", "--strict-env"])
    {
        if *on {
            args.push(name.into());
        }
    }
    args.push("--".into());
    args.extend(d.argv.iter().map(|a| OsString::from_vec(a.clone())));
    let cli = idem::cli::Cli::try_parse_from(&args).ok()?;
    let idem::cli::Command::Run(run) = cli.command else {
        unreachable!("parsed as run")
    };
    let task = idem::plan::task(&run).ok()?;
    assert_eq!(task.key, task.spec.task_key(), "Task.key is the spec's key");
    Some(task.key)
}

#[test]
fn distinct_tasks_never_share_a_task_key_and_equal_ones_always_do() {
    let root = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(root.path()).unwrap();
    let mut rng = Rng::from_env(0x6b65_7973);
    let iters = crate::rng::iterations("IDEM_KEYS_ITERS", 600);
    let mut seen: HashMap<[u8; 32], Desc> = HashMap::new();
    let mut planned = 0;
    for _ in 0..iters {
        let d = random_desc(&mut rng, &root);
        let Some(key) = task_key(&d, &root) else {
            continue;
        };
        planned += 1;
        let again = reshuffled(&mut rng, &d);
        assert_eq!(
            task_key(&again, &root),
            Some(key),
            "the same task, specs reordered or repeated, changed key:\n{d:?}\n{again:?}"
        );
        let c = canonical(&d);
        if let Some(other) = seen.insert(key, c.clone()) {
            assert_eq!(other, c, "two distinct tasks share a task key");
        }
    }
    eprintln!(
        "keys: {planned} tasks planned, {} distinct keys",
        seen.len()
    );
    assert!(
        planned > iters / 4,
        "most generated tasks are valid ({planned})"
    );
}

/// argv is a list, not a string: no way of splitting the same characters collides.
#[test]
fn argv_splits_give_distinct_keys() {
    let root = tempfile::tempdir().unwrap();
    let splits: [&[&[u8]]; 7] = [
        &[b"echo", b"a b"],
        &[b"echo", b"a", b"b"],
        &[b"echo a", b"b"],
        &[b"echo", b"ab", b""],
        &[b"echo", b"", b"ab"],
        &[b"echo", b"a\xff"],
        &[b"echo", b"a\xef\xbf\xbd"], // what a lossy conversion of \xff would give
    ];
    let mut keys = HashMap::new();
    for argv in splits {
        let d = Desc {
            argv: argv.iter().map(|a| a.to_vec()).collect(),
            files: vec![],
            envs: vec![],
            pass_envs: vec![],
            outputs: vec![],
            urls: vec![],
            url_contents: vec![],
            scope: None,
            key: None,
            flags: [false; 3],
        };
        let key = task_key(&d, root.path()).expect("a valid task");
        assert!(keys.insert(key, argv).is_none(), "{argv:?} collides");
    }
}

/// The working directory enters the key byte for byte.
#[test]
fn the_working_directory_separates_tasks() {
    let mut rng = Rng::from_env(0x637764);
    let cli = idem::cli::Cli::try_parse_from(["idem", "run", "-f", "src", "--", "make"]).unwrap();
    let idem::cli::Command::Run(run) = cli.command else {
        unreachable!()
    };
    let task = idem::plan::task(&run).unwrap();
    let mut keys: HashMap<[u8; 32], Vec<u8>> = HashMap::new();
    for _ in 0..500 {
        let mut spec = task.spec.clone();
        spec.cwd_key = match rng.below(3) {
            0 => rng
                .pick(&[&b"."[..], b"a", b"a/b", b"a b", b"\xff", b"/abs", b""])
                .to_vec(),
            _ => {
                let n = rng.below(5);
                rng.bytes(n)
            }
        };
        let key = spec.task_key();
        if let Some(other) = keys.insert(key, spec.cwd_key.clone()) {
            assert_eq!(other, spec.cwd_key, "two working directories share a key");
        }
        assert_ne!(
            spec.identity(),
            {
                let mut s = spec.clone();
                s.cwd_key.push(b'/');
                s.identity()
            },
            "identity includes the cwd"
        );
    }
}

#[test]
fn state_keys_ignore_order_and_see_every_byte() {
    let mut rng = Rng::from_env(0x7374617465);
    let kinds = [Kind::File, Kind::Env, Kind::Url, Kind::Program, Kind::Stdin];
    let mut seen: HashMap<[u8; 32], Vec<DepState>> = HashMap::new();
    for _ in 0..crate::rng::iterations("IDEM_KEYS_ITERS", 600) {
        let deps: Vec<DepState> = (0..rng.below(5))
            .map(|_| {
                let kind = *rng.pick(&kinds);
                let name = rng.pick(&WORDS).to_vec();
                let state = if rng.below(2) == 0 {
                    rng.pick(&WORDS).to_vec()
                } else {
                    let n = rng.below(3);
                    rng.bytes(n)
                };
                DepState::new(kind, name, state)
            })
            .collect();
        let key = state_key(&deps);
        let mut shuffled = deps.clone();
        rng.shuffle(&mut shuffled);
        assert_eq!(state_key(&shuffled), key, "order changed the state key");
        let mut sorted = deps.clone();
        sorted.sort();
        if let Some(other) = seen.insert(key, sorted.clone()) {
            assert_eq!(other, sorted, "distinct dependency states share a key");
        }
        // Moving bytes between a name and its state is a different state.
        if let Some(first) = deps.first() {
            if !first.name.is_empty() {
                let mut moved = deps.clone();
                let b = moved[0].name.pop().unwrap();
                moved[0].state.insert(0, b);
                assert_ne!(state_key(&moved), key);
            }
        }
    }
}

/// A relative spec spelled like the portable form of an absolute one
/// (`@root/x`, a file named `@root` in the working directory) is another task.
#[test]
fn a_spec_that_looks_portable_is_not_the_absolute_path() {
    let root = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(root.path()).unwrap();
    let with_files = |f: OsString| Desc {
        argv: vec![b"make".to_vec()],
        files: vec![f],
        envs: vec![],
        pass_envs: vec![],
        outputs: vec![],
        urls: vec![],
        url_contents: vec![],
        scope: None,
        key: None,
        flags: [false; 3],
    };
    let absolute = task_key(&with_files(root.join("x").into()), &root).unwrap();
    let lookalike = task_key(&with_files("@root/x".into()), &root).unwrap();
    assert_ne!(absolute, lookalike);
    let excluded = task_key(&with_files(format!("!{}/x", root.display()).into()), &root);
    let excluded_lookalike = task_key(&with_files("!@root/x".into()), &root);
    assert_ne!(excluded, excluded_lookalike);
}
