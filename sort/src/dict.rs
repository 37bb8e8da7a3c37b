//! One dictionary per low-cardinality string column, shared by the whole sort.
//!
//! Parquet readers hand out a fresh dictionary per row group. Carrying those through sorting
//! would mean merging dictionaries at every gather and re-sending them in every spill batch.
//! Instead, each row group's dictionary is interned here once (a handful of hash lookups),
//! and rows carry a `u32` code: sorting, spilling and merging move 4 bytes per value instead
//! of, for the platform's 64-hex pins, 68.
//!
//! ```text
//!  row group dictionary ["b","a"] --intern--> remap [1,0] --keys [0,0,1]--> codes [1,1,0]
//!  GlobalDict values: ["a","b"]            (append-only; frozen when the output is written)
//! ```
//!
//! At output the codes become a `DictionaryArray<UInt32>` over [`GlobalDict::values`] (or,
//! for a dictionary larger than the row group, the decoded values: `repr::codes_to_output`);
//! the parquet encoder interns values, not codes, so the bytes do not depend on code
//! numbering.

use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::{
    Array, ArrayRef, BinaryArray, LargeBinaryArray, LargeStringArray, StringArray, UInt32Array,
};
use arrow_buffer::{NullBuffer, ScalarBuffer};
use arrow_schema::DataType;
use sluice_storage::digest::hash_bytes;

/// Code of a dictionary slot that holds null (kept out of the global dictionary).
const NULL_CODE: u32 = u32::MAX;

/// Open-addressing slot that holds no code (codes stay below `u32::MAX`, [`NULL_CODE`]).
const EMPTY: u64 = u64::MAX;

/// A table slot: the high 32 bits of the value's hash above its code, so a probe rejects
/// a different value without reading anything but the slot.
fn slot(h: u64, code: u32) -> u64 {
    (h & !0xffff_ffff) | u64::from(code)
}

/// The distinct values and their hash table. Values live back to back in one buffer (no
/// allocation per value: a dictionary of millions of user ids is a handful of vectors,
/// each value stored once, freed in one go), found through a linear-probing table of
/// slots ([`slot`]); each code's full hash is kept for growing the table without reading
/// any value again.
struct Inner {
    /// Value `c` is `bytes[offsets[c]..offsets[c + 1]]`.
    bytes: Vec<u8>,
    offsets: Vec<usize>,
    /// `hashes[c]`: the hash of value `c`.
    hashes: Vec<u64>,
    /// [`slot`]s by hash, [`EMPTY`] where free; a power of two, at most half full.
    slots: Vec<u64>,
    /// Per-process seed, so crafted values cannot be made to collide in advance.
    seed: u64,
}

impl Inner {
    fn new() -> Self {
        use std::hash::BuildHasher;
        Inner {
            bytes: Vec::new(),
            offsets: vec![0],
            hashes: Vec::new(),
            slots: vec![EMPTY; 64],
            seed: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64),
        }
    }

    fn len(&self) -> usize {
        self.hashes.len()
    }

    fn value(&self, code: usize) -> &[u8] {
        &self.bytes[self.offsets[code]..self.offsets[code + 1]]
    }

    /// The code of `v`, interning it if new.
    fn intern(&mut self, v: &[u8]) -> u32 {
        let h = hash_bytes(self.seed, v);
        let tag = h & !0xffff_ffff;
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                break;
            }
            if s & !0xffff_ffff == tag && self.value((s as u32) as usize) == v {
                return s as u32;
            }
            i = (i + 1) & mask;
        }
        let c = self.len() as u32;
        self.bytes.extend_from_slice(v);
        self.offsets.push(self.bytes.len());
        self.hashes.push(h);
        // Published last: a code in the table always has its value and hash.
        self.slots[i] = slot(h, c);
        if self.len() * 2 > self.slots.len() {
            self.grow();
        }
        c
    }

    /// Double the table and re-place every code by its kept hash.
    fn grow(&mut self) {
        let mut slots = vec![EMPTY; self.slots.len() * 2];
        let mask = slots.len() - 1;
        for (c, &h) in self.hashes.iter().enumerate() {
            let mut i = h as usize & mask;
            while slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            slots[i] = slot(h, c as u32);
        }
        self.slots = slots;
    }

    /// Heap bytes held.
    fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
            + (self.offsets.capacity() + self.hashes.capacity()) * 8
            + self.slots.len() * 8
    }
}

/// The shared dictionary of one column.
pub struct GlobalDict {
    /// `Utf8`, `LargeUtf8`, `Binary` or `LargeBinary`: the type of [`GlobalDict::values`].
    value_type: DataType,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for GlobalDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalDict")
            .field("value_type", &self.value_type)
            .field("len", &self.len())
            .finish()
    }
}

fn value_bytes(values: &dyn Array, i: usize) -> &[u8] {
    match values.data_type() {
        DataType::Utf8 => values.as_string::<i32>().value(i).as_bytes(),
        DataType::LargeUtf8 => values.as_string::<i64>().value(i).as_bytes(),
        DataType::Utf8View => values.as_string_view().value(i).as_bytes(),
        DataType::Binary => values.as_binary::<i32>().value(i),
        DataType::LargeBinary => values.as_binary::<i64>().value(i),
        DataType::BinaryView => values.as_binary_view().value(i),
        _ => &[],
    }
}

/// Whether a dictionary of this value type can be interned here.
pub fn supports_value_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    )
}

impl GlobalDict {
    /// An empty dictionary whose values will be of `value_type`.
    pub fn new(value_type: DataType) -> Arc<Self> {
        Arc::new(GlobalDict {
            value_type,
            inner: Mutex::new(Inner::new()),
        })
    }

