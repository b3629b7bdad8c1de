//! `idem run`: snapshot the task's dependencies, then replay a matching record or run
//! the command and record it. A cache fault never changes the command's result: idem
//! warns once and runs the command as if it were not there.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::{KeyReuse, RunArgs, UrlOffline};
use crate::deps::files::{FileSpecs, StatCache};
use crate::deps::program::{self, Resolve};
use crate::deps::url::{UrlOptions, UrlOutcome, UrlSpec};
use crate::deps::{self, DepState, Kind};
use crate::exec::{self, ExecCommand, Exit};
use crate::exit;
use crate::lease::{self, Acquire, Lease};
use crate::outputs::OutputSpecs;
use crate::replay;
use crate::spec::{TaskSpec, Workspace};
use crate::store::record::Record;
use crate::store::remote::{Claim, RemoteConfig, RemoteLease, Tier};
use crate::store::{self, Cache};

pub fn warn(msg: impl std::fmt::Display) {
    eprintln!("idem: warning: {msg}");
}

/// Everything derived from the arguments alone; building it is where usage errors are
/// found, before anything runs.
pub struct Prepared {
    pub ws: Workspace,
    pub spec: TaskSpec,
    pub task_key: [u8; 32],
    pub file_specs: FileSpecs,
    pub outputs: OutputSpecs,
    pub urls: Vec<UrlSpec>,
    pub url_opts: UrlOptions,
    pub cache_dir: Result<PathBuf>,
}

pub fn prepare(args: &RunArgs) -> Result<Prepared> {
    if args.command.is_empty() {
        return Err(exit::usage(
            "missing command: put it after `--`, as in `idem run -f src/ -- make`",
        ));
    }
    if args.command[0].is_empty() {
        return Err(exit::usage("empty command name after `--`"));
    }
    let ws = Workspace::resolve(args.root.as_deref()).map_err(|e| exit::usage(format!("{e:#}")))?;
    for name in args.envs.iter().chain(&args.pass_envs) {
        crate::deps::env::validate(name).map_err(|e| exit::usage(e.to_string()))?;
    }
    let file_specs =
        FileSpecs::parse(&args.files, &ws).map_err(|e| exit::usage(format!("{e:#}")))?;
    let outputs =
        OutputSpecs::parse(&args.outputs, &ws).map_err(|e| exit::usage(format!("{e:#}")))?;
    outputs
        .check_not_inputs(file_specs.includes())
        .map_err(|e| exit::usage(e.to_string()))?;
    let mut urls: Vec<UrlSpec> = Vec::new();
    for (list, content) in [(&args.urls, false), (&args.url_contents, true)] {
        for u in list {
            crate::deps::url::validate(u).map_err(|e| {
                exit::usage(format!(
                    "invalid URL '{}': {e:#}",
                    crate::deps::url::redact(u)
                ))
            })?;
            // One state per URL: listed twice, the body hash (--url-content) wins.
            match urls.iter_mut().find(|s| s.url == *u) {
                Some(s) => s.content |= content,
                None => urls.push(UrlSpec {
                    url: u.clone(),
                    content,
                }),
            }
        }
    }
    if !urls.is_empty() && args.url_timeout.is_zero() {
        return Err(exit::usage(
            "--url-timeout must be longer than 0 (for example 5s)",
        ));
    }
    let mut headers = Vec::new();
    for h in &args.url_headers {
        headers.push(
            crate::deps::url::parse_header(h)
                .map_err(|e| exit::usage(format!("--url-header: {e:#}")))?,
        );
    }
    let mut env_headers: Vec<(String, OsString)> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            k.starts_with("IDEM_URL_HEADER_").then_some((k, v))
        })
        .collect();
    env_headers.sort();
    for (k, v) in env_headers {
        let v = v.to_string_lossy();
        headers.push(
            crate::deps::url::parse_header(&v).map_err(|e| exit::usage(format!("{k}: {e:#}")))?,
        );
    }
    if let (Some(stale), Some(ttl)) = (args.stale, args.ttl) {
        if stale >= ttl {
            return Err(exit::usage("--stale must be shorter than --ttl"));
        }
    }
    if args.key.is_none() && args.max_runs != 1 {
        return Err(exit::usage("--max-runs only makes sense with --key"));
    }
    if args.key.as_deref() == Some("") {
        return Err(exit::usage("--key needs a non-empty value"));
    }
    let spec = TaskSpec::from_args(args, &ws);
    let task_key = spec.task_key();
    let progress = crate::progress::enabled(args.progress);
    Ok(Prepared {
        ws,
        task_key,
        spec,
        file_specs,
        outputs,
        urls,
        url_opts: UrlOptions {
            headers,
            timeout: args.url_timeout,
            progress,
        },
        cache_dir: store::cache_dir(args.cache.cache_dir.as_deref()),
    })
}

