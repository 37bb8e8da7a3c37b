//! One pass over a list of parquet files, row group by row group in parallel, that
//! summarises what the parity checks compare: rows, the multiset digest, the time range,
//! and (for a view) where time first goes backwards.
//!
//! 1. Read every footer once; list `(file, row group)` tasks in file order.
//! 2. Decode the tasks on the rayon pool, one row group per task, a batch at a time (so
//!    memory is a couple of batches per thread, whatever the file sizes); per batch: the
//!    digest ([`digest_batch`], the same function the sort uses), the times of the sort
//!    column ([`crate::key::times`]) and the first backwards step inside the row group.
//! 3. Stitch the row-group summaries in file order: totals, and the order check across
//!    row-group and file boundaries (last time of one <= first time of the next).
//!
//! ```text
//!  files ─► footers ─► tasks (file, rg) ─► decode ∥ ─► RgSummary ─► stitch in order
//!                                          digest, times,            totals, boundaries
//!                                          first step back
//! ```
//!
//! Files may be local paths or `s3://` objects ([`sluice_storage::object`]): footers come
//! from [`parquet_metadata_many`] (S3: one suffix GET each, 16 in flight), and a row-group
//! task opens its file as an [`ObjectFile`] (local: the `File`, as before; S3: only that
//! row group's column chunks, fetched concurrently).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use rayon::prelude::*;
use sluice_storage::digest::{digest_batch, RowDigest};
use sluice_storage::object::file::{parquet_metadata_many, row_group_ranges};
use sluice_storage::object::{is_remote, ObjectFile};

use crate::error::{Result, SortError};
use crate::key::{self, KeyFault};
use crate::repr::plan_column;

/// Rows per decoded batch.
const BATCH_ROWS: usize = 64 * 1024;

/// Where a row is: file index (in the scanned list) and row number in that file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RowPlace {
    pub file: usize,
    pub row: u64,
}

/// A step back in time: the row at `at` is earlier than the row before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepBack {
    pub at: RowPlace,
    pub prev_ts: i64,
    pub ts: i64,
}

/// What one row group holds.
#[derive(Debug, Clone)]
struct RgSummary {
    file: usize,
    first_row: u64,
    rows: u64,
    digest: RowDigest,
    min: Option<i64>,
    max: Option<i64>,
    first: Option<i64>,
    last: Option<i64>,
    /// Backwards steps inside the row group, and the first one.
    steps: u64,
    step_back: Option<StepBack>,
}

/// What one file holds.
#[derive(Debug, Clone, Default)]
pub struct FileSummary {
    pub rows: u64,
    pub min: Option<i64>,
    pub max: Option<i64>,
}

/// What a list of files holds, in order.
#[derive(Debug, Clone, Default)]
pub struct ScanSummary {
    pub digest: RowDigest,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub files: Vec<FileSummary>,
    /// Backwards steps in time, counted over all rows in file order.
    pub steps_back: u64,
    /// The first one.
    pub first_step_back: Option<StepBack>,
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) | (None, x) => x,
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) | (None, x) => x,
    }
}

/// The plain footers of `files` and each file's length, in order (step 1): read once, for
/// the progress total ([`footer_rows`]) and then the scan ([`scan_files`]).
pub type Footers = Vec<(ArrowReaderMetadata, u64)>;

/// Read the footers of `files` (S3: one suffix GET each, 16 in flight).
pub fn read_footers(files: &[PathBuf]) -> Result<Footers> {
    Ok(parquet_metadata_many(files, &ArrowReaderOptions::new())?)
}

/// Rows of the files according to their footers (for progress totals), without decoding.
pub fn footer_rows(footers: &[(ArrowReaderMetadata, u64)]) -> u64 {
    footers
        .iter()
        .map(|(meta, _)| meta.metadata().file_metadata().num_rows().max(0) as u64)
        .sum()
}

/// The footer with dictionary-only string columns read as dictionaries (the sort's own
/// choice, [`plan_column`]): the digest and the time parse then work once per distinct
/// value instead of once per row. Both are representation-independent, so the numbers are
/// those of the plain decode.
fn reading_footer(path: &Path, plain: ArrowReaderMetadata) -> Result<ArrowReaderMetadata> {
    let own = plain.schema();
    let mut changed = false;
    let fields: Vec<Field> = own
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let plan = plan_column(i, f, std::slice::from_ref(&plain));
            let dictionary = matches!(plan.read_type, DataType::Dictionary(_, _));
            changed |= dictionary;
            if dictionary {
                f.as_ref().clone().with_data_type(plan.read_type)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    if !changed {
        return Ok(plain);
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, own.metadata().clone()));
    let options = ArrowReaderOptions::new().with_schema(schema);
    ArrowReaderMetadata::try_new(plain.metadata().clone(), options)
        .map_err(|e| SortError::parquet(path, e))
}

