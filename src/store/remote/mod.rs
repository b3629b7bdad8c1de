//! Second-tier caches shared across machines: the `Remote` trait (one file per backend)
//! and `Tier` (MACs, path checks, deadlines, bounded retries, a per-run circuit breaker).
//! A remote fault must never change a command's result; credentials must never be printed.

pub mod deadline;
mod envelope;
pub mod http;
mod lease;
pub mod redis;
mod transfer;

pub use envelope::{mac_key, record_id, seal, unseal};
pub use lease::RemoteLease;
pub use transfer::{sink_error, BlobSink, SinkWriter};

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::record::{BlobRef, Record};
use super::Cache;
use crate::spec::Workspace;
use deadline::{within, Deadline};

#[derive(Debug, Clone)]
pub struct RemoteConfig {
    pub url: String,
    pub read_only: bool,
    /// Overall deadline of each operation, retries included (a blob transfer gets it
    /// once per 4 MiB: see `deadline::budget`).
    pub timeout: Duration,
    /// `--ttl` of the run: remote keys expire after it where the backend supports it.
    pub record_ttl: Option<Duration>,
    pub verbose: bool,
}

/// A backend failure. `retry` says whether trying again may help (connection refused,
/// timeout, 5xx, 429) or not (authentication, protocol, local disk). `trip` is false
/// for a fault of one stored object (a record over the size cap): that object is a miss,
/// the remote stays in use (and the run's upload can replace the object).
#[derive(Debug)]
pub struct RemoteError {
    pub retry: bool,
    pub trip: bool,
    pub err: anyhow::Error,
}

impl RemoteError {
    pub fn transient(err: impl Into<anyhow::Error>) -> Self {
        Self {
            retry: true,
            trip: true,
            err: err.into(),
        }
    }

    pub fn fatal(err: impl Into<anyhow::Error>) -> Self {
        Self {
            retry: false,
            trip: true,
            err: err.into(),
        }
    }

    /// One stored object is unusable; the remote itself is fine.
    pub fn bad_object(err: impl Into<anyhow::Error>) -> Self {
        Self {
            retry: false,
            trip: false,
            err: err.into(),
        }
    }
}

pub type RResult<T> = std::result::Result<T, RemoteError>;

/// The answer to a lease request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseTry {
    Got,
    /// Someone else holds it; their holder string.
    Busy(String),
    /// This backend has no leases (HTTP): single flight stays per machine.
    Unsupported,
}

/// A record larger than this is refused rather than read into memory (both backends).
pub const MAX_RECORD: u64 = 64 << 20;

