//! Environment-variable dependencies. The value is stored only as a keyed blake3
//! hash; it must never reach the database, a record, or any output in plain text.

use super::{DepState, Kind};

/// A fixed, domain-separated key: the same on every machine so remote caches share
/// records. It hides values from casual reading; it is not encryption (see docs).
fn env_key() -> [u8; 32] {
    blake3::derive_key("idem 2026-11 environment variable value v1", b"")
}

pub fn state(name: &str) -> DepState {
    let st = match std::env::var_os(name) {
        None => b"unset".to_vec(),
        Some(v) => {
            use std::os::unix::ffi::OsStrExt;
            let mut h = blake3::Hasher::new_keyed(&env_key());
            h.update(&(name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
            h.update(v.as_bytes());
            format!("keyed:{}", h.finalize().to_hex()).into_bytes()
        }
    };
    DepState::new(Kind::Env, name.as_bytes(), st)
}

/// Checks a variable name at parse time.
pub fn validate(name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        anyhow::bail!(
            "invalid environment variable name '{name}': it must be non-empty and contain no '='"
        );
    }
    Ok(())
}
