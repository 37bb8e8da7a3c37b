//! One sorted source in the merge: the batches loaded so far and the position in them.
//!
//! In-memory chunks are one batch. Spilled segments read batch after batch from their file
//! as the merge reaches them; a batch's memory goes when the cursor and every piece taken
//! from it are done with it.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::RecordBatch;

use super::gather::Piece;
use super::Source;
use crate::error::Result;
use crate::spill::file::SpillReader;

/// What a cursor knows, without reading, of the key some rows ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ahead {
    Key(u128),
    /// Fewer rows than that remain.
    Exhausted,
    /// Not loaded yet; the key is at least this one (the last loaded).
    AtLeast(u128),
}

/// A loaded batch and its keys.
struct Loaded {
    batch: RecordBatch,
    keys: Vec<u128>,
}

/// Batches still to load.
enum Feed {
    None,
    Spilled {
        run: Arc<SpillReader>,
        next: usize,
        end: usize,
    },
}

/// One source's position.
pub struct Cursor {
    loaded: VecDeque<Loaded>,
    /// Rows of `loaded.front()` already taken.
    front_pos: usize,
    /// Loaded rows not yet taken.
    loaded_rows: usize,
    feed: Feed,
}

/// The keys of a spilled batch (its last two columns).
fn spilled_keys(batch: &RecordBatch) -> Vec<u128> {
    let n = batch.num_columns();
    let hi = batch.column(n - 2).as_primitive::<UInt64Type>().values();
    let lo = batch.column(n - 1).as_primitive::<UInt64Type>().values();
    hi.iter()
        .zip(lo.iter())
        .map(|(&h, &l)| ((h as u128) << 64) | l as u128)
        .collect()
}

/// Keys of sorted `keys` below `x`, by galloping from the front: a window takes about
/// `window / sources` rows from each source, so the answer is usually a short prefix, and
/// probing 1, 2, 4, ... keys ahead touches only the few cache lines the merge is about to
/// read anyway (a plain binary search over a 64 Ki-key chunk misses the cache at nearly
/// every step, once per source per bound tried).
fn count_below_in(keys: &[u128], x: u128) -> usize {
    match keys.first() {
        Some(&k) if k < x => {}
        _ => return 0,
    }
    // Invariant: keys[lo] < x.
    let (mut lo, mut step) = (0usize, 1usize);
    loop {
        let probe = lo + step;
        if probe >= keys.len() {
            return lo + 1 + keys[lo + 1..].partition_point(|&k| k < x);
        }
        if keys[probe] < x {
            lo = probe;
            step *= 2;
        } else {
            return lo + 1 + keys[lo + 1..probe].partition_point(|&k| k < x);
        }
    }
}

impl Cursor {
    pub fn open(source: Source) -> Cursor {
        let mut c = Cursor {
            loaded: VecDeque::new(),
            front_pos: 0,
            loaded_rows: 0,
            feed: Feed::None,
        };
        match source {
            Source::Chunk(chunk) => {
                if chunk.rows() > 0 {
                    c.loaded_rows = chunk.rows();
                    c.loaded.push_back(Loaded {
                        batch: chunk.batch,
                        keys: chunk.keys,
                    });
                }
            }
            Source::Segment(run, seg) => {
                c.feed = Feed::Spilled {
                    run,
                    next: seg.first,
                    end: seg.first + seg.batches,
                };
            }
        }
        c
    }

    /// Load the next batch; `false` when there is none.
    pub(super) fn load_one(&mut self) -> Result<bool> {
        let Feed::Spilled { run, next, end } = &mut self.feed else {
            return Ok(false);
        };
        while *next < *end {
            let i = *next;
            *next += 1;
            let batch = run.batch(i)?;
            if batch.num_rows() == 0 {
                continue;
            }
            let keys = spilled_keys(&batch);
            self.loaded_rows += keys.len();
            self.loaded.push_back(Loaded { batch, keys });
            return Ok(true);
        }
        self.feed = Feed::None;
        Ok(false)
    }

