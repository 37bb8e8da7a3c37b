//! Temporary: gather kernel comparisons, min of repeats.
use arrow_array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema};
use sluice_sort::merge::gather::{gather_column, Piece, Positions};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let k = 305usize;
    let per = 430usize;
    let src_rows = 65536usize;
    let mut seed = 7u64;
    let mut rnd = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 11
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int64, false),
        Field::new("u", DataType::UInt32, false),
        Field::new("s", DataType::Utf8, false),
        Field::new("b", DataType::Boolean, false),
    ]));
    let batches: Vec<RecordBatch> = (0..k)
        .map(|_| {
            let i: ArrayRef = Arc::new(Int64Array::from_iter_values(
                (0..src_rows).map(|x| x as i64),
            ));
            let u: ArrayRef = Arc::new(UInt32Array::from_iter_values(
                (0..src_rows).map(|x| x as u32 % 7),
            ));
            let s: ArrayRef = Arc::new(StringArray::from_iter_values(
                (0..src_rows).map(|x| format!("2026-01-05T08:30:13.{:06}Z", x)),
            ));
            let b: ArrayRef = Arc::new(BooleanArray::from_iter(
                (0..src_rows).map(|x| Some(x % 3 == 0)),
            ));
            RecordBatch::try_new(schema.clone(), vec![i, u, s, b]).unwrap()
        })
        .collect();
    let n = k * per;
    // pieces: each source contributes `per` rows from a random start
    let pieces: Vec<Piece> = batches
        .iter()
        .map(|b| Piece {
            batch: b.clone(),
            start: (rnd() as usize) % (src_rows - per),
            len: per,
            pages: None,
        })
        .collect();
    // output positions: random interleaving preserving per-piece order
    let mut owner: Vec<usize> = (0..n).map(|i| i / per).collect();
    for i in (1..n).rev() {
        let j = (rnd() as usize) % (i + 1);
        owner.swap(i, j);
    }
    let mut next = vec![0usize; k];
    let mut pos = vec![0u32; n];
    let mut idx = vec![(0usize, 0usize); n];
    for (o, &p) in owner.iter().enumerate() {
        pos[p * per + next[p]] = o as u32;
        idx[o] = (p, pieces[p].start + next[p]);
        next[p] += 1;
    }
    let positions = Positions::new(&pos).unwrap();
    for c in 0..4 {
        let (mut a, mut b) = (f64::MAX, f64::MAX);
        for _ in 0..20 {
            let t = Instant::now();
            let x = gather_column(&pieces, c, positions).unwrap();
            a = a.min(t.elapsed().as_secs_f64());
            drop(x);
            let arrays: Vec<&dyn Array> = batches.iter().map(|bb| bb.column(c).as_ref()).collect();
            let t = Instant::now();
            let y = arrow_select::interleave::interleave(&arrays, &idx).unwrap();
            b = b.min(t.elapsed().as_secs_f64());
            drop(y);
        }
        println!(
            "col {c}: scatter {:.2} ns/value, interleave {:.2}",
            a * 1e9 / n as f64,
            b * 1e9 / n as f64
        );
    }
}
