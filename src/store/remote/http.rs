//! HTTP/WebDAV remote: plain GET/PUT/HEAD of `<prefix>/idem/v1/rec/<id>` and
//! `<prefix>/idem/v1/blob/<hash>`, as nginx WebDAV and object-store gateways accept. It
//! has no leases. Credentials (URL user:password, IDEM_REMOTE_TOKEN) are never printed,
//! never follow a redirect, and only a 2xx answer to a PUT counts as stored.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use super::{sink_error, BlobSink, RResult, Remote, RemoteError, SinkWriter, MAX_RECORD};
use crate::encode::hex;
use crate::store::record::BlobRef;

/// Requests in flight at once for a batch of blobs (each on its own kept-alive
/// connection): enough to hide round trips, few enough to be polite to a shared server.
pub const JOBS: usize = 8;

/// Runs `work(0..n)` on up to `JOBS` threads (this one included); the first error stops
/// the others from starting more and is returned once all have finished.
fn in_parallel(n: usize, work: impl Fn(usize) -> RResult<()> + Sync) -> RResult<()> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failed: Mutex<Option<RemoteError>> = Mutex::new(None);
    let worker = || loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        if let Err(e) = work(i) {
            stop.store(true, Ordering::Relaxed);
            failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
            break;
        }
    };
    std::thread::scope(|s| {
        for _ in 1..JOBS.min(n) {
            // A thread that cannot start only means less parallelism.
            let _ = std::thread::Builder::new()
                .name("idem-http".into())
                .spawn_scoped(s, worker);
        }
        worker();
    });
    match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// How long after the operation's deadline the HTTP client's own deadline falls.
const BACKSTOP_GRACE: Duration = Duration::from_secs(1);

pub struct HttpRemote {
    /// Scheme, host and path prefix, without credentials or a trailing slash.
    base: String,
    auth: Option<String>,
    /// Built on the first request: building one loads every root certificate of the
    /// system (~5 ms), which a run whose local cache hits never needs.
    agents: OnceLock<Agents>,
    timeout: Duration,
}