    /// Rows loaded and not yet taken.
    pub fn loaded_rows(&self) -> usize {
        self.loaded_rows
    }

    /// Whether rows remain (loading the next batch if needed).
    pub fn has_rows(&mut self) -> Result<bool> {
        Ok(self.loaded_rows > 0 || self.load_one()?)
    }

    /// The key `ahead` rows past the current position if it is loaded already; otherwise
    /// what is known without reading: [`Ahead::Exhausted`] when no more rows exist,
    /// [`Ahead::AtLeast`] with the last loaded key (the key `ahead` rows on is no smaller).
    pub fn key_ahead_loaded(&self, ahead: usize) -> Ahead {
        if self.loaded_rows > ahead {
            let mut a = ahead + self.front_pos;
            for l in &self.loaded {
                if a < l.keys.len() {
                    return Ahead::Key(l.keys[a]);
                }
                a -= l.keys.len();
            }
        }
        match (&self.feed, self.loaded.back().and_then(|l| l.keys.last())) {
            (Feed::None, _) => Ahead::Exhausted,
            (Feed::Spilled { .. }, Some(&last)) => Ahead::AtLeast(last),
            (Feed::Spilled { .. }, None) => Ahead::AtLeast(0),
        }
    }

    /// How many remaining keys are below `x`, counting no further than `cap` (the result
    /// is `min(count, cap)`; batches are loaded only as far as needed).
    pub fn count_below(&mut self, x: u128, cap: usize) -> Result<usize> {
        let mut count = 0usize;
        let mut idx = 0usize;
        let mut start = self.front_pos;
        loop {
            if idx == self.loaded.len() && (count >= cap || !self.load_one()?) {
                break;
            }
            let keys = &self.loaded[idx].keys[start..];
            let n = count_below_in(keys, x);
            count += n;
            if n < keys.len() || count >= cap {
                break;
            }
            idx += 1;
            start = 0;
        }
        Ok(count.min(cap))
    }

    /// Take the next `n` rows: append one piece per batch touched (ids from `base` on), and
    /// each row's key with `piece id << OFFSET_BITS | row within the piece` to `entries`.
    pub fn take(
        &mut self,
        mut n: usize,
        base: u64,
        pieces: &mut Vec<Piece>,
        entries: &mut Vec<super::Entry>,
    ) -> Result<()> {
        while n > 0 {
            if self.loaded.is_empty() && !self.load_one()? {
                break;
            }
            let Some(front) = self.loaded.front() else {
                break;
            };
            let len = (front.keys.len() - self.front_pos).min(n);
            let piece = base + pieces.len() as u64;
            entries.extend(
                front.keys[self.front_pos..self.front_pos + len]
                    .iter()
                    .enumerate()
                    .map(|(j, &k)| super::Entry {
                        time: (k >> 64) as u64,
                        tie: k as u64,
                        payload: (piece << super::OFFSET_BITS) | j as u64,
                    }),
            );
            pieces.push(Piece {
                batch: front.batch.clone(),
                start: self.front_pos,
                len,
            });
            self.front_pos += len;
            self.loaded_rows -= len;
            n -= len;
            if self.front_pos == front.keys.len() {
                self.loaded.pop_front();
                self.front_pos = 0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::count_below_in;

    #[test]
    fn galloping_count_equals_partition_point() {
        let mut seed = 5u64;
        for n in [0usize, 1, 2, 3, 7, 64, 1000] {
            let mut keys: Vec<u128> = (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 50) as u128
                })
                .collect();
            keys.sort_unstable();
            for x in [0u128, 1, 5, 100, 1 << 13, 1 << 14, u128::MAX] {
                let want = keys.partition_point(|&k| k < x);
                assert_eq!(count_below_in(&keys, x), want, "n {n} x {x}");
            }
            for &k in &keys {
                assert_eq!(count_below_in(&keys, k), keys.partition_point(|&y| y < k));
                assert_eq!(
                    count_below_in(&keys, k + 1),
                    keys.partition_point(|&y| y <= k)
                );
            }
        }
    }
}
