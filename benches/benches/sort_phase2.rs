//! A measured question for the sort's design (docs/sort.md, "What is not done"): would
//! range partitioning beat the current chunk sort plus windowed merge and scatter gather?
//!
//! Both variants take the same input, decoded chunks of 64 Ki rows in file order (random
//! times over a day at 10 ms resolution, as in engine outputs; five work columns shaped
//! like the traffic output's: two `i64`, `u32` dictionary codes, `f64`, `bool`), and produce
//! the same rows in key order, cut into 128 Ki-row groups. Everything runs on one thread
//! (a one-thread rayon pool), so the numbers are CPU time per row.
//!
//! ```text
//!  current:   chunk ─► Chunk::sort (radix + take) ─► Merger (windows of 32 Ki) ─► gather_chunk
//!  partition: chunk ─► bucket of each row (splitters from a sample) ─► counting sort + take
//!             bucket ─► concat its slice of every chunk ─► radix sort + tie fix-up ─► take
//! ```
//!
//! The partition variant is a prototype: no spilling, no row-group carry-over between
//! buckets, splitters from a sample of all keys (a real sort would sample the first row
//! groups). `cargo bench -p sluice-benches --bench sort_phase2` (about a minute).
//!
//! Measured (session 18, 2-core VM, load ~1): current 461-468 ms for 6.3M rows; partition
//! with a binary search 500-515 ms, with the table 352-376 ms, with the table and the
//! scatter gather 397-400 ms (docs/sort.md, "What is not done").

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use arrow_select::concat::concat;
use arrow_select::take::take;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sluice_benches::rng::SplitMix;
use sluice_sort::key::pack;
use sluice_sort::merge::{gather_chunk, Entry, MergedChunk, Merger, Piece, Source, WINDOW_ROWS};
use sluice_sort::radix::{sort_by_u64, sort_ties};
use sluice_sort::read::Chunk;

const CHUNKS: usize = 96;
const CHUNK_ROWS: usize = 64 * 1024;
const ROW_GROUP: usize = 128 * 1024;

/// 2026-01-01T00:00:00Z in micros.
const DAY0: i64 = 1_767_225_600_000_000;
const DAY: u64 = 86_400_000_000;

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("flow_id", DataType::Int64, false),
        Field::new("event_seq", DataType::Int64, false),
        Field::new("event_type", DataType::UInt32, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("fraud_flag", DataType::Boolean, false),
    ]))
}

/// Unsorted decoded chunks: chunk `f` holds rows of file `f`, in row order.
fn chunks() -> Vec<Chunk> {
    let schema = schema();
    let mut rng = SplitMix(7);
    (0..CHUNKS)
        .map(|f| {
            let keys: Vec<u128> = (0..CHUNK_ROWS)
                .map(|r| {
                    let t = DAY0 + ((rng.next_u64() % DAY) / 10_000 * 10_000) as i64;
                    pack(t, f as u32, r as u64)
                })
                .collect();
            let n = CHUNK_ROWS;
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from_iter_values(
                    (0..n).map(|_| (rng.next_u64() % 1_000_000_000) as i64),
                )),
                Arc::new(Int64Array::from_iter_values(
                    (0..n).map(|_| (rng.next_u64() % 20) as i64),
                )),
                Arc::new(UInt32Array::from_iter_values(
                    (0..n).map(|_| (rng.next_u64() % 6) as u32),
                )),
                Arc::new(Float64Array::from_iter_values(
                    (0..n).map(|_| (rng.next_u64() % 100_000) as f64 / 100.0),
                )),
                Arc::new(BooleanArray::from_iter(
                    (0..n).map(|_| Some(rng.next_u64().is_multiple_of(50))),
                )),
            ];
            Chunk {
                batch: RecordBatch::try_new(schema.clone(), columns).expect("bench batch"),
                keys,
            }
        })
        .collect()
}

fn copy(c: &[Chunk]) -> Vec<Chunk> {
    c.iter()
        .map(|c| Chunk {
            batch: c.batch.clone(),
            keys: c.keys.clone(),
        })
        .collect()
}

