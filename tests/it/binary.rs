//! How the `idem` binary is linked, which a hit pays for on every start
//! (docs/benchmarks.md H13): a fixed-address executable (no relative relocations to
//! apply) that does not load libm.so. Structural checks with `readelf`, not timings.

use std::process::Command;

use crate::common::{idem_bin, require_binary, stdout};

fn readelf(args: &[&str]) -> Option<String> {
    let readelf = require_binary("readelf")?;
    let o = Command::new(readelf)
        .args(args)
        .arg(idem_bin())
        .output()
        .expect("run readelf");
    assert!(o.status.success(), "readelf {args:?} failed");
    Some(stdout(&o))
}

#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn the_binary_is_not_a_pie_unless_asked_and_needs_no_libm() {
    let Some(header) = readelf(&["-hW"]) else {
        return;
    };
    let pie_asked = std::env::var_os("IDEM_PIE").is_some_and(|v| !v.is_empty() && v != "0");
    let wanted = if pie_asked { "DYN" } else { "EXEC" };
    assert!(
        header
            .lines()
            .any(|l| l.trim_start().starts_with("Type:") && l.contains(wanted)),
        "expected an ELF of type {wanted} (build.rs, IDEM_PIE):\n{header}"
    );
    let Some(dynamic) = readelf(&["-dW"]) else {
        return;
    };
    let needed: Vec<&str> = dynamic.lines().filter(|l| l.contains("(NEEDED)")).collect();
    assert!(
        !needed.is_empty(),
        "a dynamically linked binary:\n{dynamic}"
    );
    assert!(
        !needed.iter().any(|l| l.contains("libm.so")),
        "libm.so is loaded on every start; src/libm_shim.rs provides what needed it: {needed:?}"
    );
}
