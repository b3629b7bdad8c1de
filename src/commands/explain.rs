//! `idem explain`: compares every dependency's current state with the task's most recent
//! record and prints what changed, or the closest task the cache knows. It never prints
//! an environment variable's value (nor its keyed hash), and never runs anything.

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::ExplainArgs;
use crate::commands::ui::{self, Style};
use crate::deps::{self, DepState, Kind};
use crate::engine::lookup::{self, Age};
use crate::engine::{self, Inspection, Task, Verdict};
use crate::store::record::Record;

/// One line of the explanation.
#[derive(Debug, Clone)]
pub struct Item {
    pub kind: Kind,
    pub name: String,
    /// `changed`, `added` or `removed`.
    pub change: &'static str,
    /// Extra detail that is safe to print (URL validators, env set/unset).
    pub detail: Option<String>,
}

/// Safe detail for a changed dependency: URL validators (public metadata) and whether
/// an environment variable went from set to unset; never a value or a hash of one.
fn detail(old: Option<&DepState>, new: Option<&DepState>) -> Option<String> {
    let (Some(o), Some(n)) = (old, new) else {
        return None;
    };
    let os = String::from_utf8_lossy(&o.state).into_owned();
    let ns = String::from_utf8_lossy(&n.state).into_owned();
    match n.kind {
        Kind::Url => Some(match (os.split_once(':'), ns.split_once(':')) {
            (Some((a, av)), Some((b, bv))) if a == b => format!("{a} {av} → {bv}"),
            _ => format!("{os} → {ns}"),
        }),
        Kind::Env => match (os == "unset", ns == "unset") {
            (true, false) => Some("now set".into()),
            (false, true) => Some("now unset".into()),
            _ => None,
        },
        Kind::File | Kind::Program => match (os.as_str(), ns.as_str()) {
            (_, "absent") => Some("now absent".into()),
            ("absent", _) => Some("now present".into()),
            _ => {
                let strip = |s: &str| s.trim_end_matches("+x").to_string();
                (strip(&os) == strip(&ns) && os != ns)
                    .then(|| "mode changed (executable bit)".to_string())
            }
        },
        // Traced entries explain themselves through deps::trace::Change's message.
        Kind::Stdin
        | Kind::TraceRead
        | Kind::TraceProbe
        | Kind::TraceAbsent
        | Kind::TraceListing
        | Kind::TraceLink
        | Kind::TraceExec => None,
    }
}

/// Per-dependency differences between a record and now, sorted by kind then name.
pub fn compare(old: &[DepState], new: &[DepState]) -> Vec<Item> {
    let old_map = deps::by_identity(old);
    let new_map = deps::by_identity(new);
    let mut items: Vec<Item> = deps::diff(old, new)
        .into_iter()
        .map(|(d, change, diff_detail)| {
            let key = (d.kind, d.name.as_slice());
            let change = match change {
                deps::Change::Changed => "changed",
                deps::Change::Added => "added",
                deps::Change::Removed => "removed",
            };
            Item {
                kind: d.kind,
                name: ui::dep_name(d.kind, &d.name),
                change,
                detail: url_or_own_detail(
                    diff_detail,
                    old_map.get(&key).copied(),
                    new_map.get(&key).copied(),
                ),
            }
        })
        .collect();
    items.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    items
}

/// URL details come from the URL module when it describes validators itself; a bare
/// `old → new` of whole states is replaced by this module's field-wise form.
fn url_or_own_detail(
    from_diff: Option<String>,
    old: Option<&DepState>,
    new: Option<&DepState>,
) -> Option<String> {
    if let (Some(det), Some(o), Some(n)) = (&from_diff, old, new) {
        let raw = format!(
            "{} → {}",
            String::from_utf8_lossy(&o.state),
            String::from_utf8_lossy(&n.state)
        );
        if n.kind == Kind::Url && *det != raw {
            return from_diff;
        }
    }
    detail(old, new)
}

fn item_json(i: &Item) -> Value {
    json!({"kind": i.kind.label(), "name": i.name, "change": i.change, "detail": i.detail})
}

/// How another task with the same command line differs from this one.
struct Closest {
    id: i64,
    rec: Record,
    notes: Vec<String>,
}