/// Paths that are never inputs: declared outputs, and idem's own cache directory
/// (a cache inside the workspace changes during every run).
struct InputSkip<'a> {
    outputs: &'a OutputSpecs,
    cache_dir: Option<PathBuf>,
}

impl crate::deps::files::Skip for InputSkip<'_> {
    fn skip(&self, abs: &std::path::Path) -> bool {
        // Only the cache directory itself: the walker prunes it when it lies under a
        // walked directory. A prefix test would drop every input when the cache is the
        // workspace root or above it; then nothing is skipped, and runs simply miss.
        self.outputs.skip(abs)
            || self
                .cache_dir
                .as_ref()
                .is_some_and(|c| abs.as_os_str().as_bytes() == c.as_os_str().as_bytes())
    }
}

/// The current state of every dependency.
pub struct Snapshot {
    pub deps: Vec<DepState>,
    /// Dependencies whose state could not be known (URL down…): never record.
    pub unknown: Vec<String>,
    /// URL states taken from the last record because of --url-offline=hit: a hit may be
    /// replayed, but a run is still not recorded (its inputs were not known).
    pub trusted_offline: bool,
    /// (URL, reason) of network failures that --url-offline=hit may paper over.
    pub offline: Vec<(String, String)>,
    pub stat_cache: StatCache,
    pub program: PathBuf,
}

impl Snapshot {
    pub fn state_key(&self) -> [u8; 32] {
        deps::state_key(&self.deps)
    }
}

pub enum ProgramError {
    NotFound(String),
    NotExecutable(String),
}

pub fn resolve_program(p: &Prepared) -> std::result::Result<PathBuf, ProgramError> {
    let argv0 = &p.spec.argv[0];
    let path_var = std::env::var_os("PATH");
    match program::resolve(argv0, &p.ws, path_var.as_deref()) {
        Resolve::Found(path) => Ok(path),
        Resolve::NotFound => Err(ProgramError::NotFound(format!(
            "idem: {}: command not found",
            argv0.to_string_lossy()
        ))),
        Resolve::NotExecutable(path) => Err(ProgramError::NotExecutable(format!(
            "idem: {}: Permission denied",
            path.display()
        ))),
    }
}

/// Computes the snapshot. `old` is the task's stat cache; `stdin_state` the spooled
/// stdin's state when `--stdin`; `url_states` reuses earlier URL answers (race guard).
pub fn snapshot(
    p: &Prepared,
    args: &RunArgs,
    program: PathBuf,
    old: &StatCache,
    stdin_state: Option<&DepState>,
    url_states: Option<&[DepState]>,
    warn_missing: bool,
) -> Result<Snapshot> {
    let mut new_cache = StatCache::default();
    let skip = InputSkip {
        outputs: &p.outputs,
        cache_dir: p.cache_dir.as_ref().ok().map(|d| p.ws.absolute(d)),
    };
    let resolved = p.file_specs.resolve(args.no_ignore, &skip)?;
    if warn_missing {
        for m in &resolved.missing {
            warn(format!(
                "input {} does not exist (recorded as absent)",
                m.display()
            ));
        }
    }
    let mut all = crate::deps::files::states(
        &p.ws,
        &resolved.entries,
        Kind::File,
        old,
        &skip,
        &mut new_cache,
    )?;
    // The program's state is the content of the file a symlink chain ends at (an
    // in-place compiler upgrade behind /usr/bin/cc must be a change); its name stays
    // the path the user's PATH resolved to.
    let real = std::fs::canonicalize(&program).unwrap_or_else(|_| program.clone());
    for mut dep in crate::deps::files::states(
        &p.ws,
        &[(real, None)],
        Kind::Program,
        old,
        &skip,
        &mut new_cache,
    )? {
        dep.name = p.ws.key_of(&program);
        all.push(dep);
    }
    for name in &args.envs {
        all.push(crate::deps::env::state(name));
    }
    if let Some(s) = stdin_state {
        all.push(s.clone());
    }
    let mut unknown = Vec::new();
    let mut offline = Vec::new();
    if let Some(states) = url_states {
        all.extend(states.iter().cloned());
    } else if !p.urls.is_empty() {
        for outcome in crate::deps::url::check_all(&p.urls, &p.url_opts) {
            match outcome {
                UrlOutcome::Known(d) => all.push(d),
                // Only a network-looking failure may be papered over by --url-offline=hit;
                // the warning for those is printed once we know if a state can be trusted.
                UrlOutcome::Unknown {
                    url,
                    reason,
                    offline: true,
                } if args.url_offline == UrlOffline::Hit => {
                    offline.push((url.clone(), reason));
                    unknown.push(url);
                }
                UrlOutcome::Unknown { url, reason, .. } => {
                    warn(format!(
                        "{}: {reason}; running the command and not recording it",
                        crate::deps::url::redact(&url)
                    ));
                    unknown.push(url);
                }
            }
        }
    }
    Ok(Snapshot {
        deps: all,
        unknown,
        trusted_offline: false,
        offline,
        stat_cache: new_cache,
        program,
    })
}

