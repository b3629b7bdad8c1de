//! The current state of every dependency of a task: files (through the stat cache),
//! the program, env, stdin, URLs. It reads the cache only for the stat cache and for
//! `--url-offline=hit` trust; it never decides hit or miss.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Policy, Task, UrlOffline};
use crate::deps::files::{Skip, StatCache};
use crate::deps::program::{self, Resolve};
use crate::deps::stat_cache::CacheBuilder;
use crate::deps::url::UrlOutcome;
use crate::deps::walk::{Known, Listing};
use crate::deps::{self, DepState, Kind};
use crate::store::Cache;
use crate::ui::{self, progress};

/// The current state of every dependency.
pub struct Snapshot {
    pub deps: Vec<DepState>,
    /// Dependencies whose state could not be known (URL down…): never record.
    pub unknown: Vec<String>,
    /// URL states taken from the last record because of --url-offline=hit: a hit may be
    /// replayed, but a run is still not recorded (its inputs were not known).
    pub trusted_offline: bool,
    /// (URL, reason) of network failures that --url-offline=hit may paper over.
    offline: Vec<(String, String)>,
    pub stat_cache: StatCache,
    pub program: PathBuf,
}

impl Snapshot {
    pub fn state_key(&self) -> [u8; 32] {
        deps::state_key(&self.deps)
    }

    /// Every state is known (or trusted offline): a lookup may claim a hit.
    pub fn states_known(&self) -> bool {
        self.unknown.is_empty() || self.trusted_offline
    }
}

/// How URLs enter a snapshot.
pub enum Urls<'a> {
    /// Ask the servers.
    Check,
    /// Reuse these states (the race guard re-snapshots files, not URLs).
    Reuse(&'a [DepState]),
}

/// What a snapshot starts from.
pub struct Probe<'a> {
    pub program: &'a Path,
    /// The task's stat cache from the last run.
    pub old: &'a StatCache,
    pub stdin: Option<&'a DepState>,
    pub urls: Urls<'a>,
    /// Warn about inputs that do not exist (once per run, not again in the race guard).
    pub warn_missing: bool,
}

/// Paths that are never inputs: declared outputs, and idem's own cache directory
/// (a cache inside the workspace changes during every run).
struct InputSkip<'a> {
    task: &'a Task,
    cache_dir: Option<PathBuf>,
}

impl Skip for InputSkip<'_> {
    fn skip(&self, abs: &Path) -> bool {
        // Only the cache directory itself: the walker prunes it when it lies under a
        // walked directory. A prefix test would drop every input when the cache is the
        // workspace root or above it; then nothing is skipped, and runs simply miss.
        self.task.outputs.skip(abs)
            || self
                .cache_dir
                .as_ref()
                .is_some_and(|c| abs.as_os_str().as_bytes() == c.as_os_str().as_bytes())
    }
}

/// Computes the snapshot.
pub fn snapshot(task: &Task, policy: &Policy, probe: Probe<'_>) -> Result<Snapshot> {
    let mut new_cache = CacheBuilder::default();
    let skip = InputSkip {
        task,
        cache_dir: policy.cache_dir.as_ref().ok().map(|d| task.ws.absolute(d)),
    };
    let resolved = task.files.resolve(task.no_ignore, &skip)?;
    if probe.warn_missing {
        for m in &resolved.missing {
            ui::warn(format!(
                "input {} does not exist (recorded as absent)",
                m.display()
            ));
        }
    }
    let mut all = crate::deps::files::states(
        &task.ws,
        &resolved.entries,
        Kind::File,
        probe.old,
        &skip,
        &mut new_cache,
    )?;
    // The program's state is the content of the file a symlink chain ends at (an
    // in-place compiler upgrade behind /usr/bin/cc must be a change); its name stays
    // the path the user's PATH resolved to.
    let program = probe.program.to_path_buf();
    let real = std::fs::canonicalize(&program).unwrap_or_else(|_| program.clone());
    let mut one = Listing::default();
    one.push(real.as_os_str().as_bytes(), Known::Unknown);
    for mut dep in crate::deps::files::states(
        &task.ws,
        &one,
        Kind::Program,
        probe.old,
        &skip,
        &mut new_cache,
    )? {
        dep.name = task.ws.key_of(&program);
        all.push(dep);
    }
    for name in &task.envs {
        all.push(crate::deps::env::state(name));
    }
    if let Some(s) = probe.stdin {
        all.push(s.clone());
    }
    let mut unknown = Vec::new();
    let mut offline = Vec::new();
    match probe.urls {
        Urls::Reuse(states) => all.extend(states.iter().cloned()),
        Urls::Check if task.urls.is_empty() => {}
        Urls::Check => {
            for outcome in crate::deps::url::check_all(&task.urls, &task.url_opts) {
                match outcome {
                    UrlOutcome::Known(d) => all.push(d),
                    // Only a network-looking failure may be papered over by
                    // --url-offline=hit; its warning waits until we know if a recorded
                    // state can be trusted.
                    UrlOutcome::Unknown {
                        url,
                        reason,
                        offline: true,
                    } if policy.url_offline == UrlOffline::Hit => {
                        offline.push((url.clone(), reason));
                        unknown.push(url);
                    }
                    UrlOutcome::Unknown { url, reason, .. } => {
                        ui::warn(format!(
                            "{}: {reason}; running the command and not recording it",
                            ui::redact(&url)
                        ));
                        unknown.push(url);
                    }
                }
            }
        }
    }
    Ok(Snapshot {
        deps: all,
        unknown,
        trusted_offline: false,
        offline,
        stat_cache: new_cache.finish(probe.old),
        program,
    })
}

