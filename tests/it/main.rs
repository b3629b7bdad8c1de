//! idem's integration tests, as one binary (one link instead of one per file): each
//! module runs the real `idem` binary against real files, subprocesses and servers on
//! loopback; `common` holds the workspace, assertions and server fixtures they share,
//! `procs` tracked processes and a Redis server, `rng` the seeded generator of the
//! randomized suites (docs/reliability.md). tests/fuzz.rs stays a binary of its own:
//! it installs a counting global allocator.

mod agreement;
mod big_inputs;
mod binary;
mod cache_dir;
mod commands;
mod common;
mod crash;
mod faults;
mod hostile;
mod hot;
mod keys;
mod outputs;
mod procs;
mod race_guard;
mod remote;
mod rng;
mod robustness;
mod run;
mod single_flight;
mod soak;
mod tasks;
mod trace;
mod trace_engine;
mod trace_process;
mod trace_support;
mod traced;
mod url;
