//! Batched blob transfers against real servers (Redis, a Redis Cluster, nginx WebDAV):
//! a record of hundreds of output files travels in a few round trips with every file
//! byte-identical, and a blob the server lies about is never replayed.

use super::{idem, output, warnings, webdav, Fleet, TOKEN};
use crate::common::servers::Redis;
use crate::common::{stderr, stdout, Ws};

/// 300 files of 0 B to 41 KB (more than one Redis pipeline and one HTTP worker's share),
/// one of 9 MB (three Redis chunks, more than one pipeline's bytes) and an empty one.
const MANY: &str = r#"echo run >> "$0"; mkdir -p dist/sub; i=0; while [ $i -lt 300 ]; do head -c $((i * 137)) /dev/urandom > dist/sub/f$i; i=$((i+1)); done; head -c 9000000 /dev/urandom > dist/big; : > dist/empty; echo done"#;

fn many_cmd(fleet: &Fleet) -> [&str; 4] {
    ["sh", "-c", MANY, fleet.counter.to_str().expect("utf-8")]
}

/// Every file under `dist/` of `a` is in `b`, byte for byte, and nothing else is.
fn assert_same_dist(a: &Ws, b: &Ws) {
    let list = |ws: &Ws| {
        let mut v: Vec<String> = walk(&ws.path("dist"))
            .into_iter()
            .map(|p| {
                p.strip_prefix(ws.root())
                    .expect("under the workspace")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        v.sort();
        v
    };
    let (la, lb) = (list(a), list(b));
    assert_eq!(la, lb, "different file lists");
    assert_eq!(la.len(), 302);
    for f in &la {
        assert!(a.read(f) == b.read(f), "{f} differs");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A uploads the outcome of `MANY`; B, with an empty cache, replays it from the remote.
fn many_files_travel(remote: &str, env: &[(&str, &str)]) {
    let fleet = Fleet::new();
    let (a, b) = (fleet.machine(), fleet.machine());
    let cmd = many_cmd(&fleet);
    let ra = output(idem(&a, remote, &["-o", "dist/", "-v"], env, &cmd));
    assert_eq!(ra.status.code(), Some(0), "{}", stderr(&ra));
    assert!(stderr(&ra).contains("uploaded"), "{}", stderr(&ra));
    let rb = output(idem(&b, remote, &["-o", "dist/", "-v"], env, &cmd));
    assert_eq!(rb.status.code(), Some(0), "{}", stderr(&rb));
    assert_eq!(fleet.runs(), 1, "B ran the step: {}", stderr(&rb));
    assert!(
        stderr(&rb).contains("hit from the remote cache"),
        "{}",
        stderr(&rb)
    );
    assert_eq!(warnings(&rb), 0, "{}", stderr(&rb));
    assert_eq!(stdout(&rb), "done\n");
    assert_same_dist(&a, &b);
}

#[test]
fn many_output_files_travel_through_redis() {
    let Some(redis) = Redis::start() else { return };
    many_files_travel(&redis.url(), &[]);
}

#[test]
fn many_output_files_travel_through_a_redis_cluster() {
    let Some(redis) = Redis::start_cluster() else {
        return;
    };
    many_files_travel(&redis.cluster_url(), &[]);
}

#[test]
fn many_output_files_travel_through_webdav() {
    let Some(nginx) = webdav() else { return };
    many_files_travel(&nginx.url("/cache/team"), &[("IDEM_REMOTE_TOKEN", TOKEN)]);
}

/// A uploads; `lie` replaces the stored bytes of A's `dist/sub/f200` with as many other
/// bytes; B must run the step itself (one warning), never restore the lie.
fn a_lie_is_never_replayed(remote: &str, env: &[(&str, &str)], lie: impl Fn(&str, &[u8])) {
    let fleet = Fleet::new();
    let (a, b) = (fleet.machine(), fleet.machine());
    let cmd = many_cmd(&fleet);
    let ra = output(idem(&a, remote, &["-o", "dist/"], env, &cmd));
    assert_eq!(ra.status.code(), Some(0), "{}", stderr(&ra));
    let truth = a.read("dist/sub/f200");
    let fake: Vec<u8> = truth.iter().map(|b| b ^ 0x5a).collect();
    lie(&blake3::hash(&truth).to_hex(), &fake);
    let rb = output(idem(&b, remote, &["-o", "dist/"], env, &cmd));
    assert_eq!(rb.status.code(), Some(0), "{}", stderr(&rb));
    assert_eq!(
        fleet.runs(),
        2,
        "a lying blob was replayed: {}",
        stderr(&rb)
    );
    assert_eq!(warnings(&rb), 1, "{}", stderr(&rb));
    assert!(
        stderr(&rb).contains("does not match its hash"),
        "{}",
        stderr(&rb)
    );
    assert_ne!(b.read("dist/sub/f200"), fake);
    assert_eq!(stdout(&rb), "done\n");
}

#[test]
fn a_lying_redis_blob_in_a_batch_is_never_replayed() {
    let Some(redis) = Redis::start() else { return };
    a_lie_is_never_replayed(&redis.url(), &[], |hash, fake| {
        redis.set(&format!("idem:v1:blob:{{{hash}}}"), fake)
    });
}

#[test]
fn a_lying_webdav_blob_in_a_batch_is_never_replayed() {
    let Some(nginx) = webdav() else { return };
    a_lie_is_never_replayed(
        &nginx.url("/cache/team"),
        &[("IDEM_REMOTE_TOKEN", TOKEN)],
        |hash, fake| {
            std::fs::write(nginx.file(&format!("cache/team/idem/v1/blob/{hash}")), fake)
                .expect("overwrite the blob")
        },
    );
}

/// A blob already in A's cache (stored by an earlier run, not written by this one) is
/// read back and verified before it is uploaded: damaged on disk, it stops the upload,
/// and B runs the step instead of replaying the damage.
fn a_damaged_local_blob_is_never_uploaded(remote: &str, env: &[(&str, &str)]) {
    const BYTES: &str = "the same bytes from two commands\n";
    let fleet = Fleet::new();
    let (a, b) = (fleet.machine(), fleet.machine());
    let first = a.run(&[
        "--",
        "sh",
        "-c",
        "printf 'the same bytes from two commands\\n'",
    ]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(stdout(&first), BYTES);
    let hash = blake3::hash(BYTES.as_bytes()).to_hex();
    let blob = a.cache.join("blobs").join(&hash[..2]).join(&hash[2..]);
    let damaged: Vec<u8> = BYTES.bytes().map(|c| c ^ 0x20).collect();
    std::fs::write(&blob, &damaged).expect("damage the local blob");
    // Another command with the same stdout: its capture finds that blob already stored.
    let cmd = [
        "sh",
        "-c",
        r#"echo run >> "$0"; printf 'the same bytes from two commands\n'"#,
        fleet.counter.to_str().expect("utf-8"),
    ];
    let ra = output(idem(&a, remote, &["-v"], env, &cmd));
    let err = stderr(&ra);
    assert_eq!(ra.status.code(), Some(0), "{err}");
    assert_eq!(stdout(&ra), BYTES);
    assert!(err.contains("not uploading record"), "{err}");
    assert!(err.contains("corrupt"), "{err}");
    assert!(!err.contains("uploaded to the remote"), "{err}");
    let rb = output(idem(&b, remote, &[], env, &cmd));
    assert_eq!(rb.status.code(), Some(0), "{}", stderr(&rb));
    assert_eq!(fleet.runs(), 2, "B replayed: {}", stderr(&rb));
    assert_eq!(stdout(&rb), BYTES);
}

#[test]
fn a_damaged_local_blob_is_never_uploaded_to_redis() {
    let Some(redis) = Redis::start() else { return };
    a_damaged_local_blob_is_never_uploaded(&redis.url(), &[]);
}

#[test]
fn a_damaged_local_blob_is_never_uploaded_to_webdav() {
    let Some(nginx) = webdav() else { return };
    a_damaged_local_blob_is_never_uploaded(
        &nginx.url("/cache/team"),
        &[("IDEM_REMOTE_TOKEN", TOKEN)],
    );
}