/// The current design: sort each chunk, merge all in windows, gather 128 Ki-row groups.
/// Returns the keys in output order (for the equality check) and the rows gathered.
fn current(input: Vec<Chunk>) -> (Vec<u128>, usize) {
    let schema = schema();
    let sources: Vec<Source> = input
        .into_iter()
        .map(|c| Source::Chunk(c.sort().expect("chunk sort")))
        .collect();
    let mut m = Merger::new(sources, &schema, WINDOW_ROWS);
    let (mut keys, mut rows) = (Vec::new(), 0);
    while let Some(chunk) = m.next_chunk(ROW_GROUP).expect("merge") {
        let cols = gather_chunk(&chunk, m.work_columns(), false).expect("gather");
        rows += cols[0].len();
        keys.extend_from_slice(&chunk.keys);
    }
    (keys, rows)
}

/// Bucket boundaries: `buckets - 1` keys at the quantiles of every 64th key.
fn splitters(input: &[Chunk], buckets: usize) -> Vec<u128> {
    let mut sample: Vec<u128> = input
        .iter()
        .flat_map(|c| c.keys.iter().step_by(64).copied())
        .collect();
    sample.sort_unstable();
    (1..buckets)
        .map(|b| sample[b * sample.len() / buckets])
        .collect()
}

/// A chunk's rows grouped by bucket (stable), and where each bucket's rows start.
struct Partitioned {
    batch: RecordBatch,
    keys: Vec<u128>,
    starts: Vec<usize>,
}

/// Finds a key's bucket: a binary search over the splitters, or a table over the time's
/// high bits that gives the first candidate, then a short forward scan.
enum Finder<'a> {
    Search(&'a [u128]),
    Table {
        split: &'a [u128],
        min: u64,
        shift: u32,
        first: Vec<u32>,
    },
}

impl<'a> Finder<'a> {
    fn table(split: &'a [u128], min: u64, max: u64) -> Self {
        const SLOTS: usize = 1 << 16;
        let span = (max - min).max(1);
        let shift = (64 - span.leading_zeros()).saturating_sub(16);
        let first = (0..SLOTS)
            .map(|i| {
                let t = min + ((i as u64) << shift);
                split.partition_point(|s| ((s >> 64) as u64) < t) as u32
            })
            .collect();
        Finder::Table {
            split,
            min,
            shift,
            first,
        }
    }

    #[inline]
    fn bucket(&self, k: u128) -> u32 {
        match self {
            Finder::Search(split) => split.partition_point(|s| *s <= k) as u32,
            Finder::Table {
                split,
                min,
                shift,
                first,
            } => {
                let t = (k >> 64) as u64;
                let slot = ((t.saturating_sub(*min)) >> shift).min(first.len() as u64 - 1);
                let mut b = first[slot as usize] as usize;
                while b < split.len() && split[b] <= k {
                    b += 1;
                }
                b as u32
            }
        }
    }
}

fn partition_chunk(c: Chunk, split: &[u128], finder: &Finder<'_>) -> Partitioned {
    let buckets = split.len() + 1;
    let ids: Vec<u32> = c.keys.iter().map(|&k| finder.bucket(k)).collect();
    let mut starts = vec![0usize; buckets + 1];
    for &b in &ids {
        starts[b as usize + 1] += 1;
    }
    for b in 0..buckets {
        starts[b + 1] += starts[b];
    }
    let mut next = starts.clone();
    let mut perm = vec![0u32; ids.len()];
    for (row, &b) in ids.iter().enumerate() {
        perm[next[b as usize]] = row as u32;
        next[b as usize] += 1;
    }
    let keys = perm.iter().map(|&r| c.keys[r as usize]).collect();
    let idx = UInt32Array::from(perm);
    let columns = c
        .batch
        .columns()
        .iter()
        .map(|a| take(a.as_ref(), &idx, None).expect("take"))
        .collect();
    Partitioned {
        batch: RecordBatch::try_new(c.batch.schema(), columns).expect("batch"),
        keys,
        starts,
    }
}

/// `keys` in order as merge entries whose payload is the key's index, as the merge's
/// window sort orders them (radix sort on the time, then ties by the tie-break half).
fn sorted_entries(keys: &[u128], scratch: &mut Vec<Entry>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| Entry {
            time: (k >> 64) as u64,
            tie: k as u64,
            payload: i as u64,
        })
        .collect();
    sort_by_u64(&mut entries, scratch, |e| e.time);
    sort_ties(&mut entries, |e| e.time, |e| e.tie);
    entries
}

