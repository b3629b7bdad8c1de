//! Fuzz targets shared by the stable harness (tests/fuzz.rs, run by `cargo test`) and
//! the cargo-fuzz crate (fuzz/fuzz_targets/, nightly + libFuzzer). Each target takes
//! untrusted bytes and asserts the decoder's properties; it must never touch anything
//! outside the temporary directories it is given.

#![allow(dead_code)] // each cargo-fuzz binary uses one target

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use idem::deps::files::{FileSpecs, StatCache};
use idem::deps::stat_cache::StatEntry;
use idem::deps::trace::{decode_entries, encode_entries, Check, Checker, Entry, Fingerprint};
use idem::deps::{DepState, Kind};
use idem::outputs::OutputSpecs;
use idem::spec::Workspace;
use idem::store::record::{BlobRef, OutputEntry, Record, STDERR, STDOUT};
use idem::store::remote::{mac_key, seal, unseal};

/// Structured values carved out of fuzz bytes (what `arbitrary::Unstructured` does):
/// an exhausted input yields zeros, so every byte string is a valid recipe.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    pub fn u64(&mut self) -> u64 {
        let mut v = [0u8; 8];
        for b in &mut v {
            *b = self.byte();
        }
        u64::from_le_bytes(v)
    }

    /// A small number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.byte() as usize % n
    }

    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.byte()).collect()
    }

    pub fn string(&mut self, max: usize) -> String {
        String::from_utf8_lossy(&self.bytes(max)).into_owned()
    }

    pub fn hash(&mut self) -> [u8; 32] {
        let mut h = [0u8; 32];
        for b in &mut h {
            *b = self.byte();
        }
        h
    }

    /// A path-ish byte string: mostly from a small alphabet that includes the
    /// characters that matter to confinement (`/`, `.`, `..`), sometimes raw bytes.
    pub fn path(&mut self) -> Vec<u8> {
        const PARTS: [&[u8]; 10] = [
            b"out", b"/", b"..", b".", b"link", b"a", b"\xff", b"//", b"out/x", b"src",
        ];
        let n = self.below(6);
        let mut p = Vec::new();
        for _ in 0..n {
            if self.below(8) == 0 {
                p.push(self.byte());
            } else {
                if !p.is_empty() && self.below(2) == 0 {
                    p.push(b'/');
                }
                p.extend_from_slice(PARTS[self.below(PARTS.len())]);
            }
        }
        p
    }

    fn blob(&mut self) -> BlobRef {
        BlobRef {
            hash: self.hash(),
            size: self.u64() >> self.below(64),
        }
    }

    pub fn output(&mut self) -> OutputEntry {
        match self.below(4) {
            0 => OutputEntry::File {
                path: self.path(),
                mode: self.u64() as u32 & 0o7777,
                blob: self.blob(),
            },
            1 => OutputEntry::Symlink {
                path: self.path(),
                target: self.path(),
            },
            2 => OutputEntry::Dir {
                path: self.path(),
                mode: self.u64() as u32 & 0o7777,
            },
            _ => OutputEntry::Absent { spec: self.path() },
        }
    }

    /// A record that satisfies the encoding's invariants (chunks add up to the sizes).
    pub fn record(&mut self) -> Record {
        let mut chunks = Vec::new();
        let (mut out, mut err) = (0u64, 0u64);
        for _ in 0..self.below(6) {
            let stream = if self.below(2) == 0 { STDOUT } else { STDERR };
            let len = self.u64() >> 8; // sums of a few stay far from u64::MAX
            if stream == STDOUT {
                out += len;
            } else {
                err += len;
            }
            chunks.push((stream, len));
        }
        let kinds = [
            Kind::File,
            Kind::Env,
            Kind::Url,
            Kind::Program,
            Kind::Stdin,
            Kind::TraceRead,
            Kind::TraceAbsent,
            Kind::TraceListing,
        ];
        Record {
            task_key: self.hash(),
            state_key: self.hash(),
            exec_key: (self.below(2) == 0).then(|| self.string(8)),
            created_ns: self.u64() as i64,
            duration_ns: self.u64(),
            exit_code: self.u64() as i32,
            stdout: BlobRef {
                hash: self.hash(),
                size: out,
            },
            stderr: BlobRef {
                hash: self.hash(),
                size: err,
            },
            chunks,
            outputs: (0..self.below(5)).map(|_| self.output()).collect(),
            deps: (0..self.below(5))
                .map(|_| {
                    let kind = kinds[self.below(kinds.len())];
                    DepState::new(kind, self.bytes(12), self.bytes(12))
                })
                .collect(),
            argv: (0..self.below(4)).map(|_| self.bytes(6)).collect(),
            cwd: self.bytes(8),
            host: self.string(8),
            version: self.string(8),
            // Task names are never empty (an empty one is encoded as "no task").
            task: (self.below(2) == 0).then(|| format!("t{}", self.string(8))),
            side_effects: (0..self.below(3)).map(|_| self.bytes(8)).collect(),
        }
    }

    /// A traced entry list: any traced kind, path-ish names, states that look like the
    /// real ones (or not), any fingerprint.
    pub fn trace_entries(&mut self) -> Vec<Entry> {
        const STATES: [&[u8]; 8] = [
            b"absent",
            b"blake3:00",
            b"stat:file size=1 mode=644 mtime=1",
            b"lstat:symlink:x",
            b"both:absent <- symlink:a <- b",
            b"listing:00/-a/?b",
            b"stat:exists",
            b"",
        ];
        (0..self.below(6))
            .map(|_| {
                let kind = Kind::from_u8(10 + self.below(6) as u8).expect("a traced kind");
                let mut name = self.path();
                name.retain(|&b| b != 0);
                if name.is_empty() {
                    name.push(b'a');
                }
                let mut state = STATES[self.below(STATES.len())].to_vec();
                state.extend(self.bytes(8));
                Entry {
                    dep: DepState::new(kind, name, state),
                    fp: Fingerprint {
                        dev: self.u64(),
                        ino: self.u64(),
                        size: self.u64(),
                        mtime_ns: self.u64() as i64,
                        ctime_ns: self.u64() as i64,
                        mode: self.u64() as u32,
                        observed_at_ns: self.u64() as i64,
                    },
                }
            })
            .collect()
    }

    pub fn stat_cache(&mut self) -> StatCache {
        let entries: Vec<(Vec<u8>, StatEntry)> = (0..self.below(6))
            .map(|_| {
                let path = self.path();
                let e = StatEntry {
                    dev: self.u64(),
                    ino: self.u64(),
                    size: self.u64(),
                    mtime_ns: self.u64() as i64,
                    ctime_ns: self.u64() as i64,
                    mode: self.u64() as u32,
                    hash: self.hash(),
                    hashed_at_ns: self.u64() as i64,
                };
                (path, e)
            })
            .collect();
        StatCache::from_entries(entries.iter().map(|(p, e)| (p.as_slice(), *e)))
    }
}

