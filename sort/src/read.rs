//! Decoding one row group: the per-task work of phase 1 (and the copy floor's reader).
//!
//! For each batch the parquet reader returns, [`decode_chunk`] does, in one pass:
//! 1. the sort key of every row (time parsed once, packed with file index and row number);
//!    a null or unparseable time fails naming the file, the row and the value;
//! 2. the source side of the multiset digest, on the batch *as read* (so the digest
//!    covers the reader's output, not our conversion of it);
//! 3. the conversion to the work representation (dictionary codes; a key column of
//!    canonical strings dropped, to be regenerated from the key: `keytext`);
//! 4. ([`decode_task`]) the sort of the chunk by key, while it is hot in cache.

use std::fs::File;

use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow_select::take::take;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;
use sluice_storage::digest::{RowDigest, RowLanes};

use crate::error::{Result, SortError};
use crate::key::{self, KeyFault};
use crate::plan::{RowGroupTask, SourcePlan};
use crate::repr::Repr;

/// Rows per decoded batch.
pub const READ_BATCH_ROWS: usize = 64 * 1024;

/// A decoded piece of a row group (at most [`READ_BATCH_ROWS`] rows): in file order as
/// decoded, in key order after [`Chunk::sort`].
#[derive(Debug)]
pub struct Chunk {
    /// Rows in the work representation.
    pub batch: RecordBatch,
    /// One packed key per row.
    pub keys: Vec<u128>,
}

impl Chunk {
    /// Put the rows in key order. The chunk is small enough for the CPU caches, so the
    /// random-access gather here is cheap; every later step (merges) reads rows
    /// sequentially. Keys of a decoded chunk are consecutive rows of one file, so a key's
    /// row within the chunk is its tie-breaker minus the first one.
    pub fn sort(self) -> Result<Chunk> {
        if self.keys.is_sorted() {
            return Ok(self);
        }
        // A stable radix sort on the time half is exact: rows arrive in row order, so equal
        // times stay in row order, which is the key's tie-break within one file.
        let mut order: Vec<(u64, u32)> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, &k)| ((k >> 64) as u64, i as u32))
            .collect();
        crate::radix::sort_by_u64(&mut order, &mut Vec::new(), |x| x.0);
        let rows = UInt32Array::from_iter_values(order.iter().map(|x| x.1));
        let keys: Vec<u128> = order.iter().map(|&(_, i)| self.keys[i as usize]).collect();
        let columns = self
            .batch
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &rows, None))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| SortError::Internal(format!("sorting a chunk: {e}")))?;
        let options = RecordBatchOptions::new().with_row_count(Some(keys.len()));
        let batch = RecordBatch::try_new_with_options(self.batch.schema(), columns, &options)
            .map_err(|e| SortError::Internal(format!("sorting a chunk: {e}")))?;
        Ok(Chunk { batch, keys })
    }

    /// Rows in the chunk.
    pub fn rows(&self) -> usize {
        self.keys.len()
    }

    /// Bytes held (arrays plus keys), for the memory budget.
    pub fn bytes(&self) -> u64 {
        (self.batch.get_array_memory_size() + self.keys.capacity() * 16) as u64
    }
}

/// What phase 1 learns about the source while decoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStats {
    pub digest: RowDigest,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
}

impl SourceStats {
    /// The statistics of two disjoint sets of rows together.
    pub fn merge(self, o: SourceStats) -> SourceStats {
        let pick = |a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64| match (a, b) {
            (Some(x), Some(y)) => Some(f(x, y)),
            (x, None) => x,
            (None, y) => y,
        };
        SourceStats {
            digest: self.digest.merge(o.digest),
            min_time: pick(self.min_time, o.min_time, i64::min),
            max_time: pick(self.max_time, o.max_time, i64::max),
        }
    }
}

/// Decode the batches of one row group as read (source types, read-schema hints applied),
/// all of them (the copy floor's reader; the sort streams them: [`for_each_batch`]).
pub fn read_row_group(plan: &SourcePlan, task: &RowGroupTask) -> Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    for_each_batch(plan, task, |b| {
        batches.push(b);
        Ok(())
    })?;
    Ok(batches)
}

