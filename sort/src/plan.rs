//! The source plan: which files, which row groups, and how each column travels through the
//! sort. Built once from the parquet footers, before any row is decoded.
//!
//! 1. Read every footer (in parallel) and check the files agree: the sort key is present
//!    (`MISSING_TS_UTC` / `MISSING_SORT_KEY`), every column has a type the sort carries, and
//!    all files have the same column names and types (`SCHEMA_MISMATCH` names both files).
//! 2. Choose each column's representation from the footers alone ([`crate::repr`]):
//!    constant (not carried), dictionary codes, or plain; view types are read as their
//!    offset-based twins, so gathered batches never drag foreign buffers into spill files.
//!    A `Utf8` sort key is left out of the work schema: chunks whose strings are all
//!    canonical regenerate them from the key, the others carry them as an extra last
//!    column ([`crate::keytext`]; work schema vs text schema).
//!    The read schema (parquet reader hints) and the work schema (what travels through
//!    sorting and spilling) follow.
//! 3. List the row groups in (file, row group) order with their first row number: the read
//!    tasks of phase 1. For sources in S3, a prefetcher fetches each task's column chunks
//!    with ranged GETs ahead of the decoders (`docs/s3.md`).
//!
//! ```text
//!  footers ──► schema check ──► per column: Constant | Codes | Plain ─┬─► read schema
//!                                                                    └─► work schema
//! ```
//!
//! [`SourcePlan::to_work`] and [`SourcePlan::to_output`] convert batches between the
//! representations.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use sluice_storage::object::file::row_group_ranges;
use sluice_storage::object::prefetch::FetchItem;
use sluice_storage::object::{is_remote, RowGroupPrefetcher};

use crate::error::{Result, SortError};
use crate::key;
use crate::keytext::KEY_TEXT;
use crate::repr::{
    check_constant, codes_to_output, plan_column, repeat_constant, ColumnPlan, Repr,
};

/// One source file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// Footer with the read schema applied (the parquet reader's type hints).
    pub meta: ArrowReaderMetadata,
    pub rows: u64,
    /// Length in bytes (S3 reads need it to address ranges).
    pub len: u64,
}

/// One row group to decode: the unit of phase-1 work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowGroupTask {
    /// Index into [`SourcePlan::files`] (bytewise path order).
    pub file: u32,
    pub row_group: usize,
    /// Row number (within the file) of the row group's first row.
    pub first_row: u64,
    pub rows: u64,
    /// Uncompressed size from the footer (a decode-memory estimate).
    pub bytes: u64,
}

/// Everything phase 1 and the writer need to know about the source.
#[derive(Debug)]
pub struct SourcePlan {
    pub output_id: String,
    pub files: Vec<SourceFile>,
    /// The source schema (nullability merged over files): the view's schema.
    pub schema: SchemaRef,
    pub columns: Vec<ColumnPlan>,
    /// Index of the sort key column.
    pub key_index: usize,
    pub total_rows: u64,
    pub tasks: Vec<RowGroupTask>,
    /// Schema of batches as they travel (codes as `UInt32`; a [`Self::key_text`] key
    /// column left out).
    pub work_schema: SchemaRef,
    /// The key is a `Utf8` column regenerated from the key where its strings are
    /// canonical ([`crate::keytext`]): it is not a work column; chunks with other strings
    /// carry them as an extra last column ([`Self::text_schema`]).
    pub key_text: bool,
    /// The work schema plus the key-text column ([`crate::keytext::KEY_TEXT`]).
    pub text_schema: SchemaRef,
    /// Dictionary values per column, fixed once phase 1 has read everything.
    frozen: OnceLock<Vec<Option<ArrayRef>>>,
    /// For sources in S3: ranged GETs of the tasks' row groups, ahead of decoding.
    pub prefetch: Option<RowGroupPrefetcher>,
}

