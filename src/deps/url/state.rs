//! A URL's state from response headers (strong ETag, else a settled Last-Modified with
//! its length) and how two states differ, for messages. It must never trust a
//! Last-Modified that a change in the same second could repeat.

use std::time::SystemTime;

/// A `Last-Modified` this close to the server's `Date` (or to our clock when there is no
/// `Date`) is not trusted: HTTP dates have one-second resolution and file timestamps
/// lag the wall clock a little, so a change made a moment later can carry the very same
/// date. One second of resolution plus one of margin.
const RACY_WINDOW: u64 = 2;

pub(super) fn unix_secs(t: SystemTime) -> i64 {
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
pub(super) fn validators<'a>(
    header: impl Fn(&str) -> Option<&'a str>,
    checked: i64,
) -> Option<String> {
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
}
