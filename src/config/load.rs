//! Validates a parsed idem.toml into [`Config`]: every field known, typed and checked by
//! its option's own parser, every error at its file:line:column. It reads no other file
//! and never applies anything: `resolve` does that.

use std::ffi::OsString;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Command;

use super::fields::{self, Field, Scalar, Shape, TASK_ONLY};
use super::toml_file::{self, Spanned, Table, Value};

/// A field's value, in command-line form (one token per value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    Flag(bool),
    One(OsString),
    Many(Vec<OsString>),
}

/// Field name (the long option) → value, in file order.
pub type Settings = Vec<(String, Setting)>;

#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub description: Option<String>,
    /// The argv: `run = "…"` is `sh -c …`; `run = [...]` is itself.
    pub run: Vec<OsString>,
    /// True when `run` was a string (extra arguments are then appended to the script).
    pub shell: bool,
    /// `cwd` as written, relative to the directory of idem.toml.
    pub cwd: Option<String>,
    pub settings: Settings,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Absolute path of the file.
    pub path: PathBuf,
    /// Its directory: a task's default working directory and the base of path options.
    pub dir: PathBuf,
    pub defaults: Settings,
    pub tasks: Vec<Task>,
}

impl Config {
    pub fn task(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.tasks.iter().map(|t| t.name.as_str()).collect()
    }
}

/// Reads and validates the file at `path` (absolute).
pub fn load(path: &Path) -> Result<Config> {
    load_with(path, &fields::RunOptions::new())
}

/// [`load`], with the `idem run` command already built.
pub fn load_with(path: &Path, opts: &fields::RunOptions) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(|e| crate::exit::usage(format!("{e:#}")))?;
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let at = Positions { path, text: &text };
    let top = toml_file::parse(&text).map_err(|e| at.error(e.span, &e.message))?;
    let reader = Reader {
        at: &at,
        cmd: &opts.cmd,
        fields: &opts.fields,
    };
    let mut config = Config {
        path: path.to_path_buf(),
        dir,
        defaults: Vec::new(),
        tasks: Vec::new(),
    };
    for (key, value) in &top {
        match key.get_ref().as_str() {
            "defaults" => {
                let table = reader.table(value, "defaults")?;
                config.defaults = reader.settings(table, "defaults", false)?.0;
            }
            "task" => {
                for (name, body) in reader.table(value, "task")? {
                    config.tasks.push(reader.task(name, body)?);
                }
            }
            other => {
                let hint = fields::did_you_mean(other, ["defaults", "task"])
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_else(|| {
                        "; idem.toml holds [defaults] and [task.NAME] tables".into()
                    });
                return Err(at.error(key.span.clone(), &format!("unknown table `{other}`{hint}")));
            }
        }
    }
    Ok(config)
}

/// A key and its value, borrowed from the parsed file.
type Entry<'t> = (&'t Spanned<String>, &'t Spanned<Value>);

struct Positions<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Positions<'_> {
    /// `file:line:column: message`, a usage error (exit 2).
    fn error(&self, span: Option<Range<usize>>, message: &str) -> anyhow::Error {
        let place = match span {
            Some(s) => {
                let (line, col) = toml_file::line_col(self.text, s.start);
                format!("{}:{line}:{col}", self.path.display())
            }
            None => self.path.display().to_string(),
        };
        crate::exit::usage(format!("{place}: {message}"))
    }
}

struct Reader<'a> {
    at: &'a Positions<'a>,
    cmd: &'a Command,
    fields: &'a [Field],
}