pub fn load_stat_cache(cache: &Cache, task_key: &[u8; 32]) -> StatCache {
    match cache.db.with_stat_cache(task_key, StatCache::decode) {
        Ok(Some(Ok(c))) => c,
        _ => StatCache::default(),
    }
}

/// With --url-offline=hit, fills the unreachable URLs' states from the newest record.
/// Trust is all or nothing: when any unknown URL is not a network failure, or has no
/// recorded state, nothing is trusted and the command runs unrecorded.
pub fn fill_offline_urls(cache: &Cache, p: &Prepared, snap: &mut Snapshot) {
    if snap.offline.is_empty() {
        return;
    }
    let redact = crate::deps::url::redact;
    let rec = match cache.db.latest_for_task(&p.task_key) {
        Ok(Some((_, rec))) => Some(rec),
        _ => None,
    };
    let recorded: Vec<Option<DepState>> = snap
        .offline
        .iter()
        .map(|(url, _)| {
            rec.as_ref()?
                .deps
                .iter()
                .find(|d| d.kind == Kind::Url && d.name == url.as_bytes())
                .cloned()
        })
        .collect();
    let all_trusted =
        snap.unknown.len() == snap.offline.len() && recorded.iter().all(Option::is_some);
    for ((url, reason), state) in snap.offline.iter().zip(&recorded) {
        match state {
            Some(d) if all_trusted => eprintln!(
                "idem: {}: {reason}; trusting its last recorded state {} (--url-offline=hit)",
                redact(url),
                String::from_utf8_lossy(&d.state)
            ),
            Some(_) => warn(format!(
                "{}: {reason}; another URL is unknown, so its last recorded state is not \
                 trusted; running the command and not recording it",
                redact(url)
            )),
            None => warn(format!(
                "{}: {reason}; no recorded state to trust (--url-offline=hit); running the \
                 command and not recording it",
                redact(url)
            )),
        }
    }
    if all_trusted {
        snap.deps.extend(recorded.into_iter().flatten());
        snap.trusted_offline = true;
    }
}

pub fn age_ns(rec: &Record, now_ns: i64) -> i64 {
    now_ns.saturating_sub(rec.created_ns).max(0)
}

pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 86400.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} d", s / 86400.0)
    }
}

/// Why this is a miss, in one phrase (for -v).
pub fn miss_reason(cache: &Cache, p: &Prepared, snap: &Snapshot) -> String {
    match cache.db.latest_for_task(&p.task_key) {
        Ok(Some((_, rec))) => {
            let changes = deps::diff(&rec.deps, &snap.deps);
            match changes.first() {
                Some((d, change, detail)) => {
                    let what = match change {
                        deps::Change::Changed => "changed",
                        deps::Change::Added => "added",
                        deps::Change::Removed => "removed",
                    };
                    let more = if changes.len() > 1 {
                        format!(" (and {} more)", changes.len() - 1)
                    } else {
                        String::new()
                    };
                    match detail {
                        Some(det) => format!("{} {what}: {det}{more}", d.display_name()),
                        None => format!("{} {what}{more}", d.display_name()),
                    }
                }
                None => "the last record expired or was made under other options".into(),
            }
        }
        _ => "no record for this task yet".into(),
    }
}

/// Spools stdin to a temporary file, hashing it; the command later reads the same bytes.
fn spool_stdin(dir: Option<&std::path::Path>) -> Result<(File, DepState)> {
    let in_cache = dir.and_then(|d| {
        std::fs::create_dir_all(d).ok()?;
        tempfile::tempfile_in(d).ok()
    });
    let mut tmp = match in_cache {
        Some(f) => f,
        None => tempfile::tempfile().context("cannot create a temporary file for stdin")?,
    };
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut input = std::io::stdin().lock();
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("cannot read stdin"),
        };
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).context("cannot spool stdin")?;
    }
    use std::io::Seek;
    tmp.seek(std::io::SeekFrom::Start(0))?;
    let state = format!("blake3:{}", hasher.finalize().to_hex());
    Ok((tmp, DepState::new(Kind::Stdin, "-", state)))
}

fn exec_command(
    p: &Prepared,
    args: &RunArgs,
    program: PathBuf,
    stdin: Option<File>,
) -> ExecCommand {
    let env = args.strict_env.then(|| {
        let mut names: Vec<&str> = vec!["PATH", "HOME"];
        names.extend(args.envs.iter().map(String::as_str));
        names.extend(args.pass_envs.iter().map(String::as_str));
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|n| std::env::var_os(n).map(|v| (OsString::from(n), v)))
            .collect()
    });
    ExecCommand {
        program,
        argv: p.spec.argv.clone(),
        env,
        stdin,
    }
}

