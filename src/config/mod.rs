//! Named tasks in idem.toml: finds the file, and turns `idem run NAME` into exactly the
//! arguments of the spelled-out command line before anything else sees them. Nothing
//! outside this module knows tasks exist, except for the task name kept for display.

pub mod fields;
pub mod load;
pub mod toml_file;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, FromArgMatches};

use crate::cli::{CacheArgs, Command, RunArgs};
use crate::exit;
use crate::spec::{normalize, Workspace};

pub use load::{Config, Setting, Task};

/// The file looked for at the workspace root.
pub const FILE_NAME: &str = "idem.toml";

/// Resolves the task (or the [defaults]) of every subcommand that takes run arguments.
pub fn resolve(command: Command, matches: &ArgMatches) -> Result<Command> {
    let Some((_, sub)) = matches.subcommand() else {
        return Ok(command);
    };
    Ok(match command {
        Command::Run(args) => Command::Run(resolve_run(args, sub)?),
        Command::Status(args) => Command::Status(resolve_run(args, sub)?),
        Command::Explain(mut e) => {
            e.run = resolve_run(e.run, sub)?;
            Command::Explain(e)
        }
        Command::Forget(mut f) => {
            f.run = resolve_run(f.run, sub)?;
            Command::Forget(f)
        }
        Command::Stats(mut a) => {
            default_cache_dir(&mut a.cache, sub)?;
            Command::Stats(a)
        }
        Command::List(mut a) => {
            default_cache_dir(&mut a.cache, sub)?;
            Command::List(a)
        }
        Command::Show(mut a) => {
            default_cache_dir(&mut a.cache, sub)?;
            Command::Show(a)
        }
        Command::Gc(mut a) => {
            default_cache_dir(&mut a.cache, sub)?;
            Command::Gc(a)
        }
        Command::Clear(mut a) => {
            default_cache_dir(&mut a.cache, sub)?;
            Command::Clear(a)
        }
        Command::Verify(mut a) => {
            default_cache_dir(&mut a.cache, sub)?;
            Command::Verify(a)
        }
        other => other,
    })
}

/// The cache commands (list, show, gc…) use the cache directory of [defaults], so they
/// see the cache that `idem run` wrote to.
fn default_cache_dir(cache: &mut CacheArgs, m: &ArgMatches) -> Result<()> {
    if matches!(
        m.value_source("cache_dir"),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    ) {
        return Ok(());
    }
    // These commands have no --config/--root: their environment variables still count.
    let env_path = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let Some(path) = find(
        env_path("IDEM_CONFIG").as_deref(),
        env_path("IDEM_ROOT").as_deref(),
    )?
    else {
        return Ok(());
    };
    let config = load::load(&path)?;
    if let Some(Setting::One(dir)) = lookup(&config.defaults, "cache-dir") {
        cache.cache_dir = Some(config.dir.join(dir));
    }
    Ok(())
}

/// `--config`/`IDEM_CONFIG` (which must exist), else idem.toml at the workspace root
/// if there is one. Relative paths are taken from the working directory.
pub fn find(config: Option<&Path>, root: Option<&Path>) -> Result<Option<PathBuf>> {
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        // A deleted working directory has no workspace to hold an idem.toml; the run
        // itself then runs the command uncached, as a shell would.
        Err(_) if config.is_none() => return Ok(None),
        Err(e) => return Err(e).context("cannot read the working directory"),
    };
    if let Some(path) = config {
        let abs = normalize(&cwd.join(path));
        if !abs.is_file() {
            return Err(exit::usage(format!(
                "config file {} does not exist (--config / IDEM_CONFIG)",
                path.display()
            )));
        }
        return Ok(Some(abs));
    }
    // A bad --root is reported by the run itself, with its own message.
    let Ok(ws) = Workspace::resolve(root) else {
        return Ok(None);
    };
    let path = ws.root.join(FILE_NAME);
    Ok(path.is_file().then_some(path))
}