/// The second-tier store (the remote side of the store; docs/architecture.md). Record ids and blob
/// hashes are lowercase hex. Implementations bound every network wait by the configured
/// timeout, read no more than `MAX_RECORD` for a record or a blob's own size for a
/// blob, and never put credentials into error messages. `Tier` adds the overall deadline.
pub trait Remote: Send + Sync {
    /// The sealed record bytes, or `None` when there is no such record.
    fn get_record(&self, id: &str) -> RResult<Option<Vec<u8>>>;
    fn put_record(&self, id: &str, data: &[u8], ttl: Option<Duration>) -> RResult<()>;
    fn has_blob(&self, blob: &BlobRef) -> RResult<bool>;
    /// Streams a blob into `sink`; `Ok(false)` when the remote does not have (all of) it.
    /// The caller verifies the bytes against the hash.
    fn get_blob(&self, blob: &BlobRef, sink: &mut dyn Write) -> RResult<bool>;
    /// Stores `blob.size` bytes read from `src`; a reader never sees a partial blob as
    /// present.
    fn put_blob(&self, blob: &BlobRef, src: &mut dyn Read, ttl: Option<Duration>) -> RResult<()>;
    /// Which of `blobs` the remote has, in order. Backends answer many in one round trip
    /// (a Redis pipeline, concurrent HTTP `HEAD`s); this default asks one at a time.
    fn has_blobs(&self, blobs: &[BlobRef]) -> RResult<Vec<bool>> {
        blobs.iter().map(|b| self.has_blob(b)).collect()
    }
    /// Streams every blob of `blobs` into `sink`: the bytes of blob `i` in order (blobs
    /// may interleave), then exactly one `end(i, found)`, unless an error ends the whole
    /// call. Memory stays bounded whatever the sizes (backends move bounded pieces). The
    /// caller verifies each blob against its hash.
    fn get_blobs(&self, blobs: &[BlobRef], sink: &dyn BlobSink) -> RResult<()> {
        for (i, blob) in blobs.iter().enumerate() {
            let found = self.get_blob(blob, &mut SinkWriter { sink, i })?;
            sink.end(i, found).map_err(sink_error)?;
        }
        Ok(())
    }
    /// Stores every blob of `blobs`, reading blob `i` from `open(i)`; a reader never
    /// sees a partial blob as present. The caller writes the record only after this.
    fn put_blobs(
        &self,
        blobs: &[BlobRef],
        open: &(dyn Fn(usize) -> Result<File> + Sync),
        ttl: Option<Duration>,
    ) -> RResult<()> {
        for (i, blob) in blobs.iter().enumerate() {
            let file = open(i).map_err(RemoteError::fatal)?;
            self.put_blob(blob, &mut file.take(blob.size), ttl)?;
        }
        Ok(())
    }
    fn try_lease(&self, _id: &str, _holder: &str, _ttl: Duration) -> RResult<LeaseTry> {
        Ok(LeaseTry::Unsupported)
    }
    /// Extends a lease we hold; `Ok(false)` when it is no longer ours.
    fn renew_lease(&self, _id: &str, _holder: &str, _ttl: Duration) -> RResult<bool> {
        Ok(false)
    }
    /// Deletes a lease only if it is still ours.
    fn release_lease(&self, _id: &str, _holder: &str) -> RResult<()> {
        Ok(())
    }
}

/// The remote object holding a traced weak key's dependency-set index.
pub fn trace_sets_id(weak: &[u8; 32]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"idem-remote-trace-sets-v1");
    h.update(weak);
    h.finalize().to_hex().to_string()
}

const MAX_ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// A Redis lease lives this long without a heartbeat, so a dead host's claim expires.
pub const LEASE_TTL: Duration = Duration::from_secs(30);

/// The remote tier as `run` sees it: every method swallows remote faults (one warning,
/// then the remote is skipped for the rest of the invocation).
pub struct Tier {
    backend: Arc<dyn Remote>,
    name: String,
    read_only: bool,
    timeout: Duration,
    record_ttl: Option<Duration>,
    mac_key: Option<[u8; 32]>,
    verbose: bool,
    disabled: AtomicBool,
    /// Records refused in this run (oversized, bad MAC, bad blob): looked up again (the
    /// run looks twice), they are a miss without another download or warning.
    refused: Mutex<HashSet<String>>,
}

/// How a lease request ended.
pub enum Claim {
    Got(RemoteLease),
    Busy(String),
    /// No cross-host lease (backend without leases, read-only, remote down).
    Unavailable,
}

