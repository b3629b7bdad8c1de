//! The `idem` binary: hands argv to the library and exits with its code.

fn main() {
    let code = idem::main_with_args(std::env::args_os().collect());
    std::process::exit(code);
}
