//! Phase 2: merging the sorted sources into one ordered stream of rows.
//!
//! Sources are sorted chunks still in memory and sorted segments of spill files, often
//! hundreds of them. A loser tree over that many sources costs `log2(k)` dependent,
//! unpredictable comparisons per row (measured ~90 ns/row at k = 305 on the 2-core VM, more
//! than sorting all keys outright), so the merge works in **windows** instead:
//!
//! 1. While there are more spilled segments than the fan-in allows (memory for about one
//!    batch each), merge the smallest into one new spilled segment (a merge level).
//! 2. Pick a key bound `x` so that the rows below it, over all sources, number between
//!    half and twice the window size: start from the smallest of the keys `w/k` rows ahead
//!    in each source (each source then contributes at most `w/k`), double while the window
//!    is too small, bisect if it overshoots. Every count is a binary search per source.
//! 3. Take from every source its rows below `x`: one contiguous slice each (a [`Piece`]).
//!    Sort the window's keys (16 bytes plus a row reference, in cache).
//! 4. Cut the sorted stream into chunks of exactly `n` rows (`n` = `--row-group-rows` for
//!    the view, so row-group boundaries depend only on the data). A chunk is gathered
//!    column by column, each source slice read sequentially and scattered into the output
//!    ([`gather`]).
//!
//! ```text
//!  sources (sorted)           window: rows < x                sorted stream     chunks
//!  chunk  ▕▔▔▔▔▔|▁▁▁▁▁▁▁▁▁▁▏      piece ─┐                         ┌─ n rows ─► gather ─► sink
//!  chunk  ▕▔▔|▁▁▁▁▁▁▁▁▁▁▁▁▁▏      piece ─┼─► sort keys ─► ……………… ─┼─ n rows ─► gather ─► sink
//!  spilled▕▔▔▔▔▔▔▔|▁▁▁▁▁▁▁▁▏ mmap piece ─┘                         └─ …
//!              x
//! ```
//!
//! A spilled batch is read when its source needs it and freed when the cursor and every
//! piece taken from it are done with it: about [`crate::runs::BATCHES_PER_SOURCE`] batches
//! per spilled source at a time.

pub mod cursor;
pub mod gather;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_schema::Schema;
use rayon::prelude::*;

use crate::error::{Result, SortError};
use crate::keytext::carries_text;
use crate::plan::SourcePlan;
use crate::read::Chunk;
use crate::runs::Run;
use crate::spill::file::{Segment, SpillReader, SpillWriter};
use crate::spill::TempSpace;
use cursor::{Ahead, Cursor};
pub use gather::Piece;

/// The key no row has (above every packed key): "take everything".
const ALL: u128 = u128::MAX;

/// One merged row: its key (time half and tie-break half) and `piece id << OFFSET_BITS |
/// row in piece`.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub time: u64,
    pub tie: u64,
    pub payload: u64,
}

impl Entry {
    /// The packed key.
    pub fn key(&self) -> u128 {
        ((self.time as u128) << 64) | self.tie as u128
    }
}

/// Target rows of a final-merge window. Independent of the row-group size (the output
/// depends only on the keys): small enough that a window's entries and the radix sort's
/// scratch (24 bytes each, up to twice this many rows) stay in a core's L2 cache, large
/// enough that choosing the bound (binary searches in every source) stays a small share.
/// Measured with `cargo bench --bench sort_kernels` (256 sources, loaded 2-core VM): 29
/// ns/row at 32 Ki, 36-38 at 16 Ki and 64 Ki, 38 at 128 Ki (the former default, the row
/// group), 41 at 8 Ki; a busier run: 32-36 at 16-32 Ki, 67-68 at 64-128 Ki.
pub const WINDOW_ROWS: usize = 32 * 1024;

/// Bits of a row's position within its piece in a window entry's payload.
const OFFSET_BITS: u32 = 24;

/// One sorted input of a merge.
#[derive(Debug)]
pub enum Source {
    /// A sorted chunk in memory.
    Chunk(Chunk),
    /// A sorted segment of a spill file.
    Segment(Arc<SpillReader>, Segment),
}

