//! URL dependencies: the current state of a remote resource (strong ETag, else a settled
//! Last-Modified + Content-Length, else a streamed body hash). Header values are never
//! stored or printed; an unknown state is reported as unknown, never guessed.

use std::io::Read;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use indicatif::{MultiProgress, ProgressDrawTarget};
use url::Url;

use super::{DepState, Kind};

mod failure;
mod state;
use failure::Failure;
pub use state::describe_change;
use state::{unix_secs, validators};

/// Redirects followed before a URL's state is declared unknown.
pub const MAX_REDIRECTS: usize = 10;

/// Slack given to the transport's own timeout before the watchdog gives up on a URL, so
/// the more precise transport error usually wins the race.
const WATCHDOG_GRACE: Duration = Duration::from_millis(250);

/// A body download shows a progress bar once it has taken this long.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// A body download gets the URL timeout once more for every piece of this size that
/// arrives: a floor on its average rate, so a trickle is cut off and a big file is not.
const BODY_PIECE: u64 = 4 << 20;

#[derive(Clone, Default)]
pub struct UrlOptions {
    /// (name, value) pairs from --url-header and IDEM_URL_HEADER_<n>.
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub progress: bool,
}

/// Header values are secrets: Debug shows names only.
impl std::fmt::Debug for UrlOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .headers
            .iter()
            .map(|(n, _)| format!("{n}: <redacted>"))
            .collect();
        f.debug_struct("UrlOptions")
            .field("headers", &names)
            .field("timeout", &self.timeout)
            .field("progress", &self.progress)
            .finish()
    }
}

/// One URL to check; `content` forces a body hash.
#[derive(Debug, Clone)]
pub struct UrlSpec {
    pub url: String,
    pub content: bool,
}

pub enum UrlOutcome {
    Known(DepState),
    /// The state cannot be known now. `offline` is true when the cause looks like the
    /// network or the server being down (DNS, connection, timeout, 5xx), the only case
    /// where `--url-offline=hit` may trust the last recorded state; a definite answer
    /// such as 404 is never papered over.
    Unknown {
        url: String,
        reason: String,
        offline: bool,
    },
}

/// Parse-time check: scheme http, https or file, and a well-formed URL.
pub fn validate(url: &str) -> Result<()> {
    parse(url).map(|_| ())
}

fn parse(s: &str) -> Result<Url> {
    let u = Url::parse(s).map_err(|e| anyhow::anyhow!("{e}"))?;
    match u.scheme() {
        "http" | "https" => {
            if !matches!(u.host_str(), Some(h) if !h.is_empty()) {
                bail!("no host name");
            }
            if u.password().is_some() {
                bail!(
                    "a password inside the URL would be stored in the cache; \
                     send it with --url-header 'Authorization: …' instead"
                );
            }
        }
        "file" => {
            if let Some(host) = u.host_str().filter(|h| !h.is_empty() && *h != "localhost") {
                bail!(
                    "file:// URLs must name a local file (file:///path), not one on host '{host}'"
                );
            }
            if u.to_file_path().is_err() {
                bail!("file:// URL does not name an absolute local path");
            }
        }
        other => bail!("unsupported scheme '{other}:' (use http://, https:// or file://)"),
    }
    Ok(u)
}

/// The URL with any password replaced, for messages.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Parses `Name: value`. Errors name the problem, never the value.
pub fn parse_header(h: &str) -> Result<(String, String)> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("invalid header (expected 'Name: value')"))?;
    let name = name.trim();
    if name.is_empty() {
        bail!("invalid header: empty name (expected 'Name: value')");
    }
    // RFC 9110 token characters.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !name.chars().all(token) {
        bail!(
            "invalid header name '{}' (letters, digits and - only)",
            name.escape_default()
        );
    }
    let value = value.trim();
    if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        bail!("invalid value for header '{name}': it contains a line break or NUL");
    }
    Ok((name.to_string(), value.to_string()))
}

/// What a worker thread tells the collector.
enum Event {
    /// URL `i` must answer (or finish its next piece of body) by this deadline.
    Phase(usize, Option<Instant>),
    Done(usize, UrlOutcome),
}

