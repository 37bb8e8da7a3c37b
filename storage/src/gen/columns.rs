//! Arrow column builders for the generator's hot loop: plain `Vec`s filled with capacity and
//! turned into arrays without copying. Strings go in as bytes (timestamps come out of
//! `TsFormatter` as fixed-size byte arrays), so no row allocates or formats.
//!
//! Offsets are `i32`: batches are capped at [`MAX_BATCH_ROWS`] rows of short strings,
//! far below the 2 GiB a `Utf8` array can hold.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, SchemaRef};

/// The most rows a generator puts in one batch (the parquet writer cuts row groups from
/// consecutive batches, so this only bounds memory, not row-group size). Traffic batches
/// end on a flow boundary and may exceed it by up to 7 rows.
pub const MAX_BATCH_ROWS: usize = 65_536;

fn validity(nullable: bool, rows: usize) -> Option<BooleanBufferBuilder> {
    nullable.then(|| BooleanBufferBuilder::new(rows))
}

fn nulls(v: Option<BooleanBufferBuilder>) -> Option<NullBuffer> {
    v.map(|mut b| NullBuffer::new(b.finish()))
        .filter(|n| n.null_count() > 0)
}

/// A `Utf8` column under construction.
pub struct Utf8Col {
    offsets: Vec<i32>,
    values: Vec<u8>,
    validity: Option<BooleanBufferBuilder>,
}

impl Utf8Col {
    /// Room for `rows` values of about `bytes_per_row` bytes each.
    pub fn new(rows: usize, bytes_per_row: usize, nullable: bool) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Utf8Col {
            offsets,
            values: Vec::with_capacity(rows * bytes_per_row),
            validity: validity(nullable, rows),
        }
    }

    /// Append one value (`v` must be UTF-8; `finish` checks it once for the whole column).
    #[inline]
    pub fn push(&mut self, v: &[u8]) {
        self.values.extend_from_slice(v);
        self.offsets.push(self.values.len() as i32);
        if let Some(b) = &mut self.validity {
            b.append(true);
        }
    }

    /// Append a null (the column must have been created nullable).
    #[inline]
    pub fn push_null(&mut self) {
        self.offsets.push(self.values.len() as i32);
        if let Some(b) = &mut self.validity {
            b.append(false);
        }
    }

    pub fn finish(self) -> Result<ArrayRef, ArrowError> {
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        let array =
            StringArray::try_new(offsets, Buffer::from_vec(self.values), nulls(self.validity))?;
        Ok(Arc::new(array))
    }
}

/// An `Int64` column under construction.
pub struct IntCol {
    values: Vec<i64>,
    validity: Option<BooleanBufferBuilder>,
}

impl IntCol {
    pub fn new(rows: usize, nullable: bool) -> Self {
        IntCol {
            values: Vec::with_capacity(rows),
            validity: validity(nullable, rows),
        }
    }

    #[inline]
    pub fn push(&mut self, v: i64) {
        self.values.push(v);
        if let Some(b) = &mut self.validity {
            b.append(true);
        }
    }

    /// Append `v`, or a null for `None` (the column must have been created nullable).
    #[inline]
    pub fn push_opt(&mut self, v: Option<i64>) {
        self.values.push(v.unwrap_or(0));
        if let Some(b) = &mut self.validity {
            b.append(v.is_some());
        }
    }

    pub fn finish(self) -> Result<ArrayRef, ArrowError> {
        let array = Int64Array::try_new(ScalarBuffer::from(self.values), nulls(self.validity))?;
        Ok(Arc::new(array))
    }
}

/// A non-null `Float64` column under construction.
pub struct FloatCol(Vec<f64>);

impl FloatCol {
    pub fn new(rows: usize) -> Self {
        FloatCol(Vec::with_capacity(rows))
    }

    #[inline]
    pub fn push(&mut self, v: f64) {
        self.0.push(v);
    }

    pub fn finish(self) -> ArrayRef {
        Arc::new(Float64Array::new(ScalarBuffer::from(self.0), None))
    }
}

