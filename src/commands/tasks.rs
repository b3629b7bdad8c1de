//! `idem tasks`: the tasks defined in idem.toml, as names and descriptions, `--json`, or
//! `--names` (one per line, for shell completion). It never runs or resolves a task.

use anyhow::Result;
use serde_json::json;

use crate::cli::TasksArgs;
use crate::commands::ui::{self, Style};
use crate::config::{self, load};
use crate::spec::display_argv;

/// Entry point of `idem tasks`.
pub fn run(args: &TasksArgs) -> Result<i32> {
    let Some(path) = config::find(args.config.as_deref(), args.root.as_deref())? else {
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "config": null, "tasks": [] }))?
            );
        } else if !args.names {
            eprintln!(
                "idem: no {} at the workspace root (see docs/tasks.md)",
                config::FILE_NAME
            );
        }
        return Ok(0);
    };
    let config = load::load(&path)?;
    if args.names {
        for t in &config.tasks {
            println!("{}", t.name);
        }
        return Ok(0);
    }
    if args.json {
        let tasks: Vec<_> = config
            .tasks
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": t.description,
                    "run": t.run.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>(),
                    "cwd": t.cwd.as_deref().unwrap_or("."),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "config": config.path.to_string_lossy(),
                "tasks": tasks,
            }))?
        );
        return Ok(0);
    }
    if config.tasks.is_empty() {
        crate::ui::note(format!("{} defines no tasks", config.path.display()));
        return Ok(0);
    }
    let mut t = ui::Table::new(vec![false, false, false]);
    for task in &config.tasks {
        t.row(vec![
            (task.name.clone(), Style::Bold),
            (task.description.clone().unwrap_or_default(), Style::Plain),
            (display_argv(&task.run), Style::Plain),
        ]);
    }
    print!("{}", t.render(ui::color()));
    Ok(0)
}
