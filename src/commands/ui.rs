//! Shared presentation for the cache commands: aligned columns, ANSI colour (only on a
//! terminal, never with NO_COLOR), dependency names and dates for tables.
//! It never decides anything about the cache; it only formats what it is given.

use std::io::IsTerminal;

pub use crate::ui::escape_controls;

/// Colour on stdout: a terminal, and NO_COLOR unset or empty (https://no-color.org).
pub fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[derive(Clone, Copy)]
pub enum Style {
    Plain,
    Bold,
    Dim,
    Red,
    Green,
    Yellow,
}

/// Wraps `s` in the style's ANSI codes when `on`.
pub fn paint(on: bool, style: Style, s: &str) -> String {
    let code = match style {
        Style::Plain => return s.to_string(),
        Style::Bold => "1",
        Style::Dim => "2",
        Style::Red => "31",
        Style::Green => "32",
        Style::Yellow => "33",
    };
    if on {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// The terminal's width when stdout is one (`COLUMNS` wins), else `None`: pipes get
/// whole lines.
pub fn terminal_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    if let Some(c) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return Some(c.max(20));
    }
    // SAFETY: TIOCGWINSZ fills a winsize struct we own; fd 1 is open.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some(ws.ws_col as usize)
}

/// Cuts `s` to `width` characters, ending with `…` when cut.
pub fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Column alignment for human tables: `right[i]` right-aligns column i. The last
/// column is never padded. Styles are applied after padding, so codes never skew widths.
pub struct Table {
    pub rows: Vec<Vec<(String, Style)>>,
    pub right: Vec<bool>,
}

impl Table {
    pub fn new(right: Vec<bool>) -> Self {
        Self {
            rows: Vec::new(),
            right,
        }
    }

    pub fn row(&mut self, cells: Vec<(String, Style)>) {
        self.rows.push(cells);
    }

    pub fn render(&self, color: bool) -> String {
        let ncol = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let rows: Vec<Vec<(String, Style)>> = self
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|(c, s)| (escape_controls(c).into_owned(), *s))
                    .collect()
            })
            .collect();
        let mut widths = vec![0usize; ncol];
        for r in &rows {
            for (i, (c, _)) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in &rows {
            let mut line = String::new();
            for (i, (c, style)) in r.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths[i] - c.chars().count();
                let last = i + 1 == r.len();
                let right = self.right.get(i).copied().unwrap_or(false);
                if right {
                    line.push_str(&" ".repeat(pad));
                }
                line.push_str(&paint(color, *style, c));
                if !right && !last {
                    line.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A dependency's name for output: URL passwords are masked (`user:***@host`).
pub fn dep_name(kind: crate::deps::Kind, name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    if kind == crate::deps::Kind::Url {
        escape_controls(&crate::ui::redact(&s)).into_owned()
    } else {
        escape_controls(&s).into_owned()
    }
}

/// `2026-11-29 18:57:05Z` from nanoseconds since the epoch (UTC, proleptic Gregorian).
pub fn utc(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_without_counting_colour() {
        let mut t = Table::new(vec![true, false, false]);
        t.row(vec![
            ("1".into(), Style::Plain),
            ("a".into(), Style::Red),
            ("x".into(), Style::Plain),
        ]);
        t.row(vec![
            ("100".into(), Style::Plain),
            ("bbb".into(), Style::Plain),
            ("y".into(), Style::Plain),
        ]);
        assert_eq!(t.render(false), "  1  a    x\n100  bbb  y\n");
        assert!(t.render(true).contains("\x1b[31ma\x1b[0m    x"));
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }

    #[test]
    fn url_passwords_are_masked() {
        use crate::deps::Kind;
        let n = dep_name(Kind::Url, b"https://me:hunter2@example.com/x");
        assert!(!n.contains("hunter2") && n.contains("me:***@"), "{n}");
        assert_eq!(dep_name(Kind::File, b"src/a.c"), "src/a.c");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("plain é"), "plain é");
        assert_eq!(
            escape_controls("a\x1b]0;pwned\x07b\nc\td\u{9b}e\x7f"),
            "a\\e]0;pwned\\x{07}b\\nc\\td\\x{9b}e\\x{7f}"
        );
        let mut t = Table::new(vec![false, false]);
        t.row(vec![
            ("\x1bx".into(), Style::Plain),
            ("y".into(), Style::Plain),
        ]);
        t.row(vec![
            ("abcd".into(), Style::Plain),
            ("z".into(), Style::Plain),
        ]);
        assert_eq!(t.render(false), "\\ex   y\nabcd  z\n");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(1_796_000_225 * 1_000_000_000), "2026-11-30 00:57:05Z");
    }
}
