//! Criterion benches of the sort engine's hot kernels, on generated in-memory data (no
//! files, no parquet): what each costs per row, in isolation.
//!
//! 1. `sort_key_parse`: RFC 3339 strings to UTC micros (`key::times`), canonical `…Z`
//!    strings (the platform's form, the fast path) and strings with offsets (the general
//!    parser), 64 Ki rows; and back (`keytext`): canonical text from sorted times.
//! 2. `sort_radix`: a merge window's 128 Ki entries (time, tie, payload) sorted by the
//!    stable radix sort plus the tie fix-up (`radix`), against `sort_unstable_by_key` on
//!    the packed 128-bit key; and a decoded chunk's 64 Ki `(time, row)` pairs.
//! 3. `sort_merge`: the windowed merge (`Merger::next_chunk`) of 256 sorted chunks of 4 Ki
//!    rows, alone and with the scatter gather (`gather_chunk`) of four columns (i64,
//!    27-byte string, u32 codes, bool) into 64 Ki-row row groups.
//! 4. `sort_digest`: the multiset digest (`sluice_storage::digest`) of 64 Ki rows shaped
//!    like the traffic output (two `i64`, dictionary strings, the 27-byte `ts_utc`, `f64`,
//!    `bool`), all seven columns and each alone: both sides of a sort's validation pay it.
//!
//! `cargo bench -p sluice-benches --bench sort_kernels` (about a minute). End-to-end
//! numbers against DuckDB, Polars and the copy floor are `sluice bench sort`.
//!
//! ```text
//!  strings ─► key::times ─► pack ─► radix sort (chunk) ─► chunks ─► Merger ─► gather
//!    (1)                              (2)                            (3)
//! ```

use std::sync::Arc;
use std::time::Duration;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, DictionaryArray, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sluice_benches::rng::SplitMix;
use sluice_sort::key::{pack, times};
use sluice_sort::keytext::TsFormatter;
use sluice_sort::merge::{gather_chunk, Entry, Merger, Source};
use sluice_sort::radix::{sort_by_u64, sort_ties};
use sluice_sort::read::Chunk;
use sluice_storage::timefmt::format_rfc3339_micros;

/// 2026-01-01T00:00:00Z in micros: the generated times spread over the following day.
const DAY0: i64 = 1_767_225_600_000_000;
const DAY: u64 = 86_400_000_000;

