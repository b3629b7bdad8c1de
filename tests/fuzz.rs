//! The stable fuzz harness: every target in fuzz/targets.rs over a seeded stream of
//! inputs (random bytes, and mutations of valid encodings: bit flips, truncations,
//! splices, huge length fields). A counting allocator checks that no decoder allocates
//! more than a small multiple of the bytes it was given. Never depends on the clock.
//!
//! `IDEM_FUZZ_ITERS=N` (per target, default 2,000) and `IDEM_FUZZ_SEED=S` make a long run.

#[path = "it/rng.rs"]
mod rng;
#[path = "../fuzz/targets.rs"]
mod targets;

use rng::Rng;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the largest single allocation made on this thread while measuring.
struct Counting;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

fn note(size: usize) {
    let _ = MEASURING.try_with(|m| {
        if m.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The largest single allocation `f` made.
fn largest_allocation(f: impl FnOnce()) -> usize {
    LARGEST.with(|l| l.set(0));
    MEASURING.with(|m| m.set(true));
    f();
    MEASURING.with(|m| m.set(false));
    LARGEST.with(|l| l.get())
}

/// What a decoder may allocate for `len` input bytes: a Vec of decoded items costs at
/// most a few times the bytes that encoded them, never what a length field claims.
fn allocation_cap(len: usize) -> usize {
    16 * len + 4096
}

/// A mutation of `seed` (or, one time in eight, fresh random bytes).
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    if seed.is_empty() || rng.below(8) == 0 {
        let n = rng.below(256);
        return rng.bytes(n);
    }
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        if v.is_empty() {
            break;
        }
        let at = rng.below(v.len());
        match rng.below(6) {
            0 => v[at] ^= 1 << rng.below(8),
            1 => v.truncate(at),
            2 => {
                // A length or count field claiming far more than is there.
                const HUGE: [u64; 5] = [u64::MAX, 1 << 62, 1 << 40, 1 << 31, 1 << 20];
                let val = HUGE[rng.below(HUGE.len())].to_le_bytes();
                let end = (at + 8).min(v.len());
                v[at..end].copy_from_slice(&val[..end - at]);
            }
            3 => {
                let extra = rng.below(16);
                let junk = rng.bytes(extra);
                v.splice(at..at, junk);
            }
            4 => {
                let end = (at + 1 + rng.below(32)).min(v.len());
                let dup = v[at..end].to_vec();
                v.splice(at..at, dup);
            }
            _ => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at..end);
            }
        }
    }
    v
}

fn iterations() -> usize {
    rng::iterations("IDEM_FUZZ_ITERS", 2000)
}

fn seed(target: &str) -> u64 {
    let base: u64 = std::env::var("IDEM_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x1de3_5eed);
    base ^ u64::from_le_bytes(
        blake3::hash(target.as_bytes()).as_bytes()[..8]
            .try_into()
            .unwrap(),
    ) | 1
}

/// Runs `target` over `iters` inputs derived from `corpus`; an input that panics or
/// over-allocates is printed (hex) so it can be kept as a regression case.
fn fuzz(name: &str, iters: usize, corpus: &[Vec<u8>], mut target: impl FnMut(&[u8])) {
    let mut rng = Rng(seed(name));
    for i in 0..iters {
        let input = if i < corpus.len() {
            corpus[i].clone()
        } else {
            let pick = rng.below(corpus.len());
            mutate(&mut rng, &corpus[pick])
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            largest_allocation(|| target(&input))
        }));
        match result {
            Ok(largest) => assert!(
                largest <= allocation_cap(input.len()),
                "{name}: {largest} bytes allocated for a {}-byte input {}",
                input.len(),
                idem::encode::hex(&input)
            ),
            Err(_) => panic!(
                "{name}: panicked on input {} (iteration {i})",
                idem::encode::hex(&input)
            ),
        }
    }
    eprintln!("fuzz {name}: {iters} executions, seed {:#x}", seed(name));
}

/// Valid encodings to mutate: generated records (so mutations start past the magic).
fn record_corpus() -> Vec<Vec<u8>> {
    let mut rng = Rng(7);
    (0..32)
        .map(|_| targets::Input::new(&rng.bytes(400)).record().encode())
        .collect()
}

#[test]
fn fuzz_record_decoding() {
    fuzz(
        "record",
        iterations(),
        &record_corpus(),
        targets::record_bytes,
    );
}

#[test]
fn fuzz_record_roundtrip() {
    let mut rng = Rng(11);
    let corpus = vec![rng.bytes(400)];
    // Roundtrip allocations are the encoder's, proportional to the generated record.
    fuzz("record_roundtrip", iterations(), &corpus, |d| {
        targets::record_roundtrip(d)
    });
}