/// `idem run [OPTIONS] NAME [-- ARGS]` → the RunArgs of the equivalent command line,
/// with the process moved into the task's working directory. Without a task name, the
/// command line plus [defaults].
pub fn resolve_run(args: RunArgs, m: &ArgMatches) -> Result<RunArgs> {
    let found = find(args.config.as_deref(), args.root.as_deref())?;
    let Some(path) = found else {
        if let Some(name) = &args.task {
            return Err(exit::usage(format!(
                "unknown task `{name}`: there is no {FILE_NAME} at the workspace root (see \
                 docs/tasks.md); to run a command, put it after `--`: idem run -- {name}"
            )));
        }
        return Ok(args);
    };
    let mut opts = fields::RunOptions::new();
    let config = load::load_with(&path, &opts)?;
    let task = match &args.task {
        Some(name) => Some(
            config
                .task(name)
                .ok_or_else(|| unknown_task(&config, name))?,
        ),
        None => None,
    };
    let invocation_dir = std::env::current_dir().context("cannot read the working directory")?;
    let workdir = match task {
        Some(t) => task_dir(&config, t)?,
        None => invocation_dir.clone(),
    };
    let (tokens, applied) = tokens(&opts, &config, task, m, &invocation_dir, &workdir);
    if task.is_none() && !applied {
        // An ad-hoc run that [defaults] does not change: the arguments as parsed.
        return Ok(RunArgs {
            config: Some(config.path.clone()),
            ..args
        });
    }
    let mut argv = match task {
        Some(t) => with_extra_args(t, &args.command),
        None => args.command.clone(),
    };
    let mut full: Vec<OsString> = tokens;
    full.push("--".into());
    full.append(&mut argv);
    let matches = opts
        .cmd
        .try_get_matches_from_mut(&full)
        .map_err(|e| exit::usage(format!("{}: {}", config.path.display(), first_line(&e))))?;
    let mut resolved =
        RunArgs::from_arg_matches(&matches).map_err(|e| exit::usage(first_line(&e)))?;
    resolved.task = args.task.clone();
    resolved.config = Some(config.path.clone());
    if task.is_some() {
        crate::spec::note_invocation_dir(invocation_dir.clone());
        std::env::set_current_dir(&workdir)
            .with_context(|| format!("cannot enter {}", workdir.display()))?;
    }
    Ok(resolved)
}

/// The spelled-out options: for each option, the command line's value if it gave one
/// (or its environment variable did), else the task's, else [defaults]; repeatable
/// options get the task's (else the defaults') values followed by the command line's.
/// Also says whether any value came from the file.
pub fn tokens(
    opts: &fields::RunOptions,
    config: &Config,
    task: Option<&Task>,
    m: &ArgMatches,
    invocation_dir: &Path,
    workdir: &Path,
) -> (Vec<OsString>, bool) {
    let known = &opts.fields;
    let mut out = Vec::new();
    let mut applied = false;
    for arg in opts.cmd.get_arguments().filter(|a| !a.is_positional()) {
        let Some(long) = arg.get_long() else { continue };
        let id = arg.get_id().as_str();
        let given = matches!(
            m.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        let field = known.iter().find(|f| f.id == id);
        let configured = field.and_then(|f| {
            let own = task.and_then(|t| lookup(&t.settings, &f.name));
            own.cloned()
                .or_else(|| {
                    lookup(&config.defaults, &f.name).map(|s| from_defaults(s, f, config, workdir))
                })
                .map(|s| from_file(s, f, &config.dir))
        });
        let flag = |on: bool, out: &mut Vec<OsString>| {
            if on {
                out.push(format!("--{long}").into());
            }
        };
        if let Some(Setting::Many(values)) = &configured {
            applied |= !values.is_empty();
            for v in values {
                out.push(option(long, v));
            }
        }
        if given {
            if matches!(arg.get_action(), ArgAction::SetTrue) {
                flag(m.get_flag(id), &mut out);
            } else if let Some(raw) = m.get_raw(id) {
                for v in raw {
                    let v = if task.is_some() && is_path(arg) {
                        absolute(invocation_dir, v)
                    } else {
                        v.to_os_string()
                    };
                    out.push(option(long, &v));
                }
            }
            continue;
        }
        match configured {
            Some(Setting::Flag(on)) => {
                applied |= on;
                flag(on, &mut out);
            }
            Some(Setting::One(v)) => {
                applied = true;
                out.push(option(long, &v));
            }
            _ => {}
        }
    }
    (out, applied)
}

fn lookup<'a>(settings: &'a [(String, Setting)], name: &str) -> Option<&'a Setting> {
    settings.iter().find(|(n, _)| n == name).map(|(_, s)| s)
}

fn is_path(arg: &clap::Arg) -> bool {
    arg.get_value_parser().type_id() == std::any::TypeId::of::<PathBuf>()
}

/// `--long=value`: the `=` form, so a value starting with `-` stays a value.
fn option(long: &str, value: &OsStr) -> OsString {
    let mut o = OsString::from(format!("--{long}="));
    o.push(value);
    o
}

fn absolute(base: &Path, v: &OsStr) -> OsString {
    normalize(&base.join(v)).into_os_string()
}

