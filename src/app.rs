//! The application: parses argv, hands each subcommand to its adapter, and maps what
//! comes back to an exit code and at most one line on stderr. Nothing here decides
//! anything about the cache.

use clap::{CommandFactory, FromArgMatches};

use crate::{cli, commands, completions, config, exit, ui};

/// Parses argv and runs the subcommand; returns the process exit code.
pub fn main_with_args(argv: Vec<std::ffi::OsString>) -> i32 {
    // Matches, not just the parsed struct: a task's fields yield to the options the
    // command line actually gave, which only the matches can tell from defaults.
    let parsed = cli::Cli::command()
        .try_get_matches_from(argv)
        .and_then(|m| cli::Cli::from_arg_matches(&m).map(|c| (c, m)));
    let (cli, matches) = match parsed {
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