struct Agents {
    /// GET and HEAD: redirects followed (ureq drops `Authorization` on every redirect).
    get: ureq::Agent,
    /// PUT: redirects never followed (ureq would turn a redirected PUT into a GET and
    /// report its answer as the upload's), so a 3xx is a failed upload.
    put: ureq::Agent,
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for c in input.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits `scheme://user:pass@host/prefix` into the base without credentials and the
/// `Authorization` header value they imply.
fn split_credentials(url: &str) -> Result<(String, Option<String>)> {
    let (scheme, rest) = url.split_once("://").context("missing ://")?;
    if rest.contains(['?', '#']) {
        bail!("a query or fragment is not allowed in an HTTP remote prefix");
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if host.is_empty() {
        bail!("no host");
    }
    if let Some((_, port)) = host.rsplit_once(':').filter(|_| !host.ends_with(']')) {
        if port.parse::<u16>().is_err() {
            bail!("invalid port '{port}'");
        }
    }
    let auth = userinfo.map(|u| {
        let (user, pass) = u.split_once(':').unwrap_or((u, ""));
        let pair = format!("{}:{}", percent_decode(user), percent_decode(pass));
        format!("Basic {}", base64(pair.as_bytes()))
    });
    let base = format!(
        "{}://{}{}",
        scheme.to_ascii_lowercase(),
        host,
        path.trim_end_matches('/')
    );
    Ok((base, auth))
}

impl HttpRemote {
    pub fn new(url: &str, name: &str, timeout: Duration) -> Result<Self> {
        let (base, url_auth) =
            split_credentials(url).with_context(|| format!("invalid HTTP remote URL '{name}'"))?;
        let token = std::env::var("IDEM_REMOTE_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        let auth = token.map(|t| format!("Bearer {t}")).or(url_auth);
        Ok(Self {
            base,
            auth,
            agents: OnceLock::new(),
            timeout,
        })
    }

    fn agents(&self) -> &Agents {
        self.agents.get_or_init(|| {
            let builder = || {
                ureq::AgentBuilder::new()
                    .timeout_connect(self.timeout)
                    .timeout_read(self.timeout)
                    .timeout_write(self.timeout)
                    .user_agent(concat!("idem/", env!("CARGO_PKG_VERSION")))
                    .max_idle_connections_per_host(JOBS)
            };
            Agents {
                get: builder().build(),
                put: builder().redirects(0).build(),
            }
        })
    }

    fn url(&self, kind: &str, key: &str) -> String {
        format!("{}/idem/v1/{kind}/{key}", self.base)
    }

    /// A record or check request ends within the timeout (plus a grace second) as a
    /// whole, so the transport stops by itself after `Tier`'s watchdog has given up on
    /// it; the grace lets the watchdog, whose message names the deadline, speak first.
    /// Blob transfers keep the per-read timeout instead (ureq's overall deadline would
    /// replace it): a stalled transfer then fails after one timeout of silence, and the
    /// watchdog bounds the whole.
    fn request(&self, method: &str, kind: &str, key: &str) -> ureq::Request {
        let agents = self.agents();
        let agent = if method == "PUT" {
            &agents.put
        } else {
            &agents.get
        };
        let r = agent.request(method, &self.url(kind, key));
        let r = if kind == "blob" && method != "HEAD" {
            r
        } else {
            r.timeout(self.timeout + BACKSTOP_GRACE)
        };
        match &self.auth {
            Some(a) => r.set("Authorization", a),
            None => r,
        }
    }

    /// Sends and maps the answer: `Ok(None)` for 404, transient for 5xx, 429 and
    /// transport errors, fatal otherwise (a 3xx included: only 2xx is success). Messages
    /// never contain credentials (nor a redirect's Location, which may carry a token).
    fn send(
        &self,
        what: &str,
        res: std::result::Result<ureq::Response, ureq::Error>,
    ) -> RResult<Option<ureq::Response>> {
        match res {
            Ok(r) if (200..300).contains(&r.status()) => Ok(Some(r)),
            Ok(r) if (300..400).contains(&r.status()) => Err(RemoteError::fatal(anyhow!(
                "{what}: HTTP {} redirect, not followed (point the remote URL at the final location)",
                r.status()
            ))),
            Ok(r) => Err(RemoteError::fatal(anyhow!("{what}: HTTP {}", r.status()))),
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(ureq::Error::Status(code, _)) => {
                let err = anyhow!("{what}: HTTP {code}");
                if code == 429 || code >= 500 {
                    Err(RemoteError::transient(err))
                } else {
                    Err(RemoteError::fatal(err))
                }
            }
            Err(ureq::Error::Transport(t)) => Err(RemoteError::transient(anyhow!(
                "{what}: {}{}",
                t.kind(),
                t.message().map(|m| format!(": {m}")).unwrap_or_default()
            ))),
        }
    }
}

impl Remote for HttpRemote {
    fn get_record(&self, id: &str) -> RResult<Option<Vec<u8>>> {
        let what = format!("GET rec/{id}");
        let req = self.request("GET", "rec", id);
        let Some(resp) = self.send(&what, req.call())? else {
            return Ok(None);
        };
        if content_length(&resp).is_some_and(|n| n > MAX_RECORD) {
            return Err(too_large(&what));
        }
        let mut buf = Vec::new();
        resp.into_reader()
            .take(MAX_RECORD + 1)
            .read_to_end(&mut buf)
            .map_err(|e| RemoteError::transient(anyhow!("{what}: {e}")))?;
        if buf.len() as u64 > MAX_RECORD {
            return Err(too_large(&what));
        }
        Ok(Some(buf))
    }

    fn put_record(&self, id: &str, data: &[u8], _ttl: Option<Duration>) -> RResult<()> {
        let what = format!("PUT rec/{id}");
        let req = self
            .request("PUT", "rec", id)
            .set("Content-Type", "application/octet-stream");
        self.send(&what, req.send_bytes(data))?;
        Ok(())
    }

    fn has_blob(&self, blob: &BlobRef) -> RResult<bool> {
        let h = hex(&blob.hash);
        let what = format!("HEAD blob/{h}");
        let req = self.request("HEAD", "blob", &h);
        let Some(resp) = self.send(&what, req.call())? else {
            return Ok(false);
        };
        // A partial or foreign object of the wrong length is as good as absent.
        Ok(content_length(&resp).is_none_or(|l| l == blob.size))
    }

    fn get_blob(&self, blob: &BlobRef, sink: &mut dyn Write) -> RResult<bool> {
        let h = hex(&blob.hash);
        let what = format!("GET blob/{h}");
        let req = self.request("GET", "blob", &h);
        let Some(resp) = self.send(&what, req.call())? else {
            return Ok(false);
        };
        // Another length is another object (partial, foreign): absent, and not read.
        if content_length(&resp).is_some_and(|n| n != blob.size) {
            return Ok(false);
        }
        // At most one byte more than the blob: enough for the hash check to fail.
        let mut body = resp.into_reader().take(blob.size.saturating_add(1));
        // Sized for the blob (one extra byte shows a longer body): a thousand small
        // blobs must not each zero a 64 KiB buffer.
        let mut buf = vec![0u8; blob.size.saturating_add(1).min(1 << 16) as usize];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(RemoteError::transient(anyhow!("{what}: {e}"))),
            };
            sink.write_all(&buf[..n])
                .context("cannot store a downloaded blob locally")
                .map_err(RemoteError::fatal)?;
        }
        Ok(true)
    }

    fn put_blob(&self, blob: &BlobRef, src: &mut dyn Read, _ttl: Option<Duration>) -> RResult<()> {
        let h = hex(&blob.hash);
        let what = format!("PUT blob/{h}");
        let req = self
            .request("PUT", "blob", &h)
            .set("Content-Type", "application/octet-stream")
            .set("Content-Length", &blob.size.to_string());
        self.send(&what, req.send(src))?;
        Ok(())
    }

    /// Concurrent `HEAD`s on kept-alive connections.
    fn has_blobs(&self, blobs: &[BlobRef]) -> RResult<Vec<bool>> {
        let has: Vec<AtomicBool> = blobs.iter().map(|_| AtomicBool::new(false)).collect();
        in_parallel(blobs.len(), |i| {
            has[i].store(self.has_blob(&blobs[i])?, Ordering::Relaxed);
            Ok(())
        })?;
        Ok(has.into_iter().map(AtomicBool::into_inner).collect())
    }

    /// Concurrent `GET`s on kept-alive connections, each streamed in 64 KiB pieces.
    fn get_blobs(&self, blobs: &[BlobRef], sink: &dyn BlobSink) -> RResult<()> {
        in_parallel(blobs.len(), |i| {
            let found = self.get_blob(&blobs[i], &mut SinkWriter { sink, i })?;
            sink.end(i, found).map_err(sink_error)
        })
    }

    /// Concurrent `PUT`s on kept-alive connections.
    fn put_blobs(
        &self,
        blobs: &[BlobRef],
        open: &(dyn Fn(usize) -> Result<File> + Sync),
        ttl: Option<Duration>,
    ) -> RResult<()> {
        in_parallel(blobs.len(), |i| {
            let file = open(i).map_err(RemoteError::fatal)?;
            self.put_blob(&blobs[i], &mut file.take(blobs[i].size), ttl)
        })
    }
}

fn content_length(resp: &ureq::Response) -> Option<u64> {
    resp.header("Content-Length")
        .and_then(|l| l.trim().parse::<u64>().ok())
}

fn too_large(what: &str) -> RemoteError {
    RemoteError::bad_object(anyhow!(
        "{what}: record larger than {} MiB, not read",
        MAX_RECORD >> 20
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"user:pa ss"), "dXNlcjpwYSBzcw==");
    }

    #[test]
    fn credentials_leave_the_base() {
        let (base, auth) = split_credentials("https://u:p%40ss@h:8080/cache/").unwrap();
        assert_eq!(base, "https://h:8080/cache");
        assert_eq!(auth.unwrap(), format!("Basic {}", base64(b"u:p@ss")));
        let (base, auth) = split_credentials("http://h").unwrap();
        assert_eq!(base, "http://h");
        assert!(auth.is_none());
        assert!(split_credentials("http:///x").is_err());
        assert!(split_credentials("http://h:port/x").is_err());
        assert!(split_credentials("http://h/x?sig=1").is_err());
    }
}
