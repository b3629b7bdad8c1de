//! `log`, `log2` and `pow` for the few callers that need them (SQLite's FTS5 ranking,
//! indicatif's rate estimate, debug builds' float formatting), from the pure-Rust `libm` crate, so the binary does not
//! load libm.so on every start (docs/benchmarks.md H13). Must never call `f64::ln` or
//! `powf`: those lower to these very symbols and would recurse.

#[no_mangle]
pub extern "C" fn log(x: f64) -> f64 {
    libm::log(x)
}

#[no_mangle]
pub extern "C" fn log2(x: f64) -> f64 {
    libm::log2(x)
}

#[no_mangle]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

#[cfg(test)]
mod tests {
    extern "C" {
        #[link_name = "log"]
        fn c_log(x: f64) -> f64;
        #[link_name = "log2"]
        fn c_log2(x: f64) -> f64;
        #[link_name = "pow"]
        fn c_pow(x: f64, y: f64) -> f64;
    }

    #[test]
    fn the_c_symbols_compute_log_and_pow() {
        // Through the C ABI, as SQLite and indicatif call them.
        let (l, p) = unsafe { (c_log(std::f64::consts::E), c_pow(2.0, 10.0)) };
        assert!((l - 1.0).abs() < 1e-15, "log(e) = {l}");
        assert_eq!(p, 1024.0);
        assert_eq!(unsafe { c_log2(1024.0) }, 10.0);
        assert!(unsafe { c_log(0.0) }.is_infinite());
        assert!(unsafe { c_pow(-8.0, 1.0 / 3.0) }.is_nan());
    }
}
