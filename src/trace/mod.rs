//! Traced dependencies (Linux, x86_64 and aarch64): runs a command under ptrace filtered by
//! seccomp-bpf and reports every path its process tree read, probed, found absent, listed,
//! executed or wrote. Knows nothing of keys, records or storage; see docs/trace.md.
//!
//! Use: `let t = Tracer::spawn(cmd, &opts)?; publish t.pid(); let traced = t.run()?;`
//! `spawn` and `run` must be called on the same thread (ptrace requests come from the
//! thread that attached); tee the command's output on another thread meanwhile.

mod decode;
mod filter;
mod memory;
pub mod model;
mod net;
mod noise;
mod procfs;
mod spawn;
pub mod syscalls;
mod tracer;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

pub use model::{Access, Event, Exit, Inputs, PathUse, Reason, TraceLog, Unknowable, Writes};
pub use spawn::TraceCommand;

/// Syscall stops taken by every tracer of this process so far (for a progress spinner,
/// read from another thread; `TraceLog::stops` is the exact count of one run).
static STOPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// [`STOPS`], for a spinner's status.
pub fn stops_so_far() -> u64 {
    STOPS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Why a traced run could not happen or finish.
#[derive(Debug)]
pub enum TraceError {
    /// Tracing is not possible here (ptrace forbidden by a seccomp policy, Yama or a
    /// container; seccomp unavailable; kernel too old). The command has not run: the
    /// caller should warn once and run it untraced and unrecorded.
    Refused(String),
    /// The program could not be started (not found → 127, else 126, as a shell would).
    Spawn(std::io::Error),
    /// The tracer failed while the command ran; the command may have partly run.
    Failed(String),
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceError::Refused(why) => write!(f, "cannot trace here: {why}"),
            TraceError::Spawn(e) => write!(f, "cannot execute the command: {e}"),
            TraceError::Failed(why) => write!(f, "tracing failed: {why}"),
        }
    }
}

impl std::error::Error for TraceError {}

/// What the tracer drops as noise (the paths are still resolved, never recorded).
#[derive(Debug, Clone)]
pub struct TraceOptions {
    /// Path prefixes (whole components) never recorded: /proc, /sys, /dev by default;
    /// the caller adds the cache directory.
    pub ignore_prefixes: Vec<PathBuf>,
    /// Prefixes carved out of `ignore_prefixes`: /dev/shm (a real tmpfs) by default; the
    /// caller adds the workspace root. The longest matching prefix of either list
    /// decides, so the cache directory inside the workspace stays ignored while a
    /// workspace inside the cache directory (or under /dev) is traced.
    pub traced_prefixes: Vec<PathBuf>,
    /// Trap readlink/readlinkat (default true). Off, a gcc compile takes 564 stops instead
    /// of 1,881 (cc1 realpath()s every include candidate), at the loss of `LINK` entries
    /// and of directory probes that the opens inside them already cover; see
    /// docs/trace.md, "Overhead".
    pub trace_readlink: bool,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            ignore_prefixes: ["/proc", "/sys", "/dev"]
                .iter()
                .map(PathBuf::from)
                .collect(),
            traced_prefixes: vec![PathBuf::from("/dev/shm")],
            trace_readlink: true,
        }
    }
}

/// A traced run's result.
#[derive(Debug)]
pub struct Traced {
    pub exit: Exit,
    pub log: TraceLog,
}

/// A command started under the tracer, not yet waited for.
pub struct Tracer {
    root: i32,
    errors: OwnedFd,
    tracer: tracer::Loop,
}

impl Tracer {
    /// Forks and seizes the command; it runs as soon as this returns. `Refused` means it
    /// never ran.
    pub fn spawn(cmd: TraceCommand, opts: &TraceOptions) -> Result<Tracer, TraceError> {
        let skip: &[syscalls::Sys] = if opts.trace_readlink {
            &[]
        } else {
            &[syscalls::Sys::ReadLink, syscalls::Sys::ReadLinkAt]
        };
        let spawned = spawn::spawn(cmd, skip)?;
        let ctx = decode::Ctx {
            log: TraceLog::default(),
            cwds: memory::Cwds::default(),
            noise: noise::Noise {
                ignore: opts.ignore_prefixes.clone(),
                traced: opts.traced_prefixes.clone(),
            },
        };
        Ok(Tracer {
            root: spawned.pid,
            errors: spawned.errors,
            tracer: tracer::Loop::new(spawned.pid, ctx),
        })
    }

    /// `f` runs (on the tracing thread, once) if the root exits while processes it
    /// started are still running: they are traced until they exit too.
    pub fn on_orphans(&mut self, f: impl FnOnce() + Send + 'static) {
        self.tracer.on_orphans = Some(Box::new(f));
    }

    /// The root process's pid: where idem forwards the signals it receives.
    pub fn pid(&self) -> i32 {
        self.root
    }

    /// Traces until every process of the tree has exited.
    pub fn run(mut self) -> Result<Traced, TraceError> {
        let exit = self.tracer.run()?;
        match spawn::child_report(&self.errors) {
            Some((spawn::STAGE_FILTER, errno)) => Err(TraceError::Refused(format!(
                "installing the seccomp filter failed: {}",
                std::io::Error::from_raw_os_error(errno)
            ))),
            Some((_, errno)) => Err(TraceError::Spawn(std::io::Error::from_raw_os_error(errno))),
            None => Ok(Traced {
                exit,
                log: std::mem::take(&mut self.tracer.ctx.log),
            }),
        }
    }
}

/// Spawns and traces `cmd` to completion on the calling thread.
pub fn trace(cmd: TraceCommand, opts: &TraceOptions) -> Result<Traced, TraceError> {
    Tracer::spawn(cmd, opts)?.run()
}