/// `n` times within one day, at 10 ms resolution (so there are ties, as in engine outputs).
fn random_times(rng: &mut SplitMix, n: usize) -> Vec<i64> {
    (0..n)
        .map(|_| DAY0 + ((rng.next_u64() % DAY) / 10_000 * 10_000) as i64)
        .collect()
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

fn key_parse(c: &mut Criterion) {
    const N: usize = 64 * 1024;
    let mut rng = SplitMix(1);
    let t = random_times(&mut rng, N);
    let canonical: ArrayRef = Arc::new(StringArray::from_iter_values(
        t.iter().map(|&m| format_rfc3339_micros(m)),
    ));
    // The same instants written with a +02:00 offset and milliseconds only.
    let offset: ArrayRef = Arc::new(StringArray::from_iter_values(t.iter().map(|&m| {
        let s = format_rfc3339_micros(m + 7_200_000_000);
        format!("{}+02:00", &s[..23])
    })));
    let mut g = c.benchmark_group("sort_key_parse");
    g.throughput(Throughput::Elements(N as u64));
    for (label, array) in [("canonical_z", &canonical), ("offset", &offset)] {
        g.bench_function(label, |b| {
            b.iter(|| times(array).map(|v| v.len()).unwrap_or(0))
        });
    }
    // The way back (keytext): canonical text regenerated from sorted times, as the
    // merge's output rows are.
    let mut sorted = t.clone();
    sorted.sort_unstable();
    g.bench_function("format_sorted/keytext", |b| {
        b.iter(|| {
            let mut f = TsFormatter::default();
            let mut x = 0u8;
            for &m in &sorted {
                x ^= f.utc(m)[25];
            }
            x
        })
    });
    g.bench_function("format_sorted/timefmt", |b| {
        b.iter(|| {
            sorted
                .iter()
                .map(|&m| format_rfc3339_micros(m).len())
                .sum::<usize>()
        })
    });
    g.finish();
}

fn radix(c: &mut Criterion) {
    const WINDOW: usize = 128 * 1024;
    const CHUNK: usize = 64 * 1024;
    let mut rng = SplitMix(2);
    // A merge window: times within a few minutes (the merge's windows are narrow), the
    // tie half and payload as the merge makes them.
    let window: Vec<Entry> = (0..WINDOW)
        .map(|i| {
            let k = pack(
                DAY0 + (rng.next_u64() % 300_000_000) as i64,
                (i % 40) as u32,
                i as u64,
            );
            Entry {
                time: (k >> 64) as u64,
                tie: k as u64,
                payload: i as u64,
            }
        })
        .collect();
    let chunk: Vec<(u64, u32)> = random_times(&mut rng, CHUNK)
        .into_iter()
        .enumerate()
        .map(|(i, t)| ((pack(t, 0, 0) >> 64) as u64, i as u32))
        .collect();
    let mut g = c.benchmark_group("sort_radix");
    g.throughput(Throughput::Elements(WINDOW as u64));
    let mut scratch = Vec::new();
    g.bench_function("window_128k/radix", |b| {
        b.iter_batched_ref(
            || window.clone(),
            |v| {
                sort_by_u64(v, &mut scratch, |e| e.time);
                sort_ties(v, |e| e.time, |e| e.tie);
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("window_128k/sort_unstable", |b| {
        b.iter_batched_ref(
            || window.clone(),
            |v| v.sort_unstable_by_key(Entry::key),
            BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Elements(CHUNK as u64));
    let mut scratch = Vec::new();
    g.bench_function("chunk_64k/radix", |b| {
        b.iter_batched_ref(
            || chunk.clone(),
            |v| sort_by_u64(v, &mut scratch, |x| x.0),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// `chunks` sorted in-memory chunks of `rows` rows each, with four columns.
fn sources(chunks: usize, rows: usize) -> (Vec<Chunk>, Arc<Schema>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("amount", DataType::Int64, false),
        Field::new("ts_utc", DataType::Utf8, false),
        Field::new("code", DataType::UInt32, false),
        Field::new("flag", DataType::Boolean, false),
    ]));
    let mut rng = SplitMix(3);
    let out = (0..chunks)
        .map(|f| {
            let mut t = random_times(&mut rng, rows);
            t.sort_unstable();
            let keys: Vec<u128> = t
                .iter()
                .enumerate()
                .map(|(r, &m)| pack(m, f as u32, r as u64))
                .collect();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from_iter_values(
                    (0..rows).map(|_| rng.next_u64() as i64 % 1_000_000),
                )),
                Arc::new(StringArray::from_iter_values(
                    t.iter().map(|&m| format_rfc3339_micros(m)),
                )),
                Arc::new(UInt32Array::from_iter_values(
                    (0..rows).map(|_| (rng.next_u64() % 64) as u32),
                )),
                Arc::new(BooleanArray::from_iter(
                    (0..rows).map(|_| Some(rng.next_u64().is_multiple_of(2))),
                )),
            ];
            let batch = RecordBatch::try_new(schema.clone(), columns).expect("bench batch");
            Chunk { batch, keys }
        })
        .collect();
    (out, schema)
}

/// Drain a merger in `row_group`-row chunks; the rows it produced.
fn merge_rows(mut m: Merger, row_group: usize) -> usize {
    let mut rows = 0;
    while let Some(chunk) = m.next_chunk(row_group).expect("merge") {
        rows += chunk.rows();
    }
    rows
}

fn merge(c: &mut Criterion) {
    const CHUNKS: usize = 256;
    const ROWS: usize = 4 * 1024;
    const ROW_GROUP: usize = 64 * 1024;
    let (chunks, schema) = sources(CHUNKS, ROWS);
    let make = || -> Vec<Source> {
        chunks
            .iter()
            .map(|c| {
                Source::Chunk(Chunk {
                    batch: c.batch.clone(),
                    keys: c.keys.clone(),
                })
            })
            .collect()
    };
    let mut g = c.benchmark_group("sort_merge");
    g.throughput(Throughput::Elements((CHUNKS * ROWS) as u64));
    g.bench_function("256x4k/merge", |b| {
        b.iter_batched(
            make,
            |s| merge_rows(Merger::new(s, &schema, ROW_GROUP), ROW_GROUP),
            BatchSize::LargeInput,
        )
    });
    // The merge window is independent of the row-group size (output bytes do not depend
    // on it); these variants size it against the caches.
    for window in [8 * 1024, 16 * 1024, 32 * 1024, 128 * 1024] {
        g.bench_function(format!("256x4k/merge_window_{}k", window / 1024), |b| {
            b.iter_batched(
                make,
                |s| merge_rows(Merger::new(s, &schema, window), ROW_GROUP),
                BatchSize::LargeInput,
            )
        });
    }
    g.bench_function("256x4k/merge_gather_4_columns", |b| {
        b.iter_batched(
            make,
            |s| {
                let mut m = Merger::new(s, &schema, ROW_GROUP);
                let mut rows = 0;
                while let Some(chunk) = m.next_chunk(ROW_GROUP).expect("merge") {
                    let cols = gather_chunk(&chunk, m.work_columns(), false).expect("gather");
                    rows += cols[0].len();
                }
                rows
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// A decoded chunk shaped like the traffic output: two `i64`, a dictionary string, the
/// 27-byte `ts_utc`, an `f64`, a `bool`, a nullable dictionary string.
fn traffic_batch(n: usize) -> RecordBatch {
    let mut rng = SplitMix(4);
    let t = random_times(&mut rng, n);
    let types = ["AUTH_REQUEST", "AUTH_RESPONSE", "CAPTURE", "REFUND"];
    let dict = |keys: Vec<Option<i32>>, values: &[&str]| -> ArrayRef {
        Arc::new(
            DictionaryArray::<Int32Type>::try_new(
                Int32Array::from(keys),
                Arc::new(StringArray::from(values.to_vec())),
            )
            .expect("valid dictionary"),
        )
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "flow_id",
            Arc::new(Int64Array::from_iter_values(
                (0..n).map(|_| rng.next_u64() as i64 >> 20),
            )),
        ),
        (
            "event_seq",
            Arc::new(Int64Array::from_iter_values((0..n).map(|i| (i % 7) as i64))),
        ),
        (
            "event_type",
            dict((0..n).map(|i| Some((i % 4) as i32)).collect(), &types),
        ),
        (
            "ts_utc",
            Arc::new(StringArray::from_iter_values(
                t.iter().map(|&m| format_rfc3339_micros(m)),
            )),
        ),
        (
            "amount",
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|_| (rng.next_u64() % 100_000) as f64 / 100.0),
            )),
        ),
        (
            "fraud_flag",
            Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(i % 97 == 0)))),
        ),
        (
            "campaign_id",
            dict(
                (0..n)
                    .map(|i| (i % 50 == 0).then_some((i % 3) as i32))
                    .collect(),
                &["c1", "c2", "c3"],
            ),
        ),
    ];
    RecordBatch::try_from_iter(columns).expect("valid batch")
}

fn digest(c: &mut Criterion) {
    const N: usize = 64 * 1024;
    let batch = traffic_batch(N);
    let mut g = c.benchmark_group("sort_digest");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("traffic_7_columns", |b| {
        b.iter(|| sluice_storage::digest::digest_batch(&batch).map(|d| d.row_count))
    });
    for i in 0..batch.num_columns() {
        let one = batch.project(&[i]).expect("column");
        g.bench_function(format!("column/{}", batch.schema().field(i).name()), |b| {
            b.iter(|| sluice_storage::digest::digest_batch(&one).map(|d| d.row_count))
        });
    }
    g.finish();
}

criterion_group! {
    name = kernels;
    config = config();
    targets = key_parse, radix, merge, digest
}
criterion_main!(kernels);
