//! Phase 2: k-way merge of the sorted runs.
//!
//! 1. While there are more runs than the fan-in allows (memory for one batch per spilled
//!    run), merge the smallest spilled runs into one new spilled run (a merge level).
//! 2. Merge the remaining runs with a [`LoserTree`] over their current keys. Each step
//!    emits a `(source batch, row)` pair; every `n` rows form a [`MergedChunk`].
//! 3. A chunk's rows are gathered column by column (`interleave`, columns in parallel);
//!    then the spill pages of batches the chunk finished are released.
//!
//! ```text
//!  run 0 (memory) ──cursor──┐
//!  run 1 (mmap)   ──cursor──┼─► loser tree ─► (batch,row)… ─► chunk ─► gather ─► sink
//!  run 2 (mmap)   ──cursor──┘                                  └─► release consumed pages
//! ```
//!
//! The final merge's chunks are exactly one output row group each, so row-group boundaries
//! fall every `--row-group-rows` rows of the global order, independent of runs.

pub mod loser_tree;

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::RecordBatch;
use arrow_buffer::ScalarBuffer;

use crate::error::Result;
use crate::runs::{gather, MemoryRun, Run};
use crate::spill::file::{MappedRun, SpillRun, SpillWriter};
use crate::spill::TempSpace;
use loser_tree::{LoserTree, EXHAUSTED};

/// Rows of one merge step, ready to gather.
#[derive(Debug, Default)]
pub struct MergedChunk {
    /// Batches the rows come from (work columns first; spilled batches carry key columns
    /// after them, which gathering skips).
    pub sources: Vec<RecordBatch>,
    /// `(index into sources, row)` of each row, in order.
    pub indices: Vec<(usize, usize)>,
    /// Key of each row, in order.
    pub keys: Vec<u128>,
    /// Spilled batches finished in this chunk: `(cursor, batch)`.
    releases: Vec<(usize, usize)>,
}

/// The position of one run in the merge.
enum Cursor {
    Memory {
        run: MemoryRun,
        pos: usize,
        /// Index of the run's first batch in the current chunk's sources.
        base: usize,
    },
    Spilled {
        run: Box<MappedRun>,
        batch_index: usize,
        batch: RecordBatch,
        hi: ScalarBuffer<u64>,
        lo: ScalarBuffer<u64>,
        pos: usize,
        /// Index of the current batch in the current chunk's sources.
        slot: usize,
    },
    Done,
}

fn key_columns(batch: &RecordBatch) -> (ScalarBuffer<u64>, ScalarBuffer<u64>) {
    let n = batch.num_columns();
    let hi = batch.column(n - 2).as_primitive::<UInt64Type>().values().clone();
    let lo = batch.column(n - 1).as_primitive::<UInt64Type>().values().clone();
    (hi, lo)
}

#[inline(always)]
fn join_key(hi: &[u64], lo: &[u64], i: usize) -> u128 {
    ((hi[i] as u128) << 64) | lo[i] as u128
}

impl Cursor {
    fn open(run: Run, work_schema: &arrow_schema::Schema) -> Result<Cursor> {
        Ok(match run {
            Run::Memory(run) if run.rows() > 0 => Cursor::Memory { run, pos: 0, base: 0 },
            Run::Memory(_) => Cursor::Done,
            Run::Spilled(spill) => {
                let run = MappedRun::open(spill, work_schema)?;
                Self::spilled_from(Box::new(run), 0)?
            }
        })
    }

    /// Position on batch `i` of a mapped run (or `Done` past the end / on empty batches).
    fn spilled_from(run: Box<MappedRun>, mut i: usize) -> Result<Cursor> {
        while i < run.num_batches() {
            let batch = run.batch(i)?;
            if batch.num_rows() > 0 {
                let (hi, lo) = key_columns(&batch);
                return Ok(Cursor::Spilled {
                    run,
                    batch_index: i,
                    batch,
                    hi,
                    lo,
                    pos: 0,
                    slot: 0,
                });
            }
            run.release(i);
            i += 1;
        }
        Ok(Cursor::Done)
    }

    fn key(&self) -> u128 {
        match self {
            Cursor::Memory { run, pos, .. } => run.keys[*pos],
            Cursor::Spilled { hi, lo, pos, .. } => join_key(hi, lo, *pos),
            Cursor::Done => EXHAUSTED,
        }
    }

    /// Register this cursor's batches as sources of a new chunk.
    fn enter_chunk(&mut self, chunk: &mut MergedChunk) {
        match self {
            Cursor::Memory { run, base, .. } => {
                *base = chunk.sources.len();
                chunk.sources.extend(run.batches.iter().cloned());
            }
            Cursor::Spilled { batch, slot, .. } => {
                *slot = chunk.sources.len();
                chunk.sources.push(batch.clone());
            }
            Cursor::Done => {}
        }
    }
}

/// Merges runs into chunks of rows in key order.
pub struct Merger {
    cursors: Vec<Cursor>,
    tree: LoserTree,
    work_columns: usize,
    last_key: Option<u128>,
}

impl Merger {
    /// Open every run (mapping spilled ones) and build the tree.
    pub fn new(runs: Vec<Run>, work_schema: &arrow_schema::Schema) -> Result<Self> {
        let cursors: Vec<Cursor> = runs
            .into_iter()
            .map(|r| Cursor::open(r, work_schema))
            .collect::<Result<_>>()?;
        let tree = LoserTree::new(cursors.iter().map(Cursor::key).collect());
        Ok(Merger {
            cursors,
            tree,
            work_columns: work_schema.fields().len(),
            last_key: None,
        })
    }

    /// Columns to gather (the work columns).
    pub fn work_columns(&self) -> usize {
        self.work_columns
    }

