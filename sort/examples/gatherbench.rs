//! Temporary microbenchmark: merge + gather from many sorted sources.
use std::sync::Arc;
use std::time::Instant;
use arrow_array::{Array, ArrayRef, Int64Array, StringArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use sluice_sort::merge::loser_tree::{LoserTree, EXHAUSTED};

fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s.rsplit_once(')').unwrap().1.split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

fn main() {
    let k: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(305);
    let n = 65536usize;
    let mut seed = 1u64;
    let mut rnd = || { seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); seed >> 20 };
    let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false), Field::new("s", DataType::Utf8, false)]));
    let mut keys: Vec<Vec<u128>> = Vec::new();
    let mut batches = Vec::new();
    for s in 0..k {
        let mut ks: Vec<u128> = (0..n).map(|i| ((rnd() as u128) << 64) | ((s as u128) << 32) | i as u128).collect();
        ks.sort_unstable();
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(ks.iter().map(|k| (*k >> 64) as i64)));
        let st: ArrayRef = Arc::new(StringArray::from_iter_values(ks.iter().map(|k| format!("2026-01-05T08:30:13.{:06}Z", (*k >> 64) as u64 % 1000000))));
        batches.push(RecordBatch::try_new(schema.clone(), vec![a, st]).unwrap());
        keys.push(ks);
    }
    let total = k * n;
    {
        // reference: sort all keys
        let mut all: Vec<u128> = keys.concat();
        let (t, c0) = (Instant::now(), cpu());
        all.sort_unstable();
        println!("reference sort_unstable of {} u128: {:.1} ns/row wall, {:.1} cpu", all.len(), t.elapsed().as_secs_f64()*1e9/all.len() as f64, (cpu()-c0)*1e9/all.len() as f64);
        // heap merge
        let (t, c0) = (Instant::now(), cpu());
        let mut heap = std::collections::BinaryHeap::new();
        for (s, v) in keys.iter().enumerate() { heap.push(std::cmp::Reverse((v[0], s))); }
        let mut pos = vec![0usize; k]; let mut cnt = 0usize;
        while let Some(std::cmp::Reverse((_key, s))) = heap.pop() {
            cnt += 1; pos[s] += 1;
            if let Some(&nk) = keys[s].get(pos[s]) { heap.push(std::cmp::Reverse((nk, s))); }
        }
        println!("binary heap merge: {:.1} ns/row wall, {:.1} cpu ({cnt})", t.elapsed().as_secs_f64()*1e9/total as f64, (cpu()-c0)*1e9/total as f64);
        // loser tree without output
        let (t, c0) = (Instant::now(), cpu());
        let mut tree = LoserTree::new(keys.iter().map(|v| v[0]).collect());
        let mut pos = vec![0usize; k]; let mut cnt = 0u64;
        while tree.winner_key() != EXHAUSTED {
            let w = tree.winner(); pos[w] += 1; cnt += 1;
            tree.replace_winner(keys[w].get(pos[w]).copied().unwrap_or(EXHAUSTED));
        }
        println!("loser tree, no output: {:.1} ns/row wall, {:.1} cpu ({cnt})", t.elapsed().as_secs_f64()*1e9/total as f64, (cpu()-c0)*1e9/total as f64);
    }
    let t = Instant::now(); let c0 = cpu();
    let mut tree = LoserTree::new(keys.iter().map(|v| v[0]).collect());
    let mut pos = vec![0usize; k];
    let mut idx: Vec<(usize, usize)> = Vec::with_capacity(total);
    while tree.winner_key() != EXHAUSTED {
        let w = tree.winner();
        idx.push((w, pos[w]));
        pos[w] += 1;
        tree.replace_winner(keys[w].get(pos[w]).copied().unwrap_or(EXHAUSTED));
    }
    let merge = t.elapsed().as_secs_f64(); let c1 = cpu();
    let t = Instant::now();
    let mut sum = 0usize;
    for chunk in idx.chunks(131072) {
        for c in 0..2 {
            let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
            let out = arrow_select::interleave::interleave(&arrays, chunk).unwrap();
            sum += out.len();
        }
    }
    let gather = t.elapsed().as_secs_f64(); let c2 = cpu();
    println!("cpu: merge {:.1} ns/row gather {:.1} ns/row", (c1-c0)*1e9/total as f64, (c2-c1)*1e9/total as f64);
    println!("k={k} rows={total} merge {:.1} ns/row, gather {:.1} ns/row (2 cols) {sum}", merge * 1e9 / total as f64, gather * 1e9 / total as f64);
}
