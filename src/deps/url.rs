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

/// A `Last-Modified` this close to the server's `Date` (or to our clock when there is no
/// `Date`) is not trusted: HTTP dates have one-second resolution and file timestamps
/// lag the wall clock a little, so a change made a moment later can carry the very same
/// date. One second of resolution plus one of margin.
const RACY_WINDOW: u64 = 2;

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

/// Why a request gave no state.
enum Failure {
    Status(u16, String),
    Transport(Box<ureq::Transport>),
    Io(std::io::Error),
    Other(String),
}

impl Failure {
    fn into_outcome(self, url: &str, timeout: Duration) -> UrlOutcome {
        match self {
            Failure::Status(code, text) => {
                let reason = format!("HTTP {code} {text}").trim_end().to_string();
                unknown(url, reason, code >= 500)
            }
            // A refused certificate is a definite answer (maybe an attacker), not an
            // outage: --url-offline=hit must not trust the last state over it.
            Failure::Transport(t) => {
                unknown(url, transport_reason(&t, timeout), !is_tls_failure(&t))
            }
            Failure::Io(e) => unknown(url, io_reason(&e, timeout, "reading the body failed"), true),
            Failure::Other(reason) => unknown(url, reason, false),
        }
    }
}

/// Innermost io::Error in an error chain, if any.
fn root_io<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    let mut found = None;
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            found = Some(io);
        }
        cur = err.source();
    }
    found
}

