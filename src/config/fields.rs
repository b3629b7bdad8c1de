//! The task fields, derived from the clap definition of `idem run`: every long option is
//! a field of the same name, typed by its clap action and value parser. Nothing here
//! lists options by hand, so a new flag is a new field without anyone remembering.

use std::any::TypeId;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::{ArgAction, Args, Command};

use crate::cli::RunArgs;

/// Long options of `idem run` that are not task fields, and why.
pub const NOT_FIELDS: &[(&str, &str)] = &[
    ("help", "prints help"),
    ("config", "names the task file itself"),
];

/// Fields of a task that are not `idem run` options.
pub const TASK_ONLY: &[&str] = &["run", "cwd", "description"];

/// What a field holds in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `force = true`: an on/off flag.
    Flag,
    /// `ttl = "1h"`, `max-runs = 3`, `remote-read-only = true`: one value.
    One(Scalar),
    /// `file = ["src/", "Makefile"]`: a repeatable option.
    Many,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    String,
    Integer,
    Boolean,
}

/// How a field's values are read relative to the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paths {
    /// Not a path.
    None,
    /// A path option (`cache-dir`, `root`): relative to the directory of idem.toml.
    FromFile,
    /// A file spec (`file`, `output`): relative to the working directory of the run.
    FromWorkdir,
}

#[derive(Debug, Clone)]
pub struct Field {
    /// The long option and the TOML key (`url-content`).
    pub name: String,
    /// The clap id (`url_contents`).
    pub id: String,
    /// A repeatable option may also be written in the plural (`files`, `outputs`).
    pub plural: Option<String>,
    pub shape: Shape,
    pub paths: Paths,
    /// Whether clap's parser can refuse a value (durations, enums, numbers): plain
    /// strings and paths are not worth a parse.
    pub validated: bool,
}

/// The clap command of `idem run` alone (the one the resolved arguments are parsed by).
pub fn run_command() -> Command {
    RunArgs::augment_args(Command::new("run").no_binary_name(true))
}

/// The `idem run` command and its fields, built once per process (building a clap
/// command is the dearest step of resolving a task).
pub struct RunOptions {
    pub cmd: Command,
    pub fields: Vec<Field>,
}

impl RunOptions {
    pub fn new() -> Self {
        let cmd = run_command();
        let fields = fields(&cmd);
        Self { cmd, fields }
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Every task field that is an `idem run` option, in clap's order.
pub fn fields(cmd: &Command) -> Vec<Field> {
    cmd.get_arguments()
        .filter(|a| !a.is_positional() && !a.is_hide_set())
        .filter_map(|a| {
            let long = a.get_long()?;
            if NOT_FIELDS.iter().any(|(n, _)| *n == long) {
                return None;
            }
            let parser = a.get_value_parser().type_id();
            let shape = match a.get_action() {
                ArgAction::SetTrue => Shape::Flag,
                ArgAction::Append => Shape::Many,
                ArgAction::Set if parser == TypeId::of::<bool>() => Shape::One(Scalar::Boolean),
                ArgAction::Set if parser == TypeId::of::<u64>() => Shape::One(Scalar::Integer),
                ArgAction::Set => Shape::One(Scalar::String),
                _ => return None,
            };
            let paths = if parser == TypeId::of::<PathBuf>() {
                Paths::FromFile
            } else if parser == TypeId::of::<OsString>() {
                Paths::FromWorkdir
            } else {
                Paths::None
            };
            let validated = ![
                TypeId::of::<String>(),
                TypeId::of::<OsString>(),
                TypeId::of::<PathBuf>(),
            ]
            .iter()
            .any(|t| parser == *t);
            Some(Field {
                validated,
                name: long.to_string(),
                id: a.get_id().to_string(),
                plural: (shape == Shape::Many).then(|| format!("{long}s")),
                shape,
                paths,
            })
        })
        .collect()
}

/// Checks one value with the option's own clap parser (by parsing `--name=value`); the
/// error is clap's reason without its "for '--ttl <DURATION>'" framing (the caller
/// names the field).
pub fn check_value(cmd: &Command, field: &Field, value: &OsStr) -> Result<(), String> {
    if !field.validated {
        return Ok(());
    }
    let mut token = OsString::from(format!("--{}=", field.name));
    token.push(value);
    match cmd.clone().try_get_matches_from([token]) {
        Ok(_) => Ok(()),
        Err(e) => Err(clap_reason(&e)),
    }
}

/// The one-line reason inside a clap value error.
fn clap_reason(e: &clap::Error) -> String {
    use std::error::Error;
    if let Some(source) = e.source() {
        return source.to_string();
    }
    let text = e.to_string();
    let first = text
        .lines()
        .next()
        .unwrap_or("invalid value")
        .trim_start_matches("error: ");
    // "invalid value 'x' for '--url-offline <MODE>'" → "invalid value 'x'"
    let first = first.split(" for '--").next().unwrap_or(first);
    let possible = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("[possible values: "))
        .map(|p| format!(" (possible values: {}", p.trim_end_matches(']')) + ")")
        .unwrap_or_default();
    format!("{first}{possible}")
}

/// Optimal string alignment distance: `fiels` is one transposition from `files`.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The nearest candidate, when it is near enough to be a typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, c)| *d <= 2 && *d * 3 <= c.chars().count().max(word.chars().count()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested() {
        let names = ["file", "files", "env", "output", "outputs", "ttl"];
        assert_eq!(did_you_mean("fiels", names), Some("files"));
        assert_eq!(did_you_mean("outptu", names), Some("output"));
        assert_eq!(did_you_mean("enb", names), Some("env"));
        assert_eq!(did_you_mean("banana", names), None);
    }

    #[test]
    fn fields_are_typed_from_clap() {
        let cmd = run_command();
        let f = fields(&cmd);
        let get = |n: &str| f.iter().find(|x| x.name == n).unwrap();
        assert_eq!(get("file").shape, Shape::Many);
        assert_eq!(get("file").paths, Paths::FromWorkdir);
        assert_eq!(get("file").plural.as_deref(), Some("files"));
        assert_eq!(get("force").shape, Shape::Flag);
        assert_eq!(get("ttl").shape, Shape::One(Scalar::String));
        assert_eq!(get("max-runs").shape, Shape::One(Scalar::Integer));
        assert_eq!(get("remote-read-only").shape, Shape::One(Scalar::Boolean));
        assert_eq!(get("cache-dir").paths, Paths::FromFile);
        assert!(f
            .iter()
            .all(|x| x.name != "background-refresh" && x.name != "config"));
    }

    #[test]
    fn values_are_checked_by_the_options_own_parser() {
        let cmd = run_command();
        let f = fields(&cmd);
        let get = |n: &str| f.iter().find(|x| x.name == n).unwrap();
        assert!(check_value(&cmd, get("ttl"), OsStr::new("1h")).is_ok());
        let e = check_value(&cmd, get("ttl"), OsStr::new("1x")).unwrap_err();
        assert!(e.contains("invalid duration unit 'x'"), "{e}");
        let e = check_value(&cmd, get("url-offline"), OsStr::new("maybe")).unwrap_err();
        assert!(e.contains("run, hit"), "{e}");
        assert!(check_value(&cmd, get("max-runs"), OsStr::new("0")).is_err());
        assert!(check_value(&cmd, get("file"), OsStr::new("-x")).is_ok());
    }
}