/// The task's stat cache from its last run (empty when there is none or it is corrupt).
/// Read from its hot file: a hit never opens the database.
pub fn load_stat_cache(cache: &Cache, task_key: &[u8; 32]) -> StatCache {
    crate::store::hot::load_stat(&cache.dir, task_key).unwrap_or_default()
}

/// Saves the snapshot's stat cache when it differs from `old` (a failure only warns:
/// it is a cache of hashes, and the next run rebuilds it).
pub fn save_stat_cache(cache: &mut Cache, task_key: &[u8; 32], snap: &StatCache, old: &StatCache) {
    if snap.same_as(old) {
        return;
    }
    if let Err(e) = crate::store::hot::save_stat(&cache.dir, task_key, snap) {
        ui::warn(format!("cannot save the stat cache: {e:#}"));
    }
}

/// With --url-offline=hit, fills the unreachable URLs' states from the newest record.
/// Trust is all or nothing: when any unknown URL is not a network failure, or has no
/// recorded state, nothing is trusted and the command runs unrecorded.
pub fn trust_offline_urls(cache: &Cache, task: &Task, snap: &mut Snapshot) {
    if snap.offline.is_empty() {
        return;
    }
    let rec = match cache.db.latest_for_task(&task.key) {
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
        let url = ui::redact(url);
        match state {
            Some(d) if all_trusted => ui::note(format!(
                "{url}: {reason}; trusting its last recorded state {} (--url-offline=hit)",
                String::from_utf8_lossy(&d.state)
            )),
            Some(_) => ui::warn(format!(
                "{url}: {reason}; another URL is unknown, so its last recorded state is not \
                 trusted; running the command and not recording it"
            )),
            None => ui::warn(format!(
                "{url}: {reason}; no recorded state to trust (--url-offline=hit); running the \
                 command and not recording it"
            )),
        }
    }
    if all_trusted {
        snap.deps.extend(recorded.into_iter().flatten());
        snap.trusted_offline = true;
    }
}

/// Why the program cannot run, as a shell would say it.
pub enum ProgramError {
    /// Exit 127.
    NotFound(String),
    /// Exit 126.
    NotExecutable(String),
}

impl ProgramError {
    pub fn message(&self) -> &str {
        match self {
            ProgramError::NotFound(m) | ProgramError::NotExecutable(m) => m,
        }
    }

    pub fn code(&self) -> crate::exit::Code {
        match self {
            ProgramError::NotFound(_) => crate::exit::Code::NotFound,
            ProgramError::NotExecutable(_) => crate::exit::Code::NotExecutable,
        }
    }
}

/// argv[0] resolved the way execvp would.
pub fn resolve_program(task: &Task) -> std::result::Result<PathBuf, ProgramError> {
    let argv0 = &task.spec.argv[0];
    let path_var = std::env::var_os("PATH");
    match program::resolve(argv0, &task.ws, path_var.as_deref()) {
        Resolve::Found(path) => Ok(path),
        Resolve::NotFound => Err(ProgramError::NotFound(format!(
            "{}: command not found",
            argv0.to_string_lossy()
        ))),
        Resolve::NotExecutable(path) => Err(ProgramError::NotExecutable(format!(
            "{}: Permission denied",
            path.display()
        ))),
    }
}

/// A task as it stands now, for `status` and `explain`: the open cache and the snapshot.
pub struct Inspection {
    pub cache: Cache,
    /// `Err(message)` when the program cannot be resolved (a run would fail).
    pub snap: std::result::Result<Snapshot, String>,
}

/// Opens the cache and snapshots every dependency as a run would (with a spinner when
/// hashing takes a while), without running, replaying or recording anything; only the
/// stat cache is refreshed.
pub fn inspect(task: &Task, policy: &Policy) -> Result<Inspection> {
    let dir = policy
        .cache_dir
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut cache = Cache::open_for_run(dir).context("cannot open the cache")?;
    let program = match resolve_program(task) {
        Ok(path) => path,
        Err(e) => {
            return Ok(Inspection {
                cache,
                snap: Err(e.message().to_string()),
            })
        }
    };
    let stdin_state = if task.stdin {
        Some(super::stdin::hash_stdin()?)
    } else {
        None
    };
    let old = load_stat_cache(&cache, &task.key);
    let mut snap = progress::during(
        policy.progress,
        "hashing dependencies",
        &String::new,
        || {
            snapshot(
                task,
                policy,
                Probe {
                    program: &program,
                    old: &old,
                    stdin: stdin_state.as_ref(),
                    urls: Urls::Check,
                    warn_missing: false,
                },
            )
        },
    )?;
    trust_offline_urls(&cache, task, &mut snap);
    save_stat_cache(&mut cache, &task.key, &snap.stat_cache, &old);
    Ok(Inspection {
        cache,
        snap: Ok(snap),
    })
}
