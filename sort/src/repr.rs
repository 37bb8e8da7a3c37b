//! How each column travels through the sort: its representation between decoding and
//! encoding, chosen from the parquet footers alone (so the choice, and with it the output
//! bytes, never depends on memory or threads).
//!
//! | representation | when | carried as | at output |
//! |---|---|---|---|
//! | [`Repr::Constant`] | exact statistics say one non-null value in every column chunk | nothing | the value, repeated |
//! | [`Repr::Codes`] | a string/binary column whose every chunk is dictionary-only | `u32` codes into a [`GlobalDict`] | dictionary array |
//! | [`Repr::Plain`] | everything else | the decoded array (views read as offsets) | as carried |
//!
//! A constant column costs nothing to sort, spill or gather (the platform's four pins are
//! constant in every output). Statistics are trusted only when exact, and every decoded
//! batch is still checked against the value; either way the source digest is computed on
//! the batch as read, so a wrong guess could only fail validation, never change the view.

use std::sync::{Arc, OnceLock};

use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use arrow_array::{
    downcast_primitive_array, Array, ArrayRef, ArrowPrimitiveType, DictionaryArray, PrimitiveArray,
    UInt32Array,
};
use arrow_buffer::{ScalarBuffer, ToByteSlice};
use arrow_schema::{DataType, Field};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::basic::Encoding;

use crate::dict::{self, GlobalDict};
use crate::error::{Result, SortError};

/// The largest total of (compressed) dictionary pages for which a column travels as codes.
pub const MAX_DICT_PAGE_BYTES: u64 = 16 << 20;

/// How a column travels through the sort.
#[derive(Debug, Clone)]
pub enum Repr {
    /// As decoded (read type = source type with views replaced by offset types).
    Plain,
    /// `u32` codes into a dataset-wide dictionary.
    Codes(Arc<GlobalDict>),
    /// The same non-null value in every row: not carried at all. The one-row array holding
    /// the value is taken from the first batch decoded.
    Constant(Arc<OnceLock<ArrayRef>>),
}

/// One column's plan.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    pub name: String,
    /// The type in the source files (and in the view).
    pub source_type: DataType,
    /// The type requested from the parquet reader.
    pub read_type: DataType,
    pub repr: Repr,
    /// Every column chunk of the source was dictionary-only: low cardinality, so the output
    /// encodes it with a dictionary too.
    pub low_cardinality: bool,
}

impl ColumnPlan {
    /// Whether the column is carried in work batches (not constant).
    pub fn carried(&self) -> bool {
        !matches!(self.repr, Repr::Constant(_))
    }
}

fn strip_views(dt: &DataType) -> DataType {
    match dt {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::Dictionary(_, v) => strip_views(v),
        other => other.clone(),
    }
}

/// Whether a batch can be checked against a constant of this (read) type.
fn checkable(dt: &DataType) -> bool {
    match dt {
        DataType::Dictionary(_, v) => dict::supports_value_type(v),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary => true,
        dt => dt.is_primitive(),
    }
}

/// Plan column `index` of the dataset from its footers.
pub fn plan_column(index: usize, field: &Field, footers: &[ArrowReaderMetadata]) -> ColumnPlan {
    let mut all_dict = true;
    let mut dict_bytes = 0u64;
    let mut chunks = 0usize;
    // The constant's encoded value, while every chunk agrees on one.
    let mut constant: Option<Option<Vec<u8>>> = None;
    for meta in footers {
        for g in meta.metadata().row_groups() {
            let Some(cc) = g.columns().get(index) else {
                all_dict = false;
                constant = Some(None);
                continue;
            };
            if cc.num_values() == 0 {
                continue;
            }
            chunks += 1;
            let dict_only = cc.page_encoding_stats_mask().is_some_and(|m| {
                m.is_only(Encoding::RLE_DICTIONARY) || m.is_only(Encoding::PLAIN_DICTIONARY)
            });
            match cc.dictionary_page_offset() {
                Some(off) if dict_only => {
                    dict_bytes += (cc.data_page_offset() - off).max(0) as u64;
                }
                _ => all_dict = false,
            }
            let this = cc.statistics().and_then(|s| {
                let exact = s.min_is_exact() && s.max_is_exact() && s.null_count_opt() == Some(0);
                match (s.min_bytes_opt(), s.max_bytes_opt()) {
                    (Some(lo), Some(hi)) if exact && lo == hi => Some(lo.to_vec()),
                    _ => None,
                }
            });
            constant = Some(match (constant, this) {
                (None, Some(v)) => Some(v),
                (Some(Some(prev)), Some(v)) if prev == v => Some(prev),
                _ => None,
            });
        }
    }
    let low_cardinality = all_dict && chunks > 0 && dict_bytes <= MAX_DICT_PAGE_BYTES;
    let value_type = strip_views(field.data_type());
    let dictionary = low_cardinality && dict::supports_value_type(&value_type);
    let read_type = if dictionary {
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(value_type.clone()))
    } else {
        value_type.clone()
    };
    let repr = if matches!(constant, Some(Some(_))) && checkable(&read_type) {
        Repr::Constant(Arc::new(OnceLock::new()))
    } else if dictionary {
        Repr::Codes(GlobalDict::new(value_type))
    } else {
        Repr::Plain
    };
    ColumnPlan {
        name: field.name().clone(),
        source_type: field.data_type().clone(),
        read_type,
        repr,
        low_cardinality,
    }
}