/// A non-null `Boolean` column under construction.
pub struct BoolCol(BooleanBufferBuilder);

impl BoolCol {
    pub fn new(rows: usize) -> Self {
        BoolCol(BooleanBufferBuilder::new(rows))
    }

    #[inline]
    pub fn push(&mut self, v: bool) {
        self.0.append(v);
    }

    pub fn finish(mut self) -> ArrayRef {
        Arc::new(BooleanArray::new(self.0.finish(), None))
    }
}

/// Columns whose value is the same on every row of the run (the pins, the routing
/// universe hash): built once at the largest batch size and sliced, zero-copy, per batch.
#[derive(Debug, Clone)]
pub struct ConstColumns {
    rows: usize,
    columns: Vec<(&'static str, ArrayRef)>,
}

/// One constant value.
pub enum Const<'a> {
    Int(i64),
    Str(&'a str),
}

impl ConstColumns {
    pub fn new(rows: usize, values: &[(&'static str, Const<'_>)]) -> Self {
        let columns = values
            .iter()
            .map(|(name, v)| {
                let array: ArrayRef = match v {
                    Const::Int(x) => Arc::new(Int64Array::from(vec![*x; rows])),
                    Const::Str(s) => {
                        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(*s, rows)))
                    }
                };
                (*name, array)
            })
            .collect();
        ConstColumns { rows, columns }
    }

    /// The constant columns for a batch of `rows` rows (`rows` <= the size built).
    pub fn slice(&self, rows: usize) -> impl Iterator<Item = (&'static str, ArrayRef)> + '_ {
        let rows = rows.min(self.rows);
        self.columns
            .iter()
            .map(move |(n, a)| (*n, a.slice(0, rows)))
    }
}

/// Put named columns in the order of `schema` and make a batch; an error names the first
/// schema column no builder produced (a generator bug, caught by the schema tests).
pub fn assemble(
    schema: &SchemaRef,
    mut named: Vec<(&'static str, ArrayRef)>,
) -> Result<RecordBatch, ArrowError> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let at = named
            .iter()
            .position(|(n, _)| *n == field.name())
            .ok_or_else(|| {
                ArrowError::SchemaError(format!("generator produced no column {}", field.name()))
            })?;
        columns.push(named.swap_remove(at).1);
    }
    RecordBatch::try_new(schema.clone(), columns)
}

/// Produces an output file's rows, in primary-key order, one batch at a time.
pub trait BatchSource {
    /// The next batch of about `max_rows` rows (at least one), or `None` when done.
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, ArrowError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_schema::{DataType, Field, Schema};

    #[test]
    fn utf8_with_nulls_roundtrips() {
        let mut c = Utf8Col::new(4, 3, true);
        c.push(b"abc");
        c.push_null();
        c.push(b"");
        c.push(b"de");
        let a = c.finish().unwrap();
        let s = a.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s.null_count(), 1);
        assert_eq!((s.value(0), s.value(2), s.value(3)), ("abc", "", "de"));
        assert!(s.is_null(1));
    }

    #[test]
    fn nullable_builders_without_nulls_have_no_null_buffer() {
        let mut c = IntCol::new(2, true);
        c.push(1);
        c.push_opt(Some(2));
        let a = c.finish().unwrap();
        assert!(a.nulls().is_none());
        let mut c = IntCol::new(2, true);
        c.push_opt(None);
        assert_eq!(c.finish().unwrap().null_count(), 1);
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let mut c = Utf8Col::new(1, 1, false);
        c.push(&[0xff]);
        assert!(c.finish().is_err());
    }

    #[test]
    fn assemble_orders_by_schema_and_reports_missing() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, false),
        ]));
        let consts = ConstColumns::new(8, &[("b", Const::Str("x")), ("a", Const::Int(3))]);
        let batch = assemble(&schema, consts.slice(2).collect()).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema().field(0).name(), "a");
        let missing = assemble(&schema, consts.slice(2).take(1).collect()).unwrap_err();
        assert!(missing.to_string().contains("no column a"), "{missing}");
    }
}
