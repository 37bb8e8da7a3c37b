//! Phase 1: decode the source and cut it into sorted runs that each fit the run budget.
//!
//! 1. Take the next wave of row groups (as many as fit the read budget, at least one per
//!    thread) and decode them in parallel ([`crate::read::decode_task`]): keys, source
//!    digest, work representation.
//! 2. Append the chunks to the current run; when it reaches the run budget, sort it and
//!    spill it ([`spill_run`]).
//! 3. After the last wave the final run is sorted and **kept in memory**: phase 2 merges it
//!    with the spilled runs directly, and if it is the only run nothing touches disk.
//!
//! Sorting a run never moves rows: the keys (16 bytes per row) are sorted, and each key
//! finds its row through the chunk index (chunks are in (file, row) order, so a binary
//! search on the chunk's first key suffices). Input that is already in key order is
//! detected and not sorted at all.
//!
//! ```text
//!  row groups ─wave─► decode ∥ decode ─► chunks ─► run full? ─► sort keys ─► gather ─► spill
//!                                                    └── last run: sort keys, stay in memory
//! ```

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_select::interleave::interleave;
use rayon::prelude::*;

use crate::config::MemoryBudget;
use crate::error::{Result, SortError};
use crate::key::tie_of;
use crate::plan::SourcePlan;
use crate::read::{decode_task, Chunk, SourceStats};
use crate::spill::file::{SpillRun, SpillWriter};
use crate::spill::TempSpace;
use crate::Progress;

/// A sorted run held in memory: rows stay where they were decoded; `order` lists them in
/// key order.
#[derive(Debug, Default)]
pub struct MemoryRun {
    pub batches: Vec<RecordBatch>,
    /// `(batch, row)` of each row in key order.
    pub order: Vec<(u32, u32)>,
    /// Keys in order (`keys[i]` is the key of `order[i]`).
    pub keys: Vec<u128>,
}

impl MemoryRun {
    pub fn rows(&self) -> usize {
        self.keys.len()
    }
}

/// A sorted run.
#[derive(Debug)]
pub enum Run {
    Memory(MemoryRun),
    Spilled(SpillRun),
}

/// What phase 1 produces.
#[derive(Debug)]
pub struct Phase1 {
    pub runs: Vec<Run>,
    pub stats: SourceStats,
    /// Average bytes per row in the work representation (sizes phase 2's batches).
    pub bytes_per_row: u64,
}

/// Rows per spilled batch: a few MiB, so that merge cursors stay small.
pub fn spill_batch_rows(bytes_per_row: u64, budget: &MemoryBudget) -> usize {
    let target = (budget.merge_budget / 16).clamp(64 << 10, 4 << 20);
    (target / bytes_per_row.max(1)).clamp(1024, 65536) as usize
}

/// Gather rows `indices` (`(source, row)`) of every column from `sources` (batches of the
/// same schema; only the first `columns` columns are gathered), columns in parallel.
pub fn gather(
    sources: &[RecordBatch],
    columns: usize,
    indices: &[(usize, usize)],
) -> Result<Vec<ArrayRef>> {
    (0..columns)
        .into_par_iter()
        .map(|c| {
            let arrays: Vec<&dyn Array> = sources.iter().map(|b| b.column(c).as_ref()).collect();
            interleave(&arrays, indices).map_err(|e| SortError::Config(format!("gather: {e}")))
        })
        .collect()
}

/// Step 2's sort: order the chunks' rows by key.
pub fn sort_run(mut chunks: Vec<Chunk>) -> MemoryRun {
    chunks.retain(|c| !c.keys.is_empty());
    chunks.sort_by_key(|c| tie_of(c.keys[0]));
    let starts: Vec<u64> = chunks.iter().map(|c| tie_of(c.keys[0])).collect();
    let total: usize = chunks.iter().map(|c| c.keys.len()).sum();
    let mut keys = Vec::with_capacity(total);
    for c in &chunks {
        keys.extend_from_slice(&c.keys);
    }
    if !keys.is_sorted() {
        keys.par_sort_unstable();
    }
    let order: Vec<(u32, u32)> = keys
        .par_iter()
        .map(|&k| {
            let t = tie_of(k);
            // Chunks cover disjoint, increasing (file, row) ranges; `t` is in the last chunk
            // starting at or before it.
            let c = starts.partition_point(|&s| s <= t).saturating_sub(1);
            (c as u32, (t - starts[c]) as u32)
        })
        .collect();
    MemoryRun {
        batches: chunks.into_iter().map(|c| c.batch).collect(),
        order,
        keys,
    }
}

