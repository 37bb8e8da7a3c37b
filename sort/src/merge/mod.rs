//! Phase 2: k-way merge of the sorted runs.
//!
//! 1. Sources are sorted chunks still in memory and sorted segments of spill files. While
//!    there are more spilled segments than the fan-in allows (memory for one batch each),
//!    merge the smallest into one new spilled segment (a merge level). In-memory chunks cost
//!    no extra memory and always join the final merge.
//! 2. Merge the sources with a [`LoserTree`] over their current keys. Each step emits a
//!    `(source batch, row)` pair; every `n` rows form a [`MergedChunk`].
//! 3. A chunk's rows are gathered column by column (`interleave`, columns in parallel);
//!    then the spill pages of batches the chunk finished are released.
//!
//! ```text
//!  sorted chunk (memory)    ──cursor──┐
//!  sorted chunk (memory)    ──cursor──┤
//!  spilled segment (mmap)   ──cursor──┼─► loser tree ─► (batch,row)… ─► chunk ─► gather ─► sink
//!  spilled segment (mmap)   ──cursor──┘                         └─► release consumed pages
//! ```
//!
//! The final merge's chunks are exactly one output row group each, so row-group boundaries
//! fall every `--row-group-rows` rows of the global order, independent of runs.

pub mod loser_tree;

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::Schema;

use crate::error::Result;
use crate::plan::SourcePlan;
use crate::read::Chunk;
use crate::runs::{gather, Run};
use crate::spill::file::{MappedRun, Segment, SpillWriter};
use crate::spill::TempSpace;
use loser_tree::{LoserTree, EXHAUSTED};

/// One sorted input of a merge.
#[derive(Debug)]
pub enum Source {
    /// A sorted chunk in memory.
    Chunk(Chunk),
    /// A sorted segment of a mapped spill file.
    Segment(Arc<MappedRun>, Segment),
}

impl Source {
    /// Rows in the source.
    pub fn rows(&self) -> u64 {
        match self {
            Source::Chunk(c) => c.rows() as u64,
            Source::Segment(_, s) => s.rows,
        }
    }
}

/// Map spilled runs and list every merge source: one per in-memory chunk and one per
/// spilled segment.
pub fn sources(runs: Vec<Run>, work_schema: &Schema) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for run in runs {
        match run {
            Run::Memory(chunks) => out.extend(chunks.into_iter().map(Source::Chunk)),
            Run::Spilled(spill) => {
                let mapped = Arc::new(MappedRun::open(spill, work_schema)?);
                for seg in mapped.segments().to_vec() {
                    out.push(Source::Segment(mapped.clone(), seg));
                }
            }
        }
    }
    Ok(out)
}

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
    /// Spilled batches finished in this chunk.
    releases: Vec<(Arc<MappedRun>, usize)>,
}

impl MergedChunk {
    /// Release the pages of the spilled batches this chunk finished; call once the chunk
    /// has been gathered (its `sources` still point into those pages until then).
    pub fn release(&self) {
        for (run, batch) in &self.releases {
            run.release(*batch);
        }
    }

    /// Hand the release duty to the caller (so that `sources` can be dropped first).
    pub fn take_releases(&mut self) -> Vec<(Arc<MappedRun>, usize)> {
        std::mem::take(&mut self.releases)
    }
}

/// Release a list taken with [`MergedChunk::take_releases`].
pub fn release_all(list: &[(Arc<MappedRun>, usize)]) {
    for (run, batch) in list {
        run.release(*batch);
    }
}

/// Where a cursor's rows come from.
enum Feed {
    /// One in-memory sorted chunk.
    Chunk,
    /// Batches `batch..end` of a mapped spill file.
    Spilled {
        run: Arc<MappedRun>,
        batch: usize,
        end: usize,
    },
    Done,
}

/// The position of one source in the merge: its current batch and keys.
struct Cursor {
    feed: Feed,
    batch: RecordBatch,
    keys: Vec<u128>,
    pos: usize,
    /// Index of `batch` in the current merged chunk's sources.
    slot: usize,
}

