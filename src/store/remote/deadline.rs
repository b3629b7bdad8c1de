//! Overall deadlines for remote calls: each backend call runs on a helper thread and is
//! abandoned when its deadline passes, whatever the transport is doing (a server that
//! trickles a byte a second, a frozen DNS lookup). It must never wait past the deadline.

use std::io::Write;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};

use super::{RResult, Remote, RemoteError};
use crate::store::record::BlobRef;

/// Blobs move in pieces of this size: each piece gets one more `--remote-timeout`.
pub const PIECE: u64 = 4 << 20;

/// The time one operation may take: `timeout` for records, leases and checks; for a blob
/// transfer, `timeout` per started 4 MiB (a floor of 4 MiB per timeout on the rate, so
/// a large blob on a slow link still gets through while a trickle is cut off).
pub fn budget(timeout: Duration, blob_size: Option<u64>) -> Duration {
    let pieces = blob_size.map_or(1, |s| s.div_ceil(PIECE).max(1));
    timeout.saturating_mul(u32::try_from(pieces).unwrap_or(u32::MAX))
}

/// When an operation must be over, and how long it was given (for the message).
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    pub at: Instant,
    pub budget: Duration,
}

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        let now = Instant::now();
        // An absurd --remote-timeout must not panic: a century is "no deadline".
        let far = Duration::from_secs(100 * 365 * 24 * 3600);
        Self {
            at: now
                .checked_add(budget)
                .unwrap_or_else(|| now + far.min(budget)),
            budget,
        }
    }

    pub fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    fn expired(&self) -> RemoteError {
        // Not worth retrying: the operation's whole time is used up.
        RemoteError::fatal(anyhow!("no complete answer within {}", human(self.budget)))
    }
}

/// `2s`, `1500ms`: as the user wrote `--remote-timeout`.
pub fn human(t: Duration) -> String {
    if t.subsec_millis() == 0 {
        format!("{}s", t.as_secs())
    } else {
        format!("{}ms", t.as_millis())
    }
}

fn helper<F: FnOnce() + Send + 'static>(f: F) -> RResult<()> {
    std::thread::Builder::new()
        .name("idem-remote".into())
        .spawn(f)
        .map(drop)
        .context("cannot start a thread for a remote call")
        .map_err(RemoteError::fatal)
}

/// Runs `op` on a helper thread and waits for its answer until the deadline; past it the
/// thread is abandoned (it ends with the process, or when the transport gives up).
pub fn within<T: Send + 'static>(
    deadline: Deadline,
    op: impl FnOnce() -> RResult<T> + Send + 'static,
) -> RResult<T> {
    let (tx, rx) = mpsc::sync_channel(1);
    helper(move || {
        let _ = tx.send(op());
    })?;
    match rx.recv_timeout(deadline.left()) {
        Ok(res) => res,
        Err(RecvTimeoutError::Timeout) => Err(deadline.expired()),
        Err(RecvTimeoutError::Disconnected) => Err(RemoteError::fatal(anyhow!(
            "the remote call stopped unexpectedly"
        ))),
    }
}

enum Piece {
    Data(Vec<u8>),
    Done(RResult<bool>),
}

/// The helper thread's end of a download: bytes go to the waiting thread in pieces.
struct ToChannel(mpsc::SyncSender<Piece>);

impl Write for ToChannel {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .send(Piece::Data(buf.to_vec()))
            .map_err(|_| std::io::Error::other("the download was abandoned (deadline)"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Downloads a blob on a helper thread while this thread writes it into `sink`, so the
/// local sink never leaves this thread and the whole download ends by the deadline.
pub fn get_blob(
    deadline: Deadline,
    backend: &Arc<dyn Remote>,
    blob: BlobRef,
    sink: &mut dyn Write,
) -> RResult<bool> {
    // A few pieces in flight: enough to overlap network and disk, little memory.
    let (tx, rx) = mpsc::sync_channel(8);
    let b = Arc::clone(backend);
    helper(move || {
        let mut to = ToChannel(tx.clone());
        let res = b.get_blob(&blob, &mut to);
        let _ = tx.send(Piece::Done(res));
    })?;
    loop {
        match rx.recv_timeout(deadline.left()) {
            Ok(Piece::Data(d)) => sink
                .write_all(&d)
                .context("cannot store a downloaded blob locally")
                .map_err(RemoteError::fatal)?,
            Ok(Piece::Done(res)) => return res,
            Err(RecvTimeoutError::Timeout) => return Err(deadline.expired()),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(RemoteError::fatal(anyhow!(
                    "the remote call stopped unexpectedly"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_budgets_grow_per_piece() {
        let t = Duration::from_secs(5);
        assert_eq!(budget(t, None), t);
        assert_eq!(budget(t, Some(0)), t);
        assert_eq!(budget(t, Some(PIECE)), t);
        assert_eq!(budget(t, Some(PIECE + 1)), 2 * t);
    }

    #[test]
    fn a_call_that_never_answers_ends_at_the_deadline() {
        let start = Instant::now();
        let (_keep, rx) = mpsc::channel::<()>();
        let res: RResult<()> = within(Deadline::after(Duration::from_millis(100)), move || {
            let _ = rx.recv();
            Ok(())
        });
        let e = res.unwrap_err();
        assert!(!e.retry);
        assert!(e
            .err
            .to_string()
            .contains("no complete answer within 100ms"));
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