/// The prototype: partition each chunk by key range, then sort and gather each range.
fn partitioned(
    input: Vec<Chunk>,
    split: &[u128],
    finder: &Finder<'_>,
    scatter: bool,
) -> (Vec<u128>, usize) {
    let parts: Vec<Partitioned> = input
        .into_iter()
        .map(|c| partition_chunk(c, split, finder))
        .collect();
    let columns = parts[0].batch.num_columns();
    let (mut out_keys, mut rows) = (Vec::new(), 0);
    let mut scratch = Vec::new();
    for b in 0..=split.len() {
        let slices: Vec<(&Partitioned, usize, usize)> = parts
            .iter()
            .map(|p| (p, p.starts[b], p.starts[b + 1] - p.starts[b]))
            .filter(|s| s.2 > 0)
            .collect();
        let keys: Vec<u128> = slices
            .iter()
            .flat_map(|(p, s, n)| p.keys[*s..*s + *n].iter().copied())
            .collect();
        if scatter {
            // The bucket's slices are pieces: sort their keys, then the merge's scatter
            // gather reads each piece sequentially into its output positions.
            let entries = sorted_entries(&keys, &mut scratch);
            let mut out_pos = vec![0u32; entries.len()];
            for (i, e) in entries.iter().enumerate() {
                out_pos[e.payload as usize] = i as u32;
            }
            let chunk = MergedChunk {
                pieces: slices
                    .iter()
                    .map(|(p, s, n)| Piece {
                        batch: p.batch.clone(),
                        start: *s,
                        len: *n,
                    })
                    .collect(),
                out_pos,
                keys: entries.iter().map(Entry::key).collect(),
            };
            let cols = gather_chunk(&chunk, columns, false).expect("gather");
            rows += cols[0].len();
            out_keys.extend_from_slice(&chunk.keys);
            continue;
        }
        let cols: Vec<ArrayRef> = (0..columns)
            .map(|c| {
                let pieces: Vec<ArrayRef> = slices
                    .iter()
                    .map(|(p, s, n)| p.batch.column(c).slice(*s, *n))
                    .collect();
                let refs: Vec<&dyn arrow_array::Array> =
                    pieces.iter().map(|a| a.as_ref()).collect();
                concat(&refs).expect("concat")
            })
            .collect();
        let entries = sorted_entries(&keys, &mut scratch);
        let idx = UInt32Array::from_iter_values(entries.iter().map(|e| e.payload as u32));
        let sorted: Vec<ArrayRef> = cols
            .iter()
            .map(|a| take(a.as_ref(), &idx, None).expect("take"))
            .collect();
        rows += sorted[0].len();
        out_keys.extend(entries.iter().map(Entry::key));
    }
    (out_keys, rows)
}

fn phase2(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("one-thread pool");
    let input = chunks();
    let total = CHUNKS * CHUNK_ROWS;
    let split = splitters(&input, total.div_ceil(ROW_GROUP));
    // Same rows, same order.
    let (a, ra) = pool.install(|| current(copy(&input)));
    let search = Finder::Search(&split);
    let times = input
        .iter()
        .flat_map(|c| c.keys.iter().map(|k| (k >> 64) as u64));
    let (min, max) = times.fold((u64::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let table = Finder::table(&split, min, max);
    for (finder, scatter) in [(&search, false), (&table, false), (&table, true)] {
        let (b, rb) = pool.install(|| partitioned(copy(&input), &split, finder, scatter));
        assert_eq!((ra, rb), (total, total));
        assert!(a.is_sorted() && a == b, "the variants disagree");
    }

    let mut g = c.benchmark_group("sort_phase2");
    g.throughput(Throughput::Elements(total as u64));
    g.bench_function("current/chunk_sort_merge_gather", |bch| {
        bch.iter_batched(
            || copy(&input),
            |v| pool.install(|| current(v).1),
            BatchSize::PerIteration,
        )
    });
    let variants = [
        ("search_sort_take", &search, false),
        ("table_sort_take", &table, false),
        ("table_sort_scatter", &table, true),
    ];
    for (name, finder, scatter) in variants {
        g.bench_function(format!("prototype/partition_{name}"), |bch| {
            bch.iter_batched(
                || copy(&input),
                |v| pool.install(|| partitioned(v, &split, finder, scatter).1),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(8))
}

criterion_group! {
    name = benches;
    config = config();
    targets = phase2
}
criterion_main!(benches);