/// Scan `files` (see the module doc), whose footers `plain` ([`read_footers`]) are already
/// read. `time_column` is the sort key; every file must have it. `advance` is called with
/// the rows of each finished row group.
pub fn scan_files(
    files: &[PathBuf],
    plain: Footers,
    time_column: &str,
    advance: &(dyn Fn(u64) + Sync),
) -> Result<ScanSummary> {
    // Step 1.
    let footers: Vec<(ArrowReaderMetadata, u64)> = files
        .par_iter()
        .zip(plain)
        .map(|(f, (meta, len))| Ok((reading_footer(f, meta)?, len)))
        .collect::<Result<_>>()?;
    let mut tasks = Vec::new();
    for (fi, (meta, _)) in footers.iter().enumerate() {
        let mut first_row = 0u64;
        for (rg, g) in meta.metadata().row_groups().iter().enumerate() {
            tasks.push((fi, rg, first_row));
            first_row += g.num_rows().max(0) as u64;
        }
    }
    // Step 2.
    let mut groups: Vec<RgSummary> = tasks
        .par_iter()
        .map(|&(fi, rg, first_row)| {
            let (meta, len) = &footers[fi];
            let s = scan_row_group(&files[fi], meta, *len, fi, rg, first_row, time_column)?;
            advance(s.rows);
            Ok(s)
        })
        .collect::<Result<_>>()?;
    groups.sort_by_key(|g| (g.file, g.first_row));
    // Step 3.
    let mut out = ScanSummary {
        files: vec![FileSummary::default(); files.len()],
        ..ScanSummary::default()
    };
    // Last time of the previous non-empty row group: the boundary check.
    let mut prev: Option<i64> = None;
    for g in &groups {
        out.digest = out.digest.merge(g.digest);
        out.min = min_opt(out.min, g.min);
        out.max = max_opt(out.max, g.max);
        let f = &mut out.files[g.file];
        f.rows += g.rows;
        f.min = min_opt(f.min, g.min);
        f.max = max_opt(f.max, g.max);
        if let (Some(prev_ts), Some(first)) = (prev, g.first) {
            if first < prev_ts {
                out.steps_back += 1;
                let at = RowPlace {
                    file: g.file,
                    row: g.first_row,
                };
                out.first_step_back.get_or_insert(StepBack {
                    at,
                    prev_ts,
                    ts: first,
                });
            }
        }
        out.steps_back += g.steps;
        // Groups come in order, so the first step found is the earliest.
        if let Some(s) = g.step_back {
            out.first_step_back.get_or_insert(s);
        }
        if g.last.is_some() {
            prev = g.last;
        }
    }
    Ok(out)
}

/// The bytes one row-group task reads: the local file, or that row group's column chunks
/// of an S3 object (never the whole object per task).
fn open_row_group(
    path: &Path,
    meta: &ArrowReaderMetadata,
    len: u64,
    rg: usize,
) -> Result<ObjectFile> {
    if !is_remote(path) {
        return Ok(ObjectFile::open(path)?);
    }
    let group = meta.metadata().row_group(rg);
    Ok(ObjectFile::fetch_ranges(
        path,
        len,
        row_group_ranges(path, group, len)?,
    )?)
}