    /// Distinct values so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no value has been interned yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of distinct values so far (for the memory budget).
    pub fn bytes(&self) -> usize {
        self.lock().heap_bytes()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the table naming a code whose value
        // is not stored (`Inner::intern` publishes the code last), so a poisoned lock is
        // still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Intern every value of a row-group dictionary; the result maps its slots to codes.
    fn remap(&self, values: &dyn Array) -> Vec<u32> {
        let mut inner = self.lock();
        (0..values.len())
            .map(|i| {
                if values.is_null(i) {
                    return NULL_CODE;
                }
                inner.intern(value_bytes(values, i))
            })
            .collect()
    }

    /// The codes of a dictionary-encoded array (as the parquet reader returns it).
    pub fn encode(&self, array: &dyn Array) -> Option<UInt32Array> {
        let dict = array.as_any_dictionary_opt()?;
        let remap = self.remap(dict.values().as_ref());
        let keys = dict.normalized_keys();
        let nulls = array.logical_nulls();
        let mut any_null_value = false;
        let codes: Vec<u32> = keys
            .iter()
            .enumerate()
            .map(|(row, &k)| {
                if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                    return 0;
                }
                match remap.get(k) {
                    Some(&c) if c != NULL_CODE => c,
                    _ => {
                        any_null_value = true;
                        0
                    }
                }
            })
            .collect();
        let nulls = if any_null_value {
            // A key pointing at a null dictionary slot is a null row.
            let valid: Vec<bool> = keys
                .iter()
                .enumerate()
                .map(|(row, &k)| {
                    nulls.as_ref().is_none_or(|n| n.is_valid(row))
                        && remap.get(k).is_some_and(|&c| c != NULL_CODE)
                })
                .collect();
            Some(NullBuffer::from(valid))
        } else {
            nulls
        };
        Some(UInt32Array::new(ScalarBuffer::from(codes), nulls))
    }

    /// The distinct values, in code order, as an array of the column's value type.
    pub fn values(&self) -> ArrayRef {
        let inner = self.lock();
        let it = (0..inner.len()).map(|c| inner.value(c));
        // Values came from arrays of this very type (strings were valid UTF-8 there); the
        // lossy conversion borrows them unchanged.
        let strs = it.clone().map(String::from_utf8_lossy);
        match self.value_type {
            DataType::LargeUtf8 => Arc::new(LargeStringArray::from_iter_values(strs)),
            DataType::Binary => Arc::new(BinaryArray::from_iter_values(it)),
            DataType::LargeBinary => Arc::new(LargeBinaryArray::from_iter_values(it)),
            _ => Arc::new(StringArray::from_iter_values(strs)),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::types::Int32Type;
    use arrow_array::DictionaryArray;

    use super::*;

    #[test]
    fn codes_are_shared_across_row_group_dictionaries() {
        let g = GlobalDict::new(DataType::Utf8);
        let a: DictionaryArray<Int32Type> = vec![Some("b"), Some("a"), None, Some("b")]
            .into_iter()
            .collect();
        let b: DictionaryArray<Int32Type> = vec![Some("a"), Some("c")].into_iter().collect();
        let ca = g.encode(&a).unwrap();
        let cb = g.encode(&b).unwrap();
        let values = g.values();
        let values = values.as_string::<i32>();
        let decode = |c: &UInt32Array| -> Vec<Option<String>> {
            (0..c.len())
                .map(|i| {
                    c.is_valid(i)
                        .then(|| values.value(c.value(i) as usize).to_string())
                })
                .collect()
        };
        assert_eq!(
            decode(&ca),
            vec![Some("b".into()), Some("a".into()), None, Some("b".into())]
        );
        assert_eq!(decode(&cb), vec![Some("a".into()), Some("c".into())]);
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn many_values_keep_their_codes_through_table_growth() {
        // 50,000 distinct values (the table doubles ten times), interned in two overlapping
        // row-group dictionaries; the empty string and a binary-looking value included.
        let value = |i: usize| match i {
            0 => String::new(),
            1 => "\u{0}\u{ff}".to_string(),
            i => format!("user-{i:06}"),
        };
        let g = GlobalDict::new(DataType::Utf8);
        let all: Vec<String> = (0..50_000).map(value).collect();
        let first: DictionaryArray<Int32Type> =
            all[..30_000].iter().map(|v| Some(v.as_str())).collect();
        let second: DictionaryArray<Int32Type> = all[20_000..]
            .iter()
            .rev()
            .map(|v| Some(v.as_str()))
            .collect();
        let c1 = g.encode(&first).unwrap();
        let c2 = g.encode(&second).unwrap();
        assert_eq!(g.len(), 50_000);
        let values = g.values();
        let values = values.as_string::<i32>();
        assert_eq!(values.len(), 50_000);
        for (row, i) in (0..30_000).enumerate() {
            assert_eq!(values.value(c1.value(row) as usize), value(i));
        }
        for (row, i) in (20_000..50_000).rev().enumerate() {
            assert_eq!(values.value(c2.value(row) as usize), value(i));
        }
        // Values shared by both dictionaries got one code.
        assert_eq!(c1.value(25_000), c2.value(50_000 - 1 - 25_000));
        assert!(g.bytes() >= values.value_data().len());
    }

    #[test]
    fn plain_arrays_are_not_encoded() {
        let g = GlobalDict::new(DataType::Utf8);
        assert!(g.encode(&StringArray::from(vec!["x"])).is_none());
    }
}
