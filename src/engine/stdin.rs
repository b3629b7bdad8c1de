//! stdin as an input (`--stdin`): read to its end and hashed once. `run` keeps the bytes
//! in a spool file the command then reads; `status`/`explain` only hash them.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result};

use crate::deps::{DepState, Kind};

/// Reads stdin to its end, handing each piece to `sink`; returns its state.
fn read_all(mut sink: impl FnMut(&[u8]) -> Result<()>) -> Result<DepState> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut input = std::io::stdin().lock();
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("cannot read stdin"),
        };
        hasher.update(&buf[..n]);
        sink(&buf[..n])?;
    }
    let state = format!("blake3:{}", hasher.finalize().to_hex());
    Ok(DepState::new(Kind::Stdin, "-", state))
}

/// Hashes stdin without keeping it.
pub fn hash_stdin() -> Result<DepState> {
    read_all(|_| Ok(()))
}

/// Spools stdin to an unnamed temporary file (in `dir` when it can), hashing it; the
/// command later reads the same bytes from the returned file, rewound.
pub fn spool_stdin(dir: Option<&Path>) -> Result<(File, DepState)> {
    let in_cache = dir.and_then(|d| {
        std::fs::create_dir_all(d).ok()?;
        tempfile::tempfile_in(d).ok()
    });
    let mut tmp = match in_cache {
        Some(f) => f,
        None => tempfile::tempfile().context("cannot create a temporary file for stdin")?,
    };
    let state = read_all(|bytes| tmp.write_all(bytes).context("cannot spool stdin"))?;
    tmp.seek(SeekFrom::Start(0))
        .context("cannot rewind the spooled stdin")?;
    Ok((tmp, state))
}

/// Another handle on the spool, rewound (the fallback path re-feeds the same bytes).
pub fn rewound(spool: &File) -> Option<File> {
    let mut f = spool.try_clone().ok()?;
    f.seek(SeekFrom::Start(0)).ok()?;
    Some(f)
}
