//! idem: make any command idempotent. The binary is a thin shell over this library.
//! Dependencies run one way: `app` → `cli`/`plan` → `commands` → `engine` →
//! {`deps`, `store`, `exec`, `outputs`, `lease`} → {`spec`, `encode`, `ui`, `clock`,
//! `host`}. docs/architecture.md is the map.

pub mod app;
pub mod cli;
pub mod cli_fast;
pub mod clock;
pub mod commands;
pub mod completions;
pub mod config;
pub mod deps;
pub mod encode;
pub mod engine;
pub mod exec;
pub mod exit;
pub mod host;
pub mod lease;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod libm_shim;
pub mod outputs;
pub mod plan;
pub mod spec;
pub mod startup;
pub mod store;
/// Only where a syscall table exists; elsewhere `--trace` is refused (exit 2).
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub mod trace;
pub mod ui;

pub use app::main_with_args;