impl Reader<'_> {
    fn table<'v>(&self, value: &'v Spanned<Value>, what: &str) -> Result<&'v Table> {
        match value.get_ref() {
            Value::Table(t) => Ok(t),
            other => Err(self.at.error(
                value.span.clone(),
                &format!("{what}: expected a table, found {}", other.type_name()),
            )),
        }
    }

    fn task(&self, name: &Spanned<String>, body: &Spanned<Value>) -> Result<Task> {
        let n = name.get_ref();
        let valid = !n.is_empty()
            && !n.starts_with('-')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
        if !valid {
            return Err(self.at.error(
                name.span.clone(),
                &format!("task name `{n}`: use letters, digits and - _ . : (not starting with -)"),
            ));
        }
        let place = format!("task.{n}");
        let table = self.table(body, &place)?;
        let (settings, own) = self.settings(table, &place, true)?;
        let mut task = Task {
            name: n.clone(),
            description: None,
            run: Vec::new(),
            shell: false,
            cwd: None,
            settings,
        };
        for (key, value) in own {
            let what = format!("{place}.{key}", key = key.get_ref());
            match key.get_ref().as_str() {
                "description" => task.description = Some(self.string(value, &what)?),
                "cwd" => task.cwd = Some(self.string(value, &what)?),
                _ => {
                    (task.run, task.shell) = self.run(value, &what)?;
                }
            }
        }
        if task.run.is_empty() {
            return Err(self.at.error(
                name.span.clone(),
                &format!(
                    "{place}: no `run`: add run = \"make all\" (a string runs through sh -c) \
                     or run = [\"make\", \"all\"] (an argv)"
                ),
            ));
        }
        Ok(task)
    }

    fn run(&self, value: &Spanned<Value>, what: &str) -> Result<(Vec<OsString>, bool)> {
        let empty = || {
            self.at
                .error(value.span.clone(), &format!("{what}: is empty"))
        };
        match value.get_ref() {
            Value::String(s) if s.trim().is_empty() => Err(empty()),
            Value::String(s) => Ok((vec!["sh".into(), "-c".into(), s.into()], true)),
            Value::Array(items) => {
                let argv = self.strings(items, what)?;
                if argv.first().is_none_or(|a| a.is_empty()) {
                    return Err(empty());
                }
                Ok((argv, false))
            }
            other => Err(self.at.error(
                value.span.clone(),
                &format!(
                    "{what}: expected a string (run by sh -c) or an array of strings (an argv), found {}",
                    other.type_name()
                ),
            )),
        }
    }

    fn string(&self, value: &Spanned<Value>, what: &str) -> Result<String> {
        match value.get_ref() {
            Value::String(s) => Ok(s.clone()),
            other => Err(self.at.error(
                value.span.clone(),
                &format!("{what}: expected a string, found {}", other.type_name()),
            )),
        }
    }

    fn strings(&self, items: &[Spanned<Value>], what: &str) -> Result<Vec<OsString>> {
        items
            .iter()
            .map(|item| match item.get_ref() {
                Value::String(s) => Ok(OsString::from(s)),
                other => Err(self.at.error(
                    item.span.clone(),
                    &format!(
                        "{what}: expected an array of strings, found {} in it",
                        other.type_name()
                    ),
                )),
            })
            .collect()
    }

    /// The option fields of a table; with `task`, also hands back the task-only ones.
    fn settings<'t>(
        &self,
        table: &'t Table,
        place: &str,
        task: bool,
    ) -> Result<(Settings, Vec<Entry<'t>>)> {
        let mut settings: Settings = Vec::new();
        let mut own = Vec::new();
        for (key, value) in table {
            let k = key.get_ref().as_str();
            let what = format!("{place}.{k}");
            if TASK_ONLY.contains(&k) {
                if !task {
                    return Err(self.at.error(
                        key.span.clone(),
                        &format!("{what}: `{k}` belongs in a [task.NAME] table, not in [defaults]"),
                    ));
                }
                own.push((key, value));
                continue;
            }
            let Some(field) = self
                .fields
                .iter()
                .find(|f| f.name == k || f.plural.as_deref() == Some(k))
            else {
                return Err(self
                    .at
                    .error(key.span.clone(), &self.unknown(k, &what, task)));
            };
            if settings.iter().any(|(n, _)| *n == field.name) {
                return Err(self.at.error(
                    key.span.clone(),
                    &format!(
                        "{what}: `{}` is given twice (as `{}` and `{}`)",
                        field.name,
                        field.name,
                        field.plural.as_deref().unwrap_or(&field.name)
                    ),
                ));
            }
            settings.push((field.name.clone(), self.setting(field, value, &what)?));
        }
        Ok((settings, own))
    }

    fn unknown(&self, k: &str, what: &str, task: bool) -> String {
        let mut names: Vec<&str> = Vec::new();
        for f in self.fields {
            names.push(&f.name);
            names.extend(f.plural.as_deref());
        }
        if task {
            names.extend(TASK_ONLY);
        }
        match fields::did_you_mean(k, names) {
            Some(s) => format!("{what}: unknown field `{k}`; did you mean `{s}`?"),
            None => format!("{what}: unknown field `{k}` (the fields are listed in docs/tasks.md)"),
        }
    }

    fn setting(&self, field: &Field, value: &Spanned<Value>, what: &str) -> Result<Setting> {
        let wrong = |expected: &str| {
            self.at.error(
                value.span.clone(),
                &format!(
                    "{what}: expected {expected}, found {}",
                    value.get_ref().type_name()
                ),
            )
        };
        let checked = |v: OsString, span: Option<Range<usize>>| -> Result<OsString> {
            fields::check_value(self.cmd, field, &v)
                .map_err(|reason| self.at.error(span, &format!("{what}: {reason}")))?;
            Ok(v)
        };
        Ok(match (field.shape, value.get_ref()) {
            (Shape::Flag, Value::Boolean(b)) => Setting::Flag(*b),
            (Shape::Flag, _) => return Err(wrong("a boolean (true or false)")),
            (Shape::One(Scalar::Boolean), Value::Boolean(b)) => {
                Setting::One(checked(b.to_string().into(), value.span.clone())?)
            }
            (Shape::One(Scalar::Boolean), _) => return Err(wrong("a boolean (true or false)")),
            (Shape::One(Scalar::Integer), Value::Integer(i)) => {
                Setting::One(checked(i.to_string().into(), value.span.clone())?)
            }
            (Shape::One(Scalar::Integer), _) => return Err(wrong("an integer")),
            (Shape::One(Scalar::String), Value::String(s)) => {
                Setting::One(checked(s.into(), value.span.clone())?)
            }
            (Shape::One(Scalar::String), _) => return Err(wrong("a string")),
            (Shape::Many, Value::Array(items)) => {
                let mut values = Vec::new();
                for (item, v) in items.iter().zip(self.strings(items, what)?) {
                    values.push(checked(v, item.span.clone())?);
                }
                Setting::Many(values)
            }
            (Shape::Many, _) => return Err(wrong("an array of strings")),
        })
    }
}
