#![no_main]
#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    targets::stat_cache_bytes(data);
    targets::stat_cache_roundtrip(data);
});