fn keys_of(batch: &RecordBatch) -> Vec<u128> {
    let n = batch.num_columns();
    let hi = batch.column(n - 2).as_primitive::<UInt64Type>().values();
    let lo = batch.column(n - 1).as_primitive::<UInt64Type>().values();
    hi.iter()
        .zip(lo.iter())
        .map(|(&h, &l)| ((h as u128) << 64) | l as u128)
        .collect()
}

impl Cursor {
    fn done() -> Cursor {
        Cursor {
            feed: Feed::Done,
            batch: RecordBatch::new_empty(Arc::new(Schema::empty())),
            keys: Vec::new(),
            pos: 0,
            slot: 0,
        }
    }

    fn open(source: Source) -> Result<Cursor> {
        match source {
            Source::Chunk(c) if c.rows() > 0 => Ok(Cursor {
                feed: Feed::Chunk,
                batch: c.batch,
                keys: c.keys,
                pos: 0,
                slot: 0,
            }),
            Source::Chunk(_) => Ok(Cursor::done()),
            Source::Segment(run, seg) => {
                Cursor::spilled(run, seg.first, seg.first + seg.batches)
            }
        }
    }

    /// Position on the first non-empty batch of `batch..end` (`Done` if none).
    fn spilled(run: Arc<MappedRun>, mut batch: usize, end: usize) -> Result<Cursor> {
        while batch < end {
            let b = run.batch(batch)?;
            if b.num_rows() > 0 {
                return Ok(Cursor {
                    keys: keys_of(&b),
                    batch: b,
                    feed: Feed::Spilled { run, batch, end },
                    pos: 0,
                    slot: 0,
                });
            }
            run.release(batch);
            batch += 1;
        }
        Ok(Cursor::done())
    }

    fn key(&self) -> u128 {
        self.keys.get(self.pos).copied().unwrap_or(EXHAUSTED)
    }

    /// Register the current batch as a source of `chunk`.
    fn enter(&mut self, chunk: &mut MergedChunk) {
        if !matches!(self.feed, Feed::Done) {
            self.slot = chunk.sources.len();
            chunk.sources.push(self.batch.clone());
        }
    }

    /// The current batch is exhausted: move to the next one (registering it in `chunk`).
    fn next_batch(&mut self, chunk: &mut MergedChunk) -> Result<u128> {
        match std::mem::replace(&mut self.feed, Feed::Done) {
            Feed::Spilled { run, batch, end } => {
                chunk.releases.push((run.clone(), batch));
                *self = Cursor::spilled(run, batch + 1, end)?;
                self.enter(chunk);
                Ok(self.key())
            }
            Feed::Chunk | Feed::Done => {
                // Free the chunk's rows once the merged chunk (which holds its own
                // reference) has been gathered.
                *self = Cursor::done();
                Ok(EXHAUSTED)
            }
        }
    }
}

/// Merges sorted sources into chunks of rows in key order.
pub struct Merger {
    cursors: Vec<Cursor>,
    tree: LoserTree,
    work_columns: usize,
}

impl Merger {
    /// Open every source and build the tree.
    pub fn new(sources: Vec<Source>, work_schema: &Schema) -> Result<Self> {
        let cursors: Vec<Cursor> = sources
            .into_iter()
            .map(Cursor::open)
            .collect::<Result<_>>()?;
        let tree = LoserTree::new(cursors.iter().map(Cursor::key).collect());
        Ok(Merger {
            cursors,
            tree,
            work_columns: work_schema.fields().len(),
        })
    }

    /// Columns to gather (the work columns).
    pub fn work_columns(&self) -> usize {
        self.work_columns
    }

    /// Sources still being merged.
    pub fn fan_in(&self) -> usize {
        self.cursors.len()
    }

