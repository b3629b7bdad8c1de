//! The application: parses argv, hands each subcommand to its adapter, and maps what
//! comes back to an exit code and at most one line on stderr. Nothing here decides
//! anything about the cache.

use std::ffi::OsString;

use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::{cli, cli_fast, commands, completions, config, exit, ui};

/// Parses argv and runs the subcommand; returns the process exit code.
pub fn main_with_args(argv: Vec<OsString>) -> i32 {
    // The plain `idem run … -- CMD` of a hit, where no idem.toml can change its
    // arguments: no clap at all (see cli_fast).
    if let Some(args) = cli_fast::plain_run(&argv) {
        if let Ok(None) = config::find(None, None) {
            return exit_code(commands::run::run(&args));
        }
    }
    // Matches, not just the parsed struct: a task's fields yield to the options the
    // command line actually gave, which only the matches can tell from defaults.
    let (cli, matches) = match parse(argv) {
        Ok(p) => p,
        Err(e) => return report_clap_error(e),
    };
    let result = config::resolve(cli.command, &matches).and_then(|command| match command {
        cli::Command::Run(args) => commands::run::run(&args),
        cli::Command::Completions { shell } => {
            completions::generate(shell, &mut std::io::stdout());
            Ok(0)
        }
        cli::Command::Tasks(args) => commands::tasks::run(&args),
        cli::Command::Status(args) => commands::status::run(&args),
        cli::Command::Explain(args) => commands::explain::run(&args),
        cli::Command::Stats(args) => commands::stats::run(&args),
        cli::Command::List(args) => commands::list::run(&args),
        cli::Command::Show(args) => commands::show::run(&args),
        cli::Command::Gc(args) => commands::gc::run(&args),
        cli::Command::Forget(args) => commands::forget::run(&args),
        cli::Command::Clear(args) => commands::clear::run(&args),
        cli::Command::Verify(args) => commands::verify::run(&args),
    });
    exit_code(result)
}

/// The exit code of a subcommand's result; an error is one line on stderr.
fn exit_code(result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<exit::UsageError>().is_some() => {
            ui::note(&e);
            exit::Code::Usage.into()
        }
        Err(e) => {
            ui::note(format!("error: {e:#}"));
            exit::Code::Internal.into()
        }
    }
}

/// argv as the whole CLI parses it. `idem run …`, the command of every hit, is first
/// parsed by the `run` subcommand's definition alone: building all twelve subcommands
/// cost more instructions than the rest of a hit. Whatever that parse does not accept
/// (help, version, any error) is parsed again by the whole CLI, so every message, exit
/// code and help text is the whole CLI's.
fn parse(argv: Vec<OsString>) -> Result<(cli::Cli, ArgMatches), clap::Error> {
    if argv.get(1).is_some_and(|a| a == "run") {
        let parsed = cli::run_only_command()
            .try_get_matches_from(&argv)
            .and_then(|m| cli::Cli::from_arg_matches(&m).map(|c| (c, m)));
        if parsed.is_ok() {
            return parsed;
        }
    }
    cli::Cli::command()
        .try_get_matches_from(argv)
        .and_then(|m| cli::Cli::from_arg_matches(&m).map(|c| (c, m)))
}

/// Clap's errors are several lines; idem's usage errors are one line and exit 2.
fn report_clap_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                exit::Code::Usage.into()
            } else {
                0
            }
        }
        _ => {
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ")
                .to_string();
            let tip = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("tip: "))
                .map(|t| format!("; {t}"))
                .unwrap_or_default();
            let hint = match e.kind() {
                ErrorKind::UnknownArgument => {
                    if text.contains("found") && !text.contains("to pass") {
                        "; the command goes after `--`, as in `idem run -f src/ -- make` (see idem run --help)".to_string()
                    } else {
                        String::new()
                    }
                }
                _ => " (see idem --help)".to_string(),
            };
            ui::note(format!("{first}{tip}{hint}"));
            exit::Code::Usage.into()
        }
    }
}
