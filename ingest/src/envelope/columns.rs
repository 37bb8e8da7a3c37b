//! Typed access to one Arrow column as the envelope needs it: the JSON value of a cell, its
//! text for ids and partition keys, and the JSON *kind* it will have (for the schema check).
//! The type is matched once per batch, not once per cell.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, BooleanArray, PrimitiveArray};
use arrow_buffer::NullBuffer;
use arrow_schema::DataType;
use sluice_storage::outputs::ColType;

use crate::json;

/// The JSON kind a cell is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Null,
    Int,
    Float,
    Str,
    Bool,
}

impl JsonKind {
    /// Whether a non-null cell of this kind satisfies a column type.
    pub fn satisfies(self, ty: ColType) -> bool {
        matches!(
            (ty, self),
            (ColType::Int, JsonKind::Int)
                | (ColType::Float, JsonKind::Int | JsonKind::Float)
                | (ColType::Str, JsonKind::Str)
                | (ColType::Bool, JsonKind::Bool)
        )
    }
}

/// A column, downcast once, with its null buffer at hand (null checks are not virtual).
pub struct Col<'a> {
    nulls: Option<NullBuffer>,
    data: ColData<'a>,
}

/// The typed values of a [`Col`].
pub enum ColData<'a> {
    I8(&'a PrimitiveArray<Int8Type>),
    I16(&'a PrimitiveArray<Int16Type>),
    I32(&'a PrimitiveArray<Int32Type>),
    I64(&'a PrimitiveArray<Int64Type>),
    U8(&'a PrimitiveArray<UInt8Type>),
    U16(&'a PrimitiveArray<UInt16Type>),
    U32(&'a PrimitiveArray<UInt32Type>),
    U64(&'a PrimitiveArray<UInt64Type>),
    F16(&'a PrimitiveArray<Float16Type>),
    F32(&'a PrimitiveArray<Float32Type>),
    F64(&'a PrimitiveArray<Float64Type>),
    Str(&'a arrow_array::StringArray),
    LargeStr(&'a arrow_array::LargeStringArray),
    StrView(&'a arrow_array::StringViewArray),
    Bool(&'a BooleanArray),
    Null(usize),
}

impl<'a> Col<'a> {
    /// Bind a column; `None` for types a JSON payload cannot hold.
    pub fn bind(a: &'a ArrayRef) -> Option<Col<'a>> {
        use ColData as Col;
        let data = match a.data_type() {
            DataType::Int8 => Col::I8(a.as_primitive()),
            DataType::Int16 => Col::I16(a.as_primitive()),
            DataType::Int32 => Col::I32(a.as_primitive()),
            DataType::Int64 => Col::I64(a.as_primitive()),
            DataType::UInt8 => Col::U8(a.as_primitive()),
            DataType::UInt16 => Col::U16(a.as_primitive()),
            DataType::UInt32 => Col::U32(a.as_primitive()),
            DataType::UInt64 => Col::U64(a.as_primitive()),
            DataType::Float16 => Col::F16(a.as_primitive()),
            DataType::Float32 => Col::F32(a.as_primitive()),
            DataType::Float64 => Col::F64(a.as_primitive()),
            DataType::Utf8 => Col::Str(a.as_string()),
            DataType::LargeUtf8 => Col::LargeStr(a.as_string()),
            DataType::Utf8View => Col::StrView(a.as_string_view()),
            DataType::Boolean => Col::Bool(a.as_boolean()),
            DataType::Null => Col::Null(a.len()),
            _ => return None,
        };
        Some(Self {
            nulls: a.nulls().cloned(),
            data,
        })
    }

    /// Whether the column has any null.
    pub fn has_nulls(&self) -> bool {
        matches!(self.data, ColData::Null(_))
            || self.nulls.as_ref().is_some_and(|n| n.null_count() > 0)
    }

    #[inline]
    pub fn is_null(&self, i: usize) -> bool {
        match &self.nulls {
            Some(n) => n.is_null(i),
            None => matches!(self.data, ColData::Null(_)),
        }
    }

    /// The string of a string cell (`None` for null cells and non-string columns).
    #[inline]
    pub fn str_at(&self, i: usize) -> Option<&'a str> {
        if self.is_null(i) {
            return None;
        }
        match self.data {
            ColData::Str(a) => Some(a.value(i)),
            ColData::LargeStr(a) => Some(a.value(i)),
            ColData::StrView(a) => Some(a.value(i)),
            _ => None,
        }
    }

    /// Whether cells `i` and `j` hold the same value (both null counts as the same), so
    /// that their JSON is byte-identical. Floats compare by bits.
    #[inline]
    pub fn same_cell(&self, i: usize, j: usize) -> bool {
        use ColData as Col;
        match (self.is_null(i), self.is_null(j)) {
            (true, true) => return true,
            (false, false) => {}
            _ => return false,
        }
        match self.data {
            Col::I8(a) => a.value(i) == a.value(j),
            Col::I16(a) => a.value(i) == a.value(j),
            Col::I32(a) => a.value(i) == a.value(j),
            Col::I64(a) => a.value(i) == a.value(j),
            Col::U8(a) => a.value(i) == a.value(j),
            Col::U16(a) => a.value(i) == a.value(j),
            Col::U32(a) => a.value(i) == a.value(j),
            Col::U64(a) => a.value(i) == a.value(j),
            Col::F16(a) => a.value(i).to_bits() == a.value(j).to_bits(),
            Col::F32(a) => a.value(i).to_bits() == a.value(j).to_bits(),
            Col::F64(a) => a.value(i).to_bits() == a.value(j).to_bits(),
            Col::Str(a) => a.value(i) == a.value(j),
            Col::LargeStr(a) => a.value(i) == a.value(j),
            Col::StrView(a) => a.value(i) == a.value(j),
            Col::Bool(a) => a.value(i) == a.value(j),
            Col::Null(_) => true,
        }
    }

    /// True for integer columns.
    pub fn is_int(&self) -> bool {
        use ColData as Col;
        matches!(
            self.data,
            Col::I8(_)
                | Col::I16(_)
                | Col::I32(_)
                | Col::I64(_)
                | Col::U8(_)
                | Col::U16(_)
                | Col::U32(_)
                | Col::U64(_)
        )
    }

    /// True for string columns.
    pub fn is_str(&self) -> bool {
        matches!(
            self.data,
            ColData::Str(_) | ColData::LargeStr(_) | ColData::StrView(_)
        )
    }

    /// The typed values.
    pub fn data(&self) -> &ColData<'a> {
        &self.data
    }

    /// The JSON kind of the column's non-null cells (`None` for an all-null column); a
    /// float column's non-finite cells are written as null.
    pub fn class(&self) -> Option<JsonKind> {
        use ColData as Col;
        match self.data {
            Col::F16(_) | Col::F32(_) | Col::F64(_) => Some(JsonKind::Float),
            Col::Str(_) | Col::LargeStr(_) | Col::StrView(_) => Some(JsonKind::Str),
            Col::Bool(_) => Some(JsonKind::Bool),
            Col::Null(_) => None,
            _ => Some(JsonKind::Int),
        }
    }

    /// The JSON kind cell `i` is written as.
    #[inline]
    pub fn kind(&self, i: usize) -> JsonKind {
        use ColData as Col;
        if self.is_null(i) {
            return JsonKind::Null;
        }
        match self.data {
            Col::F16(a) if !a.value(i).to_f64().is_finite() => JsonKind::Null,
            Col::F32(a) if !a.value(i).is_finite() => JsonKind::Null,
            Col::F64(a) if !a.value(i).is_finite() => JsonKind::Null,
            Col::F16(_) | Col::F32(_) | Col::F64(_) => JsonKind::Float,
            Col::Str(_) | Col::LargeStr(_) | Col::StrView(_) => JsonKind::Str,
            Col::Bool(_) => JsonKind::Bool,
            Col::Null(_) => JsonKind::Null,
            _ => JsonKind::Int,
        }
    }

    /// Append cell `i` as a JSON value.
    #[inline]
    pub fn write_json(&self, out: &mut Vec<u8>, i: usize) {
        use ColData as Col;
        if self.is_null(i) {
            out.extend_from_slice(b"null");
            return;
        }
        match self.data {
            Col::I8(a) => json::write_i64(out, a.value(i).into()),
            Col::I16(a) => json::write_i64(out, a.value(i).into()),
            Col::I32(a) => json::write_i64(out, a.value(i).into()),
            Col::I64(a) => json::write_i64(out, a.value(i)),
            Col::U8(a) => json::write_u64(out, a.value(i).into()),
            Col::U16(a) => json::write_u64(out, a.value(i).into()),
            Col::U32(a) => json::write_u64(out, a.value(i).into()),
            Col::U64(a) => json::write_u64(out, a.value(i)),
            Col::F16(a) => json::write_f64(out, a.value(i).to_f64()),
            Col::F32(a) => json::write_f64(out, a.value(i).into()),
            Col::F64(a) => json::write_f64(out, a.value(i)),
            Col::Str(a) => json::write_str(out, a.value(i)),
            Col::LargeStr(a) => json::write_str(out, a.value(i)),
            Col::StrView(a) => json::write_str(out, a.value(i)),
            Col::Bool(a) => json::write_bool(out, a.value(i)),
            Col::Null(_) => out.extend_from_slice(b"null"),
        }
    }

    /// Append cell `i` as id text: integers in decimal, strings as they are, booleans as
    /// `true`/`false`, floats as in JSON. Returns false for a null cell (nothing written).
    #[inline]
    pub fn write_text(&self, out: &mut Vec<u8>, i: usize) -> bool {
        use ColData as Col;
        if self.is_null(i) {
            return false;
        }
        match self.data {
            Col::Str(a) => out.extend_from_slice(a.value(i).as_bytes()),
            Col::LargeStr(a) => out.extend_from_slice(a.value(i).as_bytes()),
            Col::StrView(a) => out.extend_from_slice(a.value(i).as_bytes()),
            _ => self.write_json(out, i),
        }
        true
    }
}
