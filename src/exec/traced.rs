//! The command under the tracer (`--trace`): spawned and traced on the calling thread
//! (ptrace requests must come from the thread that attached), teed and captured on a
//! scoped second thread, signals forwarded to its root as for an untraced run.

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{
    finish_capture, install_forwarding, register_child, spawn_error, tee_result, tee_streams,
    CaptureError, ExecCommand, Exit, Outcome, TraceResult, TraceSetup, CHILD_PID, CHLD_WAS_IGNORED,
    GOT_SIGNAL,
};
use crate::store::blobs::BlobStore;
use crate::trace::{self, TraceCommand, TraceError, TraceOptions, Tracer};

/// How long processes may outlive the command before idem says why it still waits.
const ORPHANS_NOTE_AFTER: Duration = Duration::from_secs(1);

pub enum Traced {
    /// The command ran (traced, or the tracer failed while it ran: see `Outcome::trace`).
    Ran(Outcome),
    /// Tracing is not possible here; the command has not run.
    Refused(String),
}

fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot create a pipe");
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Runs `cmd` traced to completion (every process of its tree has exited).
pub fn run(
    cmd: &mut ExecCommand,
    blobs: &BlobStore,
    setup: &TraceSetup,
) -> Result<Traced, CaptureError> {
    let mut out_w = blobs.writer().context("cannot capture stdout")?;
    let mut err_w = blobs.writer().context("cannot capture stderr")?;
    install_forwarding();
    let (out_r, out_fd) = pipe()?;
    let (err_r, err_fd) = pipe()?;
    // Kept so that a refused tracer leaves the spooled stdin for the untraced run.
    let stdin_keep = match &cmd.stdin {
        Some(f) => Some(
            f.try_clone()
                .context("cannot duplicate the spooled stdin")?,
        ),
        None => None,
    };
    let mut tc = TraceCommand::new(&cmd.program, cmd.argv.clone());
    tc.env = cmd.env.clone();
    tc.stdin = cmd.stdin.take().map(OwnedFd::from);
    tc.stdout = Some(out_fd);
    tc.stderr = Some(err_fd);
    tc.sigchld_ignored = CHLD_WAS_IGNORED.load(Ordering::SeqCst);
    let mut opts = TraceOptions::default();
    opts.ignore_prefixes
        .extend(setup.ignore_prefixes.iter().cloned());
    opts.traced_prefixes
        .extend(setup.traced_prefixes.iter().cloned());
    let start = Instant::now();
    let tracer = match Tracer::spawn(tc, &opts) {
        Ok(t) => t,
        Err(TraceError::Refused(why)) => {
            cmd.stdin = stdin_keep;
            return Ok(Traced::Refused(why));
        }
        Err(TraceError::Spawn(e)) => return Err(CaptureError::NotRun(spawn_error(cmd, &e))),
        Err(TraceError::Failed(why)) => {
            cmd.stdin = stdin_keep;
            return Err(CaptureError::Setup(anyhow::anyhow!(
                "cannot start the traced command: {why}"
            )));
        }
    };
    let pid = tracer.pid();
    register_child(pid as u32);
    // A process the command left running (a daemon) is traced until it exits, and idem
    // waits with it (a seccomp filter cannot be taken off to let it go): say so, rather
    // than hang silently, once it has outlived the command by a moment.
    let (orphans_tx, orphans_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let mut tracer = tracer;
    tracer.on_orphans(move || {
        let _ = orphans_tx.send(());
    });
    let (tee, traced) = std::thread::scope(|s| {
        s.spawn(move || {
            if orphans_rx.recv().is_ok()
                && done_rx.recv_timeout(ORPHANS_NOTE_AFTER) == Err(RecvTimeoutError::Timeout)
            {
                crate::ui::note(
                    "the command exited, but processes it started are still running: \
                     --trace follows them until they exit (docs/trace.md)",
                );
            }
        });
        let tee = s.spawn(|| {
            tee_streams(
                pid as u32,
                File::from(out_r),
                File::from(err_r),
                &mut out_w,
                &mut err_w,
            )
        });
        let traced = tracer.run();
        drop(done_tx);
        if matches!(traced, Err(TraceError::Failed(_))) {
            // Whatever is left of the tree would keep the tee waiting on its pipes.
            // SAFETY: a signal to our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let tee = tee
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the output thread panicked")));
        (tee, traced)
    });
    let duration = start.elapsed();
    CHILD_PID.store(0, Ordering::SeqCst);
    let (chunks, mut complete) = tee_result(tee);
    let (exit, trace) = match traced {
        Ok(t) => {
            let exit = match t.exit {
                trace::Exit::Code(c) => Exit::Code(c),
                trace::Exit::Signal { signal, .. } => Exit::Signal(signal),
            };
            (exit, TraceResult::Log(Box::new(t.log)))
        }
        Err(TraceError::Refused(why)) => {
            // The filter could not be installed: the command never ran.
            cmd.stdin = stdin_keep;
            return Ok(Traced::Refused(why));
        }
        Err(TraceError::Spawn(e)) => return Err(CaptureError::NotRun(spawn_error(cmd, &e))),
        Err(TraceError::Failed(why)) => {
            crate::ui::warn(format!("tracing failed ({why}); not recorded"));
            complete = false;
            (
                Exit::Code(crate::exit::Code::Internal.into()),
                TraceResult::Failed(why),
            )
        }
    };
    Ok(Traced::Ran(Outcome {
        exit,
        duration,
        captured: finish_capture(out_w, err_w, chunks, complete),
        interrupted: GOT_SIGNAL.load(Ordering::SeqCst) != 0,
        trace,
    }))
}