/// Entry point of `idem run`. Returns the exit code.
pub fn run(args: &RunArgs) -> Result<i32> {
    let p = prepare(args)?;
    // A mistyped command is reported before stdin is read to its end.
    match resolve_program(&p) {
        Err(ProgramError::NotFound(m)) => {
            eprintln!("{m}");
            return Ok(exit::NOT_FOUND);
        }
        Err(ProgramError::NotExecutable(m)) => {
            eprintln!("{m}");
            return Ok(exit::NOT_EXECUTABLE);
        }
        Ok(_) => {}
    }
    // Spooled before anything else can fail, so that whatever happens to the cache the
    // command still gets every byte of its stdin.
    let spooled = if args.stdin {
        let dir = p
            .cache_dir
            .as_ref()
            .ok()
            .map(|d| d.join("blobs").join("tmp"));
        match spool_stdin(dir.as_deref()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn(format!("{e:#}; running the command uncached"));
                return Ok(run_uncached(&p, args, None));
            }
        }
    } else {
        None
    };
    let stdin_for_fallback = || {
        spooled.as_ref().and_then(|(f, _)| {
            use std::io::Seek;
            let mut f = f.try_clone().ok()?;
            f.seek(std::io::SeekFrom::Start(0)).ok()?;
            Some(f)
        })
    };
    let cache = match p.cache_dir.as_ref() {
        Ok(dir) => Cache::open_for_run(dir),
        Err(e) => Err(anyhow::anyhow!("{e:#}")),
    };
    let mut cache = match cache {
        Ok(c) => c,
        Err(e) => {
            warn(format!(
                "cache unavailable ({e:#}); running the command uncached"
            ));
            return Ok(run_uncached(&p, args, stdin_for_fallback()));
        }
    };
    let for_cached = spooled
        .as_ref()
        .and_then(|(f, s)| Some((f.try_clone().ok()?, s.clone())));
    match run_cached(&p, args, &mut cache, for_cached) {
        Ok(code) => Ok(code),
        Err(Fault::BeforeRun(e)) => {
            warn(format!("cache error ({e:#}); running the command uncached"));
            Ok(run_uncached(&p, args, stdin_for_fallback()))
        }
        Err(Fault::Usage(e)) => Err(e),
    }
}

enum Fault {
    /// The cache failed before the command started: run it plainly.
    BeforeRun(anyhow::Error),
    Usage(anyhow::Error),
}

impl From<anyhow::Error> for Fault {
    fn from(e: anyhow::Error) -> Self {
        if e.downcast_ref::<exit::UsageError>().is_some() {
            Fault::Usage(e)
        } else {
            Fault::BeforeRun(e)
        }
    }
}

fn run_uncached(p: &Prepared, args: &RunArgs, stdin: Option<File>) -> i32 {
    let program = match resolve_program(p) {
        Ok(path) => path,
        Err(ProgramError::NotFound(m)) => {
            eprintln!("{m}");
            return exit::NOT_FOUND;
        }
        Err(ProgramError::NotExecutable(m)) => {
            eprintln!("{m}");
            return exit::NOT_EXECUTABLE;
        }
    };
    let mut cmd = exec_command(p, args, program, stdin);
    match exec::run_plain(&mut cmd) {
        Ok(exit) => exit.code(),
        Err((code, msg)) => {
            eprintln!("{msg}");
            code
        }
    }
}

/// The remote tier, if one is configured. A URL idem cannot understand is a usage error
/// (exit 2, before anything runs); an unreachable remote only warns, later, on first use.
fn connect_remote(args: &RunArgs) -> Result<Option<Tier>> {
    let Some(url) = args.remote.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let cfg = RemoteConfig {
        url: url.to_string(),
        read_only: args.remote_read_only.unwrap_or(false),
        timeout: args.remote_timeout,
        record_ttl: args.ttl,
        verbose: args.verbose,
    };
    Tier::connect(&cfg)
        .map(Some)
        .map_err(|e| exit::usage(format!("--remote/IDEM_REMOTE: {e:#}")))
}

