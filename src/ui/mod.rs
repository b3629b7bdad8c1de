//! What idem says to a person, in one place: warnings and notes on stderr, durations,
//! sizes and ages in one format, URLs with their secrets masked, progress bars. It
//! never decides anything; it only words and draws what it is given.

pub mod progress;
pub mod units;

use std::fmt::Display;

/// A problem idem routed around (cache fault, unreadable input): the command's result
/// is unchanged. One line on stderr.
pub fn warn(msg: impl Display) {
    line(format_args!("idem: warning: {msg}\n"));
}

/// A line idem prints on its own behalf (`-v` notes, refusals): `idem: <msg>`.
pub fn note(msg: impl Display) {
    line(format_args!("idem: {msg}\n"));
}

/// One line in one `write`: `eprintln!` writes each piece of its format separately on
/// the unbuffered stderr, so two idem processes sharing a terminal or pipe (`make -j`)
/// interleaved mid-line (`idem: idem: hit (…)hit (…)`). A pipe write of up to 4 KiB is
/// atomic.
fn line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let text = std::fmt::format(args);
    // Nowhere to report a failed write to stderr.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `s` with every control character (C0, DEL, C1) written as a visible escape, so a
/// recorded argv, path, hostname or server-sent text can never move the cursor, retitle
/// the terminal (`\e]0;…\a`) or fake a line of output. The one place this is decided:
/// every human-readable line that shows recorded or remote text goes through it.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            c if c.is_control() => out.push_str(&format!("\\x{{{:02x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A URL as it may be printed: a password becomes `***` and query values are masked
/// (signed URLs carry tokens there); the fragment is dropped. Works on URLs the `url`
/// crate cannot parse too (a Redis Cluster's `h1,h2` host list).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.split(['?', '#']).next().unwrap_or("").to_string();
    };
    let rest = rest.split('#').next().unwrap_or("");
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(q) = query {
        let masked: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}=***"),
                None => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&masked.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_masks_passwords_and_query_values() {
        assert_eq!(
            redact("https://me:hunter2@example.com/x?sig=abc&v"),
            "https://me:***@example.com/x?sig=***&v"
        );
        assert_eq!(
            redact("redis+cluster://:hunter2@h1:1,h2:2/0"),
            "redis+cluster://:***@h1:1,h2:2/0"
        );
        assert_eq!(redact("http://host/p#frag"), "http://host/p");
        assert_eq!(redact("http://bob@host/"), "http://bob@host/");
    }
}
