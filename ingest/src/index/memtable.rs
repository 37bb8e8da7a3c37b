//! The in-memory part of an index: keys decided since the last flush, with the receipt
//! sequence number and payload hash of their decision.
//!
//! An open-addressing table built for this one job (keys are sha256 digests, so their first
//! eight bytes are already a perfect hash):
//!
//! ```text
//!   tags    [u64; slots]   0 = empty, else key bytes 0..8 | 1   (8 tags per cache line)
//!   entries [MemEntry; slots]                                   (read only on a tag match)
//!   slot of a key = top bits of its prefix, then linear probing
//! ```
//!
//! - Probing touches only the compact tag array; a new key usually costs one cache line,
//!   and [`MemTable::prefetch`] lets the caller start that load rows ahead.
//! - Capacity is fixed when the table is made, from a byte budget; the owner flushes when
//!   it is full (75% of the slots). [`MemTable::clear`] resets only the tags, so a flushed
//!   table is reused without touching fresh memory (no page faults, no reallocation).
//! - Keys are compared in full on a tag match: exact, no false positives.

use crate::ids::Hash32;

/// Bytes per slot (tag 8 + entry 72); a full table holds 0.75 entries per slot.
pub const SLOT_BYTES: u64 = 80;
/// Memory per entry of a full table.
pub const ENTRY_BYTES: u64 = SLOT_BYTES * 4 / 3;

/// What the memtable remembers of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemEntry {
    /// Receipt sequence number of the decision.
    pub seq: u64,
    /// Payload hash (zeros where the index does not need it).
    pub hash: Hash32,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    key: Hash32,
    entry: MemEntry,
}

/// Keys since the last flush.
#[derive(Debug)]
pub struct MemTable {
    tags: Vec<u64>,
    slots: Vec<Slot>,
    shift: u32,
    len: usize,
    capacity: usize,
}

#[inline]
fn tag_of(key: &Hash32) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[..8]);
    u64::from_le_bytes(b) | 1
}