fn run_cached(
    p: &Prepared,
    args: &RunArgs,
    cache: &mut Cache,
    spooled: Option<(File, DepState)>,
) -> std::result::Result<i32, Fault> {
    let program = match resolve_program(p) {
        Ok(path) => path,
        Err(ProgramError::NotFound(m)) => {
            eprintln!("{m}");
            return Ok(exit::NOT_FOUND);
        }
        Err(ProgramError::NotExecutable(m)) => {
            eprintln!("{m}");
            return Ok(exit::NOT_EXECUTABLE);
        }
    };
    let (stdin_file, stdin_state) = match spooled {
        Some((f, s)) => (Some(f), Some(s)),
        None => (None, None),
    };
    let old_stat = load_stat_cache(cache, &p.task_key);
    let mut snap = crate::progress::during(
        args.progress,
        "hashing inputs",
        &crate::deps::files::hashed_so_far,
        || {
            snapshot(
                p,
                args,
                program.clone(),
                &old_stat,
                stdin_state.as_ref(),
                None,
                true,
            )
        },
    )?;
    fill_offline_urls(cache, p, &mut snap);
    let state_key = snap.state_key();
    if snap.stat_cache.entries != old_stat.entries {
        if let Err(e) = cache
            .db
            .save_stat_cache(&p.task_key, &snap.stat_cache.encode())
        {
            warn(format!("cannot save the stat cache: {e:#}"));
        }
    }
    let now = crate::clock::now_ns();
    let remote = connect_remote(args)?;

    if let Some(key) = &args.key {
        return run_with_exec_key(p, args, cache, key, snap, stdin_file, remote.as_ref());
    }

    if args.background_refresh {
        return background_refresh(p, args, cache, snap, state_key, remote.as_ref());
    }

    let states_known = snap.unknown.is_empty() || snap.trusted_offline;
    let mut unreplayable = false;
    if !args.force {
        match try_replay(
            p,
            args,
            cache,
            &p.task_key,
            &state_key,
            now,
            remote.as_ref(),
            states_known,
        )? {
            Replay::Done(code) => return Ok(code),
            Replay::Unreplayable => unreplayable = true,
            Replay::Miss => {}
        }
    }
    if args.cache_only {
        eprintln!("idem: no matching record (--cache-only): nothing was run");
        return Ok(exit::CACHE_ONLY_MISS);
    }
    if args.verbose {
        let reason = if args.force {
            "--force".to_string()
        } else {
            miss_reason(cache, p, &snap)
        };
        eprintln!("idem: miss: {reason}");
    }
    // Single flight: one process runs, identical requests wait and replay its outcome.
    let lease_name = lease_name_for(&p.task_key, &state_key);
    let lease = match acquire(cache, args, &lease_name)? {
        LeaseResult::Got(l) => Some(l),
        LeaseResult::Busy => return Ok(exit::BUSY),
        LeaseResult::TimedOut => None,
    };
    if lease.is_some() && !args.force && !unreplayable {
        // The holder we waited for (here or on another host) may have recorded it.
        if let Replay::Done(code) = try_replay(
            p,
            args,
            cache,
            &p.task_key,
            &state_key,
            crate::clock::now_ns(),
            remote.as_ref(),
            states_known,
        )? {
            return Ok(code);
        }
    }
    // Across hosts: the remote's lease (Redis), taken inside the local one.
    let remote_lease = match remote_flight(
        p,
        args,
        cache,
        &state_key,
        remote.as_ref(),
        states_known && !unreplayable,
    )? {
        RemoteFlight::Run(l) => l,
        RemoteFlight::Done(code) => return Ok(code),
    };
    let code = execute_and_record(
        p,
        args,
        cache,
        snap,
        state_key,
        stdin_file,
        None,
        remote.as_ref(),
    );
    // Released after the upload, so a waiter polling the remote finds the record.
    drop(remote_lease);
    drop(lease);
    Ok(code)
}

enum RemoteFlight {
    /// Run the command (holding the remote lease when there is one).
    Run(Option<RemoteLease>),
    /// Another host ran it and its outcome was replayed (or --no-wait said stop).
    Done(i32),
}

/// Cross-host single flight: take the remote lease, or wait for its holder and replay
/// what it uploads. The wait ends when the record appears, when the holder's lease is
/// released or expires (a dead host stops renewing it), or at --wait-timeout.
fn remote_flight(
    p: &Prepared,
    args: &RunArgs,
    cache: &mut Cache,
    state_key: &[u8; 32],
    remote: Option<&Tier>,
    replayable: bool,
) -> Result<RemoteFlight> {
    let Some(r) = remote.filter(|_| !args.force && replayable) else {
        return Ok(RemoteFlight::Run(None));
    };
    let deadline = args.wait_timeout.map(|t| std::time::Instant::now() + t);
    let mut delay = Duration::from_millis(50);
    let mut announced = false;
    loop {
        let holder = match r.try_lease(&p.task_key, state_key) {
            Claim::Got(l) => return Ok(RemoteFlight::Run(Some(l))),
            Claim::Unavailable => return Ok(RemoteFlight::Run(None)),
            Claim::Busy(holder) => holder,
        };
        if args.no_wait && args.wait_timeout.is_none() {
            eprintln!(
                "idem: {holder} is already running this (remote lease, --no-wait): nothing was run"
            );
            return Ok(RemoteFlight::Done(exit::BUSY));
        }
        if args.verbose && !announced {
            eprintln!("idem: waiting for {holder} (remote lease on {})", r.name());
            announced = true;
        }
        if deadline.is_some_and(|d| std::time::Instant::now() + delay >= d) {
            if args.no_wait {
                eprintln!("idem: still running elsewhere after --wait-timeout (--no-wait): nothing was run");
                return Ok(RemoteFlight::Done(exit::BUSY));
            }
            warn("gave up waiting for the other host (--wait-timeout); running the command too");
            return Ok(RemoteFlight::Run(None));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(1));
        let now = crate::clock::now_ns();
        match try_replay(p, args, cache, &p.task_key, state_key, now, Some(r), true)? {
            Replay::Done(code) => return Ok(RemoteFlight::Done(code)),
            // The other host's record arrived but cannot be replayed here: run it.
            Replay::Unreplayable => return Ok(RemoteFlight::Run(None)),
            Replay::Miss => {}
        }
    }
}