/// Record bytes from a cache or a remote: decoding never panics, and what decodes
/// re-encodes to a record that decodes to itself; replay decoding agrees.
pub fn record_bytes(data: &[u8]) {
    let full = Record::decode(data);
    let replay = Record::decode_for_replay(data);
    assert_eq!(
        full.is_ok(),
        replay.is_ok(),
        "decode and decode_for_replay disagree"
    );
    if let (Ok(full), Ok(replay)) = (full, replay) {
        let mut without_deps = full.clone();
        without_deps.deps.clear();
        assert_eq!(replay, without_deps);
        assert_eq!(Record::decode(&full.encode()).expect("re-decode"), full);
        let _ = full.blobs();
        let _ = full.display_argv();
    }
}

/// decode(encode(x)) == x for generated records, through both decoders and through a
/// remote envelope with and without a MAC.
pub fn record_roundtrip(data: &[u8]) {
    let rec = Input::new(data).record();
    let bytes = rec.encode();
    assert_eq!(Record::decode(&bytes).expect("decode(encode(x))"), rec);
    let mut without_deps = rec.clone();
    without_deps.deps.clear();
    assert_eq!(
        Record::decode_for_replay(&bytes).expect("replay decode"),
        without_deps
    );
    let key = mac_key("fuzz");
    for k in [None, Some(&key)] {
        let sealed = seal(k, &bytes);
        assert_eq!(unseal(k, &sealed).expect("unseal(seal(x))"), &bytes[..]);
    }
    let other = mac_key("another key");
    assert!(unseal(Some(&other), &seal(Some(&key), &bytes)).is_err());
    assert!(unseal(Some(&key), &seal(None, &bytes)).is_err());
}

