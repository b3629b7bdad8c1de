//! Canonical, length-prefixed binary encoding used for keys, records and snapshots.
//! Every variable-length field carries its length, so no two different values can
//! encode to the same bytes; this module must never depend on platform layout.

use anyhow::{bail, Result};

/// Appends fields to a byte buffer in a canonical, unambiguous form.
#[derive(Default, Debug, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(v as u8)
    }

    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    pub fn opt_bytes(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(b) => self.u8(1).bytes(b),
        }
    }

    /// A list of byte strings: the count, then each one length-prefixed.
    pub fn list<I, T>(&mut self, items: I) -> &mut Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
        T: AsRef<[u8]>,
    {
        let iter = items.into_iter();
        self.u64(iter.len() as u64);
        for item in iter {
            self.bytes(item.as_ref());
        }
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }
}

/// Reads fields written by [`Encoder`]; every read is bounds-checked so a truncated or
/// hostile input is an error, never a panic.
pub struct Decoder<'a> {
    buf: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            bail!(
                "truncated encoding: wanted {n} bytes, {} left",
                self.buf.len()
            );
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into()?))
    }

    pub fn i64(&mut self) -> Result<i64> {
        let b = self.take(8)?;
        Ok(i64::from_le_bytes(b.try_into()?))
    }

    pub fn bool(&mut self) -> Result<bool> {
        Ok(self.u8()? != 0)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.u64()?;
        let len = usize::try_from(len)?;
        self.take(len)
    }

    pub fn vec(&mut self) -> Result<Vec<u8>> {
        Ok(self.bytes()?.to_vec())
    }

    pub fn string(&mut self) -> Result<String> {
        Ok(String::from_utf8(self.vec()?)?)
    }

    pub fn opt_vec(&mut self) -> Result<Option<Vec<u8>>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.vec()?)),
            t => bail!("bad option tag {t}"),
        }
    }

    pub fn hash(&mut self) -> Result<[u8; 32]> {
        let b = self.bytes()?;
        b.try_into()
            .map_err(|_| anyhow::anyhow!("hash field has {} bytes, not 32", b.len()))
    }

    /// A list count, checked against the bytes left: each item encodes to at least
    /// `min_item_len` bytes, so `Vec::with_capacity(n)` on corrupt input stays within a
    /// small multiple of the input's size instead of what the count field claims.
    pub fn count_of(&mut self, min_item_len: usize) -> Result<usize> {
        let n = usize::try_from(self.u64()?)?;
        if n.saturating_mul(min_item_len.max(1)) > self.buf.len() {
            bail!("list count {n} exceeds remaining {} bytes", self.buf.len());
        }
        Ok(n)
    }

    /// [`Decoder::count_of`] for items of at least one byte.
    pub fn count(&mut self) -> Result<usize> {
        self.count_of(1)
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    // A table, not `write!("{b:02x}")`: a hit names its hot files by a hex key, and
    // the formatting machinery cost 300 instructions a byte.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_encoding_is_unambiguous() {
        let mut a = Encoder::new();
        a.list(["a b"]);
        let mut b = Encoder::new();
        b.list(["a", "b"]);
        assert_ne!(a.finish(), b.finish());
        let mut c = Encoder::new();
        c.list(["ab", ""]);
        let mut d = Encoder::new();
        d.list(["a", "b"]);
        assert_ne!(c.finish(), d.finish());
    }

    #[test]
    fn roundtrip_and_truncation() {
        let mut e = Encoder::new();
        e.u8(7)
            .u64(42)
            .bytes(b"xyz")
            .opt_bytes(None)
            .opt_bytes(Some(b"q"));
        let buf = e.finish();
        let mut d = Decoder::new(&buf);
        assert_eq!(d.u8().unwrap(), 7);
        assert_eq!(d.u64().unwrap(), 42);
        assert_eq!(d.bytes().unwrap(), b"xyz");
        assert_eq!(d.opt_vec().unwrap(), None);
        assert_eq!(d.opt_vec().unwrap(), Some(b"q".to_vec()));
        assert!(d.is_empty());
        let mut t = Decoder::new(&buf[..buf.len() - 1]);
        t.u8().unwrap();
        t.u64().unwrap();
        t.bytes().unwrap();
        t.opt_vec().unwrap();
        assert!(t.opt_vec().is_err());
    }

    #[test]
    fn counts_are_bounded_by_the_bytes_their_items_need() {
        let mut e = Encoder::new();
        e.u64(3).bytes(&[0; 16]);
        let buf = e.finish();
        assert_eq!(Decoder::new(&buf).count_of(8).unwrap(), 3);
        assert!(Decoder::new(&buf).count_of(9).is_err());
        let mut e = Encoder::new();
        e.u64(u64::MAX);
        assert!(Decoder::new(&e.finish()).count_of(usize::MAX).is_err());
    }

    #[test]
    fn hex_roundtrip() {
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
        let all: Vec<u8> = (0..=255).collect();
        let formatted: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), formatted);
        assert_eq!(unhex(&formatted).unwrap(), all);
        assert_eq!(unhex("00ff10").unwrap(), vec![0, 255, 16]);
        assert!(unhex("0").is_none());
    }
}
