//! The command line of a plain hit, `idem run [-v] [--cache-dir DIR] [-f SPEC]… [-e NAME]…
//! [-o SPEC]… -- CMD…`, read without clap: building and running clap's parser costs a
//! hit more instructions than everything it does after. Anything else (another option,
//! a repeated one, an `IDEM_*` variable clap reads, a task name) returns `None`, and clap
//! parses it; a unit test holds the results equal to clap's.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{CacheArgs, KeyReuse, Progress, RunArgs, UrlOffline};

/// The environment variables `idem run`'s clap definition reads. When one is set, clap
/// parses (a unit test checks this list against the definition).
pub const RUN_ENV_VARS: &[&str] = &[
    "IDEM_CACHE_DIR",
    "IDEM_ROOT",
    "IDEM_CONFIG",
    "IDEM_REMOTE",
    "IDEM_REMOTE_READ_ONLY",
];

/// `argv` (binary name first) as `idem run` arguments, when it has the plain form.
pub fn plain_run(argv: &[OsString]) -> Option<RunArgs> {
    if argv.get(1)?.as_bytes() != b"run" {
        return None;
    }
    if RUN_ENV_VARS.iter().any(|v| std::env::var_os(v).is_some()) {
        return None;
    }
    let mut args = clap_defaults();
    let mut rest = argv[2..].iter();
    loop {
        let arg = rest.next()?.as_bytes();
        if arg == b"--" {
            break;
        }
        if arg == b"-v" || arg == b"--verbose" {
            if args.verbose {
                return None;
            }
            args.verbose = true;
            continue;
        }
        // `--name=value` or `--name value` / `-x value`.
        let (name, inline) = match arg.iter().position(|&b| b == b'=') {
            Some(i) if arg.starts_with(b"--") => (&arg[..i], Some(&arg[i + 1..])),
            _ => (arg, None),
        };
        let value = match inline {
            Some(v) => OsStr::from_bytes(v),
            None => rest.next()?.as_os_str(),
        };
        // Clap reads a value that looks like an option differently; an empty one is
        // for clap's parsers to judge.
        if value.is_empty() || value.as_bytes()[0] == b'-' {
            return None;
        }
        match name {
            b"--cache-dir" if args.cache.cache_dir.is_none() => {
                args.cache.cache_dir = Some(PathBuf::from(value));
            }
            b"-f" | b"--file" => args.files.push(value.to_os_string()),
            b"-o" | b"--output" => args.outputs.push(value.to_os_string()),
            b"-e" | b"--env" => args.envs.push(value.to_str()?.to_string()),
            _ => return None,
        }
    }
    args.command = rest.cloned().collect();
    if args.command.is_empty() {
        return None;
    }
    Some(args)
}

/// `RunArgs` as clap fills it when no option is given and no variable is set.
fn clap_defaults() -> RunArgs {
    RunArgs {
        url_timeout: Duration::from_secs(5),
        url_offline: UrlOffline::Run,
        max_runs: 1,
        key_reuse: KeyReuse::Deny,
        remote_timeout: Duration::from_secs(5),
        progress: Progress::Auto,
        cache: CacheArgs { cache_dir: None },
        ..RunArgs::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, Command, FromArgMatches};

    fn clap_parse(argv: &[&str]) -> RunArgs {
        let cmd = RunArgs::augment_args(Command::new("run").no_binary_name(true));
        let m = cmd.try_get_matches_from(&argv[2..]).unwrap();
        RunArgs::from_arg_matches(&m).unwrap()
    }

    fn fast(argv: &[&str]) -> Option<RunArgs> {
        let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
        plain_run(&argv)
    }

    #[test]
    fn plain_forms_parse_exactly_as_clap_does() {
        if RUN_ENV_VARS.iter().any(|v| std::env::var_os(v).is_some()) {
            // The fast path is off in this environment; nothing to compare.
            return;
        }
        for argv in [
            &["idem", "run", "--", "true"][..],
            &[
                "idem",
                "run",
                "--cache-dir",
                "/c",
                "--",
                "make",
                "-j",
                "--help",
            ],
            &[
                "idem",
                "run",
                "--cache-dir=/c d",
                "-v",
                "--",
                "a",
                "--",
                "b",
            ],
            &[
                "idem",
                "run",
                "--verbose",
                "-f",
                "src/",
                "--file=!x",
                "-f",
                "a=b",
                "--",
                "cc",
            ],
            &[
                "idem",
                "run",
                "-e",
                "CC",
                "--env=LANG",
                "-o",
                "out/",
                "--output",
                "o",
                "--",
                "x",
            ],
            &["idem", "run", "--", ""],
        ] {
            let got = fast(argv).unwrap_or_else(|| panic!("{argv:?}: not taken"));
            assert_eq!(
                format!("{got:?}"),
                format!("{:?}", clap_parse(argv)),
                "{argv:?}"
            );
        }
    }

    #[test]
    fn anything_else_is_left_to_clap() {
        for argv in [
            &["idem", "run"][..],
            &["idem", "run", "--"],
            &["idem", "run", "build"],
            &["idem", "run", "build", "--", "x"],
            &["idem", "status", "--", "true"],
            &["idem", "run", "-v", "-v", "--", "x"],
            &["idem", "run", "-vf", "x", "--", "x"],
            &[
                "idem",
                "run",
                "--cache-dir",
                "a",
                "--cache-dir",
                "b",
                "--",
                "x",
            ],
            &["idem", "run", "--cache-dir", "", "--", "x"],
            &["idem", "run", "--cache-dir=", "--", "x"],
            &["idem", "run", "-f", "-", "--", "x"],
            &["idem", "run", "-f", "--", "x"],
            &["idem", "run", "-f"],
            &["idem", "run", "--ttl", "1h", "--", "x"],
            &["idem", "run", "--help"],
            &["idem", "run", "--version", "--", "x"],
            &["idem", "run", "-f=x", "--", "x"],
            &["idem", "run", "--verbose=true", "--", "x"],
        ] {
            assert!(fast(argv).is_none(), "{argv:?}");
        }
    }

    /// A new option with a default value or an environment variable changes what
    /// "no option given" means: `clap_defaults` or `RUN_ENV_VARS` must follow it.
    #[test]
    fn defaults_and_variables_are_the_ones_clap_knows() {
        let cmd = RunArgs::augment_args(Command::new("run"));
        let mut envs: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect();
        envs.sort();
        let mut known: Vec<String> = RUN_ENV_VARS.iter().map(|s| s.to_string()).collect();
        known.sort();
        assert_eq!(envs, known, "update RUN_ENV_VARS in src/cli_fast.rs");
        let m = RunArgs::augment_args(Command::new("run").no_binary_name(true))
            .try_get_matches_from(["--", "x"])
            .unwrap();
        let mut from_clap = RunArgs::from_arg_matches(&m).unwrap();
        from_clap.command.clear();
        assert_eq!(
            format!("{from_clap:?}"),
            format!("{:?}", clap_defaults()),
            "update clap_defaults in src/cli_fast.rs"
        );
    }
}
