//! One thin adapter per subcommand, plus `ui` (tables and colour): parsed arguments →
//! engine or store → printed result. Only `run` may run the user's command (through
//! the engine); none of them decides hit or miss on its own.

pub mod clear;
pub mod explain;
pub mod forget;
pub mod gc;
pub mod list;
pub mod run;
pub mod show;
pub mod stats;
pub mod status;
pub mod tasks;
pub mod ui;
pub mod verify;