/// Whether every row of `array` equals the one row of `value` (same type, no nulls).
pub(crate) fn all_equal(array: &dyn Array, value: &dyn Array) -> bool {
    if array.null_count() > 0 || value.len() != 1 || value.null_count() > 0 {
        return false;
    }
    if let (Some(a), Some(v)) = (array.as_any_dictionary_opt(), value.as_any_dictionary_opt()) {
        // Compare each dictionary value a row refers to with the constant's value.
        let want = v.values().slice(v.normalized_keys()[0], 1);
        if a.values().len() == 1 {
            // Every key of a valid dictionary array indexes its values: with one value and
            // no nulls, every row holds it (the common case: a pin's dictionary page).
            return a.values().as_ref() == want.as_ref();
        }
        let mut checked = vec![false; a.values().len()];
        for k in a.normalized_keys() {
            if k >= checked.len() {
                return false;
            }
            if !checked[k] {
                if a.values().slice(k, 1).as_ref() != want.as_ref() {
                    return false;
                }
                checked[k] = true;
            }
        }
        return true;
    }
    macro_rules! bytes {
        ($a:expr, $v:expr) => {{
            let (a, v) = ($a, $v);
            let want = v.value(0);
            (0..a.len()).all(|i| a.value(i) == want)
        }};
    }
    match array.data_type() {
        DataType::Utf8 => bytes!(array.as_string::<i32>(), value.as_string::<i32>()),
        DataType::LargeUtf8 => bytes!(array.as_string::<i64>(), value.as_string::<i64>()),
        DataType::Binary => bytes!(array.as_binary::<i32>(), value.as_binary::<i32>()),
        DataType::LargeBinary => bytes!(array.as_binary::<i64>(), value.as_binary::<i64>()),
        _ => downcast_primitive_array!(
            array => primitive_equal(array, value),
            _ => false
        ),
    }
}

/// All values of `a` bit-for-bit equal to the one of `value` (bits, so `-0.0` is not `0.0`).
fn primitive_equal<T: ArrowPrimitiveType>(a: &PrimitiveArray<T>, value: &dyn Array) -> bool {
    let Some(v) = value.as_primitive_opt::<T>() else {
        return false;
    };
    let want = v.values()[0];
    a.values()
        .iter()
        .all(|x| x.to_byte_slice() == want.to_byte_slice())
}

/// Check a decoded column of a constant: record the value from the first batch seen, then
/// every batch must hold only that value.
pub fn check_constant(
    cell: &OnceLock<ArrayRef>,
    column: &str,
    array: &ArrayRef,
    output_id: &str,
) -> Result<()> {
    if array.is_empty() {
        return Ok(());
    }
    let value = cell.get_or_init(|| array.slice(0, 1));
    if all_equal(array.as_ref(), value.as_ref()) {
        Ok(())
    } else {
        Err(SortError::ValidationFailed {
            output_id: output_id.to_string(),
            detail: format!(
                "column {column:?}: parquet statistics say every row holds one value, but a \
                 decoded batch differs (corrupt statistics?)"
            ),
        })
    }
}

