//! Integration tests for inputs of 16 MiB and more, which idem hashes as parallel
//! blake3 subtrees read with `pread`: one edited byte is a miss, and an input truncated
//! while idem hashes it never crashes idem (no mmap, so no SIGBUS).

use crate::common::{assert_hit, assert_miss, stderr, Ws};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, Ordering};

const MIB: usize = 1 << 20;
const COUNTING: &[&str] = &["-v", "-f", "big.bin", "--", "sh", "-c", "echo run >> count"];

fn big_content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 253) as u8).collect()
}

#[test]
fn a_40_mib_input_edited_in_its_last_byte_is_a_miss_and_replays_otherwise() {
    let ws = Ws::new();
    let mut data = big_content(40 * MIB);
    ws.write("big.bin", &data);
    assert_miss(&ws.run(COUNTING));
    assert_hit(&ws.run(COUNTING));
    assert_eq!(ws.count("count"), 1);

    *data.last_mut().unwrap() ^= 1;
    ws.write("big.bin", &data);
    let edited = ws.run(COUNTING);
    assert_miss(&edited);
    assert!(
        stderr(&edited).contains("file big.bin changed"),
        "{}",
        stderr(&edited)
    );
    assert_eq!(ws.count("count"), 2, "the last byte is part of the state");
    assert_hit(&ws.run(COUNTING));
    assert_eq!(ws.count("count"), 2, "unchanged since: replayed");

    // Back to the first content: the first record replays.
    *data.last_mut().unwrap() ^= 1;
    ws.write("big.bin", &data);
    assert_hit(&ws.run(COUNTING));
    assert_eq!(ws.count("count"), 2);
}

#[test]
fn truncating_a_big_input_while_idem_hashes_it_never_crashes_idem() {
    let ws = Ws::new();
    let len = 40 * MIB as u64;
    ws.write("big.bin", big_content(len as usize));
    let path = ws.path("big.bin");
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        // Shrinks and regrows the input over and over (bounded, whatever the timing):
        // some idem runs stat one size and read another.
        s.spawn(|| {
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            for i in 0..1_000_000u64 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                f.set_len([0, 1, 17 * MIB as u64 + 5, len / 2][i as usize % 4])
                    .unwrap();
                f.set_len(len).unwrap();
            }
        });
        // Stops the writer even when an assertion below fails.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&done);
        for _ in 0..8 {
            let o = ws.run(COUNTING);
            assert_eq!(o.status.signal(), None, "idem was killed: {}", stderr(&o));
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            // A moving input is not a cache fault: hashed as it is, then distrusted.
            for bad in ["panicked", "uncached", "cannot read"] {
                assert!(!stderr(&o).contains(bad), "{}", stderr(&o));
            }
        }
    });
    // Once the file holds still, its hash is trusted again: a run then a replay.
    ws.write("big.bin", big_content(len as usize));
    ws.run(COUNTING);
    assert_hit(&ws.run(COUNTING));
}
