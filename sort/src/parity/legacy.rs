//! `sluice parity legacy`: a stream view against a reference file written by another tool
//! (the platform's DuckDB sort), row by row, in order; the first differing row is reported
//! with its index, column and both values.
//!
//! 1. Open both sides as streams of batches (the view: its parts in name order).
//! 2. Match columns by name; a column on one side only is a failed `columns` check, the
//!    common columns are still compared.
//! 3. Repeatedly take the longest run both current batches still hold, hash every value of
//!    every common column on both sides (the digest's value hash: `Utf8`, `LargeUtf8`,
//!    views and dictionaries of the same text hash alike, so DuckDB's choice of physical
//!    types does not matter) and find the first row where any column differs.
//! 4. Count the rest of the longer side, so both row counts are exact.
//!
//! ```text
//!  view parts ─► batches ─┐   run of n rows      per column:        first row that
//!                         ├─► (both sides) ───► value hashes ─────► differs in any
//!  reference  ─► batches ─┘                     view vs reference   column: stop
//! ```
//!
//! Either side may be local or `s3://` (a part or reference object is fetched whole).
//!
//! Memory: one batch per side. Nothing is sorted or joined: the comparison is positional,
//! which is the point (the order is what is being checked).

use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use sluice_storage::digest::RowLanes;
use sluice_storage::object::file::parquet_metadata;
use sluice_storage::object::{fs as objfs, is_remote, ObjectFile};

use super::Check;
use crate::error::{Result, SortError};
use crate::Progress;

/// Rows per decoded batch.
const BATCH_ROWS: usize = 64 * 1024;

/// The first row where the two sides differ.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowDifference {
    /// 0-based row index in the view's order.
    pub row: u64,
    pub column: String,
    pub view_value: String,
    pub reference_value: String,
}

/// The result of a legacy comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LegacyParity {
    pub view: PathBuf,
    pub reference: PathBuf,
    pub view_rows: u64,
    pub reference_rows: u64,
    pub compared_columns: Vec<String>,
    pub first_difference: Option<RowDifference>,
    pub elapsed_s: f64,
    pub ok: bool,
    pub checks: Vec<Check>,
}

/// Batches of a list of parquet files, in order, with a read position in the current one.
struct BatchStream {
    files: Vec<PathBuf>,
    next_file: usize,
    reader: Option<(PathBuf, ParquetRecordBatchReader)>,
    current: Option<RecordBatch>,
    offset: usize,
}

impl BatchStream {
    fn new(files: Vec<PathBuf>) -> Self {
        BatchStream {
            files,
            next_file: 0,
            reader: None,
            current: None,
            offset: 0,
        }
    }

    /// The schema of the first file, from its footer alone (S3: one suffix GET, not the
    /// whole object, which [`Self::available`] fetches anyway when it opens the file).
    fn schema(&self) -> Result<arrow_schema::SchemaRef> {
        let path = self
            .files
            .first()
            .ok_or_else(|| SortError::Config("no parquet files to compare".into()))?;
        let (meta, _) = parquet_metadata(path, ArrowReaderOptions::new())?;
        Ok(meta.schema().clone())
    }

    /// Rows left in the current batch, loading the next non-empty batch if needed; 0 at
    /// the end of the stream.
    fn available(&mut self) -> Result<usize> {
        loop {
            if let Some(b) = &self.current {
                if self.offset < b.num_rows() {
                    return Ok(b.num_rows() - self.offset);
                }
            }
            self.current = None;
            self.offset = 0;
            if let Some((path, reader)) = &mut self.reader {
                match reader.next() {
                    Some(b) => {
                        self.current = Some(b.map_err(|e| SortError::parquet(path.as_path(), e))?);
                        continue;
                    }
                    None => self.reader = None,
                }
            }
            let Some(path) = self.files.get(self.next_file).cloned() else {
                return Ok(0);
            };
            self.next_file += 1;
            // Local: the file; S3: the whole object, one GET (like replay reads parts).
            let f = ObjectFile::open(&path)?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(f)
                .and_then(|b| b.with_batch_size(BATCH_ROWS).build())
                .map_err(|e| SortError::parquet(&path, e))?;
            self.reader = Some((path, reader));
        }
    }

    /// The next `n` rows (`n <= available()`).
    fn take(&mut self, n: usize) -> Option<RecordBatch> {
        let b = self.current.as_ref()?.slice(self.offset, n);
        self.offset += n;
        Some(b)
    }
}

fn parts_of(view: &Path) -> Result<Vec<PathBuf>> {
    // A single file: locally a regular file; on S3 an object at exactly that key.
    let single = if is_remote(view) {
        objfs::exists(view)?
    } else {
        view.is_file()
    };
    if single {
        return Ok(vec![view.to_path_buf()]);
    }
    let mut parts: Vec<PathBuf> = objfs::list_files(view)?
        .into_iter()
        // S3 listings are recursive: only the directory's own parts count.
        .filter(|p| p.parent() == Some(view))
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with("part-") && n.ends_with(".parquet")
            })
        })
        .collect();
    parts.sort();
    if parts.is_empty() {
        return Err(SortError::Config(format!(
            "{} holds no part-*.parquet files",
            view.display()
        )));
    }
    Ok(parts)
}

