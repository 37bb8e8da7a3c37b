//! A blocked Bloom filter over keys that are already uniform (sha256 digests), so no extra
//! hashing: bytes 8..16 of the key pick a 512-bit block (one cache line), bytes 16..32 give
//! eight 9-bit bit positions inside it. One cache miss per query.
//!
//! It answers "certainly absent" or "maybe present"; a maybe is always verified against
//! the sorted runs, so false positives cost a lookup, never a wrong decision.
//!
//! Sizing: 16 bits per key (2 bytes) gives about 0.1% false positives; the filter never
//! grows, so more keys than planned raise that rate (and the run lookups), not the memory.

/// Bits per key the gate aims for.
pub const BITS_PER_KEY: u64 = 16;
const BLOCK_WORDS: usize = 8;

/// The filter: `blocks` cache lines of 512 bits.
#[derive(Debug, Clone)]
pub struct BlockedBloom {
    words: Vec<u64>,
    blocks: u64,
}

#[inline]
fn positions(key: &[u8; 32]) -> (u64, [u16; 8]) {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[8..16]);
    let block_hash = u64::from_le_bytes(b);
    let mut bits = [0u16; 8];
    for (k, bit) in bits.iter_mut().enumerate() {
        *bit = u16::from_le_bytes([key[16 + 2 * k], key[17 + 2 * k]]) & 511;
    }
    (block_hash, bits)
}

impl BlockedBloom {
    /// A filter of about `bytes` bytes (at least one block).
    pub fn with_bytes(bytes: u64) -> Self {
        let blocks = (bytes / 64).max(1);
        BlockedBloom {
            words: super::written_zeros(blocks as usize * BLOCK_WORDS),
            blocks,
        }
    }

    /// Memory held, in bytes.
    pub fn bytes(&self) -> u64 {
        self.blocks * 64
    }

    #[inline]
    fn block(&self, h: u64) -> usize {
        // Multiply-shift: maps h uniformly onto 0..blocks without a division.
        (((h as u128) * (self.blocks as u128)) >> 64) as usize * BLOCK_WORDS
    }

    /// Start loading the cache line `key` maps to.
    #[inline]
    pub fn prefetch(&self, key: &[u8; 32]) {
        let (h, _) = positions(key);
        crate::index::memtable::prefetch(self.words.as_ptr().wrapping_add(self.block(h)));
    }

    #[inline]
    pub fn insert(&mut self, key: &[u8; 32]) {
        let (h, bits) = positions(key);
        let base = self.block(h);
        for bit in bits {
            self.words[base + (bit >> 6) as usize] |= 1u64 << (bit & 63);
        }
    }

    #[inline]
    pub fn may_contain(&self, key: &[u8; 32]) -> bool {
        let (h, bits) = positions(key);
        let base = self.block(h);
        bits.iter()
            .all(|&bit| self.words[base + (bit >> 6) as usize] & (1u64 << (bit & 63)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn key(i: u64) -> [u8; 32] {
        Sha256::digest(i.to_le_bytes()).into()
    }

    #[test]
    fn no_false_negatives_and_a_low_false_positive_rate() {
        let n = 50_000u64;
        let mut f = BlockedBloom::with_bytes(n * BITS_PER_KEY / 8);
        for i in 0..n {
            f.insert(&key(i));
        }
        assert!((0..n).all(|i| f.may_contain(&key(i))));
        let fp = (n..n + 100_000).filter(|&i| f.may_contain(&key(i))).count();
        // About 0.1% expected; 0.5% leaves room for variance.
        assert!(fp < 500, "{fp} false positives in 100000");
    }

    #[test]
    fn an_undersized_filter_stays_correct() {
        let mut f = BlockedBloom::with_bytes(1);
        for i in 0..10_000 {
            f.insert(&key(i));
        }
        assert!((0..10_000).all(|i| f.may_contain(&key(i))));
        assert_eq!(f.bytes(), 64);
    }
}