pub fn lease_name_for(task_key: &[u8; 32], state_key: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"idem-lease");
    h.update(task_key);
    h.update(state_key);
    *h.finalize().as_bytes()
}

enum LeaseResult {
    Got(Lease),
    Busy,
    TimedOut,
}

fn acquire(cache: &Cache, args: &RunArgs, name: &[u8; 32]) -> Result<LeaseResult> {
    match lease::try_acquire(&cache.dir, name)? {
        Acquire::Got(l) => Ok(LeaseResult::Got(l)),
        Acquire::Busy(holder) => {
            if args.no_wait && args.wait_timeout.is_none() {
                eprintln!(
                    "idem: pid {} is already running this (--no-wait): nothing was run",
                    holder.pid
                );
                return Ok(LeaseResult::Busy);
            }
            let bar = crate::progress::spinner(args.progress);
            let got = lease::wait_acquire(&cache.dir, name, args.wait_timeout, |h| {
                if let Some(bar) = &bar {
                    let running = Duration::from_nanos(
                        crate::clock::real_now_ns()
                            .saturating_sub(h.started_ns)
                            .max(0) as u64,
                    );
                    bar.set_message(format!(
                        "waiting for pid {} (running {} s)",
                        h.pid,
                        running.as_secs()
                    ));
                    bar.tick();
                }
            })?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            match got {
                Some(l) => Ok(LeaseResult::Got(l)),
                None if args.no_wait => {
                    eprintln!("idem: still running elsewhere after --wait-timeout (--no-wait): nothing was run");
                    Ok(LeaseResult::Busy)
                }
                None => {
                    warn("gave up waiting for the other idem (--wait-timeout); running the command too");
                    Ok(LeaseResult::TimedOut)
                }
            }
        }
    }
}

/// What a lookup came to.
enum Replay {
    Done(i32),
    Miss,
    /// A record matched but could not be replayed (corrupt blob, unsafe manifest):
    /// the warning is printed; run the command.
    Unreplayable,
}

/// Replays a matching record if there is one (local, then remote).
#[allow(clippy::too_many_arguments)]
fn try_replay(
    p: &Prepared,
    args: &RunArgs,
    cache: &mut Cache,
    task_key: &[u8; 32],
    state_key: &[u8; 32],
    now: i64,
    remote: Option<&Tier>,
    states_known: bool,
) -> Result<Replay> {
    if !states_known {
        return Ok(Replay::Miss);
    }
    let mut tier = "local";
    let mut found = cache.db.lookup_for_replay(task_key, state_key)?;
    if found.is_none() {
        if let Some(r) = remote {
            found = r.lookup(cache, &p.ws, task_key, state_key);
            tier = "remote";
        }
    }
    let Some((id, rec)) = found else {
        return Ok(Replay::Miss);
    };
    if rec.exit_code != 0 && !args.cache_failures {
        // A failure recorded under --cache-failures is not replayed to callers who
        // did not ask for failures to be cached: they run, and may succeed.
        return Ok(Replay::Miss);
    }
    if let Some(ttl) = args.ttl {
        if age_ns(&rec, now) > ttl.as_nanos() as i64 {
            if args.verbose {
                eprintln!("idem: record expired (older than --ttl)");
            }
            return Ok(Replay::Miss);
        }
    }
    match replay_record(p, args, cache, id, &rec, now, tier)? {
        Some(code) => {
            if let Some(stale) = args.stale {
                if age_ns(&rec, now) > stale.as_nanos() as i64 {
                    spawn_refresh();
                }
            }
            Ok(Replay::Done(code))
        }
        None => Ok(Replay::Unreplayable),
    }
}

