//! Command-line definitions (clap derive): flags, help text and value parsers only.
//! Nothing here touches the filesystem or the cache; `plan` turns these types into the
//! engine's, and no module below `commands` sees them.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const SCHEMA_VERSION: u32 = 3;

fn long_version() -> &'static str {
    concat!(env!("CARGO_PKG_VERSION"), " (cache schema 3, key schema 1)")
}

#[derive(Parser, Debug)]
#[command(
    name = "idem",
    version = long_version(),
    long_version = long_version(),
    about = "Make any command idempotent: replay its recorded outcome when its inputs have not changed",
    after_help = "Examples:\n  idem run -f 'src/**/*.c' -f Makefile -e CC -o build/ -- make all\n  idem run -f data/ -- ./report.sh > report.txt\n  idem explain -f 'src/**/*.c' -- make all\n\nDocs: README.md and docs/ in the idem repository.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The root command with the `run` subcommand only: the same arguments as
/// [`Cli`]'s `run`, without the help texts or the other subcommands, for the parse of
/// `idem run …` (see `app::parse`, which falls back to [`Cli`] on anything else).
pub fn run_only_command() -> clap::Command {
    clap::Command::new("idem")
        .subcommand_required(true)
        .subcommand(RunArgs::augment_args(clap::Command::new("run")))
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a command, or replay its recorded outcome when nothing it depends on changed
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Would this command be a hit? Exit 0 on hit, 1 on miss; runs nothing
    #[command(
        after_help = "Examples:\n  idem status build && echo up to date\n  idem status -f src/ -- make && echo up to date\n  idem status -v -f data/ -- ./report.sh"
    )]
    Status(RunArgs),
    /// Say which dependencies changed since the last record of this task
    #[command(
        after_help = "Examples:\n  idem explain build\n  idem explain -f 'src/**/*.c' -e CC -- make all\n  idem explain --json -f data/ -- ./report.sh"
    )]
    Explain(ExplainArgs),
    /// Hits, misses, time saved and cache size
    #[command(after_help = "Examples:\n  idem stats\n  idem stats --json\n  idem stats --zero")]
    Stats(StatsArgs),
    /// Recent records, one line each
    #[command(
        alias = "log",
        after_help = "Examples:\n  idem list\n  idem list --cmd make --since 2h\n  idem list --json"
    )]
    List(ListArgs),
    /// One record whole: dependencies, outputs, stdout and stderr
    #[command(after_help = "Examples:\n  idem show 12\n  idem show 12 --stdout > out.txt")]
    Show(ShowArgs),
    /// Evict least-recently-used records and delete unreferenced blobs
    #[command(after_help = "Examples:\n  idem gc --max-size 5G\n  idem gc --max-age 30d")]
    Gc(GcArgs),
    /// Delete the records of one task, or of one execution key
    #[command(
        after_help = "Examples:\n  idem forget build\n  idem forget -f src/ -- make all\n  idem forget --key deploy-1234"
    )]
    Forget(ForgetArgs),
    /// Delete every record and blob in the cache
    #[command(after_help = "Examples:\n  idem clear --yes")]
    Clear(ClearArgs),
    /// Re-hash every blob; drop records whose blobs are missing or corrupt
    #[command(after_help = "Examples:\n  idem verify")]
    Verify(VerifyArgs),
    /// The tasks defined in idem.toml: names and descriptions
    #[command(
        after_help = "Examples:\n  idem tasks\n  idem tasks --json\n  idem tasks --names   # one per line, for shell completion\n\nSee docs/tasks.md."
    )]
    Tasks(TasksArgs),
    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  idem completions bash > /etc/bash_completion.d/idem\n  idem completions zsh > ~/.zfunc/_idem"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

const RUN_EXAMPLES: &str = "Examples:
  idem run build                       # a task defined in idem.toml (docs/tasks.md)
  idem run -v --force build -- extra   # flags add to / override the task's; args are appended
  idem run -f 'src/**/*.rs' -f Cargo.toml -e RUSTFLAGS -- cargo build
  idem run -f data/ -- ./report.sh > report.txt
  idem run -f 'src/**/*.c' -o build/app -o 'build/*.o' -- make app
  idem run --ttl 1m -- kubectl get pods
  idem run --key \"deploy-$GIT_SHA\" -- ./deploy.sh prod
  idem run --trace -- make -C lib      # inputs and outputs discovered by tracing
  idem run --trace -e CC --strict-env --trace-ignore '/tmp/**' -- ./build.sh
  idem run --trace=check --strict -f src/ -- make   # CI: fail on undeclared inputs

