//! Redis and Redis Cluster remote: records, chunked blobs and `SET NX PX` leases under
//! `idem:v1:` keys, hash-tagged so a record and its lease share a cluster slot. It must
//! never print the URL's password, never wait on the network past the timeout, and never
//! ask for more of a value than its cap (`GETRANGE`, not `GET`).

use std::fs::File;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use redis::cluster::ClusterClient;
use redis::{ConnectionLike, RedisError, RedisResult};

use super::{sink_error, BlobSink, LeaseTry, RResult, Remote, RemoteError, MAX_RECORD};
use crate::encode::hex;
use crate::store::record::BlobRef;

mod conn;
use conn::{classify, cluster_nodes, connect_blocking, private_ca, Conn, Target};

/// Blobs are split into values of at most this size (Redis handles big values badly).
pub const CHUNK: u64 = 4 << 20;

pub fn record_key(id: &str) -> String {
    format!("idem:v1:rec:{{{id}}}")
}

pub fn lease_key(id: &str) -> String {
    format!("idem:v1:lease:{{{id}}}")
}

/// Chunk 0 lives at the bare key and is written last: its presence means "complete".
pub fn blob_key(hash: &str, chunk: u64) -> String {
    if chunk == 0 {
        format!("idem:v1:blob:{{{hash}}}")
    } else {
        format!("idem:v1:blob:{{{hash}}}:{chunk}")
    }
}

fn chunks(size: u64) -> u64 {
    size.div_ceil(CHUNK).max(1)
}

/// The size of chunk `i` of a blob of `size` bytes.
fn chunk_len(size: u64, i: u64) -> u64 {
    size.saturating_sub(i * CHUNK).min(CHUNK)
}

/// Most records fit in one round trip of this size; a longer one takes a second.
const FIRST_READ: u64 = 64 << 10;

/// A lease holder string longer than this is cut (it is only ever printed).
const MAX_HOLDER: u64 = 256;

/// `GETRANGE key 0 n-1`: at most `n` bytes of a value, whatever its size; `""` for a
/// missing key (`n` must be at least 1: `GETRANGE key 0 -1` means the whole value).
fn get_prefix(key: &str, n: u64) -> redis::Cmd {
    let mut c = redis::cmd("GETRANGE");
    c.arg(key).arg(0).arg(n.max(1) - 1);
    c
}

/// A holder string from the server, safe to print: control characters escaped.
fn printable(holder: &[u8]) -> String {
    String::from_utf8_lossy(holder)
        .chars()
        .flat_map(|c| {
            let esc: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            esc
        })
        .collect()
}

/// A pipeline carries at most this many bytes of blob data (and `BATCH_CMDS` commands):
/// many small blobs go in one round trip, a large one in a few chunks per round trip,
/// and memory stays bounded whatever the record holds. Small enough that the first
/// pipeline's blobs are being written while the next ones are on the wire (with 8 MiB /
/// 512 a 1,000-file hit waited for ~800 blobs before writing the first).
const BATCH_BYTES: u64 = 1 << 20;
const BATCH_CMDS: usize = 128;

pub struct RedisRemote {
    target: Target,
    timeout: Duration,
    /// Records and blobs.
    main: Mutex<Option<Conn>>,
    /// Leases, on their own connection so a long upload never delays a heartbeat.
    lease: Mutex<Option<Conn>>,
}

impl RedisRemote {
    pub fn new(url: &str, name: &str, timeout: Duration) -> Result<Self> {
        let lower = url.to_ascii_lowercase();
        let tls = lower.starts_with("rediss");
        let certs = if tls { private_ca()? } else { None };
        let target =
            if lower.starts_with("redis+cluster://") || lower.starts_with("rediss+cluster://") {
                let nodes = cluster_nodes(url)
                    .with_context(|| format!("invalid Redis Cluster URL '{name}'"))?;
                let mut builder = ClusterClient::builder(nodes)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(1);
                if let Some(c) = certs {
                    builder = builder.certs(c);
                }
                let client = builder
                    .build()
                    .map_err(|e| anyhow!("invalid Redis Cluster URL '{name}': {e}"))?;
                Target::Cluster(client)
            } else {
                let client = match certs {
                    Some(c) => redis::Client::build_with_tls(url, c),
                    None => redis::Client::open(url),
                }
                .map_err(|e| anyhow!("invalid Redis URL '{name}': {e}"))?;
                Target::Single(client)
            };
        Ok(Self {
            target,
            timeout,
            main: Mutex::new(None),
            lease: Mutex::new(None),
        })
    }

