//! The source plan: which files, which row groups, and how each column travels through the
//! sort. Built once from the parquet footers, before any row is decoded.
//!
//! 1. Read every footer (in parallel) and check the files agree: the sort key is present
//!    (`MISSING_TS_UTC` / `MISSING_SORT_KEY`), every column has a type the sort carries, and
//!    all files have the same column names and types (`SCHEMA_MISMATCH` names both files).
//! 2. Choose each column's representation from the footers alone, so the choice (and with it
//!    the output bytes) never depends on memory or threads:
//!    - a string/binary column whose every column chunk is dictionary-only (page encoding
//!      statistics) with small dictionaries in total travels as `u32` codes into a
//!      [`GlobalDict`] ([`Repr::Codes`]);
//!    - everything else travels as decoded ([`Repr::Plain`]); view types are read as their
//!      offset-based twins, so that gathered batches never drag foreign buffers into spill
//!      files.
//! 3. List the row groups in (file, row group) order with their first row number: the read
//!    tasks of phase 1.
//!
//! ```text
//!  footers ──► schema check ──► per column: Codes | Plain ──► read schema (parquet hints)
//!                                                        └──► work schema (in memory/spill)
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow_array::types::UInt32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::basic::Encoding;
use rayon::prelude::*;

use crate::dict::{self, GlobalDict};
use crate::error::{Result, SortError};
use crate::key;

/// One source file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// Footer with the read schema applied (the parquet reader's type hints).
    pub meta: ArrowReaderMetadata,
    pub rows: u64,
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

/// How a column travels through the sort.
#[derive(Debug, Clone)]
pub enum Repr {
    /// As decoded (read type = source type with views replaced by offset types).
    Plain,
    /// `u32` codes into a dataset-wide dictionary.
    Codes(Arc<GlobalDict>),
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
    /// Schema of batches as they travel (codes as `UInt32`).
    pub work_schema: SchemaRef,
    /// Dictionary values per column, fixed once phase 1 has read everything.
    frozen: OnceLock<Vec<Option<ArrayRef>>>,
}

/// The largest total of (compressed) dictionary pages for which a column travels as codes.
pub const MAX_DICT_PAGE_BYTES: u64 = 16 << 20;

fn strip_views(dt: &DataType) -> DataType {
    match dt {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::Dictionary(_, v) => strip_views(v),
        other => other.clone(),
    }
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

fn load_footer(path: &Path) -> Result<ArrowReaderMetadata> {
    let file = File::open(path).map_err(|e| SortError::io(path, e))?;
    ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .map_err(|e| SortError::parquet(path, e))
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
        let footers: Vec<ArrowReaderMetadata> = paths
            .par_iter()
            .map(|p| load_footer(p))
            .collect::<Result<_>>()?;

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
        let work_schema = Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .zip(&columns)
                .map(|(f, c)| match c.repr {
                    Repr::Codes(_) => Field::new(f.name(), DataType::UInt32, f.is_nullable()),
                    Repr::Plain => Field::new(f.name(), c.read_type.clone(), f.is_nullable()),
                })
                .collect::<Vec<_>>(),
        ));

        // Step 3: files with the read schema applied, and the row-group tasks.
        let mut files = Vec::with_capacity(paths.len());
        let mut tasks = Vec::new();
        let mut total_rows = 0u64;
        for (fi, (path, meta)) in paths.iter().zip(footers).enumerate() {
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
            });
        }
        Ok(SourcePlan {
            output_id: output_id.to_string(),
            files,
            schema,
            columns,
            key_index,
            total_rows,
            tasks,
            work_schema,
            frozen: OnceLock::new(),
        })
    }

    /// The sort key column's name.
    pub fn key_name(&self) -> &str {
        &self.columns[self.key_index].name
    }

    /// Convert a batch as read into the work representation (codes for [`Repr::Codes`]).
    pub fn to_work(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .zip(&self.columns)
            .map(|(a, c)| match &c.repr {
                Repr::Codes(d) => match d.encode(a.as_ref()) {
                    Some(codes) => Arc::new(codes) as ArrayRef,
                    None => a.clone(),
                },
                Repr::Plain => a.clone(),
            })
            .collect();
        RecordBatch::try_new(self.work_schema.clone(), columns)
            .map_err(|e| SortError::parquet(&self.files[0].path, e))
    }

    /// Fix the dictionaries: called once all rows have been read.
    pub fn freeze(&self) {
        self.frozen.get_or_init(|| {
            self.columns
                .iter()
                .map(|c| match &c.repr {
                    Repr::Codes(d) => Some(d.values()),
                    Repr::Plain => None,
                })
                .collect()
        });
    }

    /// Convert work-representation columns into the arrays handed to the parquet writer
    /// (codes become dictionary arrays over the frozen values). Call [`Self::freeze`] first.
    pub fn to_output(&self, work: Vec<ArrayRef>) -> Vec<ArrayRef> {
        self.freeze();
        let frozen = self.frozen.get().map(Vec::as_slice).unwrap_or(&[]);
        work.into_iter()
            .enumerate()
            .map(|(i, a)| match frozen.get(i) {
                Some(Some(values)) if a.data_type() == &DataType::UInt32 => {
                    let codes = a
                        .as_any()
                        .downcast_ref::<arrow_array::UInt32Array>()
                        .cloned()
                        .unwrap_or_else(|| arrow_array::UInt32Array::from(Vec::<u32>::new()));
                    // Codes were assigned by this dictionary, so every one is in range.
                    match DictionaryArray::<UInt32Type>::try_new(codes, values.clone()) {
                        Ok(d) => Arc::new(d) as ArrayRef,
                        Err(_) => a,
                    }
                }
                _ => a,
            })
            .collect()
    }

    /// Rough bytes held by the dictionaries (counted against the memory budget).
    pub fn dictionary_bytes(&self) -> u64 {
        self.columns
            .iter()
            .map(|c| match &c.repr {
                Repr::Codes(d) => d.bytes() as u64,
                Repr::Plain => 0,
            })
            .sum()
    }
}

/// Step 2 for one column.
fn plan_column(index: usize, field: &Field, footers: &[ArrowReaderMetadata]) -> ColumnPlan {
    let mut all_dict = true;
    let mut dict_bytes = 0u64;
    let mut chunks = 0usize;
    for meta in footers {
        for g in meta.metadata().row_groups() {
            let Some(cc) = g.columns().get(index) else {
                all_dict = false;
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
        }
    }
    let low_cardinality = all_dict && chunks > 0 && dict_bytes <= MAX_DICT_PAGE_BYTES;
    let value_type = strip_views(field.data_type());
    let (repr, read_type) = if low_cardinality && dict::supports_value_type(&value_type) {
        let read = DataType::Dictionary(Box::new(DataType::Int32), Box::new(value_type.clone()));
        (Repr::Codes(GlobalDict::new(value_type)), read)
    } else {
        (Repr::Plain, value_type)
    };
    ColumnPlan {
        name: field.name().clone(),
        source_type: field.data_type().clone(),
        read_type,
        repr,
        low_cardinality,
    }
}