Everything after `--` is the command, passed on byte for byte (after a task name:
arguments appended to the task's command).
--trace sees files, not the environment: declare variables with -e (and prefer
--strict-env) for hermetic steps; ignore noise with --trace-ignore '/tmp/**' or
--trace-ignore '**/__pycache__/**'.
Exit status: the command's own (replayed on a hit); 2 for idem's usage errors; 5
for --trace=check --strict with undeclared inputs; see docs/exit-codes.md.";

/// Where the cache lives; shared by every subcommand.
#[derive(Args, Debug, Clone, Default)]
pub struct CacheArgs {
    /// Cache directory [default: $XDG_CACHE_HOME/idem or ~/.cache/idem]
    #[arg(long, env = "IDEM_CACHE_DIR", value_name = "DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// A file, directory (walked recursively) or glob ('src/**/*.c') whose content is an
    /// input; '!pattern' excludes. Walks skip what .gitignore/.ignore ignore below the
    /// spec's own directory (see --no-ignore); a path named here is always walked.
    /// Repeatable
    #[arg(short = 'f', long = "file", value_name = "SPEC", value_parser = clap::value_parser!(OsString))]
    pub files: Vec<OsString>,

    /// An environment variable whose value (or absence) is an input. Repeatable
    #[arg(short = 'e', long = "env", value_name = "NAME")]
    pub envs: Vec<String>,

    /// A URL whose current state (ETag, Last-Modified+length, else body hash) is an
    /// input. Repeatable
    #[arg(short = 'u', long = "url", value_name = "URL")]
    pub urls: Vec<String>,

    /// A URL whose body is always downloaded and hashed. Repeatable
    #[arg(long = "url-content", value_name = "URL")]
    pub url_contents: Vec<String>,

    /// Header sent with URL requests ('Name: value'); never stored or printed. Repeatable
    #[arg(long = "url-header", value_name = "HEADER")]
    pub url_headers: Vec<String>,

    /// Time limit for each URL check
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub url_timeout: Duration,

    /// When a URL cannot be checked: run the command (default) or trust the last
    /// recorded state (hit)
    #[arg(long, value_enum, default_value_t = UrlOffline::Run, value_name = "MODE")]
    pub url_offline: UrlOffline,

    /// A file, directory or glob the command produces; stored on success and restored
    /// on a hit. Repeatable
    #[arg(short = 'o', long = "output", value_name = "SPEC", value_parser = clap::value_parser!(OsString))]
    pub outputs: Vec<OsString>,

    /// On restore, make declared output directories exactly the recorded ones
    #[arg(long)]
    pub clean_outputs: bool,

    /// Do not skip files ignored by .gitignore/.ignore (nor .git/) in directory walks
    #[arg(long)]
    pub no_ignore: bool,

    /// A name that separates otherwise identical tasks
    #[arg(long, value_name = "NAME")]
    pub scope: Option<String>,

    /// Workspace root; paths inside it enter keys relative to it
    /// [default: nearest ancestor holding .git, else the working directory]
    #[arg(long, env = "IDEM_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    #[command(flatten)]
    pub cache: CacheArgs,

    /// The task file [default: idem.toml at the workspace root]
    #[arg(long, env = "IDEM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Read stdin fully, make its hash an input, and feed the same bytes to the command
    #[arg(long)]
    pub stdin: bool,

    /// Run and re-record even when a matching record exists
    #[arg(long)]
    pub force: bool,

    /// Record non-zero exits too (by default only exit 0 is recorded)
    #[arg(long)]
    pub cache_failures: bool,

    /// Run the command with only the declared -e variables, PATH, HOME and --pass-env
    #[arg(long)]
    pub strict_env: bool,

    /// With --strict-env, also pass this variable (not an input). Repeatable
    #[arg(long = "pass-env", value_name = "NAME")]
    pub pass_envs: Vec<String>,

    /// Discover the inputs by tracing the command (Linux x86_64/aarch64, ptrace):
    /// every file it reads, probes, finds absent, lists or executes becomes an input,
    /// and files it creates in the workspace are outputs. `--trace` records (the same as
    /// `--trace=record`); `--trace=check` runs with the declared inputs only and lists
    /// the workspace inputs no -f covers. The environment is not traceable: declare
    /// variables with -e, and use --strict-env for hermetic steps. See docs/trace.md
    #[arg(
        long,
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "record",
        value_name = "MODE"
    )]
    pub trace: Option<TraceMode>,

    /// With --trace: a glob of paths that are never traced inputs or outputs, matched
    /// on the absolute path and on the path relative to the workspace root
    /// ('/tmp/**', '**/__pycache__/**'). Repeatable
    #[arg(long = "trace-ignore", value_name = "GLOB")]
    pub trace_ignores: Vec<String>,

    /// With --trace: a command that talks to the network (an inet socket) is run but not
    /// recorded (deny), or recorded anyway (allow: declare what it fetches with -u)
    #[arg(long, value_enum, default_value_t = TraceNet::Deny, value_name = "POLICY")]
    pub trace_net: TraceNet,

    /// With --trace=check: undeclared inputs make idem exit 5 after a successful run
    /// (for CI), instead of only listing them
    #[arg(long)]
    pub strict: bool,

    /// Execution key: the command succeeds at most once (or --max-runs) per key,
    /// whatever its inputs; later calls replay
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,

    /// With --key: how many successful runs the key allows
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_runs: u64,

    /// With --key: refuse (deny) or allow reusing a key for another command line
    #[arg(long, value_enum, default_value_t = KeyReuse::Deny, value_name = "POLICY")]
    pub key_reuse: KeyReuse,

    /// Do not replay records older than this (30s, 10m, 2h, 7d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub ttl: Option<Duration>,

    /// Past this age, replay but refresh the record in the background: the refresh runs
    /// the command again after idem has exited, and rewrites its -o outputs when it
    /// records (use --ttl where a later step reads them at once)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub stale: Option<Duration>,

    /// Replay a matching record, else exit 3 without running anything
    #[arg(long)]
    pub cache_only: bool,

    /// How long to wait for another idem running the same thing before running it too
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_timeout: Option<Duration>,

    /// Do not wait for another idem running the same thing: exit 75 instead
    #[arg(long)]
    pub no_wait: bool,

    /// Shared second-tier cache: redis://, rediss://, redis+cluster://, http(s)://
    #[arg(long, env = "IDEM_REMOTE", value_name = "URL")]
    pub remote: Option<String>,

    /// Read from the remote cache but never write to it (untrusted jobs, e.g. fork PRs)
    #[arg(
        long,
        env = "IDEM_REMOTE_READ_ONLY",
        value_parser = parse_bool_env,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub remote_read_only: Option<bool>,

    /// Time limit for each remote cache operation
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub remote_timeout: Duration,

    /// Print one line about what idem did (hit, miss and why) on stderr
    #[arg(short, long)]
    pub verbose: bool,

    /// Progress bars on stderr: auto (terminal only), always, never
    #[arg(long, value_enum, default_value_t = Progress::Auto, value_name = "WHEN")]
    pub progress: Progress,

    /// Internal: refresh a stale record in the background (spawned by idem itself)
    #[arg(long, hide = true)]
    pub background_refresh: bool,

    /// A task defined in idem.toml (docs/tasks.md), run instead of a command after `--`
    // Once src/config/ has resolved it, only the name is left, for display: every
    // field the task set is in the fields above and the rest of idem never reads this.
    #[arg(value_name = "TASK")]
    pub task: Option<String>,

    /// The command and its arguments, after `--`
    #[arg(last = true, value_name = "CMD", value_parser = clap::value_parser!(OsString))]
    pub command: Vec<OsString>,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Print JSON (see docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Print JSON (see docs/json.md)
    #[arg(long)]
    pub json: bool,
    /// Reset the hit/miss counters
    #[arg(long)]
    pub zero: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Only records whose command line contains this text
    #[arg(long, value_name = "PATTERN")]
    pub cmd: Option<String>,
    /// Only records made within this duration (2h, 7d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// At most this many records
    #[arg(long, short = 'n', default_value_t = 50)]
    pub limit: usize,
    /// Print JSON (see docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Record id, as printed by `idem list`
    pub id: i64,
    /// Print the recorded stdout bytes
    #[arg(long, conflicts_with = "stderr")]
    pub stdout: bool,
    /// Print the recorded stderr bytes
    #[arg(long)]
    pub stderr: bool,
    /// Print JSON (see docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct GcArgs {
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Evict least-recently-used records until the cache is under this size (5G, 500M)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
    /// Evict records not used for this long (30d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_age: Option<Duration>,
    /// Progress bars on stderr: auto (terminal only), always, never
    #[arg(long, value_enum, default_value_t = Progress::Auto, value_name = "WHEN")]
    pub progress: Progress,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Progress bars on stderr: auto (terminal only), always, never
    #[arg(long, value_enum, default_value_t = Progress::Auto, value_name = "WHEN")]
    pub progress: Progress,
    /// Print JSON (see docs/json.md)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug)]
pub struct TasksArgs {
    /// The task file [default: idem.toml at the workspace root]
    #[arg(long, env = "IDEM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Workspace root, where idem.toml is looked for
    #[arg(long, env = "IDEM_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Print JSON (see docs/json.md)
    #[arg(long, conflicts_with = "names")]
    pub json: bool,
    /// Print only the names, one per line (what shell completion calls)
    #[arg(long)]
    pub names: bool,
}

#[derive(Args, Debug)]
pub struct ClearArgs {
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Delete without asking (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UrlOffline {
    #[default]
    Run,
    Hit,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyReuse {
    #[default]
    Deny,
    Allow,
}

/// `--trace[=MODE]`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceMode {
    /// Traced inputs are the dependencies (no -f needed)
    Record,
    /// Declared dependencies as without --trace; undeclared workspace inputs are listed
    Check,
}

/// `--trace-net`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TraceNet {
    #[default]
    Deny,
    Allow,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progress {
    #[default]
    Auto,
    Always,
    Never,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::ui::units::parse_duration(s)
}

fn parse_size(s: &str) -> Result<u64, String> {
    crate::ui::units::parse_size(s)
}

impl From<Progress> for crate::ui::progress::Mode {
    fn from(p: Progress) -> Self {
        match p {
            Progress::Auto => Self::Auto,
            Progress::Always => Self::Always,
            Progress::Never => Self::Never,
        }
    }
}

fn parse_bool_env(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("expected 1/0, true/false, yes/no; got '{s}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_the_real_schemas() {
        let v = long_version();
        assert!(v.contains(&format!(
            "cache schema {}",
            crate::store::sqlite::SCHEMA_VERSION
        )));
        assert!(v.contains(&format!("key schema {}", crate::spec::KEY_SCHEMA)));
        assert_eq!(SCHEMA_VERSION as i64, crate::store::sqlite::SCHEMA_VERSION);
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        run_only_command().debug_assert();
    }

    /// `app::parse` trusts the run-only definition whenever it accepts argv: it must then
    /// give exactly what the whole CLI gives, and refuse what only the whole CLI answers.
    #[test]
    fn run_only_parses_run_as_the_whole_cli_does() {
        use clap::{CommandFactory, FromArgMatches};
        let full = |argv: &[&str]| {
            let m = Cli::command().try_get_matches_from(argv).unwrap();
            format!("{:?}", Cli::from_arg_matches(&m).unwrap())
        };
        let reduced = |argv: &[&str]| {
            run_only_command()
                .try_get_matches_from(argv)
                .map(|m| format!("{:?}", Cli::from_arg_matches(&m).unwrap()))
        };
        for argv in [
            &["idem", "run"][..],
            &["idem", "run", "--", "true"],
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
                "idem", "run", "-v", "-f", "src/", "-f", "!x", "-e", "CC", "--", "cc",
            ],
            &[
                "idem",
                "run",
                "--ttl",
                "1m",
                "--stale=2m",
                "--key",
                "k",
                "--max-runs",
                "3",
            ],
            &[
                "idem",
                "run",
                "--remote-read-only",
                "--url-offline",
                "hit",
                "-u",
                "u",
            ],
            &["idem", "run", "--progress=never", "build", "--", "extra"],
            &[
                "idem",
                "run",
                "-o",
                "out/",
                "--clean-outputs",
                "--strict-env",
                "--",
                "x",
            ],
        ] {
            assert_eq!(reduced(argv).unwrap(), full(argv), "{argv:?}");
        }
        for argv in [
            &["idem", "run", "--help"][..],
            &["idem", "run", "-h"],
            &["idem", "run", "--version"],
            &["idem", "run", "-V"],
            &["idem", "run", "--bogus"],
            &["idem", "run", "--ttl", "soon"],
            &["idem", "run", "a", "b"],
            &["idem", "status"],
        ] {
            assert!(reduced(argv).is_err(), "{argv:?}");
        }
    }
}