fn describe(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn first_difference(a: &Schema, b: &Schema) -> (String, String) {
    for i in 0..a.fields().len().max(b.fields().len()) {
        let fa = a.fields().get(i);
        let fb = b.fields().get(i);
        let same = match (fa, fb) {
            (Some(x), Some(y)) => x.name() == y.name() && x.data_type() == y.data_type(),
            _ => false,
        };
        if !same {
            let d = |f: Option<&Arc<Field>>| match f {
                Some(f) => format!("column {i} {:?}: {}", f.name(), f.data_type()),
                None => format!("no column {i}"),
            };
            return (d(fa), d(fb));
        }
    }
    (describe(a), describe(b))
}

/// Row groups fetched ahead of the decoders when the source lives in S3: one item per
/// task, in task order (see `sluice_storage::object::prefetch`).
const PREFETCH_AHEAD: usize = 4;

fn remote_prefetcher(
    files: &[SourceFile],
    tasks: &[RowGroupTask],
) -> Result<Option<RowGroupPrefetcher>> {
    if !files.iter().any(|f| is_remote(&f.path)) {
        return Ok(None);
    }
    let mut items = Vec::with_capacity(tasks.len());
    for t in tasks {
        let f = &files[t.file as usize];
        let rg = f.meta.metadata().row_group(t.row_group);
        items.push(FetchItem {
            path: f.path.clone(),
            len: f.len,
            ranges: row_group_ranges(&f.path, rg, f.len)?,
        });
    }
    Ok(Some(RowGroupPrefetcher::new(items, PREFETCH_AHEAD)))
}

impl SourcePlan {
    /// Plan a sort of `paths` (already in bytewise order) on column `sort_key`.
    pub fn open(output_id: &str, paths: &[PathBuf], sort_key: &str) -> Result<Self> {
        if paths.len() as u64 > key::MAX_FILES {
            return Err(SortError::TooLarge {
                what: format!("output {output_id}: source files"),
                value: paths.len() as u64,
                limit: key::MAX_FILES,
            });
        }
        // In parallel locally; on S3 many suffix GETs in flight.
        let (footers, lens): (Vec<ArrowReaderMetadata>, Vec<u64>) =
            sluice_storage::object::file::parquet_metadata_many(paths, &ArrowReaderOptions::new())?
                .into_iter()
                .unzip();

        // Step 1: the key, the types, then agreement between files.
        for (path, meta) in paths.iter().zip(&footers) {
            let schema = meta.schema();
            let Ok(field) = schema.field_with_name(sort_key) else {
                return Err(if sort_key == "ts_utc" {
                    SortError::MissingTsUtc {
                        file: path.clone(),
                        column: sort_key.into(),
                    }
                } else {
                    SortError::MissingSortKey {
                        file: path.clone(),
                        column: sort_key.into(),
                    }
                });
            };
            if !key::is_key_type(field.data_type()) {
                return Err(SortError::SortKeyType {
                    file: path.clone(),
                    column: sort_key.into(),
                    data_type: field.data_type().to_string(),
                });
            }
            for f in schema.fields() {
                if !sluice_storage::digest::is_supported(f.data_type()) {
                    return Err(SortError::ColumnTypeUnsupported {
                        file: path.clone(),
                        column: f.name().clone(),
                        data_type: f.data_type().to_string(),
                    });
                }
            }
        }
        let first = footers[0].schema().clone();
        for (path, meta) in paths.iter().zip(&footers).skip(1) {
            let other = meta.schema();
            let agree = first.fields().len() == other.fields().len()
                && first
                    .fields()
                    .iter()
                    .zip(other.fields())
                    .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
            if !agree {
                let (a, b) = first_difference(&first, other);
                return Err(SortError::SchemaMismatch {
                    first: paths[0].clone(),
                    second: path.clone(),
                    first_desc: a,
                    second_desc: b,
                });
            }
        }
        let fields: Vec<Field> = first
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let nullable = footers.iter().any(|m| m.schema().field(i).is_nullable());
                f.as_ref().clone().with_nullable(nullable)
            })
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(fields, first.metadata().clone()));
        let key_index = schema
            .index_of(sort_key)
            .map_err(|_| SortError::MissingSortKey {
                file: paths[0].clone(),
                column: sort_key.into(),
            })?;

        // Step 2: representations.
        let columns: Vec<ColumnPlan> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| plan_column(i, f, &footers))
            .collect();
        let read_schema = Arc::new(Schema::new_with_metadata(
            schema
                .fields()
                .iter()
                .zip(&columns)
                .map(|(f, c)| f.as_ref().clone().with_data_type(c.read_type.clone()))
                .collect::<Vec<_>>(),
            schema.metadata().clone(),
        ));
        let key_plan = &columns[key_index];
        let key_text = matches!(key_plan.repr, Repr::Plain) && key_plan.read_type == DataType::Utf8;
        let work_fields: Vec<Field> = schema
            .fields()
            .iter()
            .zip(&columns)
            .enumerate()
            .filter_map(|(i, (f, c))| match c.repr {
                _ if key_text && i == key_index => None,
                Repr::Codes(_) => Some(Field::new(f.name(), DataType::UInt32, f.is_nullable())),
                Repr::Plain => Some(Field::new(f.name(), c.read_type.clone(), f.is_nullable())),
                Repr::Constant(_) => None,
            })
            .collect();
        let work_schema = Arc::new(Schema::new(work_fields.clone()));
        let text_schema = Arc::new(Schema::new(
            work_fields
                .into_iter()
                .chain([Field::new(KEY_TEXT, DataType::Utf8, false)])
                .collect::<Vec<_>>(),
        ));

        // Step 3: files with the read schema applied, and the row-group tasks.
        let mut files = Vec::with_capacity(paths.len());
        let mut tasks = Vec::new();
        let mut total_rows = 0u64;
        for (fi, ((path, meta), len)) in paths.iter().zip(footers).zip(lens).enumerate() {
            // The reader insists on each file's own nullability.
            let own = meta.schema();
            let file_schema = Arc::new(Schema::new_with_metadata(
                read_schema
                    .fields()
                    .iter()
                    .zip(own.fields())
                    .map(|(f, o)| f.as_ref().clone().with_nullable(o.is_nullable()))
                    .collect::<Vec<_>>(),
                read_schema.metadata().clone(),
            ));
            let options = ArrowReaderOptions::new().with_schema(file_schema);
            let meta = ArrowReaderMetadata::try_new(meta.metadata().clone(), options)
                .map_err(|e| SortError::parquet(path, e))?;
            let mut first_row = 0u64;
            for (rg, g) in meta.metadata().row_groups().iter().enumerate() {
                let rows = g.num_rows().max(0) as u64;
                if rows > 0 {
                    tasks.push(RowGroupTask {
                        file: fi as u32,
                        row_group: rg,
                        first_row,
                        rows,
                        bytes: g.total_byte_size().max(0) as u64,
                    });
                }
                first_row += rows;
            }
            if first_row > key::MAX_ROWS_PER_FILE {
                return Err(SortError::TooLarge {
                    what: format!("{}: rows", path.display()),
                    value: first_row,
                    limit: key::MAX_ROWS_PER_FILE,
                });
            }
            total_rows += first_row;
            files.push(SourceFile {
                path: path.clone(),
                meta,
                rows: first_row,
                len,
            });
        }
        let prefetch = remote_prefetcher(&files, &tasks)?;
        Ok(SourcePlan {
            output_id: output_id.to_string(),
            files,
            schema,
            columns,
            key_index,
            total_rows,
            tasks,
            work_schema,
            key_text,
            text_schema,
            frozen: OnceLock::new(),
            prefetch,
        })
    }

    /// The sort key column's name.
    pub fn key_name(&self) -> &str {
        &self.columns[self.key_index].name
    }

    /// Convert a batch as read into the work representation: codes for [`Repr::Codes`],
    /// constants checked and dropped; with [`Self::key_text`], the key column dropped
    /// when `canonical` (every string regenerates from its time), else moved last.
    pub fn to_work(&self, batch: &RecordBatch, canonical: bool) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.text_schema.fields().len());
        for (i, (a, c)) in batch.columns().iter().zip(&self.columns).enumerate() {
            if self.key_text && i == self.key_index {
                continue;
            }
            match &c.repr {
                Repr::Codes(d) => columns.push(match d.encode(a.as_ref()) {
                    Some(codes) => Arc::new(codes),
                    None => a.clone(),
                }),
                Repr::Plain => columns.push(a.clone()),
                Repr::Constant(cell) => check_constant(cell, &c.name, a, &self.output_id)?,
            }
        }
        let schema = if self.key_text && !canonical {
            columns.push(batch.column(self.key_index).clone());
            self.text_schema.clone()
        } else {
            self.work_schema.clone()
        };
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        RecordBatch::try_new_with_options(schema, columns, &options)
            .map_err(|e| SortError::parquet(&self.files[0].path, e))
    }

    /// Bytes an output row takes in memory, estimated from the schema and the footers
    /// before anything is decoded: a fixed-width column its width (however the file encoded
    /// it: delta or bit-packed integers are smaller on disk than in an array), any other its
    /// uncompressed size per row in the footers plus a 4-byte offset (plain strings are
    /// length + bytes; a dictionary-coded one is small either way), at least 4 (a
    /// dictionary key).
    pub fn row_bytes_estimate(&self) -> u64 {
        let rows = self.total_rows.max(1);
        self.schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| match f.data_type().primitive_width() {
                Some(w) => w as u64,
                None => {
                    let bytes: u64 = self
                        .files
                        .iter()
                        .flat_map(|s| s.meta.metadata().row_groups())
                        .filter_map(|g| g.columns().get(i))
                        .map(|c| c.uncompressed_size().max(0) as u64)
                        .sum();
                    (bytes / rows + 4).max(4)
                }
            })
            .sum::<u64>()
            .max(1)
    }

    /// Per column of the view schema: whether it is a constant ([`Repr::Constant`]), which
    /// the encoder splices instead of encoding every row group.
    pub fn constant_columns(&self) -> Vec<bool> {
        self.columns
            .iter()
            .map(|c| matches!(c.repr, Repr::Constant(_)))
            .collect()
    }

    /// Check the constant columns of a batch as read ([`Self::to_work`] does it too): the
    /// copy floor's share of the sort's reader work, and its licence to splice them.
    pub fn check_constants(&self, batch: &RecordBatch) -> Result<()> {
        for (a, c) in batch.columns().iter().zip(&self.columns) {
            if let Repr::Constant(cell) = &c.repr {
                check_constant(cell, &c.name, a, &self.output_id)?;
            }
        }
        Ok(())
    }

    /// Fix the dictionaries: called once all rows have been read.
    pub fn freeze(&self) {
        self.frozen.get_or_init(|| {
            self.columns
                .iter()
                .map(|c| match &c.repr {
                    Repr::Codes(d) => Some(d.values()),
                    Repr::Plain | Repr::Constant(_) => None,
                })
                .collect()
        });
    }

    /// The arrays handed to the parquet writer for `rows` rows whose carried columns are
    /// `work` (with [`Self::key_text`], followed by the rebuilt key column): codes become
    /// dictionary arrays over the frozen values (or the values, decoded, when the
    /// dictionary outnumbers the rows: [`codes_to_output`]), constants are repeated. Call
    /// [`Self::freeze`] first.
    pub fn to_output(&self, mut work: Vec<ArrayRef>, rows: usize) -> Result<Vec<ArrayRef>> {
        self.freeze();
        let frozen = self.frozen.get().map(Vec::as_slice).unwrap_or(&[]);
        let mut key_text = None;
        if self.key_text {
            key_text = work.pop();
        }
        let mut work = work.into_iter();
        let mut out = Vec::with_capacity(self.columns.len());
        for (i, c) in self.columns.iter().enumerate() {
            if self.key_text && i == self.key_index {
                out.push(
                    key_text
                        .take()
                        .ok_or_else(|| SortError::Internal("key text column".into()))?,
                );
                continue;
            }
            out.push(match &c.repr {
                Repr::Constant(cell) => match cell.get() {
                    Some(v) => repeat_constant(v, rows)?,
                    None => return Err(SortError::Internal(format!("constant {} unset", c.name))),
                },
                Repr::Codes(_) => {
                    let codes = work
                        .next()
                        .ok_or_else(|| SortError::Internal("work columns".into()))?;
                    match frozen.get(i) {
                        Some(Some(values)) => codes_to_output(&codes, values)?,
                        _ => codes,
                    }
                }
                Repr::Plain => work
                    .next()
                    .ok_or_else(|| SortError::Internal("work columns".into()))?,
            });
        }
        Ok(out)
    }

    /// Rough bytes held by the dictionaries (counted against the memory budget).
    pub fn dictionary_bytes(&self) -> u64 {
        self.columns
            .iter()
            .map(|c| match &c.repr {
                Repr::Codes(d) => d.bytes() as u64,
                Repr::Plain | Repr::Constant(_) => 0,
            })
            .sum()
    }
}
