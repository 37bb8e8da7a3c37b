//! Column-parallel encoding of one row group, and the writer settings of a view.

use arrow_array::ArrayRef;
use arrow_schema::{DataType, SchemaRef};
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowRowGroupWriterFactory, ArrowWriterOptions,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use crate::error::{Result, SortError};
use crate::plan::SourcePlan;

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

/// Encoded column chunks of one row group, ready to be appended to any part.
pub struct EncodedRowGroup {
    pub chunks: Vec<ArrowColumnChunk>,
    pub rows: u64,
    /// Time range of the rows (for the part's receipt entry), when known.
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
}

/// Encodes row groups of one schema with one set of writer properties.
pub struct RowGroupEncoder {
    schema: SchemaRef,
    factory: ArrowRowGroupWriterFactory,
}

impl RowGroupEncoder {
    /// An encoder for `schema` (the view's schema) with `props`.
    pub fn new(schema: SchemaRef, props: WriterProperties) -> Result<Self> {
        // Column writers only depend on schema and properties; the factory of a writer into
        // a sink makes chunks that can be appended to any real part file.
        let options = ArrowWriterOptions::new().with_properties(props);
        let (_sink, factory) =
            ArrowWriter::try_new_with_options(std::io::sink(), schema.clone(), options)
                .and_then(|w| w.into_serialized_writer())
                .map_err(|e| SortError::parquet("<encoder>", e))?;
        Ok(RowGroupEncoder { schema, factory })
    }

    /// Encode one row group given as consecutive pieces (each a full set of columns), all
    /// columns in parallel.
    pub fn encode(&self, pieces: &[Vec<ArrayRef>]) -> Result<Vec<ArrowColumnChunk>> {
        let writers = self
            .factory
            .create_column_writers(0)
            .map_err(|e| SortError::parquet("<encoder>", e))?;
        writers
            .into_par_iter()
            .enumerate()
            .map(|(c, mut w)| {
                let field = self.schema.field(c);
                for piece in pieces {
                    let leaves = compute_leaves(field, &piece[c])
                        .map_err(|e| SortError::parquet("<encoder>", e))?;
                    for leaf in leaves {
                        w.write(&leaf)
                            .map_err(|e| SortError::parquet("<encoder>", e))?;
                    }
                }
                w.close().map_err(|e| SortError::parquet("<encoder>", e))
            })
            .collect()
    }
}