/// Restores outputs and writes the streams. `Ok(None)` when the record cannot be
/// replayed (corrupt or missing blob): the caller runs the command instead.
fn replay_record(
    p: &Prepared,
    args: &RunArgs,
    cache: &mut Cache,
    id: i64,
    rec: &Record,
    now: i64,
    tier: &str,
) -> Result<Option<i32>> {
    let streams = match replay::open_streams(rec, &cache.blobs) {
        Ok(s) => s,
        Err(e) => {
            warn(format!(
                "cannot replay the record ({e:#}); running the command"
            ));
            return Ok(None);
        }
    };
    let restored =
        crate::progress::during(args.progress, "restoring outputs", &String::new, || {
            crate::outputs::restore(
                &p.ws,
                &rec.outputs,
                &cache.blobs,
                &p.outputs,
                args.clean_outputs,
            )
        });
    if let Err(e) = restored {
        warn(format!(
            "cannot restore outputs ({e:#}); running the command"
        ));
        return Ok(None);
    }
    if args.verbose {
        let age = Duration::from_nanos(age_ns(rec, now) as u64);
        let via = if tier == "local" {
            String::new()
        } else {
            format!(" from the {tier} cache")
        };
        eprintln!(
            "idem: hit{via} (saved {}, recorded {} ago)",
            human_duration(Duration::from_nanos(rec.duration_ns)),
            human_duration(age)
        );
    }
    let write = replay::write_streams(rec, streams);
    let counter = if tier == "local" {
        "hits"
    } else {
        "remote_hits"
    };
    if let Err(e) = cache.db.note_hit(id, now, rec.duration_ns, counter) {
        warn(format!("cannot count the hit: {e:#}"));
    }
    match write {
        Ok(()) => Ok(Some(rec.exit_code)),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Some(128 + libc::SIGPIPE)),
        Err(e) => {
            warn(format!("writing the replayed output failed: {e}"));
            Ok(Some(rec.exit_code))
        }
    }
}

/// Starts a detached `idem run --background-refresh …` with the same arguments.
fn spawn_refresh() {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    let Some(pos) = argv.iter().position(|a| a == "run") else {
        return;
    };
    argv.insert(pos + 1, OsString::from("--background-refresh"));
    let Ok(me) = std::env::current_exe() else {
        return;
    };
    let mut c = std::process::Command::new(me);
    c.args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    use std::os::unix::process::CommandExt;
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    if let Err(e) = c.spawn() {
        warn(format!("cannot start the background refresh: {e}"));
    }
}

/// The detached refresher: one at a time (lease), and only if still stale.
fn background_refresh(
    p: &Prepared,
    args: &RunArgs,
    cache: &mut Cache,
    snap: Snapshot,
    state_key: [u8; 32],
    remote: Option<&Tier>,
) -> std::result::Result<i32, Fault> {
    let name = lease_name_for(&p.task_key, &state_key);
    let Acquire::Got(lease) = lease::try_acquire(&cache.dir, &name)? else {
        return Ok(0);
    };
    if let (Some(stale), Ok(Some((_, rec)))) =
        (args.stale, cache.db.lookup(&p.task_key, &state_key))
    {
        if age_ns(&rec, crate::clock::now_ns()) <= stale.as_nanos() as i64 {
            return Ok(0);
        }
    }
    let code = execute_and_record(p, args, cache, snap, state_key, None, None, remote);
    drop(lease);
    Ok(code)
}

/// `--key K`: at most `--max-runs` successful runs per key, whatever the inputs.
fn run_with_exec_key(
    p: &Prepared,
    args: &RunArgs,
    cache: &mut Cache,
    key: &str,
    snap: Snapshot,
    stdin_file: Option<File>,
    remote: Option<&Tier>,
) -> std::result::Result<i32, Fault> {
    let mut h = blake3::Hasher::new();
    h.update(b"idem-exec-key");
    h.update(key.as_bytes());
    let name = *h.finalize().as_bytes();
    let lease = match acquire(cache, args, &name)? {
        LeaseResult::Got(l) => Some(l),
        LeaseResult::Busy => return Ok(exit::BUSY),
        LeaseResult::TimedOut => None,
    };
    let now = crate::clock::now_ns();
    let identity = p.spec.identity();
    if let Some(row) = cache.db.exec_key(key)? {
        let latest = cache.db.latest_for_exec_key(key)?;
        let expired = match (args.ttl, &latest) {
            (Some(ttl), Some((_, rec))) => age_ns(rec, now) > ttl.as_nanos() as i64,
            _ => false,
        };
        if expired {
            cache
                .db
                .conn
                .execute("DELETE FROM exec_keys WHERE key=?1", [key])
                .map_err(anyhow::Error::from)?;
        } else {
            if row.identity != identity && args.key_reuse == KeyReuse::Deny {
                eprintln!(
                    "idem: key '{key}' was used for another command ({}); use another key, or --key-reuse=allow",
                    row.argv
                );
                return Ok(exit::KEY_REUSED);
            }
            if row.successes >= args.max_runs {
                match latest {
                    Some((id, rec)) => {
                        if args.verbose {
                            eprintln!(
                                "idem: key '{key}' already ran {} time(s); replaying",
                                row.successes
                            );
                        }
                        if let Some(code) = replay_record(p, args, cache, id, &rec, now, "local")? {
                            return Ok(code);
                        }
                        warn(format!(
                            "key '{key}' already ran, but its record cannot be replayed; not running it again"
                        ));
                        return Ok(rec.exit_code);
                    }
                    None => {
                        warn(format!(
                            "key '{key}' already ran, but its record is gone; not running it again"
                        ));
                        return Ok(0);
                    }
                }
            }
        }
    }
    if args.cache_only {
        eprintln!("idem: key '{key}' has not run yet (--cache-only): nothing was run");
        return Ok(exit::CACHE_ONLY_MISS);
    }
    let state_key = snap.state_key();
    let code = execute_and_record(
        p,
        args,
        cache,
        snap,
        state_key,
        stdin_file,
        Some((key, identity)),
        remote,
    );
    drop(lease);
    Ok(code)
}

