//! Time, with an override for tests: `IDEM_NOW` (seconds since the epoch) replaces the
//! clock used for record ages and TTLs. It never affects stat-cache racy checks, which
//! must compare against the real clock the filesystem uses.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn real_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Now, for record ages: `IDEM_NOW` when set (tests), else the real clock.
pub fn now_ns() -> i64 {
    match std::env::var("IDEM_NOW")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        Some(secs) => (secs * 1e9) as i64,
        None => real_now_ns(),
    }
}
