//! Progress bars and spinners on stderr: only on a terminal (or --progress=always),
//! never on stdout, never in pipes or CI logs by default.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::Progress;

pub fn enabled(mode: Progress) -> bool {
    match mode {
        Progress::Always => true,
        Progress::Never => false,
        Progress::Auto => std::io::stderr().is_terminal() && std::env::var_os("CI").is_none(),
    }
}

/// A spinner drawn on stderr, or `None` when progress is off.
pub fn spinner(mode: Progress) -> Option<ProgressBar> {
    if !enabled(mode) {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} idem: {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// A byte-counting bar for long transfers or hashing.
pub fn bytes_bar(mode: Progress, total: Option<u64>, what: &str) -> Option<ProgressBar> {
    if !enabled(mode) {
        return None;
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    Some(style_bytes(bar, total, what))
}

/// The same bar inside `multi` (several transfers at once): hidden until added, so it
/// never draws a stray line of its own.
pub fn bytes_bar_in(multi: &MultiProgress, total: Option<u64>, what: &str) -> ProgressBar {
    let bar = multi.add(ProgressBar::with_draw_target(
        total,
        ProgressDrawTarget::hidden(),
    ));
    style_bytes(bar, total, what)
}

fn style_bytes(bar: ProgressBar, total: Option<u64>, what: &str) -> ProgressBar {
    let template = if total.is_some() {
        "idem: {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}"
    } else {
        "{spinner} idem: {msg} {bytes} {bytes_per_sec}"
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}

/// Runs `f`; if it takes longer than 300 ms and progress is enabled, a spinner on
/// stderr shows `what` and `status()` (refreshed on every tick) until it returns.
/// Costs nothing when progress is off (pipes, CI).
pub fn during<T>(
    mode: Progress,
    what: &str,
    status: &(dyn Fn() -> String + Sync),
    f: impl FnOnce() -> T,
) -> T {
    if !enabled(mode) {
        return f();
    }
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            use std::sync::mpsc::RecvTimeoutError;
            if rx.recv_timeout(Duration::from_millis(300)) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} idem: {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            loop {
                bar.set_message(format!("{what}{}", status()));
                bar.tick();
                match rx.recv_timeout(Duration::from_millis(120)) {
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
