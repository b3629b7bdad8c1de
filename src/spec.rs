//! The task: what the user asked to run (argv, cwd, dependency and output specs,
//! result-changing options) and its task key. It never reads any dependency's state:
//! the task key must be the same before and after an input changes.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use crate::encode::Encoder;

/// Bumped whenever the meaning of a key changes, so old records can never match.
pub const KEY_SCHEMA: u64 = 1;

/// The directory idem was started in, when a named task moved the process into its own
/// directory: relative paths in idem's own argv (`--config sub/idem.toml`) are relative
/// to it, which matters to a process that re-runs that argv (the `--stale` refresher).
static INVOCATION_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Records the invocation directory before a named task changes the working directory.
pub fn note_invocation_dir(dir: PathBuf) {
    let _ = INVOCATION_DIR.set(dir);
}

/// The directory idem was started in, if a named task has left it.
pub fn invocation_dir() -> Option<&'static Path> {
    INVOCATION_DIR.get().map(PathBuf::as_path)
}

/// The workspace root and working directory; maps paths to their portable key form.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub cwd: PathBuf,
}

impl Workspace {
    /// `--root`/`IDEM_ROOT`, else the nearest ancestor of the working directory holding
    /// `.git`, else the working directory.
    pub fn resolve(root: Option<&Path>) -> Result<Self> {
        let cwd = std::env::current_dir().context("cannot read the working directory")?;
        let root = match root {
            Some(r) => {
                let joined = normalize(&cwd.join(r));
                std::fs::canonicalize(&joined).with_context(|| {
                    format!("workspace root {} does not exist", joined.display())
                })?
            }
            None => cwd
                .ancestors()
                .find(|dir| dir.join(".git").exists())
                .unwrap_or(&cwd)
                .to_path_buf(),
        };
        Ok(Self { root, cwd })
    }

    /// The key form of an absolute path: relative to the root when inside it (so two
    /// checkouts at different paths share keys), else absolute.
    pub fn key_of(&self, abs: &Path) -> Vec<u8> {
        // Byte-wise: called once per input file on every hit, and Path::strip_prefix
        // re-parses both paths into components each time.
        let a = abs.as_os_str().as_bytes();
        let r = self.root.as_os_str().as_bytes();
        match a.strip_prefix(r) {
            Some([]) => b".".to_vec(),
            Some([b'/', rest @ ..]) if !rest.is_empty() => rest.to_vec(),
            _ if r == b"/" && a.len() > 1 && a[0] == b'/' => a[1..].to_vec(),
            _ => a.to_vec(),
        }
    }

    /// The absolute path a key stands for.
    pub fn path_of(&self, key: &[u8]) -> PathBuf {
        let p = Path::new(OsStr::from_bytes(key));
        if p.is_absolute() {
            p.to_path_buf()
        } else if key == b"." {
            self.root.clone()
        } else {
            self.root.join(p)
        }
    }

    /// A user-given path made absolute against the working directory, lexically
    /// normalized (`.` and `..` removed; symlinks are not resolved).
    pub fn absolute(&self, p: &Path) -> PathBuf {
        normalize(&self.cwd.join(p))
    }

    pub fn inside_root(&self, abs: &Path) -> bool {
        abs.starts_with(&self.root)
    }
}

/// Removes `.` and resolves `..` lexically.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for comp in p.components() {
        match comp {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Everything that identifies a task. Display-only flags are absent on purpose.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub argv: Vec<OsString>,
    pub cwd_key: Vec<u8>,
    pub files: Vec<OsString>,
    pub envs: Vec<String>,
    pub urls: Vec<String>,
    pub url_contents: Vec<String>,
    pub outputs: Vec<OsString>,
    pub scope: Option<String>,
    pub exec_key: Option<String>,
    pub no_ignore: bool,
    pub stdin: bool,
    pub strict_env: bool,
    pub pass_envs: Vec<String>,
    /// `--trace` (record mode only: a checked run is keyed as an untraced one).
    pub trace: Option<TraceKey>,
}

/// What of `--trace` enters the task key: that the task is traced, and the options that
/// change which traced entries are kept or whether a run is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceKey {
    /// `--trace-ignore` globs, sorted and deduplicated.
    pub ignores: Vec<String>,
    /// `--trace-net=allow`.
    pub net_allow: bool,
}

