//! The engine: the only place that decides whether a command runs. A validated `Task`
//! (what is asked) and `Policy` (how to treat the cache) go in; one verdict from
//! [`lookup`] drives `run`, `status` and `explain` alike. It never parses arguments.

pub mod exec_key;
pub mod execute;
pub mod flight;
pub mod lookup;
pub mod refresh;
pub mod replay;
pub mod runner;
pub mod snapshot;
pub mod stdin;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub mod traced;

use std::path::PathBuf;
use std::time::Duration;

use crate::deps::files::FileSpecs;
use crate::deps::url::{UrlOptions, UrlSpec};
use crate::outputs::OutputSpecs;
use crate::spec::{TaskSpec, Workspace};
use crate::store::remote::RemoteConfig;
use crate::ui::progress;

pub use lookup::{lookup, Verdict};
pub use runner::run;
pub use snapshot::{inspect, Inspection, Snapshot};

/// What is asked: the command, where, and everything its outcome depends on.
pub struct Task {
    pub ws: Workspace,
    pub spec: TaskSpec,
    /// blake3 of the spec's canonical encoding (the weak key of a traced task).
    pub key: [u8; 32],
    pub files: FileSpecs,
    /// Directory walks ignore nothing (`--no-ignore`).
    pub no_ignore: bool,
    pub envs: Vec<String>,
    pub outputs: OutputSpecs,
    pub urls: Vec<UrlSpec>,
    pub url_opts: UrlOptions,
    /// stdin is an input: spooled, hashed, fed to the command (`--stdin`).
    pub stdin: bool,
    pub child_env: ChildEnv,
    pub exec_key: Option<ExecKey>,
    /// The idem.toml task this came from (display only: never part of a key).
    pub name: Option<String>,
    /// `--trace`: how the command is traced (`None`: not at all).
    pub trace: Option<Tracing>,
}

/// `--trace[=MODE]` and its options, validated.
#[derive(Debug, Clone)]
pub struct Tracing {
    pub mode: TraceMode,
    /// `--trace-ignore` globs, compiled (matched on absolute paths and workspace keys).
    pub ignore: globset::GlobSet,
    /// `--trace-net=allow`: an inet socket does not prevent recording.
    pub net_allow: bool,
    /// `--strict` (check mode): undeclared inputs fail the run.
    pub strict: bool,
}

/// What `--trace` does with what it sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceMode {
    /// The traced inputs are the task's dependencies (two-phase lookup, docs/trace.md).
    Record,
    /// Declared dependencies only; undeclared workspace inputs are listed after a run.
    Check,
}

impl Task {
    /// Traced in record mode: lookups go through the dependency-set index.
    pub fn traced(&self) -> bool {
        self.trace
            .as_ref()
            .is_some_and(|t| t.mode == TraceMode::Record)
    }
}

/// The environment the command gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildEnv {
    /// idem's own environment.
    Inherit,
    /// Only these variables (declared inputs, PATH, HOME, --pass-env), `--strict-env`.
    Only(Vec<String>),
}

/// `--key K`: at most `max_runs` successful runs per key, whatever the inputs.
#[derive(Debug, Clone)]
pub struct ExecKey {
    pub key: String,
    pub max_runs: u64,
    pub reuse: KeyReuse,
}

/// Reusing an execution key for another command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyReuse {
    Deny,
    Allow,
}

/// How to treat the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheControl {
    /// Replay a matching record, else run and record.
    Default,
    /// Run and re-record even on a hit (`--force`).
    Force,
    /// Replay a matching record, else exit 3 without running (`--cache-only`).
    CacheOnly,
    /// The detached refresher of a stale record: run unless someone else refreshed it.
    Refresh,
}

/// Records of failed runs (made under `--cache-failures`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failures {
    /// Run again: the command may succeed this time (the default).
    Rerun,
    /// Replay them, and record new ones (`--cache-failures`).
    Replay,
}

/// An identical run in progress (here or, with a remote lease, on another host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Wait until it ends, then replay its outcome (or run if it did not record).
    Forever,
    /// Do not wait: exit 75.
    NoWait,
    /// Wait this long; then run too (`then_run`) or exit 75.
    Upto { limit: Duration, then_run: bool },
}

/// A URL that cannot be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlOffline {
    /// Its state is unknown: run, do not record.
    Run,
    /// Trust its last recorded state when the failure looks like the network's.
    Hit,
}

/// Everything about how a task is treated that is not part of what it is.
pub struct Policy {
    pub control: CacheControl,
    pub failures: Failures,
    /// Do not replay records older than this.
    pub ttl: Option<Duration>,
    /// Past this age, replay but refresh in the background.
    pub stale: Option<Duration>,
    pub wait: Wait,
    pub url_offline: UrlOffline,
    /// On restore, make declared output directories exactly the recorded ones.
    pub clean_outputs: bool,
    pub verbose: bool,
    pub progress: progress::Mode,
    pub remote: Option<RemoteConfig>,
    /// Where the cache lives; an error (no HOME…) means "run uncached, with a warning".
    pub cache_dir: Result<PathBuf, String>,
}
