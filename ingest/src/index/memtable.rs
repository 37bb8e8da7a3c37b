//! The in-memory part of an index: keys decided since the last flush, with the receipt
//! sequence number of their decision.
//!
//! An open-addressing table built for this one job (keys are sha256 digests, so their first
//! eight bytes are already a perfect hash):
//!
//! ```text
//!   tags    [u64; slots]   0 = empty, else key bytes 0..8 | 1   (8 tags per cache line)
//!   entries [MemEntry; slots]                                   (read only on a tag match)
//!   slot of a key = top bits of its first 8 bytes read big-endian, then linear probing
//! ```
//!
//! - Probing touches only the compact tag array; a new key usually costs one cache line,
//!   and [`MemTable::prefetch`] lets the caller start that load rows ahead.
//! - Capacity is fixed when the table is made, from a byte budget; the owner flushes when
//!   it is full (75% of the slots). [`MemTable::clear`] resets only the tags, so a flushed
//!   table is reused without touching fresh memory (no page faults, no reallocation).
//! - Keys are compared in full on a tag match: exact, no false positives.
//! - The home slot grows with the key (big-endian prefix), so the slots already hold the
//!   keys almost in key order: [`MemTable::sorted`] reads them out in slot order and only
//!   fixes what linear probing displaced (within a cluster, and a cluster wrapping past
//!   the last slot) with an insertion sort, instead of sorting millions of 40-byte
//!   entries from scratch.

use crate::ids::Hash32;

/// Bytes per slot (tag 8 + key 32 + seq 8); a full table holds 0.75 entries per slot.
pub const SLOT_BYTES: u64 = 48;
/// Memory per entry of a full table.
pub const ENTRY_BYTES: u64 = SLOT_BYTES * 4 / 3;

/// What the memtable remembers of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemEntry {
    /// Receipt sequence number of the decision.
    pub seq: u64,
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
            entry: MemEntry { seq: 0 },
        };
        MemTable {
            tags: super::written_zeros(slots),
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

    /// The home slot: the top bits of the key's big-endian prefix (monotone in the key).
    #[inline]
    fn home(&self, key: &Hash32) -> usize {
        let mut b = [0u8; 8];
        b.copy_from_slice(&key[..8]);
        (u64::from_be_bytes(b) >> self.shift) as usize
    }

    /// Start loading the tag line `key` will probe and the slot an insert would write
    /// (a slot may straddle two cache lines: both are requested).
    #[inline]
    pub fn prefetch(&self, key: &Hash32) {
        let i = self.home(key);
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
        let mut i = self.home(key);
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
        for (t, s) in self.tags.iter().zip(self.slots.iter()) {
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
    ///
    /// ```text
    ///  slots: [w w a . b c d . . e f g w w]    w = wrapped: home near the end, slot near 0
    ///          └─┘ first cluster    (an entry sits at or after its home, cyclically)
    ///  out:   a, b c d, e f g w w, then w w (from the front)  -> insertion sort
    /// ```
    ///
    /// 1. Find the first empty slot `e` (a full table has one: it grows before filling).
    /// 2. Entries before `e` whose home is past their slot wrapped around the end: they
    ///    go last; the others of `[0, e)` go first, then the slots from `e` on, in order.
    /// 3. Now every entry is at most its cluster's length from its place (homes increase
    ///    with keys): an insertion sort finishes in about one pass.
    pub fn sorted(&self) -> Vec<(Hash32, u64)> {
        let mut v: Vec<(Hash32, u64)> = Vec::with_capacity(self.len);
        let first_empty = self.tags.iter().position(|t| *t == 0).unwrap_or(0);
        let mut wrapped = Vec::new();
        for i in 0..first_empty {
            let s = &self.slots[i];
            if self.home(&s.key) > i {
                wrapped.push((s.key, s.entry.seq));
            } else {
                v.push((s.key, s.entry.seq));
            }
        }
        for (t, s) in self.tags[first_empty..]
            .iter()
            .zip(&self.slots[first_empty..])
        {
            if *t != 0 {
                v.push((s.key, s.entry.seq));
            }
        }
        v.extend(wrapped);
        insertion_sort_by_key(&mut v);
        v
    }

    /// Every key and entry, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&Hash32, &MemEntry)> {
        self.tags
            .iter()
            .zip(self.slots.iter())
            .filter(|(t, _)| **t != 0)
            .map(|(_, s)| (&s.key, &s.entry))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Hash32> {
        self.iter().map(|(k, _)| k)
    }
}

/// `a > b` for keys, deciding on the first eight bytes (nearly always) before the rest.
#[inline]
fn key_gt(a: &Hash32, b: &Hash32) -> bool {
    let head = |k: &Hash32| {
        let mut h = [0u8; 8];
        h.copy_from_slice(&k[..8]);
        u64::from_be_bytes(h)
    };
    match head(a).cmp(&head(b)) {
        std::cmp::Ordering::Equal => a[8..] > b[8..],
        o => o == std::cmp::Ordering::Greater,
    }
}

/// Sort nearly-sorted entries by key: cheap when every entry is close to its place.
fn insertion_sort_by_key(v: &mut [(Hash32, u64)]) {
    for i in 1..v.len() {
        if !key_gt(&v[i - 1].0, &v[i].0) {
            continue;
        }
        let x = v[i];
        let mut j = i;
        while j > 0 && key_gt(&v[j - 1].0, &x.0) {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
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
        let e = |seq| MemEntry { seq };
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
        c.insert(a, MemEntry { seq: 1 });
        assert_eq!(c.get(&b), None);
        c.insert(b, MemEntry { seq: 2 });
        assert_eq!((c.get(&a).unwrap().seq, c.get(&b).unwrap().seq), (1, 2));
    }

    #[test]
    fn sorted_matches_a_full_sort_with_clusters_and_wraparound() {
        // Small tables filled to 75% have long clusters; keys crowded at the top of the
        // key space force clusters that wrap past the last slot and keys whose first
        // eight bytes tie.
        let mut seed = 7u64;
        for (slots_for, top_heavy) in [(12usize, false), (12, true), (3000, false), (3000, true)] {
            let mut m = MemTable::with_capacity(slots_for);
            let mut oracle: HashMap<Hash32, u64> = HashMap::new();
            let mut seq = 0;
            while !m.is_full() {
                let mut k = key(seed);
                seed += 1;
                if top_heavy && seq % 2 == 0 {
                    // Same first eight bytes: the home slot and the head compare tie.
                    k[..8].fill(0xff);
                }
                m.insert(k, MemEntry { seq });
                oracle.insert(k, seq);
                seq += 1;
            }
            let mut expected: Vec<(Hash32, u64)> = oracle.into_iter().collect();
            expected.sort_unstable();
            assert_eq!(m.sorted(), expected, "{slots_for} {top_heavy}");
        }
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
