//! Content hashes of input files, blobs and outputs: blake3, streamed in bounded
//! memory (parallel for large files). Inputs are read, never memory-mapped: a file
//! truncated under a mapping would kill idem with SIGBUS.

use std::path::Path;

/// Files and bytes hashed by this process (for progress display only).
pub static HASHED_FILES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
pub static HASHED_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// ", 1234 files (56.7 MB) hashed" for progress lines.
pub fn hashed_so_far() -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let files = HASHED_FILES.load(Relaxed);
    let bytes = HASHED_BYTES.load(Relaxed);
    format!(": {files} files ({:.1} MB) hashed", bytes as f64 / 1e6)
}

/// Files at least this large are hashed in parallel chunks.
const PARALLEL_THRESHOLD: u64 = 1 << 20;
/// Chunk size for streaming hashes: large enough for blake3's multithreading to pay,
/// small enough that memory stays constant (no mmap: mapped pages count as RSS).
const CHUNK: usize = 16 << 20;

/// The blake3 of an input file (dependency or program). Read, never mapped: a file
/// truncated while mapped kills the reader with SIGBUS (measured: 10 of 30 runs died
/// while a 2 GB input was being rewritten), and idem must never fail a step, or lose a
/// command's exit code in its post-run check, because an input moved under it.
pub fn hash_file(path: &Path, size: u64) -> std::io::Result<[u8; 32]> {
    if size < OVERLAP_THRESHOLD {
        return hash_file_streaming(path, size);
    }
    // Large inputs: one thread reads the next chunk while the others hash this one,
    // so the copy out of the page cache overlaps the hashing.
    use std::sync::mpsc::sync_channel;
    let mut file = std::fs::File::open(path)?;
    let mut h = blake3::Hasher::new();
    std::thread::scope(|s| -> std::io::Result<()> {
        let (full_tx, full_rx) = sync_channel::<std::io::Result<(Vec<u8>, usize)>>(1);
        let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(2);
        for _ in 0..2 {
            let _ = empty_tx.send(vec![0u8; CHUNK]);
        }
        s.spawn(move || {
            while let Ok(mut buf) = empty_rx.recv() {
                let got = fill(&mut file, &mut buf);
                let last = !matches!(got, Ok(n) if n == buf.len());
                if full_tx.send(got.map(|n| (buf, n))).is_err() || last {
                    return;
                }
            }
        });
        while let Ok(chunk) = full_rx.recv() {
            let (buf, n) = chunk?;
            h.update_rayon(&buf[..n]);
            if n < buf.len() {
                break;
            }
            let _ = empty_tx.send(buf);
        }
        drop(empty_tx);
        Ok(())
    })?;
    Ok(*h.finalize().as_bytes())
}

/// Inputs at least this large are read and hashed concurrently.
const OVERLAP_THRESHOLD: u64 = 64 << 20;

/// Reads until `buf` is full or the end of the file; returns the bytes read.
fn fill(reader: &mut dyn std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The blake3 of a file in constant memory (blobs, outputs): mapped pages would count
/// towards resident memory, which restores and replays must keep small.
pub fn hash_file_streaming(path: &Path, size: u64) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    hash_reader(&mut file, size)
}

/// Streams a reader through blake3 in constant memory.
pub fn hash_reader(reader: &mut dyn std::io::Read, size_hint: u64) -> std::io::Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    if size_hint < PARALLEL_THRESHOLD {
        let mut buf = Vec::with_capacity(size_hint as usize + 1);
        reader.read_to_end(&mut buf)?;
        h.update(&buf);
        return Ok(*h.finalize().as_bytes());
    }
    let mut buf = vec![0u8; CHUNK];
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            break;
        }
        h.update_rayon(&buf[..filled]);
        if filled < buf.len() {
            break;
        }
    }
    Ok(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hashing_path_agrees_with_blake3() {
        let dir = tempfile::tempdir().unwrap();
        // Sizes around each threshold: small read, chunked, overlapped (two threads).
        for size in [
            0usize,
            100,
            (1 << 20) + 3,
            (16 << 20) + 5,
            (64 << 20) + (16 << 20) + 7,
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let p = dir.path().join(format!("f{size}"));
            std::fs::write(&p, &data).unwrap();
            let want = *blake3::hash(&data).as_bytes();
            assert_eq!(
                hash_file(&p, size as u64).unwrap(),
                want,
                "hash_file {size}"
            );
            assert_eq!(
                hash_file_streaming(&p, size as u64).unwrap(),
                want,
                "streaming {size}"
            );
        }
    }
}
