//! Content hashes of input files, blobs and outputs: blake3 in bounded memory; inputs
//! of 16 MiB+ as parallel subtrees read with `pread`. Inputs are read, never
//! memory-mapped: a file truncated under a mapping would kill idem with SIGBUS.

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

/// Inputs at least this large are hashed as blake3 subtrees in parallel.
const SUBTREE_THRESHOLD: u64 = 16 << 20;
/// The largest subtree one worker reads and hashes in one go: a power of two (so every
/// leaf is a whole blake3 subtree). Measured on the 1 GB bench input (2-core EPYC): 16,
/// 32, 64 KiB leaves 1.03, 0.90, 0.84 × `b3sum`; 128 and 256 KiB 1.7 × (the kernel's
/// copy out of the page cache then costs four times the system time).
const LEAF_LEN: u64 = 64 << 10;

/// The blake3 of an input file (dependency or program). Read, never mapped: a file
/// truncated while mapped kills the reader with SIGBUS (measured: 10 of 30 runs died
/// while a 2 GB input was being rewritten), and idem must never fail a step, or lose a
/// command's exit code in its post-run check, because an input moved under it.
pub fn hash_file(path: &Path, size: u64) -> std::io::Result<[u8; 32]> {
    if size < SUBTREE_THRESHOLD {
        return hash_file_streaming(path, size);
    }
    let file = std::fs::File::open(path)?;
    match hash_subtrees(&file, size, LEAF_LEN) {
        // Shrunk while we read it: hash what is there now, in order. The caller's
        // second stat sees the size change and never trusts this hash.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => hash_file_streaming(path, size),
        other => other,
    }
}

/// The blake3 of the first `size` bytes of `file`, split into blake3's own subtrees:
/// each rayon worker reads a leaf of at most `leaf_len` bytes with `pread` into its own
/// buffer and hashes it; the chaining values are merged in tree order. A file shorter
/// than `size` is an `UnexpectedEof` error; bytes past `size` are not read (a file that
/// grew is caught by the caller's second stat).
fn hash_subtrees(file: &std::fs::File, size: u64, leaf_len: u64) -> std::io::Result<[u8; 32]> {
    use blake3::hazmat::{left_subtree_len, merge_subtrees_root, Mode};
    debug_assert!(leaf_len.is_power_of_two() && leaf_len >= blake3::CHUNK_LEN as u64);
    if size <= leaf_len {
        return with_leaf(file, 0, size, |bytes| {
            *blake3::Hasher::new().update(bytes).finalize().as_bytes()
        });
    }
    let left_len = left_subtree_len(size);
    let (left, right) = rayon::join(
        || subtree_cv(file, 0, left_len, leaf_len),
        || subtree_cv(file, left_len, size - left_len, leaf_len),
    );
    Ok(*merge_subtrees_root(&left?, &right?, Mode::Hash).as_bytes())
}

/// The chaining value of the (non-root) subtree of `len` bytes at `offset`: `offset` is
/// a multiple of the subtree's largest possible size, as every split by
/// `left_subtree_len` guarantees, so hashing it alone is valid.
fn subtree_cv(
    file: &std::fs::File,
    offset: u64,
    len: u64,
    leaf_len: u64,
) -> std::io::Result<blake3::hazmat::ChainingValue> {
    use blake3::hazmat::{left_subtree_len, merge_subtrees_non_root, HasherExt, Mode};
    if len <= leaf_len {
        return with_leaf(file, offset, len, |bytes| {
            blake3::Hasher::new()
                .set_input_offset(offset)
                .update(bytes)
                .finalize_non_root()
        });
    }
    let left_len = left_subtree_len(len);
    let (left, right) = rayon::join(
        || subtree_cv(file, offset, left_len, leaf_len),
        || subtree_cv(file, offset + left_len, len - left_len, leaf_len),
    );
    Ok(merge_subtrees_non_root(&left?, &right?, Mode::Hash))
}

thread_local! {
    /// Each worker's leaf buffer, reused for every leaf it reads: no allocation per leaf.
    static LEAF_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads `len` bytes at `offset` into this thread's buffer and hands them to `hash`.
/// `hash` never re-enters rayon, so the buffer is never borrowed twice.
fn with_leaf<T>(
    file: &std::fs::File,
    offset: u64,
    len: u64,
    hash: impl FnOnce(&[u8]) -> T,
) -> std::io::Result<T> {
    use std::os::unix::fs::FileExt;
    let len = usize::try_from(len).map_err(std::io::Error::other)?;
    LEAF_BUF.with_borrow_mut(|buf| {
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let bytes = &mut buf[..len];
        file.read_exact_at(bytes, offset)?;
        Ok(hash(bytes))
    })
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

    fn pattern(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn every_hashing_path_agrees_with_blake3() {
        let dir = tempfile::tempdir().unwrap();
        const MIB: usize = 1 << 20;
        let leaf = LEAF_LEN as usize;
        // Below, at and above: the streaming path, the subtree threshold, whole leaves,
        // several power-of-two subtrees, and a size that is no power of two at any level.
        for size in [
            0usize,
            100,
            MIB + 3,
            16 * MIB - 1,
            16 * MIB,
            16 * MIB + 1,
            16 * MIB + 1024,
            16 * MIB + leaf,
            16 * MIB + leaf + 1,
            32 * MIB,
            33 * MIB,
            33 * MIB + 7 * leaf + 1023,
        ] {
            let data = pattern(size);
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

    #[test]
    fn subtrees_agree_with_blake3_at_every_small_boundary() {
        // Small leaves put chunk, leaf and subtree boundaries at small sizes, so every
        // shape of the tree (one chunk, a partial last chunk, a lone right leaf, uneven
        // depths) is checked against the reference without big files.
        let dir = tempfile::tempdir().unwrap();
        let data = pattern(70 * 1024 + 1);
        let p = dir.path().join("f");
        std::fs::write(&p, &data).unwrap();
        let file = std::fs::File::open(&p).unwrap();
        let mut sizes = vec![0usize, 1, 1023, 1024, 1025, 2047, 2048, 2049];
        for k in [
            3usize, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 70,
        ] {
            sizes.extend([k * 1024 - 1, k * 1024, k * 1024 + 1]);
        }
        for leaf in [1024u64, 2048, 4096, 16384] {
            for &size in &sizes {
                assert_eq!(
                    hash_subtrees(&file, size as u64, leaf).unwrap(),
                    *blake3::hash(&data[..size]).as_bytes(),
                    "size {size}, leaf {leaf}"
                );
            }
        }
    }

    #[test]
    fn a_file_shorter_than_its_stat_is_an_error_and_hash_file_still_answers() {
        let dir = tempfile::tempdir().unwrap();
        let data = pattern(20 << 20);
        let p = dir.path().join("f");
        std::fs::write(&p, &data).unwrap();
        let file = std::fs::File::open(&p).unwrap();
        // As if truncated after the stat: the size the caller passes is too big.
        let err = hash_subtrees(&file, 21 << 20, LEAF_LEN).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(
            hash_file(&p, 21 << 20).unwrap(),
            *blake3::hash(&data).as_bytes(),
            "falls back to hashing what is there"
        );
        // Grown after the stat: only the stated bytes count.
        assert_eq!(
            hash_file(&p, 18 << 20).unwrap(),
            *blake3::hash(&data[..18 << 20]).as_bytes()
        );
    }
}
