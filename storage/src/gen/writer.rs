//! Writing one generated parquet file, atomically.
//!
//! ```text
//!   BatchSource --batches--> ArrowWriter (row groups of R rows, zstd, statistics)
//!                               |
//!                               v
//!   .part-00003.parquet.tmp-<pid>-<n> --fsync, rename--> part-00003.parquet --fsync dir
//! ```
//!
//! A failure drops the temp file; nothing half-written ever carries a `part-*` name.

use std::path::Path;

use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::{Result, StorageError};
use crate::gen::columns::{BatchSource, MAX_BATCH_ROWS};
use crate::publish::AtomicFile;

/// What was written to one file.
#[derive(Debug, Clone, Copy, Default)]
pub struct WrittenFile {
    pub rows: u64,
    pub bytes: u64,
    pub row_groups: u64,
}

/// Columns whose values are (nearly) all distinct within a row group: a dictionary there
/// costs a hash per value and saves nothing, so they go straight to plain encoding (zstd
/// still squeezes the sorted ids). Low-cardinality columns (pins, event types, zones,
/// merchants) keep dictionaries.
const HIGH_CARDINALITY: &[&str] = &[
    "ts_utc",
    "ts_local_primary",
    "ts_local_settlement",
    "ts_local_operational",
    "amount",
    "lambda_realised",
    "flow_id",
    "party_id",
    "account_id",
    "instrument_id",
    "device_id",
    "ip_id",
    "session_id",
];

/// Writer settings of every generated file: zstd (level 1), page-level statistics,
/// `row_group_rows` rows per row group.
pub fn writer_properties(schema: &SchemaRef, row_group_rows: usize) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_created_by(format!("sluice gen {}", env!("CARGO_PKG_VERSION")));
    for field in schema.fields() {
        if HIGH_CARDINALITY.contains(&field.name().as_str()) {
            b = b.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
        }
    }
    b.build()
}

/// Write everything `source` yields to `path` (atomically), reporting rows to `progress`
/// after each batch.
pub fn write_file(
    path: &Path,
    schema: SchemaRef,
    row_group_rows: usize,
    source: &mut dyn BatchSource,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<WrittenFile> {
    let props = writer_properties(&schema, row_group_rows);
    let file = AtomicFile::create(path)?;
    let mut writer = ArrowWriter::try_new(file, schema, Some(props))
        .map_err(|e| StorageError::parquet(path, e))?;
    let mut written = WrittenFile::default();
    let batch_rows = row_group_rows.clamp(1, MAX_BATCH_ROWS);
    while let Some(batch) = source
        .next_batch(batch_rows)
        .map_err(|e| StorageError::parquet(path, e))?
    {
        writer
            .write(&batch)
            .map_err(|e| StorageError::parquet(path, e))?;
        written.rows += batch.num_rows() as u64;
        progress(batch.num_rows() as u64);
    }
    writer.flush().map_err(|e| StorageError::parquet(path, e))?;
    written.row_groups = writer.flushed_row_groups().len() as u64;
    let file = writer
        .into_inner()
        .map_err(|e| StorageError::parquet(path, e))?;
    let published = file.commit()?;
    written.bytes = std::fs::metadata(&published)
        .map_err(|e| StorageError::io(&published, e))?
        .len();
    Ok(written)
}
