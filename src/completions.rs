//! Shell completion scripts: clap_complete's static scripts, plus, for bash, zsh and
//! fish, task names completed at run time by calling `idem tasks --names`. It never
//! reads idem.toml itself: the installed script asks the idem on the PATH.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Subcommands whose positional argument may be a task name.
const TASK_SUBCOMMANDS: &[&str] = &["run", "status", "explain", "forget"];

/// Writes the completion script for `shell`.
pub fn generate(shell: Shell, out: &mut dyn Write) {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "idem", &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    let script = match shell {
        Shell::Bash => script + &bash_tasks(&cmd),
        Shell::Zsh => zsh_tasks(&script),
        Shell::Fish => script + &fish_tasks(),
        _ => script,
    };
    // A closed pipe (`idem completions bash | head`) is not an error worth a message.
    let _ = out.write_all(script.as_bytes());
}

/// Options of the task subcommands that take a value: after one, the word is its
/// value, not a task name.
fn value_options(cmd: &clap::Command) -> String {
    let mut opts: Vec<String> = Vec::new();
    for sub in TASK_SUBCOMMANDS {
        let Some(sub) = cmd.find_subcommand(sub) else {
            continue;
        };
        for a in sub.get_arguments() {
            if a.is_positional() || !a.get_action().takes_values() {
                continue;
            }
            if let Some(s) = a.get_short() {
                opts.push(format!("-{s}"));
            }
            if let Some(l) = a.get_long() {
                opts.push(format!("--{l}"));
            }
        }
    }
    opts.sort();
    opts.dedup();
    opts.join(" ")
}

fn bash_tasks(cmd: &clap::Command) -> String {
    format!(
        r#"
# Task names from idem.toml (`idem tasks --names`), after {subs}.
_idem_with_tasks() {{
    _idem "$@"
    local i sub="" cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    for (( i=1; i < COMP_CWORD; i++ )); do
        case "${{COMP_WORDS[i]}}" in
            --) return 0 ;;
            {pattern}) [[ -z "$sub" ]] && sub="${{COMP_WORDS[i]}}" ;;
        esac
    done
    [[ -z "$sub" || "$cur" == -* ]] && return 0
    case " {values} " in *" $prev "*) return 0 ;; esac
    local names
    names="$("${{COMP_WORDS[0]}}" tasks --names 2>/dev/null)" || return 0
    COMPREPLY+=( $(compgen -W "$names" -- "$cur") )
}}
if [[ "${{BASH_VERSINFO[0]}}" -eq 4 && "${{BASH_VERSINFO[1]}}" -ge 4 || "${{BASH_VERSINFO[0]}}" -gt 4 ]]; then
    complete -F _idem_with_tasks -o nosort -o bashdefault -o default idem
else
    complete -F _idem_with_tasks -o bashdefault -o default idem
fi
"#,
        subs = TASK_SUBCOMMANDS.join(", "),
        pattern = TASK_SUBCOMMANDS.join("|"),
        values = value_options(cmd),
    )
}

/// zsh: the TASK positional completes with `_idem_tasks` instead of `_default`.
fn zsh_tasks(script: &str) -> String {
    let helper = r#"
# Task names from idem.toml (`idem tasks --names`).
_idem_tasks() {
    local -a names
    names=(${(f)"$(idem tasks --names 2>/dev/null)"})
    compadd -a names
}
"#;
    let mut out = String::with_capacity(script.len() + helper.len());
    let mut helper_written = false;
    for line in script.split_inclusive('\n') {
        if line.starts_with("'::task -- ") {
            out.push_str(&line.replacen(":_default'", ":_idem_tasks'", 1));
            continue;
        }
        out.push_str(line);
        if !helper_written && line.starts_with("autoload -U is-at-least") {
            out.push_str(helper);
            helper_written = true;
        }
    }
    out
}

fn fish_tasks() -> String {
    let mut out = String::from("\n# Task names from idem.toml (`idem tasks --names`).\n");
    for sub in TASK_SUBCOMMANDS {
        out.push_str(&format!(
            "complete -c idem -n \"__fish_idem_using_subcommand {sub}; and not contains -- -- (commandline -opc)\" -a \"((commandline -opc)[1] tasks --names 2>/dev/null)\" -d task\n"
        ));
    }
    out
}