impl Tier {
    /// Parses the URL and builds the backend; connects lazily on first use. A URL that
    /// cannot be understood is an error (the caller makes it a usage error).
    pub fn connect(cfg: &RemoteConfig) -> Result<Self> {
        let name = crate::ui::redact(&cfg.url);
        let scheme = cfg
            .url
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        let backend: Arc<dyn Remote> = match scheme.as_deref() {
            Some("redis" | "rediss" | "redis+cluster" | "rediss+cluster") => {
                Arc::new(redis::RedisRemote::new(&cfg.url, &name, cfg.timeout)?)
            }
            Some("http" | "https") => Arc::new(http::HttpRemote::new(&cfg.url, &name, cfg.timeout)?),
            _ => bail!(
                "unsupported remote URL '{name}': use redis://, rediss://, redis+cluster://, http:// or https://"
            ),
        };
        let mac_key = std::env::var("IDEM_REMOTE_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .map(|k| mac_key(&k));
        Ok(Self::with_backend(backend, name, cfg, mac_key))
    }

    pub fn with_backend(
        backend: Arc<dyn Remote>,
        name: String,
        cfg: &RemoteConfig,
        mac_key: Option<[u8; 32]>,
    ) -> Self {
        Self {
            backend,
            name,
            read_only: cfg.read_only,
            timeout: cfg.timeout,
            record_ttl: cfg.record_ttl,
            mac_key,
            verbose: cfg.verbose,
            disabled: AtomicBool::new(false),
            refused: Mutex::new(HashSet::new()),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }

    fn warn(&self, msg: impl std::fmt::Display) {
        crate::ui::warn(format!("remote cache {}: {msg}", self.name));
    }

    /// Runs one remote operation with bounded retries (only for transient errors, only
    /// while the operation is within its overall deadline, which `op` is given and must
    /// keep: see `deadline::within`). A final failure trips the breaker.
    fn call<T>(
        &self,
        what: &str,
        budget: Duration,
        mut op: impl FnMut(Deadline) -> RResult<T>,
    ) -> Option<T> {
        if self.is_disabled() {
            return None;
        }
        let deadline = Deadline::after(budget);
        let mut delay = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match op(deadline) {
                Ok(v) => return Some(v),
                Err(e) => {
                    let jitter = Duration::from_millis(u64::from(
                        crate::clock::real_now_ns().unsigned_abs() as u32 % 25,
                    ));
                    if e.retry && attempt < MAX_ATTEMPTS && delay + jitter < deadline.left() {
                        std::thread::sleep(delay + jitter);
                        delay *= 2;
                        attempt += 1;
                        continue;
                    }
                    if !e.trip {
                        self.warn(format!("{:#}; treating it as a miss", e.err));
                        return None;
                    }
                    self.trip(what, &e.err);
                    return None;
                }
            }
        }
    }

    fn trip(&self, what: &str, err: &anyhow::Error) {
        if !self.disabled.swap(true, Ordering::Relaxed) {
            self.warn(format!(
                "{what} failed ({err:#}); skipping the remote for the rest of this run"
            ));
        }
    }

    /// On a local miss: fetch the record and its blobs (each verified) into the local
    /// cache and return it as stored there. Anything wrong is a miss.
    pub fn lookup(
        &self,
        cache: &mut Cache,
        ws: &Workspace,
        task: &[u8; 32],
        state: &[u8; 32],
    ) -> Option<(i64, Record)> {
        let id = record_id(task, state);
        if self.is_refused(&id) {
            return None;
        }
        let Some(data) = self.call("record lookup", self.timeout, |d| {
            let (b, id) = (Arc::clone(&self.backend), id.clone());
            within(d, move || b.get_record(&id))
        }) else {
            // Still in use after a failure: that record was at fault (warned about).
            if !self.is_disabled() {
                self.refuse(&id);
            }
            return None;
        };
        let rec = match self.check_record(&data?, ws, task, state) {
            Ok(r) => r,
            Err(e) => {
                self.warn(format!("ignoring record {id}: {e:#}"));
                self.refuse(&id);
                return None;
            }
        };
        let need: Vec<BlobRef> = rec
            .blobs()
            .into_iter()
            .filter(|b| !cache.blobs.contains(b))
            .collect();
        if !self.fetch_blobs(&cache.blobs, &id, &need) {
            return None;
        }
        match cache.db.insert_record(&rec, crate::clock::now_ns()) {
            Ok(local_id) => Some((local_id, rec)),
            Err(e) => {
                self.warn(format!("cannot store record {id} locally ({e:#})"));
                None
            }
        }
    }

    fn is_refused(&self, id: &str) -> bool {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    fn refuse(&self, id: &str) {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string());
    }

    fn check_record(
        &self,
        data: &[u8],
        ws: &Workspace,
        task: &[u8; 32],
        state: &[u8; 32],
    ) -> Result<Record> {
        let body = unseal(self.mac_key.as_ref(), data)?;
        let rec = Record::decode(body).context("malformed record")?;
        if &rec.task_key != task || &rec.state_key != state {
            bail!("it belongs to another task or state");
        }
        // Whatever its MAC says: a record that would write outside the workspace is refused.
        crate::outputs::validate(ws, &rec.outputs)?;
        Ok(rec)
    }

    /// After a local record: upload its blobs, then the record (so no reader sees a
    /// record whose blobs are missing). Failures warn once; they never fail the run.
    pub fn upload(&self, cache: &mut Cache, rec: &Record) {
        if self.read_only || self.is_disabled() {
            return;
        }
        let id = record_id(&rec.task_key, &rec.state_key);
        if !self.send_blobs(&cache.blobs, &id, rec.blobs()) {
            return;
        }
        let sealed: Arc<[u8]> = seal(self.mac_key.as_ref(), &rec.encode()).into();
        let ttl = self.record_ttl;
        if self
            .call("record upload", self.timeout, |d| {
                let (b, id, sealed) = (Arc::clone(&self.backend), id.clone(), Arc::clone(&sealed));
                within(d, move || b.put_record(&id, &sealed, ttl))
            })
            .is_none()
        {
            return;
        }
        if let Err(e) = cache.db.add_stat(crate::store::Counter::Uploads, 1) {
            crate::ui::warn(format!("cannot count the upload: {e:#}"));
        }
        if self.verbose {
            crate::ui::note(format!("uploaded to the remote cache {}", self.name));
        }
    }

    /// A traced weak key's dependency-set index on the remote (one object per weak key,
    /// sealed like a record; last writer wins). `None` on any fault or when absent.
    pub fn get_trace_sets(&self, weak: &[u8; 32]) -> Option<super::trace_sets::Sets> {
        let id = trace_sets_id(weak);
        if self.is_refused(&id) {
            return None;
        }
        let data = self.call("dependency-set lookup", self.timeout, |d| {
            let (b, id) = (Arc::clone(&self.backend), id.clone());
            within(d, move || b.get_record(&id))
        })??;
        let sets = unseal(self.mac_key.as_ref(), &data)
            .and_then(|body| {
                let (key, rest) = body
                    .split_at_checked(32)
                    .context("truncated dependency-set index")?;
                if key != weak {
                    bail!("it belongs to another task");
                }
                super::trace_sets::decode_sets(rest)
            })
            .map_err(|e| {
                self.warn(format!("ignoring dependency-set index {id}: {e:#}"));
                self.refuse(&id);
            })
            .ok()?;
        Some(sets)
    }

    /// Publishes `new` entry lists at the front of the remote's index for `weak`, merged
    /// best-effort with what is there (a concurrent writer may win: a lost set is only a
    /// miss elsewhere).
    pub fn put_trace_sets(&self, weak: &[u8; 32], new: &[Vec<u8>]) {
        if self.read_only || self.is_disabled() {
            return;
        }
        let theirs = self.get_trace_sets(weak).unwrap_or_default();
        if self.is_disabled() {
            return;
        }
        let merged = super::trace_sets::merge(new, &theirs);
        let mut body = weak.to_vec();
        body.extend_from_slice(&super::trace_sets::encode_sets(&merged));
        let sealed: Arc<[u8]> = seal(self.mac_key.as_ref(), &body).into();
        let id = trace_sets_id(weak);
        let ttl = self.record_ttl;
        let _ = self.call("dependency-set upload", self.timeout, |d| {
            let (b, id, sealed) = (Arc::clone(&self.backend), id.clone(), Arc::clone(&sealed));
            within(d, move || b.put_record(&id, &sealed, ttl))
        });
    }

    /// Cross-host single flight: tries to take the remote lease for (task, state).
    pub fn try_lease(&self, task: &[u8; 32], state: &[u8; 32]) -> Claim {
        if self.read_only {
            return Claim::Unavailable;
        }
        let id = record_id(task, state);
        let holder = format!(
            "{} pid {} {:x}",
            crate::host::name(),
            std::process::id(),
            crate::clock::real_now_ns()
        );
        let got = self.call("lease", self.timeout, |d| {
            let (b, id, holder) = (Arc::clone(&self.backend), id.clone(), holder.clone());
            within(d, move || b.try_lease(&id, &holder, LEASE_TTL))
        });
        match got {
            Some(LeaseTry::Got) => Claim::Got(RemoteLease::start(
                self.backend.clone(),
                self.timeout,
                id,
                holder,
            )),
            Some(LeaseTry::Busy(h)) => Claim::Busy(h),
            Some(LeaseTry::Unsupported) | None => Claim::Unavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A backend whose record lookups fail `fail` times (transiently or not), counting
    /// every call.
    struct Flaky {
        fail: u32,
        transient: bool,
        calls: std::sync::atomic::AtomicU32,
    }

    impl Remote for Flaky {
        fn get_record(&self, _id: &str) -> RResult<Option<Vec<u8>>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.fail {
                let e = anyhow::anyhow!("boom {n}");
                return Err(if self.transient {
                    RemoteError::transient(e)
                } else {
                    RemoteError::fatal(e)
                });
            }
            Ok(None)
        }
        fn put_record(&self, _: &str, _: &[u8], _: Option<Duration>) -> RResult<()> {
            Ok(())
        }
        fn has_blob(&self, _: &BlobRef) -> RResult<bool> {
            Ok(true)
        }
        fn get_blob(&self, _: &BlobRef, _: &mut dyn Write) -> RResult<bool> {
            Ok(false)
        }
        fn put_blob(&self, _: &BlobRef, _: &mut dyn Read, _: Option<Duration>) -> RResult<()> {
            Ok(())
        }
    }

    fn tier(fail: u32, transient: bool, timeout: Duration) -> (Tier, Arc<Flaky>) {
        let backend = Arc::new(Flaky {
            fail,
            transient,
            calls: Default::default(),
        });
        let cfg = RemoteConfig {
            url: "redis://x".into(),
            read_only: false,
            timeout,
            record_ttl: None,
            verbose: false,
        };
        (
            Tier::with_backend(backend.clone(), "test".into(), &cfg, None),
            backend,
        )
    }

    #[test]
    fn transient_errors_are_retried_within_the_timeout() {
        let (t, b) = tier(2, true, Duration::from_secs(5));
        assert_eq!(
            t.call("lookup", t.timeout, |_| b.get_record("x")),
            Some(None)
        );
        assert_eq!(b.calls.load(Ordering::SeqCst), 3);
        assert!(!t.is_disabled());
    }

    #[test]
    fn repeated_failures_skip_the_remote_for_the_rest_of_the_run() {
        let (t, b) = tier(u32::MAX, true, Duration::from_secs(5));
        let start = Instant::now();
        assert_eq!(t.call("lookup", t.timeout, |_| b.get_record("x")), None);
        assert_eq!(b.calls.load(Ordering::SeqCst), MAX_ATTEMPTS);
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(t.is_disabled());
        assert_eq!(t.call("lookup", t.timeout, |_| b.get_record("x")), None);
        assert_eq!(
            b.calls.load(Ordering::SeqCst),
            MAX_ATTEMPTS,
            "a skipped remote was called"
        );
    }

    #[test]
    fn fatal_errors_and_short_timeouts_are_not_retried() {
        let (t, b) = tier(1, false, Duration::from_secs(5));
        assert_eq!(t.call("lookup", t.timeout, |_| b.get_record("x")), None);
        assert_eq!(b.calls.load(Ordering::SeqCst), 1);
        let (t, b) = tier(1, true, Duration::from_millis(10));
        assert_eq!(t.call("lookup", t.timeout, |_| b.get_record("x")), None);
        assert_eq!(b.calls.load(Ordering::SeqCst), 1);
    }
}
