//! Exit codes idem itself can produce (docs/exit-codes.md lists them for users), and
//! the usage-error type that maps to exit 2. The command's own code always wins; these
//! are only for what idem decides on its own.

/// Why idem exits with a code of its own rather than the command's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Bad flags, missing `--`, empty command, invalid spec: nothing was run.
    Usage,
    /// `--cache-only` and no matching record: nothing was run.
    CacheOnlyMiss,
    /// `--key K` was first used for another command line or directory.
    KeyReused,
    /// `--trace=check --strict`: the command succeeded but read undeclared inputs.
    UndeclaredInputs,
    /// An internal failure idem could not route around (the command may not have run).
    Internal,
    /// `--no-wait` (or `--wait-timeout` with `--no-wait`) and another idem runs the same.
    Busy,
    /// The command exists but cannot be executed (as in shells).
    NotExecutable,
    /// The command was not found (as in shells).
    NotFound,
}

impl From<Code> for i32 {
    fn from(c: Code) -> i32 {
        match c {
            Code::Usage => 2,
            Code::CacheOnlyMiss => 3,
            Code::KeyReused => 4,
            Code::UndeclaredInputs => 5,
            Code::Internal => 70,
            Code::Busy => 75,
            Code::NotExecutable => 126,
            Code::NotFound => 127,
        }
    }
}

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
