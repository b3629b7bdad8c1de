//! `idem show ID`: one record whole (dependencies with their states, outputs, stream
//! sizes), or its recorded stdout/stderr bytes with `--stdout`/`--stderr`. An
//! environment variable's state is shown only as `set`/`unset`, never its value or hash.

use std::io::Write;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::cli::ShowArgs;
use crate::commands::ui::{self, Style};
use crate::deps::{DepState, Kind};
use crate::encode::hex;
use crate::store::record::{OutputEntry, Record, STDERR, STDOUT};
use crate::store::{self, Cache};

/// A dependency's state, safe to print: env values become `set`/`unset`.
pub fn printable_state(d: &DepState) -> String {
    if d.kind == Kind::Env {
        return if d.state == b"unset" {
            "unset".into()
        } else {
            "set".into()
        };
    }
    String::from_utf8_lossy(&d.state).into_owned()
}

/// For humans: long content hashes cut to 16 hex digits.
fn short_state(s: &str) -> String {
    match s.strip_prefix("blake3:") {
        Some(h) if h.len() > 16 => {
            let exec = if h.ends_with("+x") { " +x" } else { "" };
            format!("blake3:{}…{exec}", &h[..16])
        }
        _ => s.to_string(),
    }
}

fn output_json(o: &OutputEntry) -> Value {
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match o {
        OutputEntry::File { path, mode, blob } => json!({
            "type": "file", "path": lossy(path), "mode": format!("{mode:o}"),
            "size": blob.size, "hash": hex(&blob.hash),
        }),
        OutputEntry::Symlink { path, target } => {
            json!({"type": "symlink", "path": lossy(path), "target": lossy(target)})
        }
        OutputEntry::Dir { path, mode } => {
            json!({"type": "dir", "path": lossy(path), "mode": format!("{mode:o}")})
        }
        OutputEntry::Absent { spec } => json!({"type": "absent", "spec": lossy(spec)}),
    }
}

