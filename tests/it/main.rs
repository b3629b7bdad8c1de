//! idem's integration tests, as one binary (one link instead of one per file): each
//! module runs the real `idem` binary against real files, subprocesses and servers on
//! loopback; `common` holds the workspace, assertions and server fixtures they share.

mod agreement;
mod commands;
mod common;
mod hot;
mod outputs;
mod remote;
mod robustness;
mod run;
mod single_flight;
mod url;
