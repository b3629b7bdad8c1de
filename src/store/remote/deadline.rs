//! Overall deadlines for remote calls: each backend call runs on a helper thread and is
//! abandoned when its deadline passes, whatever the transport is doing (a server that
//! trickles a byte a second, a frozen DNS lookup). It must never wait past the deadline.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};

use super::{BlobSink, RResult, Remote, RemoteError};
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

/// What a batched download hands to the waiting thread, in arrival order.
pub enum Piece {
    /// The next bytes of blob `i` of the batch.
    Data(usize, Vec<u8>),
    /// Blob `i` is over: `true` when every byte came, `false` when the remote lacks it.
    End(usize, bool),
}

enum Msg {
    Pieces(Vec<Piece>),
    Done(RResult<()>),
}

/// Pieces are handed over in batches of about this many bytes (or `FLUSH_PIECES`
/// pieces): one wake-up of the waiting thread per batch, not two per small blob, which
/// on a busy machine cost a scheduling delay each.
const FLUSH_BYTES: usize = 1 << 20;
const FLUSH_PIECES: usize = 256;

#[derive(Default)]
struct Batch {
    pieces: Vec<Piece>,
    bytes: usize,
}

/// The helper threads' end of a download: pieces gather in a batch that goes to the
/// waiting thread when it is full and when the download ends.
struct ToChannel {
    tx: mpsc::SyncSender<Msg>,
    batch: Mutex<Batch>,
}

impl ToChannel {
    fn push(&self, p: Piece, bytes: usize) -> std::io::Result<()> {
        let mut b = self.batch.lock().unwrap_or_else(|p| p.into_inner());
        b.pieces.push(p);
        b.bytes += bytes;
        if b.bytes >= FLUSH_BYTES || b.pieces.len() >= FLUSH_PIECES {
            self.flush(&mut b)?;
        }
        Ok(())
    }

    fn flush(&self, b: &mut Batch) -> std::io::Result<()> {
        if b.pieces.is_empty() {
            return Ok(());
        }
        let pieces = std::mem::take(&mut b.pieces);
        b.bytes = 0;
        self.tx
            .send(Msg::Pieces(pieces))
            .map_err(|_| std::io::Error::other("the download was abandoned"))
    }
}

impl BlobSink for ToChannel {
    fn data(&self, i: usize, bytes: Vec<u8>) -> std::io::Result<()> {
        let n = bytes.len();
        self.push(Piece::Data(i, bytes), n)
    }

    fn end(&self, i: usize, found: bool) -> std::io::Result<()> {
        self.push(Piece::End(i, found), 0)
    }
}

/// Downloads `blobs` on a helper thread while this thread hands every piece to `on`, so
/// local writes never leave this thread and the whole batch ends by the deadline. `on`
/// returning `Ok(false)` ends the download early (the helper stops at its next batch).
/// Memory: at most 4 batches wait in the channel (a batch is about 1 MiB, or one 4 MiB
/// chunk more).
pub fn get_blobs(
    deadline: Deadline,
    backend: &Arc<dyn Remote>,
    blobs: Vec<BlobRef>,
    mut on: impl FnMut(Piece) -> RResult<bool>,
) -> RResult<()> {
    let (tx, rx) = mpsc::sync_channel(4);
    let b = Arc::clone(backend);
    helper(move || {
        let to = ToChannel {
            tx: tx.clone(),
            batch: Mutex::default(),
        };
        let mut res = b.get_blobs(&blobs, &to);
        if res.is_ok() {
            let mut batch = to.batch.lock().unwrap_or_else(|p| p.into_inner());
            res = to.flush(&mut batch).map_err(super::sink_error);
        }
        let _ = tx.send(Msg::Done(res));
    })?;
    loop {
        match rx.recv_timeout(deadline.left()) {
            Ok(Msg::Pieces(pieces)) => {
                for p in pieces {
                    if !on(p)? {
                        return Ok(());
                    }
                }
            }
            Ok(Msg::Done(res)) => return res,
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