/// `rows` copies of a constant's value (same type as decoded).
pub fn repeat_constant(value: &ArrayRef, rows: usize) -> Result<ArrayRef> {
    let zeros = UInt32Array::new(ScalarBuffer::from(vec![0u32; rows]), None);
    arrow_select::take::take(value.as_ref(), &zeros, None)
        .map_err(|e| SortError::Internal(format!("repeating a constant: {e}")))
}

/// The output array of a dictionary-coded column: a dictionary array over the global
/// `values` with `codes` as keys (codes were assigned by that very dictionary, so they are
/// in range) or, when the dictionary has more values than the batch has rows, the values
/// themselves, decoded. A dictionary of millions of user ids under a 128 Ki-row group made
/// the writer's statistics and interning, and the view digest, read values at random
/// across the whole dictionary row after row: decoding once makes that one gather, and
/// everything after it reads the batch in order.
///
/// Both forms hold the same values, but the parquet writer may cut its mini-batches, and so
/// fall back from dictionary to plain pages, at slightly different rows for the two (seen
/// on a column whose row-group dictionary outgrows the 1 MiB page limit). The form depends
/// only on the dataset's distinct values and the row-group size, never on threads, memory
/// limit or code numbering, so the bytes stay identical across those settings.
pub fn codes_to_output(codes: &ArrayRef, values: &ArrayRef) -> Result<ArrayRef> {
    if values.len() <= codes.len() {
        return codes_to_dictionary(codes, values);
    }
    arrow_select::take::take(values.as_ref(), codes.as_ref(), None)
        .map_err(|e| SortError::Internal(format!("decoding dictionary codes: {e}")))
}

/// A dictionary array over `values` with `codes` as keys (codes were assigned by that very
/// dictionary, so they are in range).
fn codes_to_dictionary(codes: &ArrayRef, values: &ArrayRef) -> Result<ArrayRef> {
    let codes = codes
        .as_any()
        .downcast_ref::<UInt32Array>()
        .ok_or_else(|| SortError::Internal("dictionary codes are not UInt32".into()))?
        .clone();
    DictionaryArray::<UInt32Type>::try_new(codes, values.clone())
        .map(|d| Arc::new(d) as ArrayRef)
        .map_err(|e| SortError::Internal(format!("dictionary codes: {e}")))
}

#[cfg(test)]
mod tests {
    use arrow_array::types::Int32Type;
    use arrow_array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn constants_are_checked_against_the_first_value() {
        let cell = OnceLock::new();
        let a: ArrayRef = Arc::new(Int64Array::from(vec![7, 7, 7]));
        check_constant(&cell, "c", &a, "o").unwrap();
        let b: ArrayRef = Arc::new(Int64Array::from(vec![7, 8]));
        let e = check_constant(&cell, "c", &b, "o").unwrap_err();
        assert_eq!(e.code(), "STREAM_SORT_VALIDATION_FAILED");
        let d = OnceLock::new();
        let x: ArrayRef = Arc::new(
            vec!["p", "p"]
                .into_iter()
                .collect::<DictionaryArray<Int32Type>>(),
        );
        check_constant(&d, "d", &x, "o").unwrap();
        let y: ArrayRef = Arc::new(
            vec!["p", "q"]
                .into_iter()
                .collect::<DictionaryArray<Int32Type>>(),
        );
        assert!(check_constant(&d, "d", &y, "o").is_err());
        let q: ArrayRef = Arc::new(
            vec!["q", "q"]
                .into_iter()
                .collect::<DictionaryArray<Int32Type>>(),
        );
        assert!(
            check_constant(&d, "d", &q, "o").is_err(),
            "a one-value dictionary of another value"
        );
        let s = OnceLock::new();
        let z: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None]));
        assert!(
            check_constant(&s, "s", &z, "o").is_err(),
            "nulls are not constant"
        );
    }

    #[test]
    fn repeated_constants_have_the_decoded_type() {
        let v: ArrayRef = Arc::new(StringArray::from(vec!["pin"]));
        let r = repeat_constant(&v, 4).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r.data_type(), &DataType::Utf8);
        assert_eq!(r.as_string::<i32>().value(3), "pin");
    }
}