/// Hint the CPU to load the cache line at `p` (no effect on other targets).
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and never reads into Rust-visible
    // state, whatever the address (here always inside a live allocation anyway).
    unsafe {
        core::arch::x86_64::_mm_prefetch(p.cast::<i8>(), core::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl MemTable {
    /// A table for at least `entries` keys (slots: the next power of two of 4/3 of that).
    pub fn with_capacity(entries: usize) -> Self {
        let want = (entries.max(1) as u64 * 4).div_ceil(3).max(16);
        let slots = want.next_power_of_two();
        Self::with_slots(slots as usize)
    }

    /// The largest table whose slots fit in `bytes` (at least 16 slots).
    pub fn with_budget(bytes: u64) -> Self {
        let mut slots = 16u64;
        while slots * 2 * SLOT_BYTES <= bytes {
            slots *= 2;
        }
        Self::with_slots(slots as usize)
    }

    fn with_slots(slots: usize) -> Self {
        let empty = Slot {
            key: [0; 32],
            entry: MemEntry {
                seq: 0,
                hash: [0; 32],
            },
        };
        MemTable {
            tags: vec![0; slots],
            slots: vec![empty; slots],
            shift: 64 - slots.trailing_zeros(),
            len: 0,
            capacity: slots / 4 * 3,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// At its planned size (75% of the slots).
    pub fn is_full(&self) -> bool {
        self.len >= self.capacity
    }

    /// Keys it holds when full.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Memory held.
    pub fn bytes(&self) -> u64 {
        self.tags.len() as u64 * SLOT_BYTES
    }

    #[inline]
    fn home(&self, tag: u64) -> usize {
        (tag >> self.shift) as usize
    }

    /// Start loading the tag line `key` will probe and the slot an insert would write
    /// (a slot may straddle two cache lines: both are requested).
    #[inline]
    pub fn prefetch(&self, key: &Hash32) {
        let i = self.home(tag_of(key));
        prefetch(self.tags.as_ptr().wrapping_add(i));
        let slot = self.slots.as_ptr().wrapping_add(i);
        prefetch(slot);
        prefetch(
            slot.cast::<u8>()
                .wrapping_add(std::mem::size_of::<Slot>() - 1),
        );
    }

    /// The slot holding `key`, or the empty slot where it would go.
    #[inline]
    fn probe(&self, key: &Hash32) -> (usize, bool) {
        let tag = tag_of(key);
        let mask = self.tags.len() - 1;
        let mut i = self.home(tag);
        loop {
            let t = self.tags[i];
            if t == 0 {
                return (i, false);
            }
            if t == tag && self.slots[i].key == *key {
                return (i, true);
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    pub fn get(&self, key: &Hash32) -> Option<&MemEntry> {
        match self.probe(key) {
            (i, true) => Some(&self.slots[i].entry),
            _ => None,
        }
    }

    /// Insert or replace (the newest decision wins). A table past its capacity keeps
    /// working (probes get longer) until it is truly out of slots.
    #[inline]
    pub fn insert(&mut self, key: Hash32, entry: MemEntry) {
        if self.len + 1 >= self.tags.len() {
            self.grow();
        }
        let (i, found) = self.probe(&key);
        if !found {
            self.tags[i] = tag_of(&key);
            self.len += 1;
        }
        self.slots[i] = Slot { key, entry };
    }

    /// Double the slots (only when the owner did not flush in time, e.g. while replaying a
    /// long log tail on open).
    fn grow(&mut self) {
        let mut bigger = MemTable::with_slots(self.tags.len() * 2);
        bigger.capacity = self.capacity;
        for (t, s) in self.tags.iter().zip(&self.slots) {
            if *t != 0 {
                bigger.insert(s.key, s.entry);
            }
        }
        *self = bigger;
    }

    /// Forget every key; the memory stays allocated and warm.
    pub fn clear(&mut self) {
        self.tags.fill(0);
        self.len = 0;
    }

    /// `(key, seq)` sorted by key, for writing a run.
    pub fn sorted(&self) -> Vec<(Hash32, u64)> {
        let mut v: Vec<(Hash32, u64)> = self.iter().map(|(k, e)| (*k, e.seq)).collect();
        v.sort_unstable_by_key(|e| e.0);
        v
    }

    /// Every key and entry, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&Hash32, &MemEntry)> {
        self.tags
            .iter()
            .zip(&self.slots)
            .filter(|(t, _)| **t != 0)
            .map(|(_, s)| (&s.key, &s.entry))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Hash32> {
        self.iter().map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;

    fn key(i: u64) -> Hash32 {
        Sha256::digest(i.to_le_bytes()).into()
    }

    #[test]
    fn newest_wins_and_sorted_is_by_key() {
        let mut m = MemTable::with_capacity(4);
        let k = |b: u8| [b; 32];
        let e = |seq| MemEntry { seq, hash: [0; 32] };
        m.insert(k(3), e(1));
        m.insert(k(1), e(2));
        m.insert(k(3), e(5));
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(&k(3)).map(|e| e.seq), Some(5));
        assert_eq!(m.sorted(), vec![(k(1), 2), (k(3), 5)]);
        assert_eq!(m.get(&k(2)), None);
    }

    #[test]
    fn matches_a_hashmap_through_fill_clear_and_growth() {
        let mut m = MemTable::with_capacity(1000);
        let mut oracle = HashMap::new();
        for round in 0..3u64 {
            for i in 0..5000u64 {
                let k = key(i % 1500 + round * 700);
                let e = MemEntry {
                    seq: round * 10_000 + i,
                    hash: key(i),
                };
                m.insert(k, e);
                oracle.insert(k, e);
                if m.is_full() && round == 1 {
                    // Round 1 flushes whenever full; the others overfill and grow.
                    m.clear();
                    oracle.clear();
                }
            }
            assert_eq!(m.len(), oracle.len());
            for (k, e) in &oracle {
                assert_eq!(m.get(k), Some(e));
            }
            assert_eq!(m.get(&key(1_000_000)), None);
            assert_eq!(m.iter().count(), oracle.len());
        }
        // Keys whose first bytes collide (same tag) are still told apart.
        let mut c = MemTable::with_capacity(8);
        let mut a = [7u8; 32];
        let mut b = [7u8; 32];
        a[31] = 1;
        b[31] = 2;
        c.insert(
            a,
            MemEntry {
                seq: 1,
                hash: [0; 32],
            },
        );
        assert_eq!(c.get(&b), None);
        c.insert(
            b,
            MemEntry {
                seq: 2,
                hash: [0; 32],
            },
        );
        assert_eq!((c.get(&a).unwrap().seq, c.get(&b).unwrap().seq), (1, 2));
    }

    #[test]
    fn budgets_round_down_to_whole_tables() {
        let m = MemTable::with_budget(10 << 20);
        assert!(
            m.bytes() <= 10 << 20 && m.bytes() > 5 << 20,
            "{}",
            m.bytes()
        );
        assert_eq!(
            m.capacity() * 4 / 3,
            m.bytes() as usize / SLOT_BYTES as usize
        );
    }
}
