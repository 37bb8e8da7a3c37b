//! A parquet dataset with a high-cardinality dictionary-encoded string column: the shape
//! that made sluice's sort quadratic before session 19 (docs/sort.md, "High-cardinality
//! dictionary columns"), for `sluice bench sort --input`.
//!
//! ```text
//! cargo run --release -p sluice-benches --example gen_user_ids -- OUT_DIR [FILES [ROWS [DISTINCT]]]
//! ```
//!
//! Writes `OUT_DIR/part-NNN.parquet`: FILES files (default 100) of ROWS rows (default
//! 100,000), one row group each, columns `ts_utc` (RFC 3339 string, random instants in
//! 30 days), `user_id` (DISTINCT ids per file, default 20,000, none shared between files:
//! the dataset holds FILES x DISTINCT ids, each file's dictionary page well under the
//! writer's 1 MiB limit so every chunk stays dictionary-only) and `amount` (f64). Seeded:
//! the same arguments give the same bytes.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sluice_benches::rng::SplitMix;
use sluice_storage::timefmt::{format_rfc3339_micros, parse_rfc3339_micros};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first().map(PathBuf::from) else {
        eprintln!("usage: gen_user_ids OUT_DIR [FILES [ROWS [DISTINCT]]]");
        std::process::exit(2);
    };
    let num = |i: usize, default: u64| -> u64 {
        args.get(i).map_or(default, |s| {
            s.parse().unwrap_or_else(|_| {
                eprintln!("not a number: {s}");
                std::process::exit(2)
            })
        })
    };
    let (files, rows, distinct) = (num(1, 100), num(2, 100_000), num(3, 20_000).max(1));
    std::fs::create_dir_all(&out).expect("create OUT_DIR");
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts_utc", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, false),
    ]));
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(rows.max(1) as usize))
        .build();
    let base = parse_rfc3339_micros("2026-01-01T00:00:00Z").expect("base instant");
    let span = 30 * 86_400 * 1_000_000u64;
    let mut rng = SplitMix(7);
    for f in 0..files {
        let mut ts = Vec::with_capacity(rows as usize);
        let mut ids = Vec::with_capacity(rows as usize);
        let mut amounts = Vec::with_capacity(rows as usize);
        for _ in 0..rows {
            ts.push(format_rfc3339_micros(base + (rng.next_u64() % span) as i64));
            ids.push(format!(
                "user-{f:04}-{:08}-abcdefghij",
                rng.next_u64() % distinct
            ));
            amounts.push((rng.next_u64() % 10_000_000) as f64 / 100.0);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(ts)),
            Arc::new(StringArray::from(ids)),
            Arc::new(Float64Array::from(amounts)),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
        let path = out.join(format!("part-{f:03}.parquet"));
        let file = File::create(&path).expect("create part");
        let mut w =
            ArrowWriter::try_new(file, schema.clone(), Some(props.clone())).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
    }
    println!(
        "{} files x {rows} rows ({} distinct user ids) in {}",
        files,
        files * distinct,
        out.display()
    );
}
