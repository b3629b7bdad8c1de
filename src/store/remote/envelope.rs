//! The envelope of a record on a remote: magic, version and an optional keyed-blake3
//! MAC over the canonical record bytes, and the id a (task, state) record lives under.
//! With a key, it must never accept a record whose MAC is missing or wrong.

use anyhow::{bail, Context, Result};

/// The key under which a (task, state) record and its lease live on a remote.
pub fn record_id(task: &[u8; 32], state: &[u8; 32]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"idem-remote-record-v1");
    h.update(task);
    h.update(state);
    h.finalize().to_hex().to_string()
}

/// The MAC key derived from `IDEM_REMOTE_KEY`.
pub fn mac_key(secret: &str) -> [u8; 32] {
    blake3::derive_key("idem 2024 remote record MAC v1", secret.as_bytes())
}

const MAGIC: &[u8] = b"idem-remote-record\0";
const ENVELOPE_VERSION: u8 = 1;

/// Wraps canonical record bytes for upload: magic, version, optional keyed-blake3 MAC.
pub fn seal(key: Option<&[u8; 32]>, record: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 34 + record.len());
    out.extend_from_slice(MAGIC);
    out.push(ENVELOPE_VERSION);
    match key {
        Some(k) => {
            out.push(1);
            out.extend_from_slice(blake3::keyed_hash(k, record).as_bytes());
        }
        None => out.push(0),
    }
    out.extend_from_slice(record);
    out
}

/// Checks an envelope and returns the record bytes. With a key, a missing or wrong MAC
/// is an error; without one, any MAC is ignored (it cannot be checked).
pub fn unseal<'a>(key: Option<&[u8; 32]>, data: &'a [u8]) -> Result<&'a [u8]> {
    let rest = data
        .strip_prefix(MAGIC)
        .context("not an idem remote record")?;
    let (&version, rest) = rest.split_first().context("truncated remote record")?;
    if version != ENVELOPE_VERSION {
        bail!("remote record envelope version {version} is not supported by this idem");
    }
    let (&has_mac, rest) = rest.split_first().context("truncated remote record")?;
    let (mac, body) = match has_mac {
        0 => (None, rest),
        1 if rest.len() >= 32 => (Some(&rest[..32]), &rest[32..]),
        _ => bail!("malformed remote record envelope"),
    };
    if let Some(k) = key {
        let Some(mac) = mac else {
            bail!("it carries no MAC and IDEM_REMOTE_KEY is set");
        };
        let want = blake3::keyed_hash(k, body);
        // blake3::Hash compares in constant time.
        let got = blake3::Hash::from_bytes(<[u8; 32]>::try_from(mac).context("MAC has 32 bytes")?);
        if want != got {
            bail!("its MAC does not match (tampered, or signed with another IDEM_REMOTE_KEY)");
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_unseal() {
        let k = mac_key("secret");
        let sealed = seal(Some(&k), b"record");
        assert_eq!(unseal(Some(&k), &sealed).unwrap(), b"record");
        assert_eq!(unseal(None, &sealed).unwrap(), b"record");
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(unseal(Some(&k), &bad).is_err());
        assert!(unseal(Some(&mac_key("other")), &sealed).is_err());
        let plain = seal(None, b"record");
        assert!(unseal(Some(&k), &plain).is_err());
        assert_eq!(unseal(None, &plain).unwrap(), b"record");
        assert!(unseal(None, b"garbage").is_err());
    }
}