/// Checks all URLs concurrently (one thread per URL) and returns one outcome per spec,
/// in order. A URL that has not answered by its deadline is unknown ("timed out"), even
/// when the transport itself would hang (e.g. in name resolution).
pub fn check_all(specs: &[UrlSpec], opts: &UrlOptions) -> Vec<UrlOutcome> {
    let n = specs.len();
    if n == 0 {
        return Vec::new();
    }
    let agent = agent(opts.timeout);
    let shared = Arc::new(opts.clone());
    let multi = opts
        .progress
        .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    let mut deadlines: Vec<Option<Instant>> = vec![Some(start + opts.timeout + WATCHDOG_GRACE); n];
    let mut results: Vec<Option<UrlOutcome>> = (0..n).map(|_| None).collect();
    for (i, spec) in specs.iter().enumerate() {
        let (agent, spec, opts, multi, tx) = (
            agent.clone(),
            spec.clone(),
            Arc::clone(&shared),
            multi.clone(),
            tx.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name(format!("idem-url-{i}"))
            .spawn(move || {
                let probe = Probe { i, tx: &tx };
                let out = check_one(&agent, &spec, &opts, multi.as_ref(), &probe);
                let _ = tx.send(Event::Done(i, out));
            });
        if let Err(e) = spawned {
            results[i] = Some(unknown(
                &specs[i].url,
                format!("cannot start a thread to check it: {e}"),
                false,
            ));
        }
    }
    drop(tx);
    while results.iter().any(Option::is_none) {
        let next = (0..n)
            .filter(|&i| results[i].is_none())
            .filter_map(|i| deadlines[i])
            .min();
        let event = match next {
            Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match event {
            Ok(Event::Phase(i, d)) => deadlines[i] = d.map(|d| d + WATCHDOG_GRACE),
            Ok(Event::Done(i, out)) => {
                if results[i].is_none() {
                    results[i] = Some(out);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                for i in 0..n {
                    if results[i].is_none() && deadlines[i].is_some_and(|d| d <= now) {
                        results[i] = Some(unknown(&specs[i].url, timed_out(opts.timeout), true));
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                for (i, r) in results.iter_mut().enumerate() {
                    if r.is_none() {
                        *r = Some(unknown(
                            &specs[i].url,
                            "the check stopped unexpectedly".into(),
                            false,
                        ));
                    }
                }
            }
        }
    }
    results.into_iter().flatten().collect()
}

/// The worker's side of the channel.
struct Probe<'a> {
    i: usize,
    tx: &'a Sender<Event>,
}

impl Probe<'_> {
    fn phase(&self, deadline: Option<Instant>) {
        let _ = self.tx.send(Event::Phase(self.i, deadline));
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout_read(timeout)
        .timeout_write(timeout)
        // Redirects are followed by `request`, which drops private headers when the
        // origin changes (ureq 2 would forward them to any host).
        .redirects(0)
        .user_agent(concat!("idem/", env!("CARGO_PKG_VERSION")))
        .build()
}

fn unknown(url: &str, reason: String, offline: bool) -> UrlOutcome {
    UrlOutcome::Unknown {
        url: url.to_string(),
        reason,
        offline,
    }
}

fn known(url: &str, state: String) -> UrlOutcome {
    UrlOutcome::Known(DepState::new(Kind::Url, url.as_bytes(), state.into_bytes()))
}

fn timed_out(t: Duration) -> String {
    format!("timed out after {}", human(t))
}

fn human(t: Duration) -> String {
    if t.subsec_millis() == 0 {
        format!("{}s", t.as_secs())
    } else {
        format!("{}ms", t.as_millis())
    }
}

fn check_one(
    agent: &ureq::Agent,
    spec: &UrlSpec,
    opts: &UrlOptions,
    multi: Option<&MultiProgress>,
    probe: &Probe<'_>,
) -> UrlOutcome {
    let url = match parse(&spec.url) {
        Ok(u) => u,
        Err(e) => return unknown(&spec.url, format!("invalid URL: {e:#}"), false),
    };
    if url.scheme() == "file" {
        return file_state(&spec.url, &url);
    }
    if !spec.content {
        let deadline = Instant::now() + opts.timeout;
        match request(agent, "HEAD", &url, opts, Some(deadline)) {
            Ok(resp) => {
                let checked = unix_secs(SystemTime::now());
                if let Some(state) = validators(|name| resp.header(name), checked) {
                    return known(&spec.url, state);
                }
            }
            // No HEAD here: the body is the truth.
            Err(Failure::Status(405 | 501, _)) => {}
            Err(f) => return f.into_outcome(&spec.url, opts.timeout),
        }
    }
    probe.phase(Some(Instant::now() + opts.timeout));
    let resp = match request(agent, "GET", &url, opts, None) {
        Ok(r) => r,
        Err(f) => return f.into_outcome(&spec.url, opts.timeout),
    };
    match hash_body(resp, &spec.url, opts, multi, probe) {
        Ok(state) => known(&spec.url, state),
        Err(f) => f.into_outcome(&spec.url, opts.timeout),
    }
}

/// One request, following redirects by hand (at most MAX_REDIRECTS, http(s) only).
/// Private headers go only to the original origin. `deadline` bounds the whole chain.
fn request(
    agent: &ureq::Agent,
    method: &str,
    start: &Url,
    opts: &UrlOptions,
    deadline: Option<Instant>,
) -> std::result::Result<ureq::Response, Failure> {
    let mut url = start.clone();
    let mut same_origin = true;
    for _ in 0..=MAX_REDIRECTS {
        // Identity encoding: a body hash must not depend on the server's compression.
        let mut req = agent
            .request_url(method, &url)
            .set("Accept-Encoding", "identity");
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::Io(std::io::ErrorKind::TimedOut.into()));
            }
            req = req.timeout(left);
        }
        if same_origin {
            for (name, value) in &opts.headers {
                req = req.set(name, value);
            }
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(code, r)) => {
                return Err(Failure::Status(code, r.status_text().to_string()))
            }
            Err(ureq::Error::Transport(t)) => return Err(Failure::Transport(Box::new(t))),
        };
        if !(300..400).contains(&resp.status()) || resp.status() == 304 {
            return Ok(resp);
        }
        let Some(location) = resp.header("location") else {
            return Err(Failure::Other(format!(
                "HTTP {} redirect without a Location header",
                resp.status()
            )));
        };
        let next = url
            .join(location)
            .map_err(|e| Failure::Other(format!("bad redirect Location ({e})")))?;
        if !matches!(next.scheme(), "http" | "https") {
            return Err(Failure::Other(format!(
                "redirected to an unsupported scheme '{}:'",
                next.scheme()
            )));
        }
        if next.origin() != start.origin() {
            same_origin = false;
        }
        url = next;
    }
    Err(Failure::Other(format!(
        "too many redirects (more than {MAX_REDIRECTS})"
    )))
}