fn closest(task: &Task, seen: &Inspection) -> Result<Option<Closest>> {
    let argv = task.spec.display_argv();
    let Some((id, rec)) = seen.cache.db.latest_same_argv(&argv, &task.key)? else {
        return Ok(None);
    };
    let mut notes = Vec::new();
    if rec.cwd != task.spec.cwd_key {
        notes.push(format!(
            "run in directory {} (here: {})",
            String::from_utf8_lossy(&rec.cwd),
            String::from_utf8_lossy(&task.spec.cwd_key)
        ));
    }
    if rec.exec_key != task.spec.exec_key {
        notes.push("another --key".into());
    }
    if let Ok(snap) = &seen.snap {
        let names = |v: &[DepState]| -> std::collections::BTreeSet<(Kind, Vec<u8>)> {
            v.iter()
                .filter(|d| d.kind != Kind::Program)
                .map(|d| (d.kind, d.name.clone()))
                .collect()
        };
        let theirs = names(&rec.deps);
        let ours = names(&snap.deps);
        let only_there: Vec<String> = theirs
            .difference(&ours)
            .map(|(k, n)| dep_label(*k, n))
            .collect();
        let only_here: Vec<String> = ours
            .difference(&theirs)
            .map(|(k, n)| dep_label(*k, n))
            .collect();
        for (list, what) in [(only_there, "only there"), (only_here, "only here")] {
            if !list.is_empty() {
                let more = if list.len() > 5 {
                    format!(" and {} more", list.len() - 5)
                } else {
                    String::new()
                };
                notes.push(format!(
                    "{what}: {}{more}",
                    list[..list.len().min(5)].join(", ")
                ));
            }
        }
    }
    if notes.is_empty() {
        notes.push(
            "other options (--scope, --output, --no-ignore, --strict-env, or dependency specs)"
                .into(),
        );
    }
    Ok(Some(Closest { id, rec, notes }))
}

fn dep_label(kind: Kind, name: &[u8]) -> String {
    format!("{} {}", kind.label(), ui::dep_name(kind, name))
}