impl Source {
    /// Rows in the source.
    pub fn rows(&self) -> u64 {
        match self {
            Source::Chunk(c) => c.rows() as u64,
            Source::Segment(_, s) => s.rows,
        }
    }

    /// Whether its batches carry the key text after `work_columns` work columns
    /// ([`crate::keytext`]).
    pub fn carries_text(&self, work_columns: usize) -> bool {
        match self {
            Source::Chunk(c) => carries_text(c.batch.schema_ref(), work_columns),
            Source::Segment(r, _) => carries_text(r.work_schema(), work_columns),
        }
    }
}

/// Open spilled runs and list every merge source: one per in-memory chunk and one per
/// spilled segment.
pub fn sources(runs: Vec<Run>) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for run in runs {
        match run {
            Run::Memory(chunks) => out.extend(chunks.into_iter().map(Source::Chunk)),
            Run::Spilled(spill) => {
                let reader = Arc::new(SpillReader::open(spill)?);
                for seg in reader.segments().to_vec() {
                    out.push(Source::Segment(reader.clone(), seg));
                }
            }
        }
    }
    Ok(out)
}

/// `n` consecutive rows of the merged stream, ready to gather.
#[derive(Debug, Default)]
pub struct MergedChunk {
    /// The source slices the rows come from.
    pub pieces: Vec<Piece>,
    /// Output position of every piece row (pieces concatenated in order).
    pub out_pos: Vec<u32>,
    /// Key of each row, in output order.
    pub keys: Vec<u128>,
}

impl MergedChunk {
    /// Rows in the chunk.
    pub fn rows(&self) -> usize {
        self.keys.len()
    }
}

/// Gather the first `columns` columns of a chunk, columns in parallel; with `key_text`,
/// one more: the key's text, copied from pieces that carry it, regenerated from the keys
/// elsewhere ([`crate::keytext`]).
pub fn gather_chunk(chunk: &MergedChunk, columns: usize, key_text: bool) -> Result<Vec<ArrayRef>> {
    if chunk.out_pos.len() != chunk.rows() {
        return Err(SortError::Internal("merged chunk positions".into()));
    }
    let positions = gather::Positions::new(&chunk.out_pos)?;
    (0..columns + usize::from(key_text))
        .into_par_iter()
        .map(|c| match c < columns {
            true => gather::gather_column(&chunk.pieces, c, positions),
            false => gather::gather_key_text(&chunk.pieces, columns, positions, &chunk.keys),
        })
        .collect()
}

/// A piece merged into the stream and not yet fully emitted.
struct Pending {
    piece: Piece,
    /// Rows of the piece already emitted.
    emitted: usize,
}

/// Merges sorted sources into chunks of rows in key order (module docs, steps 2-4).
pub struct Merger {
    cursors: Vec<Cursor>,
    /// Merged rows; those from `queue_pos` on are not yet emitted.
    queue: Vec<Entry>,
    queue_pos: usize,
    /// Radix sort buffer, reused.
    scratch: Vec<Entry>,
    /// Pieces with rows in `queue`; the front has id `first_piece`.
    pieces: VecDeque<Pending>,
    first_piece: u64,
    work_columns: usize,
    window: usize,
}

impl Merger {
    /// Merge `sources` in windows of about `window` rows.
    pub fn new(sources: Vec<Source>, work_schema: &Schema, window: usize) -> Self {
        Merger {
            cursors: sources.into_iter().map(Cursor::open).collect(),
            queue: Vec::new(),
            queue_pos: 0,
            scratch: Vec::new(),
            pieces: VecDeque::new(),
            first_piece: 0,
            work_columns: work_schema.fields().len(),
            window: window.max(1),
        }
    }

    /// Columns to gather (the work columns).
    pub fn work_columns(&self) -> usize {
        self.work_columns
    }

    /// Rows the sources hold loaded and not yet taken (what the merge keeps in memory
    /// besides its queue).
    pub fn loaded_rows(&self) -> usize {
        self.cursors.iter().map(Cursor::loaded_rows).sum()
    }

    /// Sources being merged.
    pub fn fan_in(&self) -> usize {
        self.cursors.len()
    }

