//! The in-memory part of an index: keys decided since the last flush, with the receipt
//! sequence number and payload hash of their decision. Keys are sha256 digests, so the
//! map uses their first eight bytes as the hash instead of hashing them again.
//!
//! Capacity is reserved up front from the memory budget (about [`ENTRY_BYTES`] per entry),
//! so the table never doubles behind the budget's back; the owner flushes it when full.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::ids::Hash32;

/// Memory per entry: key 32 + seq 8 + hash 32, plus the map's control byte and load factor.
pub const ENTRY_BYTES: u64 = 96;

/// A `Hasher` for keys that are already uniform: the first eight bytes written.
#[derive(Default)]
pub struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        if bytes.len() >= 8 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[..8]);
            self.0 = u64::from_le_bytes(b);
        } else {
            for &x in bytes {
                self.0 = self.0.rotate_left(8) ^ u64::from(x);
            }
        }
    }
    // Slices hash their length first; it carries no information here.
    fn write_usize(&mut self, _: usize) {}
}

/// What the memtable remembers of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemEntry {
    /// Receipt sequence number of the decision.
    pub seq: u64,
    /// Payload hash (zeros where the index does not need it).
    pub hash: Hash32,
}

/// Keys since the last flush.
#[derive(Debug)]
pub struct MemTable {
    map: HashMap<Hash32, MemEntry, BuildHasherDefault<PrefixHasher>>,
    capacity: usize,
}

impl MemTable {
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        MemTable {
            map: HashMap::with_capacity_and_hasher(capacity, Default::default()),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// At or over its planned size.
    pub fn is_full(&self) -> bool {
        self.map.len() >= self.capacity
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    #[inline]
    pub fn get(&self, key: &Hash32) -> Option<&MemEntry> {
        self.map.get(key)
    }

    /// Insert or replace (the newest decision wins).
    #[inline]
    pub fn insert(&mut self, key: Hash32, entry: MemEntry) {
        self.map.insert(key, entry);
    }

    /// `(key, seq)` sorted by key, for writing a run.
    pub fn sorted(&self) -> Vec<(Hash32, u64)> {
        let mut v: Vec<(Hash32, u64)> = self.map.iter().map(|(k, e)| (*k, e.seq)).collect();
        v.sort_unstable_by_key(|e| e.0);
        v
    }

    pub fn keys(&self) -> impl Iterator<Item = &Hash32> {
        self.map.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_wins_and_sorted_is_by_key() {
        let mut m = MemTable::with_capacity(4);
        let k = |b: u8| [b; 32];
        m.insert(
            k(3),
            MemEntry {
                seq: 1,
                hash: [0; 32],
            },
        );
        m.insert(
            k(1),
            MemEntry {
                seq: 2,
                hash: [0; 32],
            },
        );
        m.insert(
            k(3),
            MemEntry {
                seq: 5,
                hash: [1; 32],
            },
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(&k(3)).map(|e| e.seq), Some(5));
        assert_eq!(m.sorted(), vec![(k(1), 2), (k(3), 5)]);
        assert!(!m.is_full());
        m.insert(
            k(4),
            MemEntry {
                seq: 6,
                hash: [0; 32],
            },
        );
        m.insert(
            k(5),
            MemEntry {
                seq: 7,
                hash: [0; 32],
            },
        );
        assert!(m.is_full());
    }
}