/// Entry point of `idem explain`.
pub fn run(args: &ExplainArgs) -> Result<i32> {
    let task = crate::plan::task(&args.run)?;
    let policy = crate::plan::policy(&args.run)?;
    let mut seen = engine::inspect(&task, &policy)?;
    let now = crate::clock::now_ns();
    let remote = engine::runner::connect_remote(&policy)?;
    let verdict = match &seen.snap {
        Ok(snap) => Some(engine::lookup(
            &task,
            &policy,
            &mut seen.cache,
            remote.as_ref(),
            snap,
            now,
        )?),
        Err(_) => None,
    };
    let latest = seen.cache.db.latest_for_task(&task.key)?;
    let items = match (&latest, &seen.snap) {
        // A traced record's own entries are checked by the lookup (its reason names
        // the first that changed); only declared dependencies are compared here.
        (Some((_, rec)), Ok(snap)) if task.traced() => {
            let declared: Vec<DepState> = rec
                .deps
                .iter()
                .filter(|d| !d.kind.is_traced())
                .cloned()
                .collect();
            compare(&declared, &snap.deps)
        }
        (Some((_, rec)), Ok(snap)) => compare(&rec.deps, &snap.deps),
        _ => Vec::new(),
    };
    let close = if latest.is_none() {
        closest(&task, &seen)?
    } else {
        None
    };
    let (hit, matching, reason) = match (&verdict, &seen.snap) {
        (Some(Verdict::Hit { id, .. }), _) => (true, Some(*id), None),
        (Some(v), Ok(snap)) => (
            false,
            None,
            Some(lookup::describe(v, &task, &seen.cache, snap)),
        ),
        (_, Err(m)) => (false, None, Some(m.clone())),
        (None, Ok(_)) => (false, None, None),
    };
    let ndeps = seen.snap.as_ref().map(|s| s.deps.len()).unwrap_or(0);
    if args.json {
        let out = json!({
            "command": task.spec.display_argv(),
            "cwd": String::from_utf8_lossy(&task.spec.cwd_key),
            "task_key": crate::encode::hex(&task.key),
            "would_hit": hit,
            "matching_record": matching,
            "miss_reason": reason,
            "dependencies": ndeps,
            "last_record": latest.as_ref().map(|(id, rec)| json!({
                "id": id,
                "created_ns": rec.created_ns,
                "age_s": (now - rec.created_ns) as f64 / 1e9,
            })),
            "changes": items.iter().map(item_json).collect::<Vec<_>>(),
            "closest": close.as_ref().map(|c| json!({
                "id": c.id,
                "command": c.rec.display_argv(),
                "cwd": String::from_utf8_lossy(&c.rec.cwd),
                "differences": c.notes,
            })),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    let color = ui::color();
    let mut out = String::new();
    if let Err(m) = &seen.snap {
        out.push_str(&format!(
            "{m}: a run would fail before recording anything\n"
        ));
    }
    match &latest {
        None => {
            out.push_str("no record for this task yet\n");
            match &close {
                Some(c) => {
                    out.push_str(&format!(
                        "closest known task: record {} ({}), same command line; it differs by:\n",
                        c.id,
                        Age::of(&c.rec, now)
                    ));
                    for n in &c.notes {
                        out.push_str(&format!("  {}\n", ui::escape_controls(n)));
                    }
                }
                None => out.push_str("no record of this command line in any directory either\n"),
            }
        }
        Some((id, rec)) => {
            // Exactly `kind name: change`, one per line, so scripts can grep it.
            for i in &items {
                let style = match i.change {
                    "added" => Style::Green,
                    "removed" => Style::Red,
                    _ => Style::Yellow,
                };
                let what = match &i.detail {
                    Some(d) if i.change == "changed" && i.kind == Kind::Url => d.clone(),
                    Some(d) => format!("{} ({d})", i.change),
                    None => i.change.to_string(),
                };
                out.push_str(&format!(
                    "{} {}: {}\n",
                    i.kind.label(),
                    i.name,
                    ui::paint(color, style, &ui::escape_controls(&what))
                ));
            }
            let age = Age::of(rec, now);
            // A traced task: only declared dependencies are compared here; its traced
            // entries are judged by the lookup, whose reason ends the explanation.
            let which = if task.traced() { "declared " } else { "" };
            if items.is_empty() && task.traced() {
                let are = if ndeps == 1 {
                    "dependency is"
                } else {
                    "dependencies are"
                };
                out.push_str(&format!(
                    "the {ndeps} declared {are} unchanged since record {id} ({age}); \
                     its traced inputs decide\n"
                ));
            } else if items.is_empty() {
                out.push_str(&format!(
                    "no dependency changed since record {id} ({age}, {ndeps} dependencies)\n"
                ));
            } else {
                out.push_str(&format!(
                    "{} of {ndeps} {which}dependencies differ from record {id} ({age})\n",
                    items.len()
                ));
            }
        }
    }
    match &verdict {
        Some(Verdict::Hit { id, .. }) if latest.as_ref().is_some_and(|(l, _)| l != id) => {
            out.push_str(&format!(
                "a run would replay older record {id}, whose states match\n"
            ));
        }
        Some(Verdict::Hit { .. }) => {
            out.push_str(&ui::paint(color, Style::Green, "a run would be a hit"))
        }
        _ => {
            out.push_str(&ui::paint(color, Style::Yellow, "a run would be a miss"));
            if let (true, Some(r)) = (latest.is_some() && items.is_empty(), &reason) {
                out.push_str(&format!(": {}", ui::escape_controls(r)));
            }
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    print!("{out}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_detail_never_shows_values() {
        let old = [DepState::new(Kind::Env, "CC", "keyed:aaaa")];
        let new = [DepState::new(Kind::Env, "CC", "keyed:bbbb")];
        let items = compare(&old, &new);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].change, "changed");
        assert_eq!(items[0].detail, None);
        let unset = [DepState::new(Kind::Env, "CC", "unset")];
        assert_eq!(
            compare(&old, &unset)[0].detail.as_deref(),
            Some("now unset")
        );
    }

    #[test]
    fn url_detail_shows_validators() {
        let old = [DepState::new(Kind::Url, "http://x/", "etag:\"a\"")];
        let new = [DepState::new(Kind::Url, "http://x/", "etag:\"b\"")];
        assert_eq!(
            compare(&old, &new)[0].detail.as_deref(),
            Some("etag \"a\" → \"b\"")
        );
    }
}