/// Entry point of `idem show`.
pub fn run(args: &ShowArgs) -> Result<i32> {
    let dir = store::cache_dir(args.cache.cache_dir.as_deref())?;
    let cache = Cache::open(&dir).context("cannot open the cache")?;
    let Some(rec) = cache.db.record_by_id(args.id)? else {
        return Err(crate::exit::usage(format!(
            "no record {} in {} (see idem list)",
            args.id,
            dir.display()
        )));
    };
    if args.stdout || args.stderr {
        let blob = if args.stdout { rec.stdout } else { rec.stderr };
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        crate::engine::replay::copy_stream(&cache.blobs, &blob, &mut lock)?;
        lock.flush().context("cannot write the recorded bytes")?;
        return Ok(0);
    }
    let row = cache
        .db
        .record_row(args.id)?
        .context("the record vanished while it was read (a concurrent gc?)")?;
    let now = crate::clock::now_ns();
    let chunks = |s: u8| rec.chunks.iter().filter(|(id, _)| *id == s).count();
    if args.json {
        let out = json!({
            "id": args.id,
            "task": rec.task,
            "command": rec.display_argv(),
            "argv": rec.argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>(),
            "cwd": String::from_utf8_lossy(&rec.cwd),
            "task_key": hex(&rec.task_key),
            "state_key": hex(&rec.state_key),
            "exec_key": rec.exec_key,
            "created_ns": rec.created_ns,
            "last_used_ns": row.last_used_ns,
            "hits": row.hits,
            "exit_code": rec.exit_code,
            "duration_ns": rec.duration_ns,
            "host": rec.host,
            "idem_version": rec.version,
            "size": row.size,
            "stdout": {"size": rec.stdout.size, "hash": hex(&rec.stdout.hash), "chunks": chunks(STDOUT)},
            "stderr": {"size": rec.stderr.size, "hash": hex(&rec.stderr.hash), "chunks": chunks(STDERR)},
            "dependencies": rec.deps.iter().map(|d| json!({
                "kind": d.kind.label(),
                "traced": d.kind.is_traced(),
                "name": ui::dep_name(d.kind, &d.name),
                "state": printable_state(d),
            })).collect::<Vec<_>>(),
            "outputs": rec.outputs.iter().map(output_json).collect::<Vec<_>>(),
            "traced_entries": rec.deps.iter().filter(|d| d.kind.is_traced()).count(),
            "side_effects": rec.side_effects.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    print!("{}", human(args.id, &rec, &row, now, ui::color()));
    Ok(0)
}

fn human(
    id: i64,
    rec: &Record,
    row: &crate::store::sqlite::RecordRow,
    now: i64,
    color: bool,
) -> String {
    let mut t = ui::Table::new(vec![false, false]);
    let mut kv = |k: &str, v: String| t.row(vec![(k.to_string(), Style::Bold), (v, Style::Plain)]);
    kv("record", id.to_string());
    if let Some(task) = &rec.task {
        kv("task", task.clone());
    }
    kv("command", rec.display_argv());
    kv("directory", String::from_utf8_lossy(&rec.cwd).into_owned());
    if let Some(k) = &rec.exec_key {
        kv("key", k.clone());
    }
    kv(
        "created",
        format!(
            "{} ({} ago) on {} by idem {}",
            ui::utc(rec.created_ns),
            crate::ui::units::duration_ns(now.saturating_sub(rec.created_ns)),
            rec.host,
            rec.version
        ),
    );
    kv(
        "last used",
        format!(
            "{} ago, {} hit(s)",
            crate::ui::units::duration_ns(now.saturating_sub(row.last_used_ns)),
            row.hits
        ),
    );
    kv("exit code", rec.exit_code.to_string());
    kv(
        "duration",
        crate::ui::units::duration_ns(rec.duration_ns as i64),
    );
    kv(
        "stdout",
        format!(
            "{} in {} chunk(s)",
            crate::ui::units::size(rec.stdout.size),
            rec.chunks.iter().filter(|c| c.0 == STDOUT).count()
        ),
    );
    kv(
        "stderr",
        format!(
            "{} in {} chunk(s)",
            crate::ui::units::size(rec.stderr.size),
            rec.chunks.iter().filter(|c| c.0 == STDERR).count()
        ),
    );
    kv("size", crate::ui::units::size(row.size.max(0) as u64));
    kv("task key", hex(&rec.task_key));
    kv("state key", hex(&rec.state_key));
    let mut out = t.render(color);
    out.push_str(&format!(
        "\n{}\n",
        ui::paint(
            color,
            Style::Bold,
            &format!("dependencies ({})", rec.deps.len())
        )
    ));
    let traced: Vec<&DepState> = rec.deps.iter().filter(|d| d.kind.is_traced()).collect();
    if !traced.is_empty() {
        out.push_str(&format!(
            "  {} declared, {} traced: {}\n",
            rec.deps.len() - traced.len(),
            traced.len(),
            by_kind(&traced)
        ));
    }
    // Declared first, then traced entries grouped by kind.
    let mut sorted: Vec<&DepState> = rec.deps.iter().collect();
    sorted.sort_by_key(|d| (d.kind.is_traced(), d.kind, &d.name));
    let mut deps = ui::Table::new(vec![false, false, false]);
    for d in sorted {
        deps.row(vec![
            (format!("  {}", d.kind.label()), Style::Plain),
            (ui::dep_name(d.kind, &d.name), Style::Plain),
            (short_state(&printable_state(d)), Style::Dim),
        ]);
    }
    out.push_str(&deps.render(color));
    out.push_str(&format!(
        "\n{}\n",
        ui::paint(
            color,
            Style::Bold,
            &format!("outputs ({})", rec.outputs.len())
        )
    ));
    let mut outs = ui::Table::new(vec![false, false, false, true]);
    for o in &rec.outputs {
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let row = match o {
            OutputEntry::File { path, mode, blob } => [
                "file".into(),
                lossy(path),
                format!("{mode:o}"),
                crate::ui::units::size(blob.size),
            ],
            OutputEntry::Symlink { path, target } => [
                "symlink".into(),
                lossy(path),
                String::new(),
                format!("→ {}", lossy(target)),
            ],
            OutputEntry::Dir { path, mode } => [
                "dir".into(),
                lossy(path),
                format!("{mode:o}"),
                String::new(),
            ],
            OutputEntry::Absent { spec } => {
                ["absent".into(), lossy(spec), String::new(), String::new()]
            }
        };
        let [a, b, c, d] = row;
        outs.row(vec![
            (format!("  {a}"), Style::Plain),
            (b, Style::Plain),
            (c, Style::Dim),
            (d, Style::Plain),
        ]);
    }
    out.push_str(&outs.render(color));
    if !rec.side_effects.is_empty() {
        out.push_str(&format!(
            "\n{}\n",
            ui::paint(
                color,
                Style::Bold,
                &format!(
                    "side effects ({}): written outside the workspace, never restored",
                    rec.side_effects.len()
                )
            )
        ));
        for p in &rec.side_effects {
            out.push_str(&format!(
                "  {}\n",
                crate::ui::escape_controls(&String::from_utf8_lossy(p))
            ));
        }
    }
    out
}

/// "20 file, 36 absent, 5 program": traced entries counted by kind.
fn by_kind(traced: &[&DepState]) -> String {
    let mut counts: std::collections::BTreeMap<Kind, usize> = Default::default();
    for d in traced {
        *counts.entry(d.kind).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n} {}", k.label()))
        .collect::<Vec<_>>()
        .join(", ")
}
