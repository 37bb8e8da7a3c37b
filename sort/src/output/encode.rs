//! Column-parallel encoding of one row group, and the writer settings of a view.
//!
//! A **constant** column (the plan's `Repr::Constant`: the platform's pins, one value in
//! every row of the output) is encoded once per row-group size and its bytes spliced into
//! every row group: parquet-rs would otherwise intern and compare (statistics) the same
//! 64-byte string for every row (20M traffic rows: copy floor 3.79-3.91 → 3.19-3.44 s, sort
//! 6.15-6.95 → 5.59-6.33 s with splicing). The chunk is made by the same column writer from
//! the same repeated array, so the part bytes are those of encoding every row group
//! (`tests::spliced_constant_columns_write_the_same_bytes`).
//!
//! ```text
//!  first row group of n rows:  value ─► repeat n ─► column writer ─► chunk
//!                              ─► one-column file in memory ─► (bytes, offsets) ─► cache (col, n)
//!  every row group of n rows:  cache (col, n) ─► append_column ─► part
//! ```

use std::sync::{Arc, Mutex};

use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory,
    ArrowWriterOptions,
};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use crate::error::{Result, SortError};
use crate::plan::SourcePlan;
use crate::repr::{all_equal, repeat_constant};

/// `created_by` of every part: fixed, so the bytes do not depend on the build.
pub const CREATED_BY: &str = "sluice sort (parquet-rs)";

/// The writer settings of a view of `plan` (see the module docs of `output`).
pub fn writer_properties(plan: &SourcePlan, zstd_level: i32) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(zstd_level)
        .map_err(|e| SortError::Config(format!("--zstd-level {zstd_level}: {e}")))?;
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_created_by(CREATED_BY.to_string())
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_dictionary_enabled(false);
    for (i, c) in plan.columns.iter().enumerate() {
        let path = ColumnPath::from(c.name.as_str());
        if c.low_cardinality {
            b = b.set_column_dictionary_enabled(path, true);
        } else if i == plan.key_index {
            let encoding = match c.source_type {
                DataType::Timestamp(_, _) | DataType::Date64 => Some(Encoding::DELTA_BINARY_PACKED),
                DataType::Date32 => Some(Encoding::DELTA_BINARY_PACKED),
                DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary => Some(Encoding::DELTA_BYTE_ARRAY),
                _ => None,
            };
            if let Some(e) = encoding {
                b = b.set_column_encoding(path, e);
            }
        }
    }
    Ok(b.build())
}

/// One encoded column chunk of a row group.
pub enum EncodedColumn {
    /// Encoded from this row group's array (boxed: the enum moves through channels).
    Chunk(Box<ArrowColumnChunk>),
    /// A constant column's chunk, encoded once and shared by every row group of its size.
    Spliced(Arc<SplicedChunk>),
}

impl EncodedColumn {
    /// Append to the row group being written (columns in schema order).
    pub fn append_to_row_group<W: std::io::Write + Send>(
        self,
        writer: &mut SerializedRowGroupWriter<'_, W>,
    ) -> parquet::errors::Result<()> {
        match self {
            EncodedColumn::Chunk(c) => c.append_to_row_group(writer),
            EncodedColumn::Spliced(s) => writer.append_column(&s.bytes, s.close.clone()),
        }
    }
}

/// The bytes of an encoded constant column chunk (dictionary page first, as in a file) and
/// its close result, offsets relative to the first byte.
pub struct SplicedChunk {
    /// The one-row value it repeats (checked against each row group's).
    value: ArrayRef,
    bytes: Bytes,
    close: ColumnCloseResult,
}

/// Encoded column chunks of one row group, ready to be appended to any part.
pub struct EncodedRowGroup {
    pub chunks: Vec<EncodedColumn>,
    pub rows: u64,
    /// Time range of the rows (for the part's receipt entry), when known.
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
}

/// Encodes row groups of one schema with one set of writer properties.
pub struct RowGroupEncoder {
    schema: SchemaRef,
    props: WriterProperties,
    factory: ArrowRowGroupWriterFactory,
    /// Per column: spliced (constant) or encoded every time.
    constant: Vec<bool>,
    /// Spliced chunks made so far, per column (a view has one or two row-group sizes).
    spliced: Vec<Mutex<Vec<Arc<SplicedChunk>>>>,
}