/// Sorted and deduplicated: the order and repetition of specs never change a key.
pub fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// A path spec in the form that enters the task key: an absolute path inside the
/// workspace root is rewritten relative to the root (`@root/src/**`), so two checkouts
/// at different paths share keys even when a Makefile passes `$(CURDIR)/src`.
fn portable_spec(spec: &OsString, ws: &Workspace) -> OsString {
    let bytes = spec.as_bytes();
    let (bang, rest) = match bytes.strip_prefix(b"!") {
        Some(r) => (&b"!"[..], r),
        None => (&b""[..], bytes),
    };
    let path = Path::new(OsStr::from_bytes(rest));
    if !path.is_absolute() {
        // A relative spec that starts with '@' gets one more, so `@root/x` typed by the
        // user (a directory named `@root`) never shares a key with `<root>/x`.
        if rest.starts_with(b"@") {
            let mut out = bang.to_vec();
            out.push(b'@');
            out.extend_from_slice(rest);
            return OsString::from_vec(out);
        }
        return spec.clone();
    }
    match normalize(path).strip_prefix(&ws.root) {
        Ok(rel) => {
            let mut out = bang.to_vec();
            out.extend_from_slice(b"@root/");
            out.extend_from_slice(rel.as_os_str().as_bytes());
            OsString::from_vec(out)
        }
        Err(_) => spec.clone(),
    }
}

/// Path specs as they enter the task key: portable, sorted, deduplicated.
pub fn portable(specs: &[OsString], ws: &Workspace) -> Vec<OsString> {
    sorted(
        &specs
            .iter()
            .map(|s| portable_spec(s, ws))
            .collect::<Vec<_>>(),
    )
}

impl TaskSpec {
    /// The canonical encoding; every field is tagged and length-prefixed.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.str("idem-task").u64(KEY_SCHEMA);
        e.str("argv").list(self.argv.iter().map(|a| a.as_bytes()));
        e.str("cwd").bytes(&self.cwd_key);
        e.str("files").list(self.files.iter().map(|a| a.as_bytes()));
        e.str("envs").list(self.envs.iter());
        e.str("urls").list(self.urls.iter());
        e.str("url-contents").list(self.url_contents.iter());
        e.str("outputs")
            .list(self.outputs.iter().map(|a| a.as_bytes()));
        e.str("scope")
            .opt_bytes(self.scope.as_deref().map(str::as_bytes));
        e.str("key")
            .opt_bytes(self.exec_key.as_deref().map(str::as_bytes));
        e.str("no-ignore").bool(self.no_ignore);
        e.str("stdin").bool(self.stdin);
        e.str("strict-env").bool(self.strict_env);
        e.str("pass-env").list(self.pass_envs.iter());
        // Only when traced: untraced tasks keep the keys they had before tracing existed.
        if let Some(t) = &self.trace {
            e.str("trace").list(t.ignores.iter()).bool(t.net_allow);
        }
        e.finish()
    }

    pub fn task_key(&self) -> [u8; 32] {
        *blake3::hash(&self.encode()).as_bytes()
    }

    /// What identifies "the same command" for `--key` reuse checks: argv and cwd only.
    pub fn identity(&self) -> [u8; 32] {
        let mut e = Encoder::new();
        e.str("idem-identity").u64(KEY_SCHEMA);
        e.list(self.argv.iter().map(|a| a.as_bytes()));
        e.bytes(&self.cwd_key);
        *blake3::hash(&e.finish()).as_bytes()
    }

    /// The command line for humans (lossy for non-UTF-8 bytes, shell-quoted when needed).
    pub fn display_argv(&self) -> String {
        display_argv(&self.argv)
    }
}

