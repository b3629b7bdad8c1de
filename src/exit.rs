//! Exit codes idem itself can produce (docs/exit-codes.md lists them for users), and
//! the usage-error type that maps to exit 2. The command's own code always wins.

/// Bad flags, missing `--`, empty command, invalid spec: nothing was run.
pub const USAGE: i32 = 2;
/// `--cache-only` and no matching record: nothing was run.
pub const CACHE_ONLY_MISS: i32 = 3;
/// `--key K` was first used for another command line or directory.
pub const KEY_REUSED: i32 = 4;
/// An internal failure idem could not route around (the command may not have run).
pub const INTERNAL: i32 = 70;
/// `--no-wait` (or `--wait-timeout` with `--no-wait`) and another idem runs the same.
pub const BUSY: i32 = 75;
/// The command exists but cannot be executed (as in shells).
pub const NOT_EXECUTABLE: i32 = 126;
/// The command was not found (as in shells).
pub const NOT_FOUND: i32 = 127;

/// A problem with what the user typed; printed as one line, exit 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}
