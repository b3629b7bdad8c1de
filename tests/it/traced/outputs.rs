//! Files a traced command writes are its outputs, found without `-o`: created through a
//! temporary renamed into place (the way compilers, `install` and editors write), they are
//! captured and restored on a hit; temporaries that are gone at the end are not.

use super::*;
use crate::common::{assert_hit, assert_miss, Ws};

/// `out.txt` did not exist: renamed into place, deleted, restored by the hit.
#[test]
fn an_output_renamed_into_place_is_restored_after_deletion() {
    let ws = Ws::new();
    ws.write("src.txt", "payload\n");
    let cmd = [
        "--",
        "sh",
        "-c",
        "tr a-z A-Z < src.txt > out.txt.tmp && mv out.txt.tmp out.txt",
    ];
    let (o, _) = traced_ok(&ws, &cmd);
    assert_miss(&o);
    assert_eq!(ws.read("out.txt"), b"PAYLOAD\n");

    std::fs::remove_file(ws.path("out.txt")).unwrap();
    let (o, _) = traced_ok(&ws, &cmd);
    assert_hit(&o);
    assert_eq!(ws.read("out.txt"), b"PAYLOAD\n", "restored by the hit");
    assert!(
        !ws.path("out.txt.tmp").exists(),
        "the temporary was renamed away during the run: it is not an output"
    );

    // The input that was read still decides.
    ws.write("src.txt", "other\n");
    let (o, _) = traced_ok(&ws, &cmd);
    assert_miss(&o);
    assert_eq!(ws.read("out.txt"), b"OTHER\n");
}

/// `out.txt` existed: the command renames over it. Its prior existence is an input (`mv`
/// looks before it leaps), its content is not; a hit puts the recorded content back over
/// whatever is there.
#[test]
fn an_output_renamed_over_an_existing_file() {
    let ws = Ws::new();
    ws.write("src.txt", "payload\n");
    ws.write("out.txt", "stale\n");
    let cmd = [
        "--",
        "sh",
        "-c",
        "tr a-z A-Z < src.txt > out.txt.tmp && mv -f out.txt.tmp out.txt",
    ];
    let (o, _) = traced_ok(&ws, &cmd);
    assert_miss(&o);
    assert_eq!(ws.read("out.txt"), b"PAYLOAD\n");
    let (o, _) = traced_ok(&ws, &cmd);
    assert_hit(&o);

    ws.write("out.txt", "clobbered by hand\n");
    let (o, _) = traced_ok(&ws, &cmd);
    assert_hit(&o);
    assert_eq!(ws.read("out.txt"), b"PAYLOAD\n", "restored over the edit");
    assert!(!ws.path("out.txt.tmp").exists());
}
