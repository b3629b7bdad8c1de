//! The `idem` binary: hands argv to the library and exits with its code.
//! A C `main` instead of Rust's `fn main`: Rust's start-up reads /proc/self/maps and
//! sets up a signal stack for the main thread, a tenth of a hit; `idem::startup` does
//! the part of it idem needs. Nothing else belongs here.
// Under `cargo test` the test harness brings its own `main`.
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(
    _argc: std::os::raw::c_int,
    _argv: *const *const std::os::raw::c_char,
) -> std::os::raw::c_int {
    idem::startup::init();
    // glibc hands argv to std before `main` (std's .init_array hook), so args_os works.
    let code = idem::main_with_args(std::env::args_os().collect());
    std::process::exit(code);
}