/// Path options (`cache-dir`, `root`) are relative to the directory of idem.toml.
fn from_file(s: Setting, f: &fields::Field, dir: &Path) -> Setting {
    match (f.paths, s) {
        (fields::Paths::FromFile, Setting::One(v)) => Setting::One(absolute(dir, &v)),
        (_, s) => s,
    }
}

/// A [defaults] file spec is relative to idem.toml; a run elsewhere sees it absolute
/// (which enters the task key in its portable `@root/` form).
fn from_defaults(s: &Setting, f: &fields::Field, config: &Config, workdir: &Path) -> Setting {
    if f.paths != fields::Paths::FromWorkdir || workdir == config.dir {
        return s.clone();
    }
    let anchor = |v: &OsString| -> OsString {
        let bytes = v.as_bytes();
        let (bang, rest) = match bytes.strip_prefix(b"!") {
            Some(r) => (&b"!"[..], r),
            None => (&b""[..], bytes),
        };
        let path = Path::new(OsStr::from_bytes(rest));
        if path.is_absolute() {
            return v.clone();
        }
        let mut out = bang.to_vec();
        out.extend_from_slice(config.dir.join(path).as_os_str().as_bytes());
        OsString::from_vec(out)
    };
    match s {
        Setting::Many(vs) => Setting::Many(vs.iter().map(anchor).collect()),
        Setting::One(v) => Setting::One(anchor(v)),
        other => other.clone(),
    }
}

/// The task's working directory: idem.toml's directory, or its `cwd` below it.
fn task_dir(config: &Config, task: &Task) -> Result<PathBuf> {
    let Some(cwd) = &task.cwd else {
        return Ok(config.dir.clone());
    };
    let dir = normalize(&config.dir.join(cwd));
    if !dir.is_dir() {
        return Err(exit::usage(format!(
            "{}: task.{}.cwd: {} is not a directory",
            config.path.display(),
            task.name,
            dir.display()
        )));
    }
    Ok(dir)
}

/// The task's argv with the arguments given after `--` appended: to the argv itself,
/// or, for a `run` string, to the script as shell-quoted words.
fn with_extra_args(task: &Task, extra: &[OsString]) -> Vec<OsString> {
    let mut argv = task.run.clone();
    if extra.is_empty() {
        return argv;
    }
    if task.shell {
        let script = argv
            .last_mut()
            .expect("a shell task's argv ends with its script");
        for a in extra {
            script.push(" ");
            script.push(shell_quote(a));
        }
    } else {
        argv.extend(extra.iter().cloned());
    }
    argv
}

/// Quotes one word for sh only when it needs it; any bytes survive.
fn shell_quote(a: &OsStr) -> OsString {
    let b = a.as_bytes();
    if !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(c))
    {
        return a.to_os_string();
    }
    let mut out = b"'".to_vec();
    for &c in b {
        if c == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(c);
        }
    }
    out.push(b'\'');
    OsString::from_vec(out)
}

fn unknown_task(config: &Config, name: &str) -> anyhow::Error {
    let names = config.names();
    let defined = if names.is_empty() {
        "it defines no tasks".to_string()
    } else {
        format!("defined: {}", names.join(", "))
    };
    let hint = match fields::did_you_mean(name, names.iter().copied()) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => format!("; to run a command, put it after `--`: idem run -- {name}"),
    };
    exit::usage(format!(
        "unknown task `{name}` in {} ({defined}){hint}",
        config.path.display()
    ))
}

fn first_line(e: &clap::Error) -> String {
    e.to_string()
        .lines()
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_option_is_a_task_field() {
        let cmd = fields::run_command();
        let known = fields::fields(&cmd);
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let excluded = fields::NOT_FIELDS.iter().any(|(n, _)| *n == long) || arg.is_hide_set();
            assert!(
                excluded || known.iter().any(|f| f.name == long),
                "--{long} of `idem run` is not a task field"
            );
        }
        // The whole CLI's `run` agrees with the standalone command fields come from.
        use clap::CommandFactory;
        let cli = crate::cli::Cli::command();
        let run = cli.find_subcommand("run").expect("idem run exists");
        for arg in run.get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    cmd.get_arguments().any(|a| a.get_long() == Some(long)),
                    "--{long}"
                );
            }
        }
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote(OsStr::new("--nocapture")), "--nocapture");
        assert_eq!(shell_quote(OsStr::new("a b")), "'a b'");
        assert_eq!(shell_quote(OsStr::new("it's")), "'it'\\''s'");
        assert_eq!(shell_quote(OsStr::new("")), "''");
    }
}