    /// The next `max_rows` rows in key order (fewer at the end; `None` when done).
    pub fn next_chunk(&mut self, max_rows: usize) -> Result<Option<MergedChunk>> {
        if self.tree.winner_key() == EXHAUSTED {
            return Ok(None);
        }
        let mut chunk = MergedChunk::default();
        for c in &mut self.cursors {
            c.enter_chunk(&mut chunk);
        }
        chunk.indices.reserve(max_rows);
        chunk.keys.reserve(max_rows);
        while chunk.keys.len() < max_rows {
            let key = self.tree.winner_key();
            if key == EXHAUSTED {
                break;
            }
            let w = self.tree.winner();
            let next = self.advance(w, &mut chunk)?;
            chunk.keys.push(key);
            self.tree.replace_winner(next);
        }
        self.last_key = chunk.keys.last().copied().or(self.last_key);
        Ok(Some(chunk))
    }

    /// Emit cursor `w`'s current row into `chunk` and move it on; its next key.
    #[inline]
    fn advance(&mut self, w: usize, chunk: &mut MergedChunk) -> Result<u128> {
        let cursor = &mut self.cursors[w];
        match cursor {
            Cursor::Memory { run, pos, base } => {
                let (b, r) = run.order[*pos];
                chunk.indices.push((*base + b as usize, r as usize));
                *pos += 1;
                Ok(run.keys.get(*pos).copied().unwrap_or(EXHAUSTED))
            }
            Cursor::Spilled {
                pos,
                slot,
                hi,
                lo,
                batch_index,
                ..
            } => {
                chunk.indices.push((*slot, *pos));
                *pos += 1;
                if *pos < hi.len() {
                    return Ok(join_key(hi, lo, *pos));
                }
                // Batch finished: move to the next one, register it in this chunk.
                chunk.releases.push((w, *batch_index));
                let next_index = *batch_index + 1;
                let Cursor::Spilled { run, .. } = std::mem::replace(cursor, Cursor::Done) else {
                    return Ok(EXHAUSTED);
                };
                *cursor = Cursor::spilled_from(run, next_index)?;
                if let Cursor::Spilled { batch, slot, .. } = cursor {
                    *slot = chunk.sources.len();
                    chunk.sources.push(batch.clone());
                }
                Ok(cursor.key())
            }
            Cursor::Done => Ok(EXHAUSTED),
        }
    }

    /// Release the pages of the spilled batches `chunk` finished (after gathering it).
    pub fn release(&self, chunk: &MergedChunk) {
        for &(c, b) in &chunk.releases {
            if let Cursor::Spilled { run, .. } = &self.cursors[c] {
                run.release(b);
            }
        }
    }

    /// Release pages of finished batches, given the chunk's release list (usable while the
    /// merger is borrowed elsewhere).
    pub fn release_list(chunk: &MergedChunk) -> Vec<(usize, usize)> {
        chunk.releases.clone()
    }

    /// Release pages by list (see [`Merger::release_list`]).
    pub fn release_batches(&self, list: &[(usize, usize)]) {
        for &(c, b) in list {
            if let Cursor::Spilled { run, .. } = &self.cursors[c] {
                run.release(b);
            }
        }
    }
}

/// Gather a chunk's work columns.
pub fn gather_chunk(chunk: &MergedChunk, columns: usize) -> Result<Vec<arrow_array::ArrayRef>> {
    gather(&chunk.sources, columns, &chunk.indices)
}

/// Step 1: merge `group` (spilled runs) into one spilled run.
pub fn merge_to_spill(
    group: Vec<Run>,
    work_schema: &arrow_schema::Schema,
    space: &Arc<TempSpace>,
    rows_per_batch: usize,
) -> Result<SpillRun> {
    let mut merger = Merger::new(group, work_schema)?;
    let mut writer = SpillWriter::create(space, work_schema)?;
    while let Some(chunk) = merger.next_chunk(rows_per_batch)? {
        let cols = gather_chunk(&chunk, merger.work_columns())?;
        merger.release(&chunk);
        let keys = chunk.keys;
        drop(chunk.sources);
        writer.write(cols, &keys)?;
    }
    writer.finish()
}

/// Step 1 for a whole run list: reduce to at most `fan_in` runs. Returns the runs and the
/// number of merge levels performed.
pub fn reduce_runs(
    mut runs: Vec<Run>,
    fan_in: usize,
    work_schema: &arrow_schema::Schema,
    space: &Arc<TempSpace>,
    rows_per_batch: usize,
) -> Result<(Vec<Run>, u32)> {
    let fan_in = fan_in.max(2);
    let mut levels = 0;
    while runs.len() > fan_in {
        levels += 1;
        // Merge the smallest spilled runs, just enough of them to reach the fan-in
        // (the classic (n - 1) mod (k - 1) + 1 first step keeps later levels full).
        let excess = runs.len() - fan_in;
        let take = (excess + 1).min(fan_in);
        let (mut spilled, memory): (Vec<Run>, Vec<Run>) =
            runs.into_iter().partition(|r| matches!(r, Run::Spilled(_)));
        spilled.sort_by_key(|r| match r {
            Run::Spilled(s) => s.bytes(),
            Run::Memory(_) => 0,
        });
        let take = take.min(spilled.len()).max(2.min(spilled.len()));
        if take < 2 {
            // Only memory runs left above the fan-in: nothing to merge on disk.
            runs = spilled.into_iter().chain(memory).collect();
            break;
        }
        let rest = spilled.split_off(take);
        let merged = merge_to_spill(spilled, work_schema, space, rows_per_batch)?;
        runs = std::iter::once(Run::Spilled(merged))
            .chain(rest)
            .chain(memory)
            .collect();
    }
    Ok((runs, levels))
}
