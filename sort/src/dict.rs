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
//! At output the codes become a `DictionaryArray<UInt32>` over [`GlobalDict::values`]; the
//! parquet encoder interns values, not codes, so the bytes do not depend on code numbering.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::{
    Array, ArrayRef, BinaryArray, LargeBinaryArray, LargeStringArray, StringArray, UInt32Array,
};
use arrow_buffer::{NullBuffer, ScalarBuffer};
use arrow_schema::DataType;

/// Code of a dictionary slot that holds null (kept out of the global dictionary).
const NULL_CODE: u32 = u32::MAX;

#[derive(Default)]
struct Inner {
    codes: HashMap<Box<[u8]>, u32>,
    values: Vec<Box<[u8]>>,
    bytes: usize,
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
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Distinct values so far.
    pub fn len(&self) -> usize {
        self.lock().values.len()
    }

    /// Whether no value has been interned yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of distinct values so far (for the memory budget).
    pub fn bytes(&self) -> usize {
        let inner = self.lock();
        inner.bytes + inner.values.len() * 48
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent with `values`
        // (both are updated together below), so a poisoned lock is still usable.
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
                let v = value_bytes(values, i);
                if let Some(&c) = inner.codes.get(v) {
                    return c;
                }
                let c = inner.values.len() as u32;
                let boxed: Box<[u8]> = v.into();
                inner.bytes += boxed.len();
                inner.values.push(boxed.clone());
                inner.codes.insert(boxed, c);
                c
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
        let it = inner.values.iter().map(|v| v.as_ref());
        // Values came from arrays of this very type (strings were valid UTF-8 there); the
        // lossy conversion never changes them.
        let strs = || {
            inner
                .values
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        match self.value_type {
            DataType::LargeUtf8 => Arc::new(LargeStringArray::from_iter_values(strs())),
            DataType::Binary => Arc::new(BinaryArray::from_iter_values(it)),
            DataType::LargeBinary => Arc::new(LargeBinaryArray::from_iter_values(it)),
            _ => Arc::new(StringArray::from_iter_values(strs())),
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
    fn plain_arrays_are_not_encoded() {
        let g = GlobalDict::new(DataType::Utf8);
        assert!(g.encode(&StringArray::from(vec!["x"])).is_none());
    }
}