#[test]
fn fuzz_record_fields() {
    let mut rng = Rng(19);
    let corpus: Vec<Vec<u8>> = (0..8).map(|_| rng.bytes(400)).collect();
    fuzz(
        "record_fields",
        iterations(),
        &corpus,
        targets::record_fields,
    );
}

#[test]
fn fuzz_remote_envelope() {
    let key = idem::store::remote::mac_key("fuzz");
    let corpus: Vec<Vec<u8>> = record_corpus()
        .iter()
        .flat_map(|r| {
            [
                idem::store::remote::seal(Some(&key), r),
                idem::store::remote::seal(None, r),
            ]
        })
        .collect();
    fuzz(
        "remote_envelope",
        iterations(),
        &corpus,
        targets::remote_envelope,
    );
}

#[test]
fn fuzz_stat_cache() {
    let mut rng = Rng(13);
    let corpus: Vec<Vec<u8>> = (0..16)
        .map(|_| {
            targets::Input::new(&rng.bytes(600))
                .stat_cache()
                .encode()
                .to_vec()
        })
        .collect();
    fuzz(
        "stat_cache",
        iterations(),
        &corpus,
        targets::stat_cache_bytes,
    );
    fuzz(
        "stat_cache_roundtrip",
        iterations(),
        &[rng.bytes(600)],
        targets::stat_cache_roundtrip,
    );
}

#[test]
fn fuzz_trace_entries() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join("out/x")).unwrap();
    std::fs::write(ws.path().join("a"), "a").unwrap();
    std::fs::write(ws.path().join("src"), "s").unwrap();
    std::os::unix::fs::symlink("a", ws.path().join("link")).unwrap();
    let mut rng = Rng(17);
    let corpus: Vec<Vec<u8>> = (0..16)
        .map(|_| {
            let entries = targets::Input::new(&rng.bytes(600)).trace_entries();
            let mut e = idem::encode::Encoder::new();
            idem::deps::trace::encode_entries(&mut e, &entries);
            e.finish()
        })
        .collect();
    fuzz("trace_entries", iterations(), &corpus, |d| {
        targets::trace_entries_bytes(ws.path(), d)
    });
    fuzz(
        "trace_entries_roundtrip",
        iterations(),
        &[rng.bytes(600)],
        |d| targets::trace_entries_roundtrip(ws.path(), d),
    );
}

#[test]
fn fuzz_url_states() {
    let corpus = vec![
        b"\x10etag:\"a;b\";length:3".to_vec(),
        b"\x05last-modified:Mon, 01 Jan 2024;length:10;body:blake3:00ff".to_vec(),
        b"\x00blake3:abcdef0123456789abcdef".to_vec(),
    ];
    fuzz("url_states", iterations(), &corpus, targets::url_states);
}

#[test]
fn fuzz_specs() {
    let corpus = vec![
        b"src/**/*.c\0!*.o\0out\0/fuzz/ws/out/**".to_vec(),
        b"../x\0!/abs/*\0{a,b}\0[z\0\xff\xfe/*".to_vec(),
        b"./out/\0sub/../../ws/out\0!\0".to_vec(),
    ];
    fuzz("specs", iterations(), &corpus, targets::specs);
}

#[test]
fn fuzz_units() {
    let corpus = vec![
        b"30s".to_vec(),
        b"1.5h".to_vec(),
        b"500MiB".to_vec(),
        b"18446744073709551615K".to_vec(),
        b"1e308d".to_vec(),
    ];
    fuzz("units", iterations(), &corpus, targets::units);
}

#[test]
fn fuzz_hits_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = idem::store::sqlite::Db::open(dir.path()).unwrap();
    let corpus = vec![
        b"1 1 100 5 hits\n1 2 100 5 remote_hits\n".to_vec(),
        b"1 9223372036854775807 -1 99999999999999999999 hits\n\xff\n".to_vec(),
    ];
    // SQLite per iteration: a tenth of the iterations keeps this target under a second.
    fuzz("hits_log", iterations() / 10, &corpus, |d| {
        targets::hits_log(dir.path(), &mut db, d)
    });
}

#[test]
fn fuzz_restore_confinement() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(17);
    let corpus: Vec<Vec<u8>> = (0..16).map(|_| rng.bytes(200)).collect();
    fuzz("restore_confined", iterations() / 4, &corpus, |d| {
        targets::restore_confined(dir.path(), d)
    });
}
