//! idem: make any command idempotent. The binary is a thin shell over this library:
//! `cli` parses, `run` and `commands` act, and every other module has one concern.

pub mod cli;
pub mod clock;
pub mod commands;
pub mod deps;
pub mod encode;
pub mod exec;
pub mod exit;
pub mod host;
pub mod lease;
pub mod outputs;
pub mod progress;
pub mod replay;
pub mod run;
pub mod spec;
pub mod store;
/// Only where a syscall table exists; elsewhere `--trace` is refused (exit 2).
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub mod trace;

use clap::Parser;

/// Parses argv and runs the subcommand; returns the process exit code.
pub fn main_with_args(argv: Vec<std::ffi::OsString>) -> i32 {
    let cli = match cli::Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => return report_clap_error(e),
    };
    let result = match cli.command {
        cli::Command::Run(args) => run::run(&args),
        cli::Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut cli::Cli::command(),
                "idem",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        cli::Command::Status(args) => commands::status::run(&args),
        cli::Command::Explain(args) => commands::explain::run(&args),
        cli::Command::Stats(args) => commands::stats::run(&args),
        cli::Command::List(args) => commands::list::run(&args),
        cli::Command::Show(args) => commands::show::run(&args),
        cli::Command::Gc(args) => commands::gc::run(&args),
        cli::Command::Forget(args) => commands::forget::run(&args),
        cli::Command::Clear(args) => commands::clear::run(&args),
        cli::Command::Verify(args) => commands::verify::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<exit::UsageError>().is_some() => {
            eprintln!("idem: {e}");
            exit::USAGE
        }
        Err(e) => {
            eprintln!("idem: error: {e:#}");
            exit::INTERNAL
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
                exit::USAGE
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
            eprintln!("idem: {first}{tip}{hint}");
            exit::USAGE
        }
    }
}