/// Streams the body through blake3, never holding more than one buffer of it. The body
/// has the URL timeout for its first 4 MiB and once more for each further 4 MiB (the
/// watchdog enforces it, so a server that trickles bytes cannot hold idem).
fn hash_body(
    resp: ureq::Response,
    url: &str,
    opts: &UrlOptions,
    multi: Option<&MultiProgress>,
    probe: &Probe<'_>,
) -> std::result::Result<String, Failure> {
    let body_start = Instant::now();
    let mut pieces_done: u64 = 0;
    probe.phase(body_start.checked_add(opts.timeout));
    let total = resp
        .header("content-length")
        .and_then(|l| l.trim().parse::<u64>().ok());
    let mut reader = resp.into_reader();
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let started = Instant::now();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut done: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if let Some(b) = bar {
                    b.finish_and_clear();
                }
                return Err(Failure::Io(e));
            }
        };
        hasher.update(&buf[..n]);
        done += n as u64;
        if done / BODY_PIECE > pieces_done {
            pieces_done = done / BODY_PIECE;
            let allowed = opts
                .timeout
                .saturating_mul(u32::try_from(pieces_done + 1).unwrap_or(u32::MAX));
            probe.phase(body_start.checked_add(allowed));
        }
        match (&bar, multi) {
            (Some(b), _) => b.set_position(done),
            (None, Some(m)) if opts.progress && started.elapsed() >= PROGRESS_AFTER => {
                let b = crate::ui::progress::bytes_bar_in(m, total, &redact(url));
                b.set_position(done);
                // The rate counts from now, not from a jump of `done` bytes.
                b.reset_eta();
                bar = Some(b);
            }
            _ => {}
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(t) = total.filter(|&t| t != done) {
        return Err(Failure::Other(format!(
            "the body ended after {done} of {t} bytes"
        )));
    }
    Ok(format!("body:blake3:{}", hasher.finalize().to_hex()))
}