/// Runs the command live and records the outcome when it may be.
#[allow(clippy::too_many_arguments)]
fn execute_and_record(
    p: &Prepared,
    args: &RunArgs,
    cache: &mut Cache,
    snap: Snapshot,
    state_key: [u8; 32],
    stdin_file: Option<File>,
    exec_key: Option<(&str, [u8; 32])>,
    remote: Option<&Tier>,
) -> i32 {
    let mut cmd = exec_command(p, args, snap.program.clone(), stdin_file);
    let outcome = match exec::run_captured(&mut cmd, &cache.blobs) {
        Ok(Ok(o)) => o,
        Ok(Err((code, msg))) => {
            eprintln!("{msg}");
            return code;
        }
        Err(e) => {
            warn(format!(
                "cannot capture output ({e:#}); running the command uncached"
            ));
            return match exec::run_plain(&mut cmd) {
                Ok(exit) => exit.code(),
                Err((code, msg)) => {
                    eprintln!("{msg}");
                    code
                }
            };
        }
    };
    let code = outcome.exit.code();
    if let Err(e) = cache.db.add_stat("misses", 1) {
        warn(format!("cannot count the miss: {e:#}"));
    }
    let Exit::Code(exit_code) = outcome.exit else {
        return code;
    };
    if outcome.interrupted || (exit_code != 0 && !args.cache_failures) {
        return code;
    }
    let Some(captured) = outcome.captured else {
        return code;
    };
    // Unknown URL state (even trusted with --url-offline=hit): run, never record.
    if !snap.unknown.is_empty() {
        return code;
    }
    if let Err(e) = record(
        p,
        args,
        cache,
        &snap,
        state_key,
        exit_code,
        outcome.duration,
        captured,
        exec_key,
        remote,
    ) {
        warn(format!("not recorded: {e:#}"));
    }
    code
}

#[allow(clippy::too_many_arguments)]
fn record(
    p: &Prepared,
    args: &RunArgs,
    cache: &mut Cache,
    snap: &Snapshot,
    state_key: [u8; 32],
    exit_code: i32,
    duration: Duration,
    captured: exec::Captured,
    exec_key: Option<(&str, [u8; 32])>,
    remote: Option<&Tier>,
) -> Result<()> {
    // Race guard: an outcome is stored only under the exact state it was computed from.
    let stdin_state = snap.deps.iter().find(|d| d.kind == Kind::Stdin).cloned();
    let url_states: Vec<DepState> = snap
        .deps
        .iter()
        .filter(|d| d.kind == Kind::Url)
        .cloned()
        .collect();
    let after = snapshot(
        p,
        args,
        snap.program.clone(),
        &snap.stat_cache,
        stdin_state.as_ref(),
        Some(&url_states),
        false,
    )?;
    if after.state_key() != state_key {
        let changes = deps::diff(&snap.deps, &after.deps);
        let names: Vec<String> = changes
            .iter()
            .take(3)
            .map(|(d, _, _)| d.display_name())
            .collect();
        anyhow::bail!("{} changed while the command ran", names.join(", "));
    }
    let (outputs, warnings) = if exit_code == 0 {
        p.outputs.capture(&p.ws, &cache.blobs)?
    } else {
        (Vec::new(), Vec::new())
    };
    for w in warnings {
        warn(w);
    }
    let now = crate::clock::now_ns();
    let rec = Record {
        task_key: p.task_key,
        state_key,
        exec_key: exec_key.map(|(k, _)| k.to_string()),
        created_ns: now,
        duration_ns: duration.as_nanos() as u64,
        exit_code,
        stdout: captured.stdout,
        stderr: captured.stderr,
        chunks: captured.chunks,
        outputs,
        deps: snap.deps.clone(),
        argv: p.spec.argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
        cwd: p.spec.cwd_key.clone(),
        host: crate::host::name(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        task: args.task.clone(),
    };
    let argv_text = p.spec.display_argv();
    let counted = exec_key.filter(|_| exit_code == 0);
    cache.db.insert_record_counting(
        &rec,
        now,
        counted
            .as_ref()
            .map(|(k, id)| (*k, &id[..], argv_text.as_str())),
    )?;
    if after.stat_cache.entries != snap.stat_cache.entries {
        if let Err(e) = cache
            .db
            .save_stat_cache(&p.task_key, &after.stat_cache.encode())
        {
            warn(format!("cannot save the stat cache: {e:#}"));
        }
    }
    if let Some(r) = remote {
        r.upload(cache, &rec);
    }
    crate::commands::gc::maybe_auto(cache);
    Ok(())
}

pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}
