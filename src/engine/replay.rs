//! Replaying a record: outputs restored, then stdout and stderr chunks in their original
//! order, byte for byte, streamed from verified blobs (constant memory whatever their
//! size). It never writes a byte before both stream blobs have been verified.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;

use anyhow::{Context, Result};

use super::lookup::Age;
use super::{Policy, Task};
use crate::store::blobs::BlobStore;
use crate::store::record::{Record, STDOUT};
use crate::store::{Cache, Counter, Tier};
use crate::ui::{self, progress, units};

/// What a replay came to.
pub enum Replayed {
    /// Done; exit with this code.
    Exit(i32),
    /// The record could not be replayed (corrupt blob, unrestorable outputs); the
    /// warning is printed and nothing was written to stdout or stderr: run the command.
    Failed,
}

/// Restores the record's outputs and writes its streams; counts the hit.
pub fn replay(
    task: &Task,
    policy: &Policy,
    cache: &mut Cache,
    hit: (i64, &Record, Tier),
    now_ns: i64,
) -> Result<Replayed> {
    let (id, rec, tier) = hit;
    let streams = match open_streams(rec, &cache.blobs) {
        Ok(s) => s,
        Err(e) => {
            ui::warn(format!(
                "cannot replay the record ({e:#}); running the command"
            ));
            return Ok(Replayed::Failed);
        }
    };
    let restored = progress::during(policy.progress, "restoring outputs", &String::new, || {
        crate::outputs::restore(
            &task.ws,
            &rec.outputs,
            &cache.blobs,
            &task.outputs,
            policy.clean_outputs,
        )
    });
    match restored {
        Ok(notes) if policy.verbose => notes.into_iter().for_each(ui::note),
        Ok(_) => {}
        Err(e) => {
            ui::warn(format!(
                "cannot restore outputs ({e:#}); running the command"
            ));
            return Ok(Replayed::Failed);
        }
    }
    if policy.verbose {
        let via = match tier {
            Tier::Local => "",
            Tier::Remote => " from the remote cache",
        };
        ui::note(format!(
            "hit{via} (saved {}, recorded {})",
            units::duration(std::time::Duration::from_nanos(rec.duration_ns)),
            Age::of(rec, now_ns)
        ));
    }
    let write = write_streams(rec, streams);
    let counter = match tier {
        Tier::Local => Counter::Hits,
        Tier::Remote => Counter::RemoteHits,
    };
    if let Err(e) = cache.db.note_hit(id, now_ns, rec.duration_ns, counter) {
        ui::warn(format!("cannot count the hit: {e:#}"));
    }
    Ok(Replayed::Exit(match write {
        Ok(()) => rec.exit_code,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 128 + libc::SIGPIPE,
        Err(e) => {
            ui::warn(format!("writing the replayed output failed: {e}"));
            rec.exit_code
        }
    }))
}

/// Both blobs of a record, verified and rewound, ready to replay.
pub struct Streams {
    stdout: Option<File>,
    stderr: Option<File>,
}

/// Verifies the record's stream blobs. An error here means "treat as a miss".
pub fn open_streams(rec: &Record, blobs: &BlobStore) -> Result<Streams> {
    let mut stdout = blobs.open_verified(&rec.stdout)?;
    let mut stderr = blobs.open_verified(&rec.stderr)?;
    for f in [&mut stdout, &mut stderr].into_iter().flatten() {
        f.seek(SeekFrom::Start(0))?;
    }
    Ok(Streams { stdout, stderr })
}

/// Our own fd 1 or 2 as a File, without taking ownership (so it is never closed).
fn raw_fd_file(fd: i32) -> ManuallyDrop<File> {
    // SAFETY: fds 1 and 2 stay open for the life of the process; ManuallyDrop never
    // closes them.
    ManuallyDrop::new(unsafe { File::from_raw_fd(fd) })
}

/// Replays the chunks. A write error (our reader went away) is returned as is.
pub fn write_streams(rec: &Record, mut streams: Streams) -> std::io::Result<()> {
    let mut out = raw_fd_file(1);
    let mut err = raw_fd_file(2);
    // Anything Rust buffered for stdout must go first.
    std::io::stdout().flush()?;
    for &(stream, len) in &rec.chunks {
        let (src, dst) = if stream == STDOUT {
            (streams.stdout.as_mut(), &mut *out)
        } else {
            (streams.stderr.as_mut(), &mut *err)
        };
        let Some(src) = src else {
            continue;
        };
        let copied = std::io::copy(&mut src.take(len), dst)?;
        if copied != len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "blob shorter than its record says",
            ));
        }
    }
    Ok(())
}

/// Copies one stream's recorded bytes to a writer (for `idem show --stdout`).
pub fn copy_stream(
    blobs: &BlobStore,
    blob: &crate::store::record::BlobRef,
    out: &mut dyn Write,
) -> Result<()> {
    if let Some(mut f) = blobs.open_verified(blob)? {
        f.seek(SeekFrom::Start(0))?;
        std::io::copy(&mut f, out).context("cannot write the recorded bytes")?;
    }
    Ok(())
}
