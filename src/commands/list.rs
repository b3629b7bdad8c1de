//! `idem list` (alias `log`): recent records, one aligned line each, newest first, with
//! `--cmd` / `--since` filters and `--json`. It never prints dependency states.

use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::ListArgs;
use crate::commands::ui::{self, Style};
use crate::store::sqlite::{RecordFilter, RecordRow};
use crate::store::{self, Cache};

/// The records matching the filters, newest first.
pub fn rows(cache: &Cache, args: &ListArgs, now: i64) -> Result<Vec<RecordRow>> {
    cache.db.record_rows(&RecordFilter {
        argv_contains: args.cmd.clone(),
        created_since_ns: args
            .since
            .map(|since| now.saturating_sub(since.as_nanos().min(i64::MAX as u128) as i64)),
        limit: args.limit as i64,
    })
}

/// Entry point of `idem list`.
pub fn run(args: &ListArgs) -> Result<i32> {
    let dir = store::cache_dir(args.cache.cache_dir.as_deref())?;
    let cache = Cache::open(&dir).context("cannot open the cache")?;
    let now = crate::clock::now_ns();
    let rows = rows(&cache, args, now)?;
    let tasks: Vec<Option<String>> = rows
        .iter()
        .map(|r| cache.db.task_of(r.id))
        .collect::<Result<_>>()?;
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .zip(&tasks)
            .map(|(r, task)| {
                json!({
                    "id": r.id,
                    "created_ns": r.created_ns,
                    "last_used_ns": r.last_used_ns,
                    "age_s": now.saturating_sub(r.created_ns).max(0) as f64 / 1e9,
                    "duration_ns": r.duration_ns,
                    "exit_code": r.exit_code,
                    "hits": r.hits,
                    "size": r.size,
                    "task": task,
                    "command": r.argv,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "records": list }))?
        );
        return Ok(0);
    }
    if rows.is_empty() {
        crate::ui::note("no records");
        return Ok(0);
    }
    let color = ui::color();
    let header = ["ID", "AGE", "DURATION", "EXIT", "HITS", "SIZE"];
    let mut cells: Vec<Vec<(String, Style)>> = vec![header
        .iter()
        .map(|h| (h.to_string(), Style::Bold))
        .collect()];
    for r in &rows {
        cells.push(vec![
            (r.id.to_string(), Style::Plain),
            (
                crate::ui::units::duration_ns(now.saturating_sub(r.created_ns)),
                Style::Plain,
            ),
            (crate::ui::units::duration_ns(r.duration_ns), Style::Plain),
            (
                r.exit_code.to_string(),
                if r.exit_code == 0 {
                    Style::Plain
                } else {
                    Style::Red
                },
            ),
            (r.hits.to_string(), Style::Plain),
            (crate::ui::units::size(r.size.max(0) as u64), Style::Plain),
        ]);
    }
    // Width left for the command once the aligned columns are laid out.
    let fixed: usize = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].0.chars().count())
                .max()
                .unwrap_or(0)
                + 2
        })
        .sum();
    let width = ui::terminal_width().map(|w| w.saturating_sub(fixed).max(10));
    let mut t = ui::Table::new(vec![true, true, true, true, true, true, false]);
    for (i, mut row) in cells.into_iter().enumerate() {
        let cmd = if i == 0 {
            "COMMAND".to_string()
        } else {
            match &tasks[i - 1] {
                Some(task) => format!("[{task}] {}", rows[i - 1].argv),
                None => rows[i - 1].argv.clone(),
            }
        };
        let cmd = match width {
            Some(w) => ui::truncate(&cmd, w),
            None => cmd,
        };
        row.push((cmd, if i == 0 { Style::Bold } else { Style::Plain }));
        t.row(row);
    }
    print!("{}", t.render(color));
    Ok(0)
}