impl RowGroupEncoder {
    /// An encoder for `schema` (the view's schema) with `props`; columns marked in
    /// `constant` are spliced (module docs). The caller guarantees that every row of such a
    /// column holds one value (the plan checked it against the footers and every decoded
    /// batch); a row group whose first value differs from the cached chunk's fails.
    pub fn new(schema: SchemaRef, props: WriterProperties, constant: Vec<bool>) -> Result<Self> {
        // Column writers only depend on schema and properties; the factory of a writer into
        // a sink makes chunks that can be appended to any real part file.
        let options = ArrowWriterOptions::new().with_properties(props.clone());
        let (_sink, factory) =
            ArrowWriter::try_new_with_options(std::io::sink(), schema.clone(), options)
                .and_then(|w| w.into_serialized_writer())
                .map_err(|e| SortError::parquet("<encoder>", e))?;
        if constant.len() != schema.fields().len() {
            return Err(SortError::Internal("encoder: one flag per column".into()));
        }
        let spliced = constant.iter().map(|_| Mutex::new(Vec::new())).collect();
        Ok(RowGroupEncoder {
            schema,
            props,
            factory,
            constant,
            spliced,
        })
    }

    /// Encode one row group given as consecutive pieces (each a full set of columns), all
    /// columns in parallel.
    pub fn encode(&self, pieces: &[Vec<ArrayRef>]) -> Result<Vec<EncodedColumn>> {
        let writers = self
            .factory
            .create_column_writers(0)
            .map_err(|e| SortError::parquet("<encoder>", e))?;
        let rows: usize = pieces
            .iter()
            .map(|p| p.first().map_or(0, |a| a.len()))
            .sum();
        writers
            .into_par_iter()
            .enumerate()
            .map(|(c, w)| {
                let first = pieces.iter().map(|p| &p[c]).find(|a| !a.is_empty());
                match first {
                    Some(a) if self.constant[c] => {
                        Ok(EncodedColumn::Spliced(self.constant_chunk(c, a, rows, w)?))
                    }
                    _ => Ok(EncodedColumn::Chunk(Box::new(self.encode_column(
                        c,
                        w,
                        pieces.iter().map(|p| &p[c]),
                    )?))),
                }
            })
            .collect()
    }