    /// Connects within the timeout. The crate's own setup commands (CLIENT SETINFO,
    /// CLUSTER SLOTS) read without a timeout, so a frozen server would hang them: the
    /// setup runs on a helper thread that is abandoned when the timeout passes.
    fn connect(&self) -> RedisResult<Conn> {
        let target = self.target.clone();
        let timeout = self.timeout;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(connect_blocking(&target, timeout));
        });
        match rx.recv_timeout(timeout) {
            Ok(res) => res,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {timeout:?} while connecting"),
            ))),
        }
    }

    /// Runs `f` on a (re)connected connection; a broken connection is dropped so the
    /// next attempt starts afresh.
    fn with<T>(
        &self,
        slot: &Mutex<Option<Conn>>,
        what: &str,
        f: impl FnOnce(&mut dyn ConnectionLike) -> RedisResult<T>,
    ) -> RResult<T> {
        self.with_conn(slot, what, |c| f(c.as_dyn()))
    }

    /// `with`, for calls that need to know the kind of connection (pipelines).
    fn with_conn<T>(
        &self,
        slot: &Mutex<Option<Conn>>,
        what: &str,
        f: impl FnOnce(&mut Conn) -> RedisResult<T>,
    ) -> RResult<T> {
        let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
        let conn = match guard.take() {
            Some(c) => c,
            None => self.connect().map_err(|e| classify("connect", e))?,
        };
        let mut conn = conn;
        let res = f(&mut conn);
        match &res {
            Err(e) if e.is_io_error() || e.is_unrecoverable_error() => {}
            _ => *guard = Some(conn),
        }
        res.map_err(|e| classify(what, e))
    }
}

fn set_cmd(key: &str, value: &[u8], ttl: Option<Duration>) -> redis::Cmd {
    let mut c = redis::cmd("SET");
    c.arg(key).arg(value);
    if let Some(t) = ttl {
        c.arg("PX").arg(t.as_millis().max(1) as u64);
    }
    c
}

/// The next chunk of a local blob (at most `CHUNK` bytes).
fn read_chunk(src: &mut dyn Read) -> RResult<Vec<u8>> {
    let mut buf = Vec::new();
    src.take(CHUNK)
        .read_to_end(&mut buf)
        .context("cannot read a local blob")
        .map_err(RemoteError::fatal)?;
    Ok(buf)
}

impl RedisRemote {
    /// One round trip of `get_blobs`: the chunks `batch` names (blob index, chunk
    /// number), skipping blobs already found absent. An empty chunk means the blob is
    /// incomplete (evicted, expired): it ends as absent and its later chunks are ignored.
    fn get_chunks(
        &self,
        blobs: &[BlobRef],
        batch: &[(usize, u64)],
        absent: &mut [bool],
        sink: &dyn BlobSink,
    ) -> RResult<()> {
        let live: Vec<(usize, u64)> = batch.iter().copied().filter(|&(i, _)| !absent[i]).collect();
        if live.is_empty() {
            return Ok(());
        }
        let cmds = live
            .iter()
            .map(|&(i, n)| {
                let b = &blobs[i];
                get_prefix(&blob_key(&hex(&b.hash), n), chunk_len(b.size, n))
            })
            .collect();
        let parts: Vec<Vec<u8>> =
            self.with_conn(&self.main, "GETRANGE (pipelined blobs)", |c| {
                c.pipeline(cmds)
            })?;
        if parts.len() != live.len() {
            return Err(RemoteError::fatal(anyhow!(
                "GETRANGE (pipelined blobs): {} answers to {} requests",
                parts.len(),
                live.len()
            )));
        }
        for ((i, n), part) in live.into_iter().zip(parts) {
            if absent[i] {
                continue;
            }
            if part.is_empty() {
                absent[i] = true;
                sink.end(i, false).map_err(sink_error)?;
                continue;
            }
            sink.data(i, part).map_err(sink_error)?;
            if n + 1 == chunks(blobs[i].size) {
                sink.end(i, true).map_err(sink_error)?;
            }
        }
        Ok(())
    }
}

const RENEW: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

