//! Why a URL check gave no state, in words a user can act on (refused, timed out, TLS,
//! DNS), and whether it looks like an outage. It must never print a header value.

use std::time::Duration;

use super::{timed_out, unknown, UrlOutcome};

/// Why a request gave no state.
pub(super) enum Failure {
    Status(u16, String),
    Transport(Box<ureq::Transport>),
    Io(std::io::Error),
    Other(String),
}

impl Failure {
    pub(super) fn into_outcome(self, url: &str, timeout: Duration) -> UrlOutcome {
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
