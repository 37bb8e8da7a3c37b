//! Writing the view: row groups encoded column-parallel, parts cut by size.
//!
//! 1. [`RowGroupEncoder::encode`] turns one row group's arrays into encoded column chunks,
//!    every column on its own rayon task (`ArrowColumnWriter`); encoding does not depend
//!    on which file the chunks land in, so it can run ahead of the file writer.
//! 2. [`PartWriter::append`] splices the chunks into the open part
//!    (`part-NNNNNN.parquet`) while hashing every byte (blake3) on the way to disk.
//! 3. After a row group, if the part has reached `--part-size`, the part is closed. Cut
//!    points depend only on encoded sizes, which depend only on the rows and the writer
//!    settings: the output bytes are the same whatever the thread count or memory limit.
//!
//! ```text
//!  row group arrays ──► [col 0 | col 1 | ... | col n] (parallel) ──► chunks ──► part file
//!                                                                      └─► blake3, size
//! ```
//!
//! Encoding policy ([`writer_properties`]): zstd at `--zstd-level`; dictionary encoding only
//! for columns that were dictionary-only in the source (low cardinality); the sort key, once
//! sorted, as `DELTA_BYTE_ARRAY` (strings share long prefixes) or `DELTA_BINARY_PACKED`
//! (timestamps); page-level statistics and the page index, so replay can seek by time.

mod encode;
pub(crate) mod inflight;
pub mod sink;

pub use encode::{writer_properties, EncodedColumn, EncodedRowGroup, RowGroupEncoder};

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::SchemaRef;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use sluice_storage::view::{hex, part_name, PartInfo};

use crate::error::{Result, SortError};
use crate::key::format_time;

/// Writes into a file while hashing and counting every byte.
pub struct HashingWriter {
    inner: BufWriter<File>,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct OpenPart {
    name: String,
    path: PathBuf,
    writer: SerializedFileWriter<HashingWriter>,
    rows: u64,
    min_time: Option<i64>,
    max_time: Option<i64>,
}

/// Writes numbered parts into a directory.
pub struct PartWriter {
    dir: PathBuf,
    schema: SchemaRef,
    props: WriterProperties,
    part_size: u64,
    open: Option<OpenPart>,
    parts: Vec<PartInfo>,
}

impl PartWriter {
    /// Write parts of `schema` into `dir` (which must exist).
    pub fn new(dir: &Path, schema: SchemaRef, props: WriterProperties, part_size: u64) -> Self {
        PartWriter {
            dir: dir.to_path_buf(),
            schema,
            props,
            part_size,
            open: None,
            parts: Vec::new(),
        }
    }

    fn open_part(&mut self) -> Result<&mut OpenPart> {
        if self.open.is_none() {
            let name = part_name(self.parts.len());
            let path = self.dir.join(&name);
            let file = File::create(&path).map_err(|e| SortError::io(&path, e))?;
            let sink = HashingWriter {
                inner: BufWriter::with_capacity(1 << 20, file),
                hasher: blake3::Hasher::new(),
                bytes: 0,
            };
            let options = ArrowWriterOptions::new().with_properties(self.props.clone());
            let (writer, _factory) =
                ArrowWriter::try_new_with_options(sink, self.schema.clone(), options)
                    .and_then(|w| w.into_serialized_writer())
                    .map_err(|e| SortError::parquet(&path, e))?;
            self.open = Some(OpenPart {
                name,
                path,
                writer,
                rows: 0,
                min_time: None,
                max_time: None,
            });
        }
        // Just made sure it is open.
        self.open
            .as_mut()
            .ok_or_else(|| SortError::Internal("part writer state".into()))
    }

    /// Append an encoded row group (step 2), closing the part if it is full (step 3).
    pub fn append(&mut self, rg: EncodedRowGroup) -> Result<()> {
        let part_size = self.part_size;
        let part = self.open_part()?;
        let path = part.path.clone();
        let mut rgw = part
            .writer
            .next_row_group()
            .map_err(|e| SortError::parquet(&path, e))?;
        for chunk in rg.chunks {
            chunk
                .append_to_row_group(&mut rgw)
                .map_err(|e| SortError::parquet(&path, e))?;
        }
        rgw.close().map_err(|e| SortError::parquet(&path, e))?;
        part.rows += rg.rows;
        part.min_time = match (part.min_time, rg.min_time) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        part.max_time = match (part.max_time, rg.max_time) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if part.writer.bytes_written() as u64 >= part_size {
            self.close_part()?;
        }
        Ok(())
    }

    fn close_part(&mut self) -> Result<()> {
        let Some(part) = self.open.take() else {
            return Ok(());
        };
        let path = part.path;
        let sink = part
            .writer
            .into_inner()
            .map_err(|e| SortError::parquet(&path, e))?;
        let HashingWriter {
            inner,
            hasher,
            bytes,
        } = sink;
        let file = inner
            .into_inner()
            .map_err(|e| SortError::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| SortError::io(&path, e))?;
        self.parts.push(PartInfo {
            name: part.name,
            row_count: part.rows,
            bytes,
            blake3: hex(hasher.finalize().as_bytes()),
            min_ts_utc: part.min_time.map(format_time),
            max_ts_utc: part.max_time.map(format_time),
        });
        Ok(())
    }

    /// Close the last part; the parts written, in order.
    pub fn finish(mut self) -> Result<Vec<PartInfo>> {
        self.close_part()?;
        Ok(std::mem::take(&mut self.parts))
    }

    /// Bytes in closed parts so far.
    pub fn bytes_closed(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }
}

/// Sum of part sizes.
pub fn total_bytes(parts: &[PartInfo]) -> u64 {
    parts.iter().map(|p| p.bytes).sum()
}

/// Shared handle to writer properties for encoders on several threads.
pub type SharedProps = Arc<WriterProperties>;