impl Remote for RedisRemote {
    /// A record is never empty, so an empty range means "no such key".
    fn get_record(&self, id: &str) -> RResult<Option<Vec<u8>>> {
        let key = record_key(id);
        let what = format!("GETRANGE {key}");
        let first: Vec<u8> =
            self.with(&self.main, &what, |c| get_prefix(&key, FIRST_READ).query(c))?;
        if first.is_empty() {
            return Ok(None);
        }
        if (first.len() as u64) < FIRST_READ {
            return Ok(Some(first));
        }
        let len: u64 = self.with(&self.main, &format!("STRLEN {key}"), |c| {
            redis::cmd("STRLEN").arg(&key).query(c)
        })?;
        if len > MAX_RECORD {
            return Err(RemoteError::bad_object(anyhow!(
                "record {key} is larger than {} MiB ({len} bytes), not read",
                MAX_RECORD >> 20
            )));
        }
        // One byte over the cap tells a value that grew meanwhile from one that fits.
        let all: Vec<u8> = self.with(&self.main, &what, |c| {
            get_prefix(&key, MAX_RECORD + 1).query(c)
        })?;
        if all.len() as u64 > MAX_RECORD {
            return Err(RemoteError::bad_object(anyhow!(
                "record {key} is larger than {} MiB, not read",
                MAX_RECORD >> 20
            )));
        }
        Ok((!all.is_empty()).then_some(all))
    }

    fn put_record(&self, id: &str, data: &[u8], ttl: Option<Duration>) -> RResult<()> {
        let key = record_key(id);
        self.with(&self.main, &format!("SET {key}"), |c| {
            set_cmd(&key, data, ttl).query(c)
        })
    }

    fn has_blob(&self, blob: &BlobRef) -> RResult<bool> {
        let key = blob_key(&hex(&blob.hash), 0);
        self.with(&self.main, &format!("EXISTS {key}"), |c| {
            redis::cmd("EXISTS").arg(&key).query(c)
        })
    }

    /// Each chunk is read up to its expected size and no further; a short one is
    /// written as it is and fails the caller's hash check.
    fn get_blob(&self, blob: &BlobRef, sink: &mut dyn Write) -> RResult<bool> {
        let h = hex(&blob.hash);
        if blob.size == 0 {
            let key = blob_key(&h, 0);
            return self.with(&self.main, &format!("EXISTS {key}"), |c| {
                redis::cmd("EXISTS").arg(&key).query(c)
            });
        }
        for i in 0..chunks(blob.size) {
            let key = blob_key(&h, i);
            let part: Vec<u8> = self.with(&self.main, &format!("GETRANGE {key}"), |c| {
                get_prefix(&key, chunk_len(blob.size, i)).query(c)
            })?;
            if part.is_empty() {
                return Ok(false);
            }
            sink.write_all(&part)
                .context("cannot store a downloaded blob locally")
                .map_err(RemoteError::fatal)?;
        }
        Ok(true)
    }

    fn put_blob(&self, blob: &BlobRef, src: &mut dyn Read, ttl: Option<Duration>) -> RResult<()> {
        let h = hex(&blob.hash);
        let first = read_chunk(src)?;
        for i in 1..chunks(blob.size) {
            let part = read_chunk(src)?;
            let key = blob_key(&h, i);
            self.with(&self.main, &format!("SET {key}"), |c| {
                set_cmd(&key, &part, ttl).query::<()>(c)
            })?;
        }
        let key = blob_key(&h, 0);
        self.with(&self.main, &format!("SET {key}"), |c| {
            set_cmd(&key, &first, ttl).query(c)
        })
    }

    /// One `EXISTS` per blob, pipelined.
    fn has_blobs(&self, blobs: &[BlobRef]) -> RResult<Vec<bool>> {
        let mut has = Vec::with_capacity(blobs.len());
        for part in blobs.chunks(BATCH_CMDS) {
            let cmds = part
                .iter()
                .map(|b| {
                    let mut c = redis::cmd("EXISTS");
                    c.arg(blob_key(&hex(&b.hash), 0));
                    c
                })
                .collect();
            let got: Vec<bool> =
                self.with_conn(&self.main, "EXISTS (pipelined blobs)", |c| c.pipeline(cmds))?;
            has.extend(got);
        }
        Ok(has)
    }

    /// Pipelined `GETRANGE`s of many chunks per round trip (`BATCH_BYTES`), each read up
    /// to its expected size and no further.
    fn get_blobs(&self, blobs: &[BlobRef], sink: &dyn BlobSink) -> RResult<()> {
        let mut absent = vec![false; blobs.len()];
        let mut batch: Vec<(usize, u64)> = Vec::new();
        let mut bytes = 0;
        for (i, blob) in blobs.iter().enumerate() {
            if blob.size == 0 {
                let found = self.get_blob(blob, &mut std::io::sink())?;
                sink.end(i, found).map_err(sink_error)?;
                continue;
            }
            for n in 0..chunks(blob.size) {
                batch.push((i, n));
                bytes += chunk_len(blob.size, n);
                if bytes >= BATCH_BYTES || batch.len() >= BATCH_CMDS {
                    self.get_chunks(blobs, &batch, &mut absent, sink)?;
                    batch.clear();
                    bytes = 0;
                }
            }
        }
        self.get_chunks(blobs, &batch, &mut absent, sink)
    }

