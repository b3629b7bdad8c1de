//! URL dependencies: the current state of a remote resource (strong ETag, else
//! Last-Modified + Content-Length, else a streamed body hash). Header values are never
//! stored or printed; an unknown state is reported as unknown, never guessed.

use std::time::Duration;

use anyhow::Result;

use super::DepState;

#[derive(Debug, Clone, Default)]
pub struct UrlOptions {
    /// (name, value) pairs from --url-header and IDEM_URL_HEADER_<n>.
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub progress: bool,
}

/// One URL to check; `content` forces a body hash.
#[derive(Debug, Clone)]
pub struct UrlSpec {
    pub url: String,
    pub content: bool,
}

pub enum UrlOutcome {
    Known(DepState),
    Unknown { url: String, reason: String },
}

/// Parse-time check: scheme http, https or file, and a well-formed URL.
pub fn validate(url: &str) -> Result<()> {
    let _ = url;
    anyhow::bail!("URL dependencies are not supported yet")
}

/// Parses `Name: value`.
pub fn parse_header(h: &str) -> Result<(String, String)> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("invalid header (expected 'Name: value')"))?;
    Ok((name.trim().to_string(), value.trim().to_string()))
}

/// Checks all URLs concurrently.
pub fn check_all(specs: &[UrlSpec], opts: &UrlOptions) -> Vec<UrlOutcome> {
    let _ = opts;
    specs
        .iter()
        .map(|s| UrlOutcome::Unknown {
            url: s.url.clone(),
            reason: "not supported".into(),
        })
        .collect()
}