/// Call `each` with the batches of one row group (at most [`READ_BATCH_ROWS`] rows each)
/// as they are decoded, so that a row group of any size needs one batch of memory (and
/// the reader's current pages), not its whole decoded size (one 10M-row row group: 560 MiB
/// peak RSS under `--memory-limit 256MiB` when it was decoded whole, 190 MiB streamed).
/// Local files are read directly; S3 sources come from the
/// plan's prefetcher (column chunks fetched with ranged GETs ahead of this call).
pub fn for_each_batch(
    plan: &SourcePlan,
    task: &RowGroupTask,
    each: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    let source = &plan.files[task.file as usize];
    // Lets the S3 tests stop the server while a sort is reading (no-op unless requested).
    crate::fault::pause("read-row-group");
    match &plan.prefetch {
        Some(prefetch) => {
            let index = plan
                .tasks
                .binary_search_by_key(&(task.file, task.row_group), |t| (t.file, t.row_group))
                .map_err(|_| SortError::Internal(format!("task {task:?} is not in the plan")))?;
            decode_row_group(prefetch.take(index)?, plan, task, each)
        }
        None => {
            let file = File::open(&source.path).map_err(|e| SortError::io(&source.path, e))?;
            decode_row_group(file, plan, task, each)
        }
    }
}

fn decode_row_group<R: ChunkReader + 'static>(
    reader: R,
    plan: &SourcePlan,
    task: &RowGroupTask,
    mut each: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    let source = &plan.files[task.file as usize];
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(reader, source.meta.clone())
        .with_row_groups(vec![task.row_group])
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .map_err(|e| SortError::parquet(&source.path, e))?;
    for batch in reader {
        each(batch.map_err(|e| SortError::parquet(&source.path, e))?)?;
    }
    Ok(())
}

/// The multiset digest (`sluice_storage::digest`) of rows given as the plan's columns
/// (source types: a batch as read, or the arrays handed to the encoder). A constant
/// column's value is hashed once and folded into every row without a pass over them
/// (the same digest, `RowLanes::fold_constant`): decoded batches are checked to hold only
/// that value (`SourcePlan::to_work`), output arrays repeat it.
pub fn digest_columns(plan: &SourcePlan, columns: &[ArrayRef]) -> Result<RowDigest> {
    let rows = columns.first().map_or(0, |a| a.len());
    let mut lanes = RowLanes::new(rows);
    for (i, (c, a)) in plan.columns.iter().zip(columns).enumerate() {
        match c.repr {
            Repr::Constant(_) if rows > 0 => lanes.fold_constant(i, &c.name, &a.slice(0, 1))?,
            _ => lanes.fold_column(i, &c.name, a)?,
        }
    }
    let mut d = RowDigest::default();
    lanes.finish().for_each(|h| d.add(h));
    Ok(d)
}

/// Steps 1-3 for one batch as read, whose first row is row `first_row` of file `file`.
pub fn decode_chunk(
    plan: &SourcePlan,
    file: u32,
    first_row: u64,
    batch: &RecordBatch,
) -> Result<(Chunk, SourceStats)> {
    let path = &plan.files[file as usize].path;
    let (times, canonical) =
        key::times_and_form(batch.column(plan.key_index)).map_err(|fault| match fault {
            KeyFault::Null { row } => SortError::SortKeyNull {
                file: path.clone(),
                row: first_row + row as u64,
                column: plan.key_name().to_string(),
            },
            KeyFault::Unparseable { row, value } => SortError::SortKeyUnparseable {
                file: path.clone(),
                row: first_row + row as u64,
                column: plan.key_name().to_string(),
                value,
            },
        })?;
    let keys: Vec<u128> = times
        .iter()
        .enumerate()
        .map(|(i, &t)| key::pack(t, file, first_row + i as u64))
        .collect();
    let digest = digest_columns(plan, batch.columns())?;
    let stats = SourceStats {
        digest,
        min_time: times.iter().copied().min(),
        max_time: times.iter().copied().max(),
    };
    let batch = plan.to_work(batch, canonical)?;
    Ok((Chunk { batch, keys }, stats))
}

/// Decode one row-group task into chunks, each sorted and handed to `on_chunk` before the
/// next batch is decoded; returns the task's statistics.
pub fn decode_task(
    plan: &SourcePlan,
    task: &RowGroupTask,
    mut on_chunk: impl FnMut(Chunk) -> Result<()>,
) -> Result<SourceStats> {
    let mut stats = SourceStats::default();
    let mut row = task.first_row;
    for_each_batch(plan, task, |batch| {
        let n = batch.num_rows() as u64;
        if n == 0 {
            return Ok(());
        }
        let (chunk, s) = decode_chunk(plan, task.file, row, &batch)?;
        stats = stats.merge(s);
        row += n;
        on_chunk(chunk.sort()?)
    })?;
    Ok(stats)
}
