//! Phase 1: decode the source into sorted chunks; spill the ones that will not fit.
//!
//! 1. Take the next wave of row groups (as many as fit the read budget, at least one per
//!    thread) and decode them in parallel ([`crate::read::decode_task`]): keys, source
//!    digest, work representation, and each chunk (at most 64 Ki rows) sorted by key while
//!    it is hot in cache.
//! 2. The input's tail that fits the run budget stays in memory; every chunk before it is
//!    written by the decoding thread itself to that thread's spill file as one sorted
//!    segment (no merging here). The tail is estimated from the footers' sizes scaled by
//!    the measured ratio of work bytes to parquet bytes; if the estimate was short, the
//!    oldest kept chunks are spilled after the wave.
//! 3. The result: spill files of sorted segments plus the sorted chunks in memory. Phase 2
//!    merges all of them at once; if nothing was spilled, nothing touches disk.
//!
//! Why chunks: sorting a large run in place would gather every column at random positions
//! across hundreds of MiB, a cache and TLB miss per value (measured: that gather dominated
//! the profile). Sorting 64 Ki-row chunks keeps the random access inside the CPU caches;
//! the merge then reads every source sequentially.
//!
//! ```text
//!  row groups ─wave─► decode+key+digest+sort ∥ … ─► sorted chunk ─┬─ before the tail: spill
//!                                                                  │  (thread's file, segment)
//!                                                                  └─ tail: keep in memory
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_select::interleave::interleave;
use rayon::prelude::*;

use crate::config::MemoryBudget;
use crate::error::{Result, SortError};
use crate::plan::SourcePlan;
use crate::read::{decode_task, Chunk, SourceStats};
use crate::spill::file::{SpillRun, SpillWriter};
use crate::spill::TempSpace;
use crate::Progress;

/// A sorted run: sorted chunks in memory, or a spill file of sorted segments.
#[derive(Debug)]
pub enum Run {
    Memory(Vec<Chunk>),
    Spilled(SpillRun),
}

/// What phase 1 produces.
#[derive(Debug)]
pub struct Phase1 {
    pub runs: Vec<Run>,
    pub stats: SourceStats,
    /// Average bytes per row in the work representation (sizes phase 2's batches).
    pub bytes_per_row: u64,
    /// Sorted segments spilled (one per spilled chunk).
    pub spilled_segments: usize,
}

impl Phase1 {
    /// Sorted runs left for phase 2: spilled segments, plus one for the in-memory tail.
    pub fn sorted_runs(&self) -> usize {
        self.spilled_segments
            + self
                .runs
                .iter()
                .filter(|r| matches!(r, Run::Memory(_)))
                .count()
    }
}

/// Rows per spilled IPC batch: small enough that one batch per merge source fits the merge
/// budget for the expected number of sources, large enough to keep per-batch overhead low.
pub fn spill_batch_rows(bytes_per_row: u64, sources: usize, budget: &MemoryBudget) -> usize {
    let per_source = budget.merge_budget / (2 * sources.max(1) as u64);
    (per_source / bytes_per_row.max(1)).clamp(256, 8192) as usize
}

/// Gather rows `indices` (`(source, row)`) of the first `columns` columns of `sources`
/// (batches of one schema), columns in parallel.
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

/// One spill file per worker thread, created on first use.
struct ThreadFiles<'a> {
    space: &'a Arc<TempSpace>,
    plan: &'a SourcePlan,
    files: Vec<Mutex<Option<SpillWriter>>>,
}

impl ThreadFiles<'_> {
    /// Write a sorted chunk as one segment of the calling thread's file.
    fn spill(&self, chunk: &Chunk, rows_per_batch: usize) -> Result<()> {
        let i = rayon::current_thread_index().unwrap_or(0) % self.files.len();
        let mut slot = self.files[i].lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(SpillWriter::create(self.space, &self.plan.work_schema)?);
        }
        match slot.as_mut() {
            Some(w) => w.write_segment(&chunk.batch, &chunk.keys, rows_per_batch),
            None => Ok(()),
        }
    }

    fn finish(self) -> Result<Vec<Run>> {
        let mut runs = Vec::new();
        for f in self.files {
            if let Some(w) = f.into_inner().unwrap_or_else(|p| p.into_inner()) {
                runs.push(Run::Spilled(w.finish()?));
            }
        }
        Ok(runs)
    }
}

