//! One file per subcommand other than `run`, plus `ui` (shared formatting). Each reads
//! or maintains the cache; none of them runs the user's command.

pub mod clear;
pub mod explain;
pub mod forget;
pub mod gc;
pub mod list;
pub mod show;
pub mod stats;
pub mod status;
pub mod tasks;
pub mod ui;
pub mod verify;
