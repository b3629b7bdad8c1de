//! Batched blob transfers of the remote tier: a record's missing blobs fetched in one
//! deadline-bounded call (many per round trip), and its blobs checked and uploaded the
//! same way. A downloaded byte never enters the local store before its blob verified.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::deadline::{self, budget, within, Piece};
use super::{RemoteError, Tier};
use crate::encode::hex;
use crate::store::blobs::{BlobStore, BlobWriter};
use crate::store::record::BlobRef;

/// Where a batched download delivers (`Remote::get_blobs`); called from the backend's
/// threads, so it must be shareable.
pub trait BlobSink: Sync {
    /// The next bytes of blob `i`.
    fn data(&self, i: usize, bytes: Vec<u8>) -> std::io::Result<()>;
    /// Blob `i` is over: `found` when every byte was given, else the remote lacks it.
    fn end(&self, i: usize, found: bool) -> std::io::Result<()>;
}

/// A sink failing means the local side gave up (deadline, a bad blob, a full disk).
pub fn sink_error(e: std::io::Error) -> RemoteError {
    RemoteError::fatal(anyhow::Error::new(e).context("the download was abandoned"))
}

/// One blob of a batch as a `Write`, for backends that stream a blob at a time.
pub struct SinkWriter<'a> {
    pub sink: &'a dyn BlobSink,
    pub i: usize,
}

impl Write for SinkWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sink.data(self.i, buf.to_vec())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How a batched download ended (faults of the remote itself are `call`'s business).
enum Fetch {
    All,
    /// The remote lacks this blob (expired, evicted): a miss, nobody lied.
    Missing(BlobRef),
    /// This blob came but is not what its hash says (or could not be stored).
    Bad(anyhow::Error),
}

impl Tier {
    /// Downloads `need` (blobs of record `id` the local store lacks) into the local
    /// store, each verified against its hash. `false` is a miss (already reported).
    /// The batch gets one deadline: `--remote-timeout` per started 4 MiB of its total.
    /// A retry fetches only the blobs not yet stored.
    pub(super) fn fetch_blobs(&self, store: &BlobStore, id: &str, need: &[BlobRef]) -> bool {
        if need.is_empty() {
            return true;
        }
        let total: u64 = need.iter().map(|b| b.size).sum();
        let mut stored = vec![false; need.len()];
        let outcome = self.call("blob download", budget(self.timeout, Some(total)), |d| {
            let todo: Vec<usize> = (0..need.len()).filter(|&i| !stored[i]).collect();
            let blobs: Vec<BlobRef> = todo.iter().map(|&i| need[i]).collect();
            // Blobs in flight (a few at a time): dropped unfinished, they leave nothing.
            let mut writers: HashMap<usize, BlobWriter> = HashMap::new();
            let mut verdict = Fetch::All;
            deadline::get_blobs(d, &self.backend, blobs.clone(), |piece| match piece {
                Piece::Data(k, bytes) => {
                    let w = match writers.entry(k) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(e) => {
                            e.insert(store.writer().map_err(RemoteError::fatal)?)
                        }
                    };
                    w.write_all(&bytes)
                        .context("cannot store a downloaded blob locally")
                        .map_err(RemoteError::fatal)?;
                    Ok(true)
                }
                Piece::End(k, false) => {
                    verdict = Fetch::Missing(blobs[k]);
                    Ok(false)
                }
                Piece::End(k, true) => {
                    let w = match writers.remove(&k) {
                        Some(w) => w,
                        None => store.writer().map_err(RemoteError::fatal)?,
                    };
                    match w.finish_checked(&blobs[k]) {
                        Ok(_) => {
                            stored[todo[k]] = true;
                            Ok(true)
                        }
                        Err(e) => {
                            verdict = Fetch::Bad(e);
                            Ok(false)
                        }
                    }
                }
            })?;
            if let (Fetch::All, Some(i)) = (&verdict, stored.iter().position(|s| !s)) {
                // The backend ended without accounting for a blob: not a replay.
                verdict = Fetch::Missing(need[i]);
            }
            Ok(verdict)
        });
        match outcome {
            Some(Fetch::All) => true,
            None => false,
            Some(Fetch::Missing(blob)) => {
                if self.verbose {
                    eprintln!(
                        "idem: remote record {id} is missing blob {} (expired or evicted); treating it as a miss",
                        hex(&blob.hash)
                    );
                }
                false
            }
            Some(Fetch::Bad(e)) => {
                self.warn(format!("ignoring record {id}: {e:#}"));
                self.refuse(id);
                false
            }
        }
    }

    /// Uploads the blobs of record `id` the remote lacks (asked in one batch), each
    /// verified locally first. `false` when the record must not be uploaded (reported).
    pub(super) fn send_blobs(&self, store: &BlobStore, id: &str, blobs: Vec<BlobRef>) -> bool {
        if blobs.is_empty() {
            return true;
        }
        let asked = blobs.clone();
        let Some(has) = self.call("blob check", self.timeout, |d| {
            let (b, blobs) = (Arc::clone(&self.backend), asked.clone());
            within(d, move || b.has_blobs(&blobs))
        }) else {
            return false;
        };
        let missing: Vec<BlobRef> = blobs
            .into_iter()
            .zip(has.into_iter().chain(std::iter::repeat(false)))
            .filter(|(_, has)| !has)
            .map(|(b, _)| b)
            .collect();
        // Only verified bytes leave the machine: a corrupt local blob stops the upload.
        // A blob this run wrote from bytes it hashed on the way (captured stdout and
        // stderr) is not read back for that: 100 MB of output cost a second pass; it is
        // only checked to be still there with its size (a concurrent gc may have swept
        // it: that skips this upload, it is no fault of the remote's).
        for blob in &missing {
            let checked = if store.written_here(blob) {
                open_sized(store, blob).map(drop)
            } else {
                store.open_verified(blob).map(drop)
            };
            if let Err(e) = checked {
                self.warn(format!("not uploading record {id}: {e:#}"));
                return false;
            }
        }
        if missing.is_empty() {
            return true;
        }
        let total: u64 = missing.iter().map(|b| b.size).sum();
        let ttl = self.record_ttl;
        self.call("blob upload", budget(self.timeout, Some(total)), |d| {
            let (b, blobs, store) = (Arc::clone(&self.backend), missing.clone(), store.clone());
            // An attempt that times out ends the upload: attempts never overlap.
            within(d, move || {
                b.put_blobs(&blobs, &|i| open_sized(&store, &blobs[i]), ttl)
            })
        })
        .is_some()
    }
}

/// A local blob for upload (verified just before), opened again with its size checked.
fn open_sized(store: &BlobStore, blob: &BlobRef) -> Result<File> {
    let path = store.path(&blob.hash);
    let file = crate::store::private::open_read(&path)
        .with_context(|| format!("blob {} is missing", path.display()))?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot stat blob {}", path.display()))?
        .len();
    if len != blob.size {
        bail!(
            "blob {} has {len} bytes, expected {}",
            path.display(),
            blob.size
        );
    }
    Ok(file)
}
