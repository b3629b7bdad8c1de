//! The record: one execution's outcome, with its own (dependency, state) list and its
//! output manifest, and its canonical byte encoding (used by SQLite, remotes and MACs).
//! Decoding must reject anything malformed rather than guess.

use anyhow::{bail, Result};

use crate::deps::{decode_deps, encode_deps, DepState};
use crate::encode::{Decoder, Encoder};

/// A content-addressed blob reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRef {
    pub hash: [u8; 32],
    pub size: u64,
}

impl BlobRef {
    pub fn empty() -> Self {
        Self {
            hash: *blake3::hash(b"").as_bytes(),
            size: 0,
        }
    }
}

pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// One entry of the output manifest. Paths are workspace keys (relative to the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputEntry {
    File {
        path: Vec<u8>,
        mode: u32,
        blob: BlobRef,
    },
    Symlink {
        path: Vec<u8>,
        target: Vec<u8>,
    },
    Dir {
        path: Vec<u8>,
        mode: u32,
    },
    /// The spec matched nothing after the run: restore creates and removes nothing.
    Absent {
        spec: Vec<u8>,
    },
}

impl OutputEntry {
    pub fn path(&self) -> Option<&[u8]> {
        match self {
            OutputEntry::File { path, .. }
            | OutputEntry::Symlink { path, .. }
            | OutputEntry::Dir { path, .. } => Some(path),
            OutputEntry::Absent { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub task_key: [u8; 32],
    pub state_key: [u8; 32],
    pub exec_key: Option<String>,
    pub created_ns: i64,
    pub duration_ns: u64,
    pub exit_code: i32,
    pub stdout: BlobRef,
    pub stderr: BlobRef,
    /// (stream, length) in arrival order; consecutive chunks of one stream merged.
    pub chunks: Vec<(u8, u64)>,
    pub outputs: Vec<OutputEntry>,
    pub deps: Vec<DepState>,
    pub argv: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub host: String,
    pub version: String,
    /// The idem.toml task that made this record, for display only: never part of a key,
    /// and a record made by the spelled-out command line serves the task all the same.
    pub task: Option<String>,
    /// Traced runs: absolute paths written outside the workspace (shown by `show`,
    /// never restored).
    pub side_effects: Vec<Vec<u8>>,
}

const RECORD_FORMAT: u64 = 1;

fn enc_blob(e: &mut Encoder, b: &BlobRef) {
    e.bytes(&b.hash).u64(b.size);
}

fn dec_blob(d: &mut Decoder) -> Result<BlobRef> {
    Ok(BlobRef {
        hash: d.hash()?,
        size: d.u64()?,
    })
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.str("idem-record").u64(RECORD_FORMAT);
        e.bytes(&self.task_key).bytes(&self.state_key);
        e.opt_bytes(self.exec_key.as_deref().map(str::as_bytes));
        e.i64(self.created_ns)
            .u64(self.duration_ns)
            .i64(self.exit_code as i64);
        enc_blob(&mut e, &self.stdout);
        enc_blob(&mut e, &self.stderr);
        e.u64(self.chunks.len() as u64);
        for (s, n) in &self.chunks {
            e.u8(*s).u64(*n);
        }
        e.u64(self.outputs.len() as u64);
        for o in &self.outputs {
            match o {
                OutputEntry::File { path, mode, blob } => {
                    e.u8(1).bytes(path).u64(*mode as u64);
                    enc_blob(&mut e, blob);
                }
                OutputEntry::Symlink { path, target } => {
                    e.u8(2).bytes(path).bytes(target);
                }
                OutputEntry::Dir { path, mode } => {
                    e.u8(3).bytes(path).u64(*mode as u64);
                }
                OutputEntry::Absent { spec } => {
                    e.u8(4).bytes(spec);
                }
            }
        }
        encode_deps(&mut e, &self.deps);
        e.list(self.argv.iter());
        e.bytes(&self.cwd).str(&self.host).str(&self.version);
        // Trailing and only when present: a record without a task is byte-identical to
        // one written before tasks existed, so older idems still read it.
        // Side effects follow the task name (empty when there is none: task names never
        // are), again only when present.
        if self.task.is_some() || !self.side_effects.is_empty() {
            e.str(self.task.as_deref().unwrap_or(""));
        }
        if !self.side_effects.is_empty() {
            e.list(self.side_effects.iter());
        }
        e.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Self> {
        Self::decode_inner(buf, true)
    }

    /// Decodes everything but the dependency list (left empty): what a replay needs.
    /// A 10,000-file task's list is ~1 MB and 20,000 allocations a hit does not use.
    pub fn decode_for_replay(buf: &[u8]) -> Result<Self> {
        Self::decode_inner(buf, false)
    }

    fn decode_inner(buf: &[u8], with_deps: bool) -> Result<Self> {
        let mut d = Decoder::new(buf);
        if d.bytes()? != b"idem-record" {
            bail!("not an idem record");
        }
        let fmt = d.u64()?;
        if fmt != RECORD_FORMAT {
            bail!("record format {fmt} is not supported by this idem");
        }
        let task_key = d.hash()?;
        let state_key = d.hash()?;
        let exec_key = d.opt_vec()?.map(String::from_utf8).transpose()?;
        let created_ns = d.i64()?;
        let duration_ns = d.u64()?;
        let exit_code = i32::try_from(d.i64()?)?;
        let stdout = dec_blob(&mut d)?;
        let stderr = dec_blob(&mut d)?;
        let n = d.count_of(9)?; // stream id + length
        let mut chunks = Vec::with_capacity(n);
        for _ in 0..n {
            let s = d.u8()?;
            if s != STDOUT && s != STDERR {
                bail!("bad stream id {s}");
            }
            chunks.push((s, d.u64()?));
        }
        let n = d.count_of(9)?; // tag + one length-prefixed field
        let mut outputs = Vec::with_capacity(n);
        for _ in 0..n {
            outputs.push(match d.u8()? {
                1 => OutputEntry::File {
                    path: d.vec()?,
                    mode: d.u64()? as u32,
                    blob: dec_blob(&mut d)?,
                },
                2 => OutputEntry::Symlink {
                    path: d.vec()?,
                    target: d.vec()?,
                },
                3 => OutputEntry::Dir {
                    path: d.vec()?,
                    mode: d.u64()? as u32,
                },
                4 => OutputEntry::Absent { spec: d.vec()? },
                t => bail!("bad output entry tag {t}"),
            });
        }
        let deps = if with_deps {
            decode_deps(&mut d)?
        } else {
            crate::deps::skip_deps(&mut d)?;
            Vec::new()
        };
        let n = d.count_of(8)?; // a length prefix each
        let mut argv = Vec::with_capacity(n);
        for _ in 0..n {
            argv.push(d.vec()?);
        }
        let cwd = d.vec()?;
        let host = d.string()?;
        let version = d.string()?;
        let task = if d.is_empty() {
            None
        } else {
            Some(d.string()?).filter(|t| !t.is_empty())
        };
        let mut side_effects = Vec::new();
        if !d.is_empty() {
            let n = d.count_of(8)?;
            for _ in 0..n {
                side_effects.push(d.vec()?);
            }
        }
        if !d.is_empty() {
            bail!("trailing bytes after record");
        }
        let r = Record {
            task_key,
            state_key,
            exec_key,
            created_ns,
            duration_ns,
            exit_code,
            stdout,
            stderr,
            chunks,
            outputs,
            deps,
            argv,
            cwd,
            host,
            version,
            task,
            side_effects,
        };
        r.check_consistent()?;
        Ok(r)
    }

    /// Chunk lengths must add up to the blob sizes, or a replay would read past them.
    fn check_consistent(&self) -> Result<()> {
        // Checked: a wrapping sum lets `u64::MAX + 11` pass for a 10-byte stream.
        let sum = |s: u8| -> Option<u64> {
            self.chunks
                .iter()
                .filter(|(id, _)| *id == s)
                .try_fold(0u64, |acc, (_, n)| acc.checked_add(*n))
        };
        if sum(STDOUT) != Some(self.stdout.size) || sum(STDERR) != Some(self.stderr.size) {
            bail!("record chunks do not add up to its stdout/stderr sizes");
        }
        Ok(())
    }

    /// Every blob this record needs (non-empty ones).
    pub fn blobs(&self) -> Vec<BlobRef> {
        let mut v = vec![self.stdout, self.stderr];
        for o in &self.outputs {
            if let OutputEntry::File { blob, .. } = o {
                v.push(*blob);
            }
        }
        v.retain(|b| b.size > 0);
        v.sort_by_key(|b| b.hash);
        v.dedup();
        v
    }

    pub fn total_size(&self) -> u64 {
        self.blobs().iter().map(|b| b.size).sum()
    }

    pub fn display_argv(&self) -> String {
        let argv: Vec<std::ffi::OsString> = self
            .argv
            .iter()
            .map(|a| crate::spec::bytes_to_os(a.clone()))
            .collect();
        crate::spec::display_argv(&argv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::Kind;

    pub fn sample() -> Record {
        Record {
            task_key: [1; 32],
            state_key: [2; 32],
            exec_key: Some("k".into()),
            created_ns: 5,
            duration_ns: 6,
            exit_code: 42,
            stdout: BlobRef {
                hash: [3; 32],
                size: 10,
            },
            stderr: BlobRef {
                hash: [4; 32],
                size: 2,
            },
            chunks: vec![(STDOUT, 4), (STDERR, 2), (STDOUT, 6)],
            outputs: vec![
                OutputEntry::File {
                    path: b"a".to_vec(),
                    mode: 0o644,
                    blob: BlobRef {
                        hash: [9; 32],
                        size: 1,
                    },
                },
                OutputEntry::Symlink {
                    path: b"l".to_vec(),
                    target: b"a".to_vec(),
                },
                OutputEntry::Dir {
                    path: b"d".to_vec(),
                    mode: 0o755,
                },
                OutputEntry::Absent {
                    spec: b"x/*".to_vec(),
                },
            ],
            deps: vec![DepState::new(Kind::File, "a", "blake3:x")],
            argv: vec![b"echo".to_vec(), vec![0xff]],
            cwd: b".".to_vec(),
            host: "h".into(),
            version: "v".into(),
            task: None,
            side_effects: vec![],
        }
    }

    #[test]
    fn side_effects_roundtrip_with_and_without_a_task() {
        let mut r = sample();
        r.side_effects = vec![b"/tmp/x".to_vec()];
        assert_eq!(Record::decode(&r.encode()).unwrap(), r);
        r.task = Some("build".into());
        assert_eq!(Record::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn roundtrip() {
        let r = sample();
        assert_eq!(Record::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn task_name_roundtrips_and_its_absence_keeps_the_old_bytes() {
        let without = sample();
        let mut with = sample();
        with.task = Some("build".into());
        assert_eq!(Record::decode(&with.encode()).unwrap(), with);
        assert_eq!(Record::decode(&without.encode()).unwrap().task, None);
        let (a, b) = (with.encode(), without.encode());
        assert!(a.starts_with(&b) && a.len() > b.len());
    }

    #[test]
    fn replay_decoding_skips_only_the_dependencies() {
        let r = sample();
        let mut expected = r.clone();
        expected.deps.clear();
        assert_eq!(Record::decode_for_replay(&r.encode()).unwrap(), expected);
    }

    #[test]
    fn rejects_truncated_and_inconsistent() {
        let r = sample();
        let buf = r.encode();
        for cut in [0, 10, buf.len() / 2, buf.len() - 1] {
            assert!(Record::decode(&buf[..cut]).is_err());
        }
        let mut bad = sample();
        bad.chunks[0].1 = 5;
        assert!(Record::decode(&bad.encode()).is_err());
    }

    /// Chunk lengths that overflow when summed must not wrap around to the blob size
    /// (a panic in debug builds, an accepted inconsistent record in release).
    #[test]
    fn chunk_lengths_that_overflow_are_rejected() {
        let mut r = sample();
        r.chunks = vec![(STDOUT, u64::MAX), (STDERR, 2), (STDOUT, 11)];
        assert!(Record::decode(&r.encode()).is_err());
    }

    /// Found by tests/fuzz.rs: an outputs count of "every byte left" made the decoder
    /// reserve ~72 bytes per input byte before failing.
    #[test]
    fn list_counts_are_checked_against_the_bytes_each_item_needs() {
        let mut r = sample();
        r.outputs.clear();
        r.deps.clear();
        r.argv.clear();
        let mut buf = r.encode();
        // The outputs count sits after the chunks; point it at a count that fits
        // `remaining` bytes of one byte each but not of a real entry each.
        let chunks_end = buf.len() - (8 + 8 + 8 + (8 + r.cwd.len()) + (8 + 1) + (8 + 1));
        let remaining = (buf.len() - chunks_end - 8) as u64;
        buf[chunks_end..chunks_end + 8].copy_from_slice(&remaining.to_le_bytes());
        let err = Record::decode(&buf).unwrap_err().to_string();
        assert!(err.contains("exceeds remaining"), "{err}");
    }
}