/// `file://`: hashed like a file dependency. A missing file is unknown (like a 404).
fn file_state(spec_url: &str, url: &Url) -> UrlOutcome {
    let Ok(path) = url.to_file_path() else {
        return unknown(spec_url, "not a local file path".into(), false);
    };
    let hashed = std::fs::metadata(&path)
        .with_context(|| format!("cannot stat {}", path.display()))
        .and_then(|md| {
            if !md.is_file() {
                bail!("{} is not a regular file", path.display());
            }
            crate::deps::files::hash_file(&path, md.len())
                .with_context(|| format!("cannot read {}", path.display()))
        });
    match hashed {
        Ok(h) => known(
            spec_url,
            format!("blake3:{}", blake3::Hash::from(h).to_hex()),
        ),
        Err(e) => {
            let reason = match e.downcast_ref::<std::io::Error>().map(std::io::Error::kind) {
                Some(std::io::ErrorKind::NotFound) => format!("no such file {}", path.display()),
                _ => format!("{e:#}"),
            };
            unknown(spec_url, reason, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_accepts_http_https_file() {
        for ok in [
            "http://example.com/",
            "https://example.com/a?b=c",
            "http://127.0.0.1:8080/x",
            "http://user@example.com/",
            "file:///etc/hosts",
            "file://localhost/etc/hosts",
        ] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn validate_rejects_bad_urls_and_schemes() {
        for bad in [
            "",
            "example.com/x",
            "http://",
            "ftp://example.com/x",
            "s3://bucket/key",
            "file://otherhost/etc/hosts",
            "https://user:secret@example.com/",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        let e = validate("https://user:secret@example.com/")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
        assert_eq!(
            redact("https://user:secret@example.com/"),
            "https://user:***@example.com/"
        );
    }

    #[test]
    fn headers_parse_and_errors_never_echo_values() {
        assert_eq!(
            parse_header("Authorization:  Bearer abc:def ").unwrap(),
            ("Authorization".into(), "Bearer abc:def".into())
        );
        for bad in [
            "no colon secretvalue",
            ": secretvalue",
            "Bad Name: secretvalue",
            "X: secret\nvalue",
        ] {
            let e = format!("{:#}", parse_header(bad).unwrap_err());
            assert!(!e.contains("secret"), "{bad:?} → {e}");
        }
        let opts = UrlOptions {
            headers: vec![("X-Token".into(), "secretvalue".into())],
            ..Default::default()
        };
        let dbg = format!("{opts:?}");
        assert!(
            dbg.contains("X-Token") && !dbg.contains("secretvalue"),
            "{dbg}"
        );
    }

    #[test]
    fn file_urls_hash_like_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data.txt");
        std::fs::write(&p, b"hello").unwrap();
        let u = Url::from_file_path(&p).unwrap().to_string();
        let opts = UrlOptions {
            timeout: Duration::from_secs(1),
            ..Default::default()
        };
        let spec = UrlSpec {
            url: u.clone(),
            content: false,
        };
        let out = check_all(std::slice::from_ref(&spec), &opts);
        let UrlOutcome::Known(d) = &out[0] else {
            panic!("unknown")
        };
        assert_eq!(
            d.state,
            format!("blake3:{}", blake3::hash(b"hello").to_hex()).into_bytes()
        );
        std::fs::remove_file(&p).unwrap();
        let out = check_all(&[spec], &opts);
        assert!(
            matches!(&out[0], UrlOutcome::Unknown { reason, .. } if reason.contains("no such file"))
        );
    }
}