fn scan_row_group(
    path: &Path,
    meta: &ArrowReaderMetadata,
    len: u64,
    file: usize,
    rg: usize,
    first_row: u64,
    time_column: &str,
) -> Result<RgSummary> {
    let f = open_row_group(path, meta, len, rg)?;
    let key_index = meta
        .schema()
        .index_of(time_column)
        .map_err(|_| SortError::MissingSortKey {
            file: path.to_path_buf(),
            column: time_column.to_string(),
        })?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(f, meta.clone())
        .with_row_groups(vec![rg])
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| SortError::parquet(path, e))?;
    let mut s = RgSummary {
        file,
        first_row,
        rows: 0,
        digest: RowDigest::default(),
        min: None,
        max: None,
        first: None,
        last: None,
        steps: 0,
        step_back: None,
    };
    for batch in reader {
        let batch = batch.map_err(|e| SortError::parquet(path, e))?;
        s.digest = s.digest.merge(digest_batch(&batch)?);
        let times = key::times(batch.column(key_index)).map_err(|fault| {
            let row_of = |r: usize| first_row + s.rows + r as u64;
            match fault {
                KeyFault::Null { row } => SortError::SortKeyNull {
                    file: path.to_path_buf(),
                    row: row_of(row),
                    column: time_column.to_string(),
                },
                KeyFault::Unparseable { row, value } => SortError::SortKeyUnparseable {
                    file: path.to_path_buf(),
                    row: row_of(row),
                    column: time_column.to_string(),
                    value,
                },
            }
        })?;
        for (i, &t) in times.iter().enumerate() {
            if let Some(prev) = s.last {
                if t < prev {
                    s.steps += 1;
                    if s.step_back.is_none() {
                        s.step_back = Some(StepBack {
                            at: RowPlace {
                                file,
                                row: first_row + s.rows + i as u64,
                            },
                            prev_ts: prev,
                            ts: t,
                        });
                    }
                }
            }
            s.last = Some(t);
            s.first.get_or_insert(t);
            s.min = min_opt(s.min, Some(t));
            s.max = max_opt(s.max, Some(t));
        }
        s.rows += batch.num_rows() as u64;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;
    use sluice_storage::timefmt::format_rfc3339_micros;

    use super::*;

    /// splitmix64, seeded.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            sluice_storage::digest::fmix(self.0)
        }
    }

    fn batch(times: &[i64], ids: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("ts_utc", DataType::Utf8, false),
        ]));
        let ts: Vec<String> = times.iter().map(|&t| format_rfc3339_micros(t)).collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(StringArray::from(ts)),
            ],
        )
        .unwrap()
    }

    /// Write `files` (each a list of times) with row groups of `rg` rows.
    fn write(dir: &Path, files: &[Vec<i64>], rg: usize) -> Vec<PathBuf> {
        let mut id = 0;
        let mut out = Vec::new();
        for (i, times) in files.iter().enumerate() {
            let p = dir.join(format!("part-{i:06}.parquet"));
            let ids: Vec<i64> = (0..times.len() as i64).map(|k| id + k).collect();
            id += times.len() as i64;
            let b = batch(times, &ids);
            let props = WriterProperties::builder()
                .set_max_row_group_row_count(Some(rg))
                .build();
            let mut w =
                ArrowWriter::try_new(File::create(&p).unwrap(), b.schema(), Some(props)).unwrap();
            w.write(&b).unwrap();
            w.close().unwrap();
            out.push(p);
        }
        out
    }

    /// The plain model: concatenate, count steps back, digest the whole.
    fn model(files: &[Vec<i64>]) -> (u64, Option<RowPlace>, RowDigest) {
        let mut steps = 0;
        let mut first = None;
        let mut prev: Option<i64> = None;
        let mut id = 0i64;
        let mut digest = RowDigest::default();
        for (f, times) in files.iter().enumerate() {
            let ids: Vec<i64> = (0..times.len() as i64).map(|k| id + k).collect();
            id += times.len() as i64;
            if !times.is_empty() {
                digest = digest.merge(digest_batch(&batch(times, &ids)).unwrap());
            }
            for (r, &t) in times.iter().enumerate() {
                if prev.is_some_and(|p| t < p) {
                    steps += 1;
                    first.get_or_insert(RowPlace {
                        file: f,
                        row: r as u64,
                    });
                }
                prev = Some(t);
            }
        }
        (steps, first, digest)
    }

    fn check(files: &[Vec<i64>], rg: usize) {
        let d = tempfile::tempdir().unwrap();
        let paths = write(d.path(), files, rg);
        let footers = read_footers(&paths).unwrap();
        let s = scan_files(&paths, footers, "ts_utc", &|_| {}).unwrap();
        let (steps, first, digest) = model(files);
        assert_eq!(s.steps_back, steps);
        assert_eq!(s.first_step_back.map(|b| b.at), first);
        assert_eq!(s.digest, digest);
        let all: Vec<i64> = files.iter().flatten().copied().collect();
        assert_eq!(s.min, all.iter().min().copied());
        assert_eq!(s.max, all.iter().max().copied());
        for (f, times) in s.files.iter().zip(files) {
            assert_eq!(f.rows, times.len() as u64);
        }
    }

    #[test]
    fn seeded_random_files_match_the_model() {
        for seed in 0..6 {
            let mut r = Rng(seed);
            let files: Vec<Vec<i64>> = (0..1 + r.next() % 3)
                .map(|_| {
                    let n = 1 + r.next() % 300;
                    let mut t: Vec<i64> = (0..n).map(|_| (r.next() % 50) as i64 * 1000).collect();
                    if seed % 2 == 0 {
                        t.sort();
                    }
                    t
                })
                .collect();
            check(&files, 1 + (r.next() % 64) as usize);
        }
    }

    #[test]
    fn named_edge_cases() {
        // Sorted with ties: no step.
        check(&[vec![1, 1, 2, 2, 2, 3]], 2);
        // One row.
        check(&[vec![5]], 1);
        // A step exactly at a row-group boundary (rows 3 -> 4, groups of 4).
        check(&[vec![1, 2, 3, 9, 4, 10]], 4);
        // A step exactly at a file boundary only.
        check(&[vec![1, 2, 30], vec![20, 40]], 2);
        // Steps inside and across files: the first one is reported.
        check(&[vec![1, 5, 3], vec![2, 8, 7]], 2);
    }
}