/// Hash every value of one column (position-independent: both sides use slot 0).
fn value_hashes(name: &str, array: &ArrayRef) -> Result<Vec<u128>> {
    let mut lanes = RowLanes::new(array.len());
    lanes.fold_column(0, name, array)?;
    Ok(lanes.finish().collect())
}

/// One value as text, for the report.
pub fn render_value(array: &ArrayRef, i: usize) -> String {
    if array.is_null(i) {
        return "null".into();
    }
    match array.data_type() {
        DataType::Int64 => array.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(i).to_string(),
        DataType::Float64 => array.as_primitive::<Float64Type>().value(i).to_string(),
        DataType::Boolean => array.as_boolean().value(i).to_string(),
        DataType::Utf8 => format!("{:?}", array.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => format!("{:?}", array.as_string::<i64>().value(i)),
        DataType::Utf8View => format!("{:?}", array.as_string_view().value(i)),
        DataType::Dictionary(_, _) => match array.as_any_dictionary_opt() {
            Some(d) => {
                let k = d.normalized_keys();
                render_value(d.values(), k[i])
            }
            None => format!("{:?}", array.slice(i, 1)),
        },
        _ => format!("{:?}", array.slice(i, 1)),
    }
}

/// Compare `view` (a view directory or one parquet file) with `reference` (see the module
/// doc).
pub fn compare_with_reference(
    view: &Path,
    reference: &Path,
    progress: &dyn Progress,
) -> Result<LegacyParity> {
    let started = Instant::now();
    // Step 1.
    let mut a = BatchStream::new(parts_of(view)?);
    let mut b = BatchStream::new(vec![reference.to_path_buf()]);
    let (sa, sb) = (a.schema()?, b.schema()?);
    // Step 2.
    let mut common: Vec<(String, usize, usize)> = Vec::new();
    let mut only_view = Vec::new();
    for (i, f) in sa.fields().iter().enumerate() {
        match sb.index_of(f.name()) {
            Ok(j) => common.push((f.name().clone(), i, j)),
            Err(_) => only_view.push(f.name().clone()),
        }
    }
    let only_ref: Vec<String> = sb
        .fields()
        .iter()
        .filter(|f| sa.index_of(f.name()).is_err())
        .map(|f| f.name().clone())
        .collect();
    let mut checks = vec![Check::verdict(
        "columns",
        only_view.is_empty() && only_ref.is_empty(),
        format!("{} reference columns", sb.fields().len()),
        format!("{} view columns", sa.fields().len()),
        format!(
            "only in the view: [{}]; only in the reference: [{}]",
            only_view.join(", "),
            only_ref.join(", ")
        ),
    )];
    progress.phase("legacy", 0);
    // Step 3.
    let (mut rows_a, mut rows_b) = (0u64, 0u64);
    let mut first: Option<RowDifference> = None;
    while first.is_none() {
        let n = a.available()?.min(b.available()?);
        if n == 0 {
            break;
        }
        let (Some(ca), Some(cb)) = (a.take(n), b.take(n)) else {
            break;
        };
        let mut best: Option<(usize, &str, usize, usize)> = None;
        for (name, i, j) in &common {
            let (ha, hb) = (
                value_hashes(name, ca.column(*i))?,
                value_hashes(name, cb.column(*j))?,
            );
            let limit = best.map_or(n, |x| x.0);
            if let Some(r) = (0..limit).find(|&r| ha[r] != hb[r]) {
                best = Some((r, name, *i, *j));
            }
        }
        if let Some((r, name, i, j)) = best {
            first = Some(RowDifference {
                row: rows_a + r as u64,
                column: name.to_string(),
                view_value: render_value(ca.column(i), r),
                reference_value: render_value(cb.column(j), r),
            });
        }
        rows_a += n as u64;
        rows_b += n as u64;
        progress.advance(n as u64);
    }
    // Step 4.
    for (stream, rows) in [(&mut a, &mut rows_a), (&mut b, &mut rows_b)] {
        loop {
            let n = stream.available()?;
            if n == 0 {
                break;
            }
            stream.take(n);
            *rows += n as u64;
        }
    }
    checks.push(Check::equal("row_count", rows_b, rows_a, || {
        format!("the shorter side ends at row {}", rows_a.min(rows_b))
    }));
    let place = first.as_ref().map_or_else(String::new, |d| {
        format!(
            "row {} column {}: view {} vs reference {}",
            d.row, d.column, d.view_value, d.reference_value
        )
    });
    checks.push(Check::verdict(
        "rows_in_order",
        first.is_none(),
        "identical rows",
        if first.is_none() {
            "identical rows".to_string()
        } else {
            "a row differs".to_string()
        },
        place,
    ));
    Ok(LegacyParity {
        view: view.to_path_buf(),
        reference: reference.to_path_buf(),
        view_rows: rows_a,
        reference_rows: rows_b,
        compared_columns: common.into_iter().map(|c| c.0).collect(),
        first_difference: first,
        elapsed_s: started.elapsed().as_secs_f64(),
        ok: checks.iter().all(|c| c.ok),
        checks,
    })
}