    /// Rows below `x` over the `active` cursors, counting no further than `cap`.
    fn count_all(&mut self, active: &[usize], x: u128, cap: usize) -> Result<usize> {
        let mut sum = 0;
        for &s in active {
            sum += self.cursors[s].count_below(x, cap - sum)?;
            if sum >= cap {
                break;
            }
        }
        Ok(sum)
    }

    /// Step 2: a bound whose window holds between `w / 2` and `2 w` rows (or all that is
    /// left when that is less).
    fn bound(&mut self, active: &[usize], w: usize) -> Result<u128> {
        let (low_enough, cap) = (w / 2, 2 * w + 1);
        let mut ahead = w.div_ceil(active.len()).max(1);
        let mut lo: u128 = 0;
        let mut unknown = BinaryHeap::new();
        loop {
            // The candidate: the smallest key `ahead` rows on over the sources. Sources
            // whose key that far is not loaded yet are read one batch at a time, always the
            // one whose last loaded key is smallest, and only while that key is below the
            // candidate so far (the window takes such rows anyway). Reading every source
            // `ahead` rows on would hold far more than the merge budget when one source is
            // much denser than the others (a merged segment among small ones needs `ahead`
            // in the thousands, for every source).
            let mut cand = ALL;
            unknown.clear();
            for &s in active {
                match self.cursors[s].key_ahead_loaded(ahead) {
                    Ahead::Key(k) => cand = cand.min(k),
                    Ahead::Exhausted => {}
                    Ahead::AtLeast(last) => unknown.push(Reverse((last, s))),
                }
            }
            while let Some(Reverse((last, s))) = unknown.pop() {
                if last >= cand {
                    break;
                }
                self.cursors[s].load_one()?;
                match self.cursors[s].key_ahead_loaded(ahead) {
                    Ahead::Key(k) => cand = cand.min(k),
                    Ahead::Exhausted => {}
                    Ahead::AtLeast(last) => unknown.push(Reverse((last, s))),
                }
            }
            let c = self.count_all(active, cand, cap)?;
            if c < cap && (c >= low_enough || cand == ALL) {
                return Ok(cand);
            }
            if c >= cap {
                // Overshoot: bisect between a bound that was too small and this one.
                let mut hi = cand;
                loop {
                    let mid = lo + (hi - lo) / 2;
                    if mid == lo {
                        return Ok(hi);
                    }
                    let c = self.count_all(active, mid, cap)?;
                    if c >= cap {
                        hi = mid;
                    } else if c >= low_enough {
                        return Ok(mid);
                    } else {
                        lo = mid;
                    }
                }
            }
            lo = cand;
            ahead = ahead.saturating_mul(2);
        }
    }

    /// Steps 2-3: merge one more window into the queue; `false` when the sources are done.
    fn window(&mut self) -> Result<bool> {
        let mut active = Vec::new();
        for (i, c) in self.cursors.iter_mut().enumerate() {
            if c.has_rows()? {
                active.push(i);
            }
        }
        if active.is_empty() {
            return Ok(false);
        }
        let x = self.bound(&active, self.window)?;
        let cap = 2 * self.window + 1;
        let base = self.first_piece + self.pieces.len() as u64;
        let mut pieces = Vec::new();
        let mut entries = Vec::with_capacity(2 * self.window);
        for &s in &active {
            let n = self.cursors[s].count_below(x, cap)?;
            self.cursors[s].take(n, base, &mut pieces, &mut entries)?;
        }
        if pieces.iter().any(|p| p.len >= 1 << OFFSET_BITS) {
            return Err(SortError::Internal("merge piece too large".into()));
        }
        // In-cache stable radix sort of the window on the time half, then equal times
        // ordered by the tie-break half (measured against comparison sorts and a heap merge
        // of the per-source slices in docs/sort.md).
        crate::radix::sort_by_u64(&mut entries, &mut self.scratch, |e| e.time);
        crate::radix::sort_ties(&mut entries, |e| e.time, |e| e.tie);
        if self.queue_pos == self.queue.len() {
            // Nothing pending: the window becomes the queue as is.
            self.queue = entries;
            self.queue_pos = 0;
        } else {
            self.queue.drain(..self.queue_pos);
            self.queue_pos = 0;
            self.queue.extend_from_slice(&entries);
        }
        self.pieces.extend(
            pieces
                .into_iter()
                .map(|piece| Pending { piece, emitted: 0 }),
        );
        Ok(true)
    }