/// Records whose fields are generated without the encoder's invariants (chunk lengths
/// anywhere in u64, sizes set to their wrapping sums): decoding never panics, and an
/// accepted record's chunks add up to its stream sizes in exact arithmetic.
pub fn record_fields(data: &[u8]) {
    let mut input = Input::new(data);
    let mut rec = input.record();
    rec.chunks = (0..input.below(5))
        .map(|_| {
            let stream = if input.below(2) == 0 { STDOUT } else { STDERR };
            let len = match input.below(3) {
                0 => u64::MAX - input.u64() % 16,
                1 => input.u64(),
                _ => input.u64() % 64,
            };
            (stream, len)
        })
        .collect();
    let wrapping = |s: u8| {
        rec.chunks
            .iter()
            .filter(|(id, _)| *id == s)
            .fold(0u64, |acc, (_, n)| acc.wrapping_add(*n))
    };
    rec.stdout.size = wrapping(STDOUT);
    rec.stderr.size = wrapping(STDERR);
    if let Ok(back) = Record::decode(&rec.encode()) {
        for (stream, size) in [(STDOUT, back.stdout.size), (STDERR, back.stderr.size)] {
            let exact: u128 = back
                .chunks
                .iter()
                .filter(|(id, _)| *id == stream)
                .map(|(_, n)| *n as u128)
                .sum();
            assert_eq!(exact, size as u128, "accepted chunks that do not add up");
        }
    }
}

/// A remote's answer: any envelope, keyed or not, unseals without panicking, and a
/// keyed unseal accepts only bodies whose MAC matches.
pub fn remote_envelope(data: &[u8]) {
    let key = mac_key("fuzz");
    if let Ok(body) = unseal(Some(&key), data) {
        // Only a correct MAC gets here: a fuzzer cannot forge one, so this means the
        // input was built from a sealed seed; the body must then be what was sealed.
        assert_eq!(seal(Some(&key), body), data);
        record_bytes(body);
    }
    if let Ok(body) = unseal(None, data) {
        record_bytes(body);
    }
}

/// Stat-cache tables (a hot `.stat` file's content): never a panic; what parses is
/// sorted and unique, every row and path can be read, lookups find each path at its
/// row, and it re-encodes to the same bytes.
pub fn stat_cache_bytes(data: &[u8]) {
    if let Ok(c) = StatCache::decode(data.to_vec()) {
        assert_eq!(c.encode(), data, "a parsed table is its own encoding");
        let paths: Vec<&[u8]> = c.entries().map(|(p, _)| p).collect();
        assert!(paths.windows(2).all(|w| w[0] < w[1]), "sorted, unique");
        let mut cursor = idem::deps::stat_cache::Cursor::new(&c);
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(c.find(p), Some(i));
            assert_eq!(cursor.find(p), Some(i));
        }
        let again = StatCache::decode(c.encode().to_vec()).expect("re-decode stat cache");
        assert_eq!(again, c);
    }
}

pub fn stat_cache_roundtrip(data: &[u8]) {
    let c = Input::new(data).stat_cache();
    let again = StatCache::decode(c.encode().to_vec()).expect("decode(encode(x))");
    assert_eq!(again.encode(), c.encode());
    let a: Vec<_> = again.entries().collect();
    let b: Vec<_> = c.entries().collect();
    assert_eq!(a, b);
}

/// Traced entry lists from the engine's set index: decoding never panics, what decodes
/// re-encodes to the same bytes; checking decoded entries (those naming paths inside
/// `ws`, never outside it) never panics, and a change names a recorded entry.
pub fn trace_entries_bytes(ws: &Path, data: &[u8]) {
    let mut d = idem::encode::Decoder::new(data);
    let Ok(entries) = decode_entries(&mut d) else {
        return;
    };
    let mut e = idem::encode::Encoder::new();
    encode_entries(&mut e, &entries);
    let again = e.finish();
    // The encoding is canonical: what decoded was exactly a prefix of the input.
    assert!(
        data.starts_with(&again),
        "re-encodes to the bytes it came from"
    );
    check_inside(ws, &entries);
}

fn check_inside(ws: &Path, entries: &[Entry]) {
    let inside: Vec<Entry> = entries
        .iter()
        .filter(|e| {
            let p = Path::new(std::ffi::OsStr::from_bytes(&e.dep.name));
            p.is_relative()
                && p.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
        })
        .cloned()
        .collect();
    let w = Workspace {
        root: ws.to_path_buf(),
        cwd: ws.to_path_buf(),
    };
    if let Check::Changed(c) = Checker::new(&w).check(&inside) {
        assert!(inside.iter().any(|e| e.dep == c.dep));
        let _ = c.to_string();
    }
}

pub fn trace_entries_roundtrip(ws: &Path, data: &[u8]) {
    let entries = Input::new(data).trace_entries();
    let mut e = idem::encode::Encoder::new();
    encode_entries(&mut e, &entries);
    let buf = e.finish();
    let back = decode_entries(&mut idem::encode::Decoder::new(&buf)).expect("decode(encode(x))");
    assert_eq!(back, entries);
    check_inside(ws, &entries);
}

/// Two URL states as a server could make them: describing their change never panics.
pub fn url_states(data: &[u8]) {
    let split = data
        .first()
        .map_or(0, |&b| b as usize % (data.len().max(1)));
    let (a, b) = data.split_at(split);
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    let _ = idem::deps::url::describe_change(&a, &b);
    let _ = idem::deps::url::describe_change(&a, &a);
}

