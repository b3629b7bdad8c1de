#![no_main]
#[path = "../targets.rs"]
mod targets;

use std::sync::{Mutex, OnceLock};

/// One cache for the whole fuzzing session: opening SQLite per input would dominate.
static CACHE: OnceLock<Mutex<(tempfile::TempDir, idem::store::sqlite::Db)>> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let cache = CACHE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary cache dir");
        let db = idem::store::sqlite::Db::open(dir.path()).expect("open the cache");
        Mutex::new((dir, db))
    });
    let mut guard = cache.lock().expect("one fuzz thread");
    let (dir, db) = &mut *guard;
    targets::hits_log(dir.path(), db, data);
});