/// Write a sorted run to a spill file, gathering `rows_per_batch` rows at a time; the
/// gather of the next batch overlaps the write of the current one.
pub fn spill_run(
    run: &MemoryRun,
    plan: &SourcePlan,
    space: &Arc<TempSpace>,
    rows_per_batch: usize,
) -> Result<SpillRun> {
    let mut writer = SpillWriter::create(space, &plan.work_schema)?;
    let columns = plan.work_schema.fields().len();
    type Slice<'a> = (&'a [(u32, u32)], &'a [u128]);
    let slices: Vec<Slice<'_>> = run
        .order
        .chunks(rows_per_batch)
        .zip(run.keys.chunks(rows_per_batch))
        .collect();
    let gather_slice = |i: usize| -> Result<Vec<ArrayRef>> {
        let indices: Vec<(usize, usize)> = slices[i]
            .0
            .iter()
            .map(|&(b, r)| (b as usize, r as usize))
            .collect();
        gather(&run.batches, columns, &indices)
    };
    let mut current = if slices.is_empty() {
        None
    } else {
        Some(gather_slice(0)?)
    };
    for i in 0..slices.len() {
        let Some(cols) = current.take() else { break };
        let (written, next) = rayon::join(
            || writer.write(cols, slices[i].1),
            || (i + 1 < slices.len()).then(|| gather_slice(i + 1)),
        );
        written?;
        current = next.transpose()?;
    }
    writer.finish()
}

/// Phase 1 (see the module docs).
pub fn generate_runs(
    plan: &SourcePlan,
    budget: &MemoryBudget,
    space: &Arc<TempSpace>,
    progress: &dyn Progress,
) -> Result<Phase1> {
    let threads = rayon::current_num_threads().max(1);
    let mut stats = SourceStats::default();
    let mut runs = Vec::new();
    let mut pending: Vec<Chunk> = Vec::new();
    let mut pending_bytes = 0u64;
    let mut all_bytes = 0u64;
    let mut all_rows = 0u64;
    let mut bytes_per_row = 0u64;
    progress.phase("read", plan.total_rows);
    let mut next = 0usize;
    while next < plan.tasks.len() {
        // Step 1: a wave of row groups within the read budget.
        let mut end = next;
        let mut wave_bytes = 0u64;
        while end < plan.tasks.len()
            && (end - next < threads || wave_bytes + plan.tasks[end].bytes <= budget.read_budget)
            && end - next < 4 * threads
        {
            wave_bytes += plan.tasks[end].bytes;
            end += 1;
        }
        let decoded: Vec<(Vec<Chunk>, SourceStats)> = plan.tasks[next..end]
            .par_iter()
            .map(|t| decode_task(plan, t))
            .collect::<Result<_>>()?;
        next = end;
        // Step 2: append; spill when the run is full.
        for (chunks, s) in decoded {
            stats = stats.merge(s);
            for c in chunks {
                let bytes = c.bytes();
                pending_bytes += bytes;
                all_bytes += bytes;
                all_rows += c.keys.len() as u64;
                progress.advance(c.keys.len() as u64);
                pending.push(c);
            }
        }
        bytes_per_row = all_bytes / all_rows.max(1);
        let limit = budget.run_budget.saturating_sub(plan.dictionary_bytes());
        if pending_bytes >= limit && next < plan.tasks.len() {
            let run = sort_run(std::mem::take(&mut pending));
            pending_bytes = 0;
            let rows = spill_batch_rows(bytes_per_row, budget);
            runs.push(Run::Spilled(spill_run(&run, plan, space, rows)?));
        }
    }
    // Step 3: the last run stays in memory.
    let last = sort_run(pending);
    if last.rows() > 0 {
        runs.push(Run::Memory(last));
    }
    Ok(Phase1 {
        runs,
        stats,
        bytes_per_row: bytes_per_row.max(1),
    })
}