/// Whether a transport error came from TLS (certificate, handshake) rather than the network.
fn is_tls_failure(t: &ureq::Transport) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(t);
    while let Some(err) = cur {
        if err.is::<ureq::rustls::Error>() {
            return true;
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if inner.is::<ureq::rustls::Error>() {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

fn io_reason(e: &std::io::Error, timeout: Duration, what: &str) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::TimedOut | K::WouldBlock => timed_out(timeout),
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset by the server".into(),
        K::UnexpectedEof => "the server closed the connection early".into(),
        _ => format!("{what}: {e}"),
    }
}

fn transport_reason(t: &ureq::Transport, timeout: Duration) -> String {
    use ureq::ErrorKind as K;
    let source = std::error::Error::source(t).map(|s| s.to_string());
    let detail = match (t.message(), source) {
        (Some(m), Some(s)) => Some(format!("{m}: {s}")),
        (Some(m), None) => Some(m.to_string()),
        (None, s) => s,
    };
    if let Some(io) = std::error::Error::source(t).and_then(root_io) {
        if matches!(
            io.kind(),
            std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::WouldBlock
                | std::io::ErrorKind::ConnectionRefused
        ) {
            return io_reason(io, timeout, "");
        }
    }
    let with = |what: &str| match &detail {
        Some(d) => format!("{what}: {d}"),
        None => what.to_string(),
    };
    match t.kind() {
        K::Dns => with("DNS lookup failed"),
        K::ConnectionFailed => with("connection failed"),
        K::Io => with("network error"),
        K::BadStatus | K::BadHeader => with("malformed HTTP answer"),
        K::InvalidUrl => with("invalid URL"),
        _ => with(&t.kind().to_string()),
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

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Seconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, the only
/// form RFC 9110 lets servers send). The obsolete forms are `None`: not trusted.
fn http_date(s: &str) -> Option<i64> {
    let rest = s.trim().split_once(", ")?.1;
    let f: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = f[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let num = |t: &str, len: usize| -> Option<i64> {
        (t.len() == len && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (day, year) = (num(day, 2)?, num(year, 4)?);
    let hms: Vec<&str> = time.split(':').collect();
    let [h, m, sec] = hms[..] else { return None };
    let (h, m, sec) = (num(h, 2)?, num(m, 2)?, num(sec, 2)?);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from 1970-01-01 to year-month-day (proleptic Gregorian; Howard Hinnant's
    // days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// Whether a `Last-Modified` is safely older than the server's `Date` (or, without a
/// usable `Date`, than `checked`, our own clock when the answer came): the racy rule.
fn settled(modified: &str, date: Option<&str>, checked: i64) -> bool {
    let Some(modified) = http_date(modified) else {
        return false;
    };
    let now = date.and_then(http_date).unwrap_or(checked);
    now.saturating_sub(modified) >= RACY_WINDOW as i64
}

/// The validator state from response headers, or `None` when there is none usable: no
/// validator, or one that rests on a `Last-Modified` too recent to be trusted (then the
/// body is hashed instead). `checked` is the time of the answer, in Unix seconds.
fn validators<'a>(header: impl Fn(&str) -> Option<&'a str>, checked: i64) -> Option<String> {
    let get = |name: &str| header(name).map(str::trim).filter(|v| !v.is_empty());
    let etag = get("etag");
    let date = get("date");
    let modified = get("last-modified").filter(|m| settled(m, date, checked));
    let length = get("content-length").and_then(|l| l.parse::<u64>().ok());
    match etag {
        Some(e) if !e.starts_with("W/") => Some(format!("etag:{e}")),
        Some(weak) => modified.map(|m| match length {
            Some(n) => format!("etag:{weak};last-modified:{m};length:{n}"),
            None => format!("etag:{weak};last-modified:{m}"),
        }),
        None => match (modified, length) {
            (Some(m), Some(n)) => Some(format!("last-modified:{m};length:{n}")),
            _ => None,
        },
    }
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
    probe.phase(Some(body_start + opts.timeout));
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
            probe.phase(Some(body_start + allowed));
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

/// Splits a state into its `key:value` fields (`etag`, `last-modified`, `length`,
/// `body`, `blake3`). Values may contain ':' and ';' (ETags), so a ';' only starts a new
/// field outside quotes and when a known key follows.
fn fields(state: &str) -> Vec<(&str, &str)> {
    const KEYS: [&str; 5] = ["etag:", "last-modified:", "length:", "body:", "blake3:"];
    let mut starts = vec![0];
    let mut quoted = false;
    for (i, c) in state.char_indices() {
        match c {
            // An ETag is a quoted string that cannot itself contain '"'.
            '"' => quoted = !quoted,
            ';' if !quoted && KEYS.iter().any(|k| state[i + 1..].starts_with(k)) => {
                starts.push(i + 1)
            }
            _ => {}
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(n, &s)| {
            let end = starts.get(n + 1).map_or(state.len(), |&e| e - 1);
            let part = &state[s..end];
            part.split_once(':').unwrap_or((part, ""))
        })
        .collect()
}

fn show_value(key: &str, value: &str) -> String {
    match key {
        // Hashes are long: 16 hex digits identify a change well enough for a human.
        "body" | "blake3" => {
            let hex = value.strip_prefix("blake3:").unwrap_or(value);
            format!("{}…", hex.get(..16).unwrap_or(hex))
        }
        _ => value.to_string(),
    }
}

/// How a URL's state changed, for `-v` and `explain`: `etag "abc" → "def"`, or both
/// whole states when the kind of validator changed.
pub fn describe_change(old: &str, new: &str) -> String {
    let (o, n) = (fields(old), fields(new));
    let same_keys = o.len() == n.len() && o.iter().zip(&n).all(|(a, b)| a.0 == b.0);
    if same_keys {
        let parts: Vec<String> = o
            .iter()
            .zip(&n)
            .filter(|(a, b)| a.1 != b.1)
            .map(|(a, b)| {
                format!(
                    "{} {} → {}",
                    a.0,
                    show_value(a.0, a.1),
                    show_value(b.0, b.1)
                )
            })
            .collect();
        if !parts.is_empty() {
            return parts.join(", ");
        }
    }
    let whole = |f: &[(&str, &str)]| {
        f.iter()
            .map(|(k, v)| format!("{k} {}", show_value(k, v)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("{} → {}", whole(&o), whole(&n))
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

    fn v(h: &[(&'static str, &'static str)]) -> Option<String> {
        let now = unix_secs(SystemTime::now());
        validators(
            |name| h.iter().find(|(k, _)| *k == name).map(|(_, v)| *v),
            now,
        )
    }

    #[test]
    fn http_dates_parse() {
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1_835_481_599)
        );
        for bad in [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "",
        ] {
            assert_eq!(http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_last_modified_too_close_to_the_date_is_not_a_validator() {
        let lm = "Sun, 06 Nov 1994 08:49:37 GMT";
        let h = |date: &'static str| {
            vec![
                ("last-modified", lm),
                ("content-length", "3"),
                ("date", date),
            ]
        };
        let at = |hs: Vec<(&'static str, &'static str)>, now: i64| {
            validators(|n| hs.iter().find(|(k, _)| *k == n).map(|(_, v)| *v), now)
        };
        let now = unix_secs(SystemTime::now());
        // Same second, one second later: racy. Two seconds later: settled.
        assert_eq!(at(h(lm), now), None);
        assert_eq!(at(h("Sun, 06 Nov 1994 08:49:38 GMT"), now), None);
        assert!(at(h("Sun, 06 Nov 1994 08:49:39 GMT"), now).is_some());
        // No Date: our clock decides.
        let plain = vec![("last-modified", lm), ("content-length", "3")];
        assert_eq!(at(plain.clone(), 784_111_778), None);
        assert!(at(plain.clone(), 784_111_779).is_some());
        // An unparseable Last-Modified is never trusted; a strong ETag needs no date.
        let odd = vec![("last-modified", "yesterday"), ("content-length", "3")];
        assert_eq!(at(odd, now), None);
        let strong = vec![("etag", "\"x\""), ("last-modified", lm), ("date", lm)];
        assert_eq!(at(strong, now).as_deref(), Some("etag:\"x\""));
    }

    #[test]
    fn validator_rules() {
        assert_eq!(
            v(&[("etag", "\"abc\""), ("content-length", "3")]).as_deref(),
            Some("etag:\"abc\"")
        );
        let lm = "Tue, 15 Nov 1994 12:45:26 GMT";
        assert_eq!(
            v(&[("last-modified", lm), ("content-length", "3")]).as_deref(),
            Some("last-modified:Tue, 15 Nov 1994 12:45:26 GMT;length:3")
        );
        // Last-Modified alone or a weak ETag alone is not enough.
        assert_eq!(v(&[("last-modified", lm)]), None);
        assert_eq!(v(&[("etag", "W/\"abc\""), ("content-length", "3")]), None);
        assert_eq!(
            v(&[("etag", "W/\"abc\""), ("last-modified", lm)]).as_deref(),
            Some("etag:W/\"abc\";last-modified:Tue, 15 Nov 1994 12:45:26 GMT")
        );
        assert_eq!(v(&[]), None);
    }

    #[test]
    fn changes_read_well() {
        assert_eq!(
            describe_change("etag:\"abc\"", "etag:\"def\""),
            "etag \"abc\" → \"def\""
        );
        assert_eq!(
            describe_change("last-modified:A;length:3", "last-modified:A;length:4"),
            "length 3 → 4"
        );
        assert_eq!(
            describe_change("etag:\"a;length:1\"", "etag:\"b;length:1\""),
            "etag \"a;length:1\" → \"b;length:1\""
        );
        let h1 = format!("body:blake3:{}", "a".repeat(64));
        let h2 = format!("body:blake3:{}", "b".repeat(64));
        assert_eq!(
            describe_change(&h1, &h2),
            format!("body {}… → {}…", "a".repeat(16), "b".repeat(16))
        );
        assert_eq!(
            describe_change("etag:\"abc\"", &h2),
            format!("etag \"abc\" → body {}…", "b".repeat(16))
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