    /// The next `max_rows` rows in key order (fewer at the end; `None` when done).
    pub fn next_chunk(&mut self, max_rows: usize) -> Result<Option<MergedChunk>> {
        if self.tree.winner_key() == EXHAUSTED {
            return Ok(None);
        }
        let mut chunk = MergedChunk::default();
        for c in &mut self.cursors {
            c.enter(&mut chunk);
        }
        chunk.indices.reserve(max_rows);
        chunk.keys.reserve(max_rows);
        while chunk.keys.len() < max_rows {
            let key = self.tree.winner_key();
            if key == EXHAUSTED {
                break;
            }
            let w = self.tree.winner();
            let c = &mut self.cursors[w];
            chunk.indices.push((c.slot, c.pos));
            chunk.keys.push(key);
            c.pos += 1;
            let next = match c.keys.get(c.pos) {
                Some(&k) => k,
                None => c.next_batch(&mut chunk)?,
            };
            self.tree.replace_winner(next);
        }
        Ok(Some(chunk))
    }
}

/// Gather a chunk's work columns.
pub fn gather_chunk(chunk: &MergedChunk, columns: usize) -> Result<Vec<ArrayRef>> {
    gather(&chunk.sources, columns, &chunk.indices)
}

/// Merge `sources` into one new spilled segment, `rows_per_batch` rows per IPC batch. The
/// merge of the next batch overlaps the gather and write of the current one.
pub fn merge_into_spill(
    sources: Vec<Source>,
    plan: &SourcePlan,
    space: &Arc<TempSpace>,
    rows_per_batch: usize,
) -> Result<Source> {
    let mut merger = Merger::new(sources, &plan.work_schema)?;
    let mut writer = SpillWriter::create(space, &plan.work_schema)?;
    writer.begin_segment();
    let columns = merger.work_columns();
    let mut pending = merger.next_chunk(rows_per_batch)?;
    while let Some(mut chunk) = pending {
        let releases = chunk.take_releases();
        let (next, written) = rayon::join(
            || merger.next_chunk(rows_per_batch),
            || -> Result<()> {
                let cols = gather_chunk(&chunk, columns)?;
                writer.write(cols, &chunk.keys)
            },
        );
        written?;
        drop(chunk);
        release_all(&releases);
        pending = next?;
    }
    drop(merger);
    let run = Arc::new(MappedRun::open(writer.finish()?, &plan.work_schema)?);
    let seg = run.segments().first().copied().unwrap_or(Segment {
        first: 0,
        batches: 0,
        rows: 0,
    });
    Ok(Source::Segment(run, seg))
}

/// Step 1: while more than `fan_in` spilled segments remain, merge the smallest ones into
/// one (smallest first, as in Huffman coding, minimises the rows rewritten). Returns the
/// sources and the merge depth reached (0 if nothing was merged ahead of the final merge).
pub fn reduce_sources(
    sources: Vec<Source>,
    fan_in: usize,
    plan: &SourcePlan,
    space: &Arc<TempSpace>,
    rows_per_batch: usize,
) -> Result<(Vec<Source>, u32)> {
    let fan_in = fan_in.max(2);
    let (spilled, memory): (Vec<Source>, Vec<Source>) = sources
        .into_iter()
        .partition(|s| matches!(s, Source::Segment(..)));
    // (source, merge depth of its rows)
    let mut spilled: Vec<(Source, u32)> = spilled.into_iter().map(|s| (s, 0)).collect();
    while spilled.len() > fan_in {
        spilled.sort_by_key(|(s, _)| s.rows());
        // Merge just enough of the smallest segments to reach the fan-in.
        let take = (spilled.len() - fan_in + 1).clamp(2, fan_in);
        let rest = spilled.split_off(take);
        let depth = spilled.iter().map(|(_, d)| d + 1).max().unwrap_or(1);
        let group = spilled.into_iter().map(|(s, _)| s).collect();
        let merged = merge_into_spill(group, plan, space, rows_per_batch)?;
        spilled = std::iter::once((merged, depth)).chain(rest).collect();
    }
    let depth = spilled.iter().map(|(_, d)| *d).max().unwrap_or(0);
    let sources = spilled.into_iter().map(|(s, _)| s).chain(memory).collect();
    Ok((sources, depth))
}