    /// Step 4: the next `rows` merged rows (fewer at the end; `None` when done).
    pub fn next_chunk(&mut self, rows: usize) -> Result<Option<MergedChunk>> {
        while self.queue.len() - self.queue_pos < rows && self.window()? {}
        let n = rows.min(self.queue.len() - self.queue_pos);
        if n == 0 {
            return Ok(None);
        }
        let entries = &self.queue[self.queue_pos..self.queue_pos + n];
        self.queue_pos += n;
        // Local index of each piece touched (by id - first_piece), then its rows' positions.
        let mut local = vec![u32::MAX; self.pieces.len()];
        let mut touched: Vec<(usize, usize, usize)> = Vec::new(); // (deque index, start, count)
        for e in entries {
            let d = ((e.payload >> OFFSET_BITS) - self.first_piece) as usize;
            if local[d] == u32::MAX {
                local[d] = touched.len() as u32;
                touched.push((d, self.pieces[d].emitted, 0));
            }
            touched[local[d] as usize].2 += 1;
        }
        let mut base = Vec::with_capacity(touched.len());
        let mut total = 0usize;
        for t in &touched {
            base.push(total);
            total += t.2;
        }
        let mut out_pos = vec![0u32; total];
        for (i, e) in entries.iter().enumerate() {
            let d = ((e.payload >> OFFSET_BITS) - self.first_piece) as usize;
            let l = local[d] as usize;
            let row = (e.payload & ((1 << OFFSET_BITS) - 1)) as usize;
            out_pos[base[l] + row - touched[l].1] = i as u32;
        }
        let pieces = touched
            .iter()
            .map(|&(d, start, count)| {
                let p = &self.pieces[d].piece;
                Piece {
                    batch: p.batch.clone(),
                    start: p.start + start,
                    len: count,
                }
            })
            .collect();
        for &(d, _, count) in &touched {
            self.pieces[d].emitted += count;
        }
        while self
            .pieces
            .front()
            .is_some_and(|p| p.emitted == p.piece.len)
        {
            self.pieces.pop_front();
            self.first_piece += 1;
        }
        Ok(Some(MergedChunk {
            pieces,
            out_pos,
            keys: entries.iter().map(Entry::key).collect(),
        }))
    }
}