    /// Pipelined `SET`s, `BATCH_BYTES` per round trip; the chunk at the bare key of each
    /// blob is sent after its other chunks, in the same or a later round trip.
    fn put_blobs(
        &self,
        blobs: &[BlobRef],
        open: &(dyn Fn(usize) -> Result<File> + Sync),
        ttl: Option<Duration>,
    ) -> RResult<()> {
        let mut cmds = Vec::new();
        let mut bytes = 0;
        let flush = |cmds: &mut Vec<redis::Cmd>| -> RResult<()> {
            if cmds.is_empty() {
                return Ok(());
            }
            let batch = std::mem::take(cmds);
            self.with_conn(&self.main, "SET (pipelined blobs)", |c| {
                c.pipeline::<redis::Value>(batch).map(drop)
            })
        };
        for (i, blob) in blobs.iter().enumerate() {
            let h = hex(&blob.hash);
            let mut src = open(i).map_err(RemoteError::fatal)?.take(blob.size);
            let first = read_chunk(&mut src)?;
            for n in 1..chunks(blob.size) {
                let part = read_chunk(&mut src)?;
                bytes += part.len() as u64;
                cmds.push(set_cmd(&blob_key(&h, n), &part, ttl));
                if bytes >= BATCH_BYTES {
                    flush(&mut cmds)?;
                    bytes = 0;
                }
            }
            bytes += first.len() as u64;
            cmds.push(set_cmd(&blob_key(&h, 0), &first, ttl));
            if bytes >= BATCH_BYTES || cmds.len() >= BATCH_CMDS {
                flush(&mut cmds)?;
                bytes = 0;
            }
        }
        flush(&mut cmds)
    }

    fn try_lease(&self, id: &str, holder: &str, ttl: Duration) -> RResult<LeaseTry> {
        let key = lease_key(id);
        let ms = ttl.as_millis() as u64;
        self.with(&self.lease, &format!("SET NX {key}"), |c| {
            let ok: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(holder)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query(c)?;
            if ok.is_some() {
                return Ok(LeaseTry::Got);
            }
            let who: Vec<u8> = get_prefix(&key, MAX_HOLDER).query(c)?;
            Ok(LeaseTry::Busy(if who.is_empty() {
                "another host".into()
            } else {
                printable(&who)
            }))
        })
    }

    fn renew_lease(&self, id: &str, holder: &str, ttl: Duration) -> RResult<bool> {
        let key = lease_key(id);
        let n: i64 = self.with(&self.lease, &format!("renew {key}"), |c| {
            redis::cmd("EVAL")
                .arg(RENEW)
                .arg(1)
                .arg(&key)
                .arg(holder)
                .arg(ttl.as_millis() as u64)
                .query(c)
        })?;
        Ok(n == 1)
    }

    fn release_lease(&self, id: &str, holder: &str) -> RResult<()> {
        let key = lease_key(id);
        self.with(&self.lease, &format!("release {key}"), |c| {
            redis::cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(&key)
                .arg(holder)
                .query::<i64>(c)
                .map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_and_lease_share_a_slot() {
        let id = "ab".repeat(32);
        let slot = |k: &str| redis::cluster_routing::get_slot(k.as_bytes());
        assert_eq!(slot(&record_key(&id)), slot(&lease_key(&id)));
        assert_eq!(slot(&blob_key(&id, 0)), slot(&blob_key(&id, 3)));
    }

    #[test]
    fn chunk_count() {
        assert_eq!(chunks(1), 1);
        assert_eq!(chunks(CHUNK), 1);
        assert_eq!(chunks(CHUNK + 1), 2);
        assert_eq!(chunk_len(CHUNK + 1, 0), CHUNK);
        assert_eq!(chunk_len(CHUNK + 1, 1), 1);
        assert_eq!(chunk_len(3, 0), 3);
    }

    #[test]
    fn holders_print_safely() {
        assert_eq!(printable(b"host pid 1"), "host pid 1");
        assert_eq!(printable(b"\x1b]0;x\x07"), "\\u{1b}]0;x\\u{7}");
    }
}
