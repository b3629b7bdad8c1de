//! One file per subcommand other than `run`.

pub mod gc;
