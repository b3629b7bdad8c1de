//! Progress on stderr: spinners and counting bars that appear only after 300 ms of work,
//! only on a terminal (or with --progress=always, as plain lines a second in a log).
//! Never on stdout, and free when progress is off.

use std::io::IsTerminal;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// When to draw progress (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// On a terminal, outside CI.
    #[default]
    Auto,
    Always,
    Never,
}

/// Progress appears only once the work has taken this long.
pub const DELAY: Duration = Duration::from_millis(300);

pub fn enabled(mode: Mode) -> bool {
    match mode {
        Mode::Always => true,
        Mode::Never => false,
        Mode::Auto => stderr_is_terminal() && std::env::var_os("CI").is_none(),
    }
}

/// Asked once per process (an ioctl each time otherwise; a hit asks three times).
fn stderr_is_terminal() -> bool {
    static IS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IS.get_or_init(|| std::io::stderr().is_terminal())
}

/// Where bars draw: the terminal, or (only with `--progress=always` when stderr is not
/// one) plain lines, one a second, so CI logs get a readable trace and no cursor codes.
fn draw_target() -> ProgressDrawTarget {
    if stderr_is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::term_like_with_hz(Box::new(LogLines), 1)
    }
}

/// A "terminal" that appends each drawn state to stderr as a line.
#[derive(Debug)]
struct LogLines;

impl indicatif::TermLike for LogLines {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        use std::io::Write;
        if s.trim().is_empty() {
            return Ok(());
        }
        writeln!(std::io::stderr().lock(), "{s}")
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.write_line(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        use std::io::Write;
        std::io::stderr().flush()
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Runs `f`; if it takes longer than [`DELAY`] and progress is enabled, a spinner shows
/// `what` followed by `status()` (refreshed on every tick) until it returns.
pub fn during<T>(
    mode: Mode,
    what: &str,
    status: &(dyn Fn() -> String + Sync),
    f: impl FnOnce() -> T,
) -> T {
    if !enabled(mode) {
        return f();
    }
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            if rx.recv_timeout(DELAY) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            let bar = ProgressBar::with_draw_target(None, draw_target());
            bar.set_style(style("{spinner} idem: {msg} ({elapsed})"));
            // Animate on a terminal; one line a second in a log.
            let tick = if stderr_is_terminal() {
                Duration::from_millis(120)
            } else {
                Duration::from_secs(1)
            };
            loop {
                bar.set_message(format!("{what}{}", status()));
                bar.tick();
                match rx.recv_timeout(tick) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
            bar.finish_and_clear();
        });
        let out = f();
        drop(tx);
        out
    })
}

/// The spinner of a running command ([`during_quiet`]), while it is shown.
static QUIET: std::sync::Mutex<Option<ProgressBar>> = std::sync::Mutex::new(None);
/// The command has written something: no spinner again in this process.
static RETIRED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// [`during`] for a command whose output goes to the same terminal: the spinner only
/// shows while the command is quiet, and [`retire_quiet`] (called before the command's
/// first byte is written) clears it for good, so it never draws over the command's
/// output. `f` runs on the calling thread.
pub fn during_quiet<T>(
    mode: Mode,
    what: &str,
    status: &(dyn Fn() -> String + Sync),
    f: impl FnOnce() -> T,
) -> T {
    if !enabled(mode) {
        return f();
    }
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            if rx.recv_timeout(DELAY) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            let tick = if std::io::stderr().is_terminal() {
                Duration::from_millis(120)
            } else {
                Duration::from_secs(1)
            };
            {
                let mut q = QUIET.lock().unwrap_or_else(|p| p.into_inner());
                if RETIRED.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let bar = ProgressBar::with_draw_target(None, draw_target());
                bar.set_style(style("{spinner} idem: {msg} ({elapsed})"));
                *q = Some(bar);
            }
            loop {
                {
                    let q = QUIET.lock().unwrap_or_else(|p| p.into_inner());
                    let Some(bar) = q.as_ref() else { return };
                    bar.set_message(format!("{what}{}", status()));
                    bar.tick();
                }
                match rx.recv_timeout(tick) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
            let bar = QUIET.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        });
        let out = f();
        drop(tx);
        out
    })
}

/// Clears the [`during_quiet`] spinner for good; cheap after the first call.
pub fn retire_quiet() {
    if RETIRED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let bar = QUIET.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// A spinner shown at once (waiting for another process), or `None` when progress is off.
pub fn spinner(mode: Mode) -> Option<ProgressBar> {
    if !enabled(mode) {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, draw_target());
    bar.set_style(style("{spinner} idem: {msg}"));
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// A byte-counting bar inside `multi` (several transfers at once): hidden until added,
/// so it never draws a stray line of its own.
pub fn bytes_bar_in(multi: &MultiProgress, total: Option<u64>, what: &str) -> ProgressBar {
    let bar = multi.add(ProgressBar::with_draw_target(
        total,
        ProgressDrawTarget::hidden(),
    ));
    bar.set_style(style(if total.is_some() {
        "idem: {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}"
    } else {
        "{spinner} idem: {msg} {bytes} {bytes_per_sec}"
    }));
    bar.set_message(what.to_string());
    bar
}

/// What a [`Delayed`] bar counts.
#[derive(Clone, Copy)]
pub enum Unit {
    Items,
    Bytes,
}

/// A counting bar that stays hidden until the work has taken longer than [`DELAY`].
pub struct Delayed {
    bar: Option<ProgressBar>,
    start: Instant,
    shown: bool,
}

impl Delayed {
    pub fn new(mode: Mode, total: u64, unit: Unit, what: &str) -> Self {
        let bar = enabled(mode).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
            bar.set_style(style(match unit {
                Unit::Items => "idem: {msg} [{bar:30}] {pos}/{len} {eta}",
                Unit::Bytes => "idem: {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            }));
            bar.set_message(what.to_string());
            bar
        });
        Self {
            bar,
            start: Instant::now(),
            shown: false,
        }
    }

    /// `n` more items (or bytes) done.
    pub fn inc(&mut self, n: u64) {
        let Some(bar) = &self.bar else {
            return;
        };
        bar.inc(n);
        if !self.shown && self.start.elapsed() >= DELAY {
            bar.set_draw_target(draw_target());
            self.shown = true;
        }
    }

    pub fn set_message(&self, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg.to_string());
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