/// Merge `sources` into one new spilled segment, `rows_per_batch` rows per IPC batch. The
/// merge of the next batch overlaps the gather and write of the current one.
pub fn merge_into_spill(
    sources: Vec<Source>,
    plan: &SourcePlan,
    space: &Arc<TempSpace>,
    rows_per_batch: usize,
) -> Result<Source> {
    // The merged segment carries the key text if any of its sources does (the rows of
    // the others get theirs regenerated from the key).
    let columns = plan.work_schema.fields().len();
    let text = sources.iter().any(|s| s.carries_text(columns));
    let mut merger = Merger::new(sources, &plan.work_schema, rows_per_batch.max(4096));
    let schema = if text {
        &plan.text_schema
    } else {
        &plan.work_schema
    };
    let mut writer = SpillWriter::create(space, schema)?;
    writer.begin_segment();
    let mut pending = merger.next_chunk(rows_per_batch)?;
    while let Some(chunk) = pending {
        let (next, written) = rayon::join(
            || merger.next_chunk(rows_per_batch),
            || -> Result<()> {
                let cols = gather_chunk(&chunk, columns, text)?;
                writer.write(cols, &chunk.keys)
            },
        );
        written?;
        drop(chunk);
        pending = next?;
    }
    drop(merger);
    let run = Arc::new(SpillReader::open(writer.finish()?)?);
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

#[cfg(test)]
mod tests {
    use arrow_array::{Array, RecordBatch, UInt64Array};
    use arrow_schema::{DataType, Field};

    use super::*;

    /// A sorted chunk of the given keys, with the key's low half as its only column.
    fn chunk(mut keys: Vec<u128>) -> Source {
        keys.sort_unstable();
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::UInt64, false)]));
        let col = UInt64Array::from_iter_values(keys.iter().map(|&k| k as u64));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(col)]).unwrap();
        Source::Chunk(Chunk { batch, keys })
    }

    fn merge_all(sources: Vec<Source>, window: usize, rows: usize) -> Vec<u128> {
        let schema = Schema::new(vec![Field::new("v", DataType::UInt64, false)]);
        let mut m = Merger::new(sources, &schema, window);
        let mut out = Vec::new();
        while let Some(c) = m.next_chunk(rows).unwrap() {
            assert!(c.rows() == rows || out.len() + c.rows() > 0);
            let cols = gather_chunk(&c, 1, false).unwrap();
            let v = cols[0].as_any().downcast_ref::<UInt64Array>().unwrap();
            for (i, &k) in c.keys.iter().enumerate() {
                assert_eq!(v.value(i), k as u64, "gathered row matches its key");
            }
            out.extend(c.keys);
        }
        out
    }

    #[test]
    fn a_dense_source_among_sparse_ones_does_not_make_the_others_read_ahead() {
        // One spilled segment holding a row at every time 0..200k (a merged segment) and
        // 60 holding one row every 200 time units each, all in 64-row batches. A window of
        // 1024 rows spans ~1000 time units: the sparse sources take a row or five each,
        // so each needs about its current batch loaded. Choosing the window's bound used
        // to read every source as far ahead as the dense one (~400 rows, 7 batches each:
        // ~27k rows in all) instead.
        let d = tempfile::tempdir().unwrap();
        let space = Arc::new(TempSpace::create(d.path(), None).unwrap());
        let schema = Schema::new(vec![Field::new("v", DataType::UInt64, false)]);
        let mut w = SpillWriter::create(&space, &schema).unwrap();
        let mut all = Vec::new();
        let mut segment = |keys: Vec<u128>| {
            let v: Arc<dyn Array> = Arc::new(UInt64Array::from_iter_values(
                keys.iter().map(|&k| k as u64),
            ));
            let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![v]).unwrap();
            w.write_segment(&batch, &keys, 64).unwrap();
            all.extend(keys);
        };
        segment((0..200_000u128).map(|t| t << 64).collect());
        for s in 1..=60u128 {
            segment(
                (0..1000u128)
                    .map(|i| ((i * 200 + s) << 64) | (s << 32) | i)
                    .collect(),
            );
        }
        all.sort_unstable();
        let run = Arc::new(SpillReader::open(w.finish().unwrap()).unwrap());
        let sources: Vec<Source> = run
            .segments()
            .iter()
            .map(|&seg| Source::Segment(Arc::clone(&run), seg))
            .collect();
        let mut m = Merger::new(sources, &schema, 1024);
        let (mut out, mut peak) = (Vec::new(), 0);
        while let Some(c) = m.next_chunk(1024).unwrap() {
            peak = peak.max(m.loaded_rows());
            out.extend(c.keys);
        }
        assert_eq!(out, all);
        assert!(
            peak <= 61 * 64 * 2 + 4 * 1024,
            "{peak} rows loaded at once: sources read far ahead of the window"
        );
    }

    #[test]
    fn windows_merge_like_a_sort_for_any_shape() {
        let mut seed = 11u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 20
        };
        for round in 0..40 {
            let k = 1 + (next() % 40) as usize;
            let mut all = Vec::new();
            let mut sources = Vec::new();
            for s in 0..k {
                let n = match next() % 5 {
                    0 => 0,
                    1 => 1,
                    _ => (next() % 300) as usize,
                };
                // Round 0 mod 3: disjoint increasing ranges (already-sorted input);
                // otherwise heavily interleaved with many equal times.
                let keys: Vec<u128> = (0..n)
                    .map(|i| {
                        let time = if round % 3 == 0 {
                            (s * 1000 + i) as u128
                        } else {
                            (next() % 50) as u128
                        };
                        (time << 64) | ((s as u128) << 32) | i as u128
                    })
                    .collect();
                all.extend(keys.iter().copied());
                sources.push(chunk(keys));
            }
            all.sort_unstable();
            let window = 1 + (next() % 200) as usize;
            let rows = 1 + (next() % 150) as usize;
            assert_eq!(merge_all(sources, window, rows), all, "round {round}");
        }
    }
}
