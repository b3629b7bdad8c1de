//! The hit log: a hit appends one line to `hits.log` instead of writing to SQLite, and
//! the lines are folded into the records and counters later. A bad line costs only
//! itself; the log is never opened through a symlink.

use anyhow::{Context, Result};
use rusqlite::{params, TransactionBehavior};

use super::sqlite::{add_stat, Db};
use super::Counter;

impl Db {
    /// Counts a replay: the record's hits and LRU time, and the global counters.
    ///
    /// A hit must not write to SQLite: a write transaction makes the closing process
    /// checkpoint and fsync, milliseconds on a path that should cost a stat per file.
    /// So hits are appended (one small O_APPEND write, atomic) to `hits.log`, folded
    /// into the database by [`Db::fold_hits`] later.
    pub fn note_hit(
        &mut self,
        id: i64,
        now_ns: i64,
        saved_ns: u64,
        counter: Counter,
    ) -> Result<()> {
        use std::io::Write;
        let line = format!("1 {id} {now_ns} {saved_ns} {}\n", counter.name());
        let log = self.hit_log();
        let (mut f, before) = super::private::open_rw_stat(&log, true)?;
        f.write_all(line.as_bytes())
            .with_context(|| format!("cannot append to {}", log.display()))?;
        let len = before.len() + line.len() as u64;
        if len > 1 << 20 {
            self.fold_hits(0)?;
        }
        Ok(())
    }

    /// Folds `hits.log` into the records and counters when it is larger than
    /// `min_len` bytes. The log is renamed first, so appends that race with the fold
    /// go to a fresh log.
    pub fn fold_hits(&mut self, min_len: u64) -> Result<()> {
        let log = self.hit_log();
        match std::fs::metadata(&log) {
            Ok(m) if m.len() > min_len => {}
            _ => return Ok(()),
        }
        let folding = log.with_file_name(format!("hits.log.{}.folding", std::process::id()));
        if std::fs::rename(&log, &folding).is_err() {
            return Ok(()); // another process is folding it
        }
        // Bytes, not a String: one line of garbage (a torn write, a stray binary) must
        // cost that line only, never every good count around it.
        let mut text = Vec::new();
        if let Ok(mut f) = super::private::open_read(&folding) {
            use std::io::Read;
            let _ = f.read_to_end(&mut text);
        }
        let tx = self
            .conn_mut()?
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for line in text.split(|&b| b == b'\n') {
            let Some(HitLine {
                id,
                now,
                saved,
                counter,
            }) = HitLine::parse(line)
            else {
                continue;
            };
            tx.execute(
                "UPDATE records SET hits=hits+1, last_used_ns=max(last_used_ns, ?2) WHERE id=?1",
                params![id, now],
            )?;
            add_stat(&tx, counter, 1)?;
            add_stat(&tx, Counter::SavedNs, saved)?;
        }
        tx.commit()?;
        let _ = std::fs::remove_file(&folding);
        Ok(())
    }
}

/// One line of `hits.log`: `1 <record id> <now ns> <saved ns> hits|remote_hits`.
#[derive(Debug, PartialEq)]
struct HitLine {
    id: i64,
    now: i64,
    saved: i64,
    counter: Counter,
}

impl HitLine {
    /// `None` for anything but a well-formed line with sane numbers.
    fn parse(line: &[u8]) -> Option<Self> {
        let line = std::str::from_utf8(line).ok()?;
        let fields: Vec<&str> = line.split(' ').collect();
        let [version, id, now, saved, counter] = fields[..] else {
            return None;
        };
        let counter = Counter::hit_from_name(counter)?;
        let id: i64 = id.parse().ok()?;
        let now: i64 = now.parse().ok()?;
        let saved: i64 = saved.parse().ok()?;
        (version == "1" && id > 0 && now >= 0 && saved >= 0).then_some(HitLine {
            id,
            now,
            saved,
            counter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_lines_parse_strictly() {
        assert_eq!(
            HitLine::parse(b"1 7 100 5 hits"),
            Some(HitLine {
                id: 7,
                now: 100,
                saved: 5,
                counter: Counter::Hits
            })
        );
        assert!(HitLine::parse(b"1 7 100 5 remote_hits").is_some());
        for bad in [
            &b"2 7 100 5 hits"[..],
            b"1 7 100 5 hits ",
            b"1 7 100 5",
            b"1 x 100 5 hits",
            b"1 -7 100 5 hits",
            b"1 7 100 -5 hits",
            b"1 7 100 5 misses",
            b"\xff\xfe 7 100 5 hits",
            b"",
        ] {
            assert_eq!(
                HitLine::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
