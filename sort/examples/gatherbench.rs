//! Temporary microbenchmark: windowed merge + scatter gather from many sorted sources.
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use sluice_sort::merge::{gather_chunk, Merger, Source};
use sluice_sort::read::Chunk;
use std::sync::Arc;
use std::time::Instant;

fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s.rsplit_once(')').unwrap().1.split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

fn main() {
    let k: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(305);
    let n = 65536usize;
    let mut seed = 1u64;
    let mut rnd = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 20
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("s", DataType::Utf8, false),
    ]));
    let mut sources = Vec::new();
    for s in 0..k {
        let mut ks: Vec<u128> = (0..n)
            .map(|i| ((rnd() as u128) << 64) | ((s as u128) << 32) | i as u128)
            .collect();
        ks.sort_unstable();
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(
            ks.iter().map(|k| (*k >> 64) as i64),
        ));
        let st: ArrayRef =
            Arc::new(StringArray::from_iter_values(ks.iter().map(|k| {
                format!("2026-01-05T08:30:13.{:06}Z", (*k >> 64) as u64 % 1000000)
            })));
        sources.push(Source::Chunk(Chunk {
            batch: RecordBatch::try_new(schema.clone(), vec![a, st]).unwrap(),
            keys: ks,
        }));
    }
    let total = k * n;
    let mut merger = Merger::new(sources, &schema, 131072);
    let (mut tm, mut tg) = (0.0, 0.0);
    let (mut cm, mut cg) = (0.0, 0.0);
    let mut rows = 0;
    loop {
        let (t, c) = (Instant::now(), cpu());
        let Some(chunk) = merger.next_chunk(131072).unwrap() else {
            break;
        };
        tm += t.elapsed().as_secs_f64();
        cm += cpu() - c;
        let (t, c) = (Instant::now(), cpu());
        let cols = gather_chunk(&chunk, 2).unwrap();
        tg += t.elapsed().as_secs_f64();
        cg += cpu() - c;
        rows += cols[0].len();
    }
    assert_eq!(rows, total);
    println!("k={k} rows={total}: merge {:.1} ns/row wall {:.1} cpu; gather(2 cols) {:.1} wall {:.1} cpu",
        tm * 1e9 / total as f64, cm * 1e9 / total as f64, tg * 1e9 / total as f64, cg * 1e9 / total as f64);
}