    fn encode_column<'a>(
        &self,
        c: usize,
        mut w: ArrowColumnWriter,
        arrays: impl Iterator<Item = &'a ArrayRef>,
    ) -> Result<ArrowColumnChunk> {
        let field = self.schema.field(c);
        for array in arrays {
            let leaves =
                compute_leaves(field, array).map_err(|e| SortError::parquet("<encoder>", e))?;
            for leaf in leaves {
                w.write(&leaf)
                    .map_err(|e| SortError::parquet("<encoder>", e))?;
            }
        }
        w.close().map_err(|e| SortError::parquet("<encoder>", e))
    }

    /// The spliced chunk of constant column `c` for `rows` rows whose first value is that
    /// of `array`: from the cache, else encoded now (with `w`, a writer for column `c`).
    fn constant_chunk(
        &self,
        c: usize,
        array: &ArrayRef,
        rows: usize,
        w: ArrowColumnWriter,
    ) -> Result<Arc<SplicedChunk>> {
        let value = array.slice(0, 1);
        let mut cache = self.spliced[c]
            .lock()
            .map_err(|_| SortError::Internal("encoder cache poisoned".into()))?;
        if let Some(s) = cache.iter().find(|s| s.close.rows_written == rows as u64) {
            if !all_equal(value.as_ref(), s.value.as_ref()) {
                return Err(SortError::Internal(format!(
                    "encoder: constant column {:?} changed value",
                    self.schema.field(c).name()
                )));
            }
            return Ok(s.clone());
        }
        let chunk = self.encode_column(c, w, std::iter::once(&repeat_constant(&value, rows)?))?;
        let spliced = Arc::new(self.to_spliced(c, chunk, value)?);
        cache.push(spliced.clone());
        Ok(spliced)
    }

    /// Lay `chunk` out as in a file (write it into a one-column file in memory) and keep
    /// its bytes with its close result, offsets moved to the dictionary-first layout.
    fn to_spliced(
        &self,
        c: usize,
        chunk: ArrowColumnChunk,
        value: ArrayRef,
    ) -> Result<SplicedChunk> {
        let err = |e| SortError::parquet("<encoder>", e);
        let close = chunk.close().clone();
        let one = Schema::new(vec![self.schema.field(c).clone()]);
        let descr = ArrowSchemaConverter::new().convert(&one).map_err(err)?;
        let mut file = SerializedFileWriter::new(
            Vec::new(),
            descr.root_schema_ptr(),
            Arc::new(self.props.clone()),
        )
        .map_err(err)?;
        let mut rg = file.next_row_group().map_err(err)?;
        chunk.append_to_row_group(&mut rg).map_err(err)?;
        let meta = rg.close().map_err(err)?;
        let written = meta.column(0);
        let start = written
            .dictionary_page_offset()
            .unwrap_or_else(|| written.data_page_offset());
        let dictionary_len = written
            .dictionary_page_offset()
            .map_or(0, |d| written.data_page_offset() - d);
        let end = start + written.compressed_size();
        let bytes = file.into_inner().map_err(err)?;
        let bytes = bytes
            .get(start as usize..end as usize)
            .ok_or_else(|| SortError::Internal("encoder: spliced chunk out of range".into()))?;
        Ok(SplicedChunk {
            value,
            bytes: Bytes::copy_from_slice(bytes),
            close: close
                .update_dictionary_location(dictionary_len as usize)
                .map_err(err)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use arrow_array::types::Int32Type;
    use arrow_array::{DictionaryArray, Int64Array, StringArray};
    use arrow_schema::Field;

    use super::*;
    use crate::output::PartWriter;

    const PIN: &str = "692bfc2d207ef3c547fb8522bd05e397d5650aa53c8789c34f8fda2edfc9c0a6";

    fn schema() -> SchemaRef {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("fingerprint", dict, false),
            Field::new("seed", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    /// Like a view's: zstd, page statistics, dictionaries for the low-cardinality columns.
    fn props() -> WriterProperties {
        WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_dictionary_enabled(false)
            .set_column_dictionary_enabled(ColumnPath::from("fingerprint"), true)
            .set_column_dictionary_enabled(ColumnPath::from("seed"), true)
            .build()
    }

    /// A row group of `n` rows from row `first`: the constant columns hold `pin` and 7.
    fn row_group(first: usize, n: usize, pin: &str) -> Vec<ArrayRef> {
        let keys = arrow_array::Int32Array::from(vec![0; n]);
        let fingerprint =
            DictionaryArray::<Int32Type>::try_new(keys, Arc::new(StringArray::from(vec![pin])))
                .unwrap();
        vec![
            Arc::new(Int64Array::from_iter_values(
                (first..first + n).map(|i| i as i64 * 3),
            )),
            Arc::new(fingerprint),
            Arc::new(Int64Array::from(vec![7; n])),
            Arc::new(StringArray::from_iter(
                (first..first + n).map(|i| (i % 5 != 0).then(|| format!("n{}", i % 11))),
            )),
        ]
    }

    /// Write row groups of these sizes (in parts of at most `part_size` bytes); the bytes
    /// of every part.
    fn write(dir: &Path, sizes: &[usize], constant: Vec<bool>, part_size: u64) -> Vec<Vec<u8>> {
        let encoder = RowGroupEncoder::new(schema(), props(), constant).unwrap();
        let mut writer = PartWriter::new(dir, schema(), props(), part_size);
        let mut first = 0;
        for &n in sizes {
            // Pieces as the copy floor hands them over (a row group from two batches).
            let all = row_group(first, n, PIN);
            let cut = n / 3;
            let pieces: Vec<Vec<ArrayRef>> = vec![
                all.iter().map(|a| a.slice(0, cut)).collect(),
                all.iter().map(|a| a.slice(cut, n - cut)).collect(),
            ];
            let chunks = encoder.encode(&pieces).unwrap();
            assert_eq!(
                chunks
                    .iter()
                    .filter(|c| matches!(c, EncodedColumn::Spliced(_)))
                    .count(),
                encoder.constant.iter().filter(|&&c| c).count()
            );
            writer
                .append(EncodedRowGroup {
                    chunks,
                    rows: n as u64,
                    min_time: None,
                    max_time: None,
                })
                .unwrap();
            first += n;
        }
        writer
            .finish()
            .unwrap()
            .iter()
            .map(|p| std::fs::read(dir.join(&p.name)).unwrap())
            .collect()
    }

    #[test]
    fn spliced_constant_columns_write_the_same_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let sizes = [1000, 1000, 1, 1000, 337];
        for part_size in [1, 1 << 30] {
            let plain = tmp.path().join(format!("plain-{part_size}"));
            let spliced = tmp.path().join(format!("spliced-{part_size}"));
            std::fs::create_dir_all(&plain).unwrap();
            std::fs::create_dir_all(&spliced).unwrap();
            let want = write(&plain, &sizes, vec![false; 4], part_size);
            let got = write(&spliced, &sizes, vec![false, true, true, false], part_size);
            assert_eq!(got.len(), want.len());
            assert!(got == want, "spliced parts differ (part size {part_size})");
            // And they read back as the rows written.
            let file =
                std::fs::File::open(spliced.join(sluice_storage::view::part_name(0))).unwrap();
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 4096)
                    .unwrap();
            let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
            assert_eq!(rows, if part_size == 1 { 1000 } else { 3338 });
        }
    }

    #[test]
    fn a_constant_that_changes_value_fails() {
        let encoder =
            RowGroupEncoder::new(schema(), props(), vec![false, true, true, false]).unwrap();
        encoder.encode(&[row_group(0, 10, PIN)]).unwrap();
        let err = encoder.encode(&[row_group(10, 10, "other")]).err().unwrap();
        assert_eq!(err.code(), "INTERNAL", "{err}");
    }
}