/// Phase 1 (see the module docs).
pub fn generate_runs(
    plan: &SourcePlan,
    budget: &MemoryBudget,
    space: &Arc<TempSpace>,
    progress: &dyn Progress,
) -> Result<Phase1> {
    let threads = rayon::current_num_threads().max(1);
    let tasks = &plan.tasks;
    let files = ThreadFiles {
        space,
        plan,
        files: (0..threads).map(|_| Mutex::new(None)).collect(),
    };
    // Bytes from each task to the end (footer sizes), to find the tail that stays.
    let mut suffix = vec![0u64; tasks.len() + 1];
    for i in (0..tasks.len()).rev() {
        suffix[i] = suffix[i + 1] + tasks[i].bytes;
    }
    let expected_chunks: usize = tasks
        .iter()
        .map(|t| (t.rows as usize).div_ceil(crate::read::READ_BATCH_ROWS))
        .sum();
    let mut stats = SourceStats::default();
    let mut kept: VecDeque<Chunk> = VecDeque::new();
    let mut kept_bytes = 0u64;
    let (mut work_bytes, mut parquet_bytes, mut rows_done) = (0u64, 0u64, 0u64);
    let mut spilled_segments = 0usize;
    progress.phase("read", plan.total_rows);
    let mut next = 0usize;
    while next < tasks.len() {
        // Step 1: a wave of row groups within the read budget.
        let mut end = next;
        let mut wave_bytes = 0u64;
        while end < tasks.len()
            && (end - next < threads || wave_bytes + tasks[end].bytes <= budget.read_budget)
            && end - next < 4 * threads
        {
            wave_bytes += tasks[end].bytes;
            end += 1;
        }
        // Step 2: which tasks belong to the kept tail (work bytes estimated from footer
        // bytes; until something is measured, assume work is as large as parquet).
        let ratio = if parquet_bytes > 0 {
            work_bytes as f64 / parquet_bytes as f64
        } else {
            1.0
        };
        let room = budget.run_budget.saturating_sub(plan.dictionary_bytes());
        let keep_from = suffix.partition_point(|&b| (b as f64 * ratio) as u64 > room);
        let bytes_per_row = (work_bytes / rows_done.max(1)).max(64);
        let batch_rows = spill_batch_rows(bytes_per_row, expected_chunks, budget);
        let decoded: Vec<(Vec<Chunk>, SourceStats, u64, usize)> = (next..end)
            .into_par_iter()
            .map(|i| {
                let (chunks, s) = decode_task(plan, &tasks[i])?;
                let bytes: u64 = chunks.iter().map(Chunk::bytes).sum();
                progress.advance(tasks[i].rows);
                if i < keep_from {
                    for c in &chunks {
                        files.spill(c, batch_rows)?;
                    }
                    Ok((Vec::new(), s, bytes, chunks.len()))
                } else {
                    Ok((chunks, s, bytes, 0))
                }
            })
            .collect::<Result<_>>()?;
        for (i, (chunks, s, bytes, spilled)) in (next..end).zip(decoded) {
            stats = stats.merge(s);
            work_bytes += bytes;
            parquet_bytes += tasks[i].bytes;
            rows_done += tasks[i].rows;
            spilled_segments += spilled;
            for c in chunks {
                kept_bytes += c.bytes();
                kept.push_back(c);
            }
        }
        next = end;
        // The estimate was short: spill the oldest kept chunks.
        while kept_bytes > room && kept.len() > 1 {
            let Some(c) = kept.pop_front() else { break };
            kept_bytes -= c.bytes();
            files.spill(&c, batch_rows)?;
            spilled_segments += 1;
        }
    }
    let mut runs = files.finish()?;
    if !kept.is_empty() {
        runs.push(Run::Memory(kept.into_iter().collect()));
    }
    Ok(Phase1 {
        runs,
        stats,
        bytes_per_row: (work_bytes / rows_done.max(1)).max(1),
        spilled_segments,
    })
}
