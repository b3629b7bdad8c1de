//! The `idem` binary: hands argv to the library and exits with its code.

/// Runs before the Rust runtime reopens closed standard descriptors on /dev/null, so
/// idem can tell `cmd >&-` from `cmd >/dev/null` (see `idem::exec::closed_stdio`).
#[used]
#[link_section = ".init_array"]
static PROBE_CLOSED_STDIO: extern "C" fn() = idem::exec::probe_closed_stdio;

fn main() {
    let code = idem::main_with_args(std::env::args_os().collect());
    std::process::exit(code);
}
