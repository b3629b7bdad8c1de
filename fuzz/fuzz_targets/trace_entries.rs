#![no_main]
#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let ws = tempfile::tempdir().expect("tempdir");
    targets::trace_entries_bytes(ws.path(), data);
    targets::trace_entries_roundtrip(ws.path(), data);
});
