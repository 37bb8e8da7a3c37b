//! LEB128 varints (`uvarint`) and zigzag varints (`svarint`), as in `docs/format.md`.
//!
//! Decoders read from a cursor over untrusted bytes and fail on truncation, on more than
//! ten bytes and on overflow; they never panic.

/// Bytes `v` takes as a uvarint.
#[inline]
pub fn uvarint_len(v: u64) -> usize {
    // 1 byte per started group of 7 bits, at least one.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Append `v` as a uvarint.
#[inline]
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Zigzag-map a signed value so small magnitudes encode short.
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Append `v` as an svarint.
#[inline]
pub fn put_svarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

/// A read position over untrusted bytes.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    pub bytes: &'a [u8],
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Read a uvarint.
    #[inline]
    pub fn uvarint(&mut self) -> Result<u64, &'static str> {
        // Most fields (lengths under 128, deltas, counts) are one byte.
        if let Some(&b) = self.bytes.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(b as u64);
            }
        }
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err("truncated varint");
            };
            self.pos += 1;
            let group = (b & 0x7f) as u64;
            if i == 9 && group > 1 {
                return Err("varint overflows 64 bits");
            }
            v |= group << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes")
    }

    /// Read an svarint.
    #[inline]
    pub fn svarint(&mut self) -> Result<i64, &'static str> {
        self.uvarint().map(unzigzag)
    }

    /// Take `n` bytes (checked against what is left before anything else happens).
    #[inline]
    pub fn take(&mut self, n: u64) -> Result<&'a [u8], &'static str> {
        if n > self.remaining() as u64 {
            return Err("length past the end of the record");
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edges() {
        let values = [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX];
        for v in values {
            let mut out = Vec::new();
            put_uvarint(&mut out, v);
            assert_eq!(out.len(), uvarint_len(v), "len of {v}");
            let mut c = Cursor::new(&out);
            assert_eq!(c.uvarint(), Ok(v));
            assert_eq!(c.remaining(), 0);
        }
        for v in [0i64, -1, 1, -64, 64, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            put_svarint(&mut out, v);
            assert_eq!(Cursor::new(&out).svarint(), Ok(v));
        }
    }

    #[test]
    fn rejects_overlong_and_truncated() {
        assert!(Cursor::new(&[0x80; 11]).uvarint().is_err());
        assert!(Cursor::new(&[0xff; 9]).uvarint().is_err());
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert!(Cursor::new(&over).uvarint().is_err());
        assert!(Cursor::new(&[5]).take(6).is_err());
    }
}
