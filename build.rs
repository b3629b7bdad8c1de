//! Link flags for the `idem` binary only (never the library or tests): on Linux (glibc) it is
//! linked as a fixed-address executable, because a PIE's ~7,600 relative relocations
//! are a tenth of a cache hit (docs/benchmarks.md H13). `IDEM_PIE=1` keeps a PIE for
//! builders whose policy requires one (docs/security.md "The binary").

fn main() {
    println!("cargo:rerun-if-env-changed=IDEM_PIE");
    println!("cargo:rerun-if-changed=build.rs");
    let target = |key: &str, value: &str| std::env::var(key).is_ok_and(|v| v == value);
    // glibc only: a musl build is linked static-pie by rustc, which -no-pie contradicts.
    let linux_gnu = target("CARGO_CFG_TARGET_OS", "linux") && target("CARGO_CFG_TARGET_ENV", "gnu");
    let pie_wanted = std::env::var_os("IDEM_PIE").is_some_and(|v| !v.is_empty() && v != "0");
    if linux_gnu && !pie_wanted {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