/// The workspace every spec target parses against: nothing is created on disk.
pub fn spec_workspace() -> Workspace {
    Workspace {
        root: PathBuf::from("/fuzz/ws"),
        cwd: PathBuf::from("/fuzz/ws/sub"),
    }
}

/// `-f` and `-o` specs (NUL-separated, any bytes): parsing never panics; an accepted
/// output spec's base lies strictly inside the root.
pub fn specs(data: &[u8]) {
    let ws = spec_workspace();
    let raw: Vec<OsString> = data
        .split(|&b| b == 0)
        .map(|s| OsString::from_vec(s.to_vec()))
        .collect();
    let _ = FileSpecs::parse(&raw, &ws);
    let _ = idem::spec::portable(&raw, &ws);
    if let Ok(outputs) = OutputSpecs::parse(&raw, &ws) {
        let _ = outputs.is_empty();
    }
    for one in &raw {
        if let Ok(spec) = idem::deps::files::PathSpec::parse(one, &ws) {
            let base = spec.base();
            if OutputSpecs::parse(std::slice::from_ref(one), &ws).is_ok() {
                assert!(base.starts_with(&ws.root) && base != ws.root, "{base:?}");
            }
        }
    }
}

/// Durations and sizes as users type them: never a panic; numbers round-trip.
pub fn units(data: &[u8]) {
    use idem::ui::units::{duration_ns, parse_duration, parse_size};
    let text = String::from_utf8_lossy(data);
    let _ = parse_duration(&text);
    let _ = parse_size(&text);
    let mut input = Input::new(data);
    let n = input.u64() >> input.below(64);
    assert_eq!(parse_size(&n.to_string()), Ok(n));
    let k = n >> 10;
    assert_eq!(parse_size(&format!("{k}K")), Ok(k << 10));
    assert_eq!(parse_size(&format!("{k}KiB")), Ok(k << 10));
    let secs = n % 1_000_000_000_000;
    assert_eq!(
        parse_duration(&format!("{secs}s")),
        Ok(Duration::from_secs(secs))
    );
    let _ = duration_ns(n as i64);
}

/// A hits.log written by anything: folding it never fails and never panics.
pub fn hits_log(cache_dir: &Path, db: &mut idem::store::sqlite::Db, data: &[u8]) {
    std::fs::write(cache_dir.join("hits.log"), data).expect("write hits.log");
    db.fold_hits(0).expect("folding a garbage hits.log");
    assert!(
        !cache_dir.join("hits.log").exists() || data.is_empty(),
        "the log was folded"
    );
}

/// A generated manifest that passes `outputs::validate` restores nothing outside the
/// workspace root, even through a symlink planted in it (`ws/link -> ../outside`).
/// `base` is an empty scratch directory; blobs are empty so no blob store is needed.
pub fn restore_confined(base: &Path, data: &[u8]) {
    let ws_root = base.join("ws");
    let outside = base.join("outside");
    let _ = std::fs::remove_dir_all(&ws_root);
    let _ = std::fs::remove_dir_all(&outside);
    std::fs::create_dir_all(&ws_root).expect("ws");
    std::fs::create_dir_all(&outside).expect("outside");
    std::os::unix::fs::symlink("../outside", ws_root.join("link")).expect("planted link");
    let ws = Workspace {
        root: ws_root.clone(),
        cwd: ws_root.clone(),
    };
    let mut input = Input::new(data);
    let mut manifest: Vec<OutputEntry> = (0..1 + input.below(4)).map(|_| input.output()).collect();
    for e in &mut manifest {
        if let OutputEntry::File { blob, .. } = e {
            *blob = BlobRef::empty();
        }
    }
    let blobs = idem::store::blobs::BlobStore::new(&base.join("cache"));
    let specs = OutputSpecs::parse(&[OsString::from("out")], &ws).expect("spec");
    if idem::outputs::validate(&ws, &manifest).is_ok() {
        let _ = idem::outputs::restore(&ws, &manifest, &blobs, &specs, false);
    }
    let leaked: Vec<_> = std::fs::read_dir(&outside)
        .expect("outside")
        .map(|e| e.map(|e| e.path()))
        .collect();
    assert!(
        leaked.is_empty(),
        "restore wrote outside the root: {leaked:?} from {manifest:?}"
    );
    for entry in std::fs::read_dir(base).expect("base") {
        let name = entry.expect("entry").file_name();
        assert!(
            ["ws", "outside", "cache"].contains(&name.to_str().unwrap_or("")),
            "restore wrote {name:?} next to the root from {manifest:?}"
        );
    }
}