/// Shell quoting for display, in a form bash and zsh read back as the same argv: plain
/// words bare, others in single quotes, and an argument with control characters or
/// bytes that are not UTF-8 in ANSI-C quotes (`$'a\nb'`, `$'\xff'`), so no two argvs
/// display alike and nothing raw reaches a terminal.
pub fn display_argv(argv: &[OsString]) -> String {
    let shown = argv
        .iter()
        .map(|a| {
            let bytes = a.as_bytes();
            let text = std::str::from_utf8(bytes).ok();
            match text {
                Some(s)
                    if !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) =>
                {
                    s.to_string()
                }
                Some(s) if !s.chars().any(char::is_control) => {
                    format!("'{}'", s.replace('\'', "'\\''"))
                }
                _ => ansi_c_quoted(bytes),
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    crate::ui::escape_controls(&shown).into_owned()
}

/// `$'…'`: printable UTF-8 as is, `\\` and `\'`, common controls by name, any other
/// control or invalid byte as `\xHH`.
fn ansi_c_quoted(bytes: &[u8]) -> String {
    let mut out = String::from("$'");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('\'');
    out
}

pub fn bytes_to_os(b: Vec<u8>) -> OsString {
    OsString::from_vec(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displayed_argvs_read_back_as_themselves() {
        let show = |args: &[&[u8]]| {
            display_argv(
                &args
                    .iter()
                    .map(|a| OsString::from_vec(a.to_vec()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(show(&[b"cc", b"-O2", b"a.c"]), "cc -O2 a.c");
        assert_eq!(show(&[b"echo", b"it's here"]), r"echo 'it'\''s here'");
        // A newline and a backslash-n are different arguments, and look different.
        assert_eq!(show(&[b"printf", b"a\nb"]), r"printf $'a\nb'");
        assert_eq!(show(&[b"printf", br"a\nb"]), r"printf 'a\nb'");
        // Bytes that are not UTF-8 stay distinct; an escape never reaches the terminal.
        assert_eq!(show(&[b"bad\xfe", b"bad\xff"]), r"$'bad\xfe' $'bad\xff'");
        assert_eq!(show(&[b"\x1b[2J'\\"]), r"$'\x1b[2J\'\\'");
        assert_eq!(show(&[b""]), "''");
    }

    fn spec(argv: &[&str]) -> TaskSpec {
        TaskSpec {
            argv: argv.iter().map(OsString::from).collect(),
            cwd_key: b".".to_vec(),
            files: vec![],
            envs: vec![],
            urls: vec![],
            url_contents: vec![],
            outputs: vec![],
            scope: None,
            exec_key: None,
            no_ignore: false,
            stdin: false,
            strict_env: false,
            pass_envs: vec![],
            trace: None,
        }
    }

    #[test]
    fn argv_boundaries_matter() {
        assert_ne!(spec(&["a b"]).task_key(), spec(&["a", "b"]).task_key());
        assert_eq!(spec(&["a", "b"]).task_key(), spec(&["a", "b"]).task_key());
    }

    #[test]
    fn scope_and_key_separate_tasks() {
        let a = spec(&["true"]);
        let mut b = a.clone();
        b.scope = Some("x".into());
        let mut c = a.clone();
        c.exec_key = Some("x".into());
        assert_ne!(a.task_key(), b.task_key());
        assert_ne!(b.task_key(), c.task_key());
    }

    #[test]
    fn tracing_and_its_options_separate_tasks() {
        let a = spec(&["make"]);
        let mut b = a.clone();
        b.trace = Some(TraceKey {
            ignores: vec![],
            net_allow: false,
        });
        let mut c = b.clone();
        c.trace = Some(TraceKey {
            ignores: vec!["/tmp/**".into()],
            net_allow: false,
        });
        let mut d = b.clone();
        d.trace = Some(TraceKey {
            ignores: vec![],
            net_allow: true,
        });
        let keys = [a.task_key(), b.task_key(), c.task_key(), d.task_key()];
        for i in 0..keys.len() {
            for j in i + 1..keys.len() {
                assert_ne!(keys[i], keys[j], "{i} {j}");
            }
        }
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
    }

    #[test]
    fn keys_are_relative_inside_root() {
        let ws = Workspace {
            root: PathBuf::from("/w"),
            cwd: PathBuf::from("/w/sub"),
        };
        assert_eq!(ws.key_of(Path::new("/w/sub/x.c")), b"sub/x.c".to_vec());
        assert_eq!(ws.key_of(Path::new("/etc/x")), b"/etc/x".to_vec());
        assert_eq!(ws.path_of(b"sub/x.c"), PathBuf::from("/w/sub/x.c"));
        assert_eq!(ws.key_of(Path::new("/w")), b".".to_vec());
        assert_eq!(
            ws.key_of(Path::new("/wx/a")),
            b"/wx/a".to_vec(),
            "not a component prefix"
        );
        let at_root = Workspace {
            root: PathBuf::from("/"),
            cwd: PathBuf::from("/"),
        };
        assert_eq!(at_root.key_of(Path::new("/etc/x")), b"etc/x".to_vec());
    }
}
