//! `sluice parity legacy`: a view against a reference file, row by row. A copy of the view
//! passes; a reference with two rows swapped fails naming the first differing row, its
//! column and both values; the platform's own DuckDB sort (when python3 has duckdb) passes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use serde_json::Value;
use sluice_tests::{output, sluice, stderr, stdout};

const TRAFFIC: &str = "s3_event_stream_with_fraud_6B";

fn view_of(d: &Path) -> (PathBuf, PathBuf) {
    let engine = d.join("engine");
    let mut gen = sluice!();
    gen.args(["gen", "--rows", "3000", "--files", "3", "--seed", "11"])
        .args(["--outputs", TRAFFIC, "--out"])
        .arg(&engine);
    assert!(output(gen).status.success());
    let mut sort = sluice!();
    sort.args(["sort", "--output-id", TRAFFIC, "--engine-root"])
        .arg(&engine);
    let o = output(sort);
    assert!(o.status.success(), "{}", stderr(&o));
    let view = engine
        .join("stream_view/ts_utc")
        .join(format!("output_id={TRAFFIC}"));
    (engine, view)
}

fn view_rows(view: &Path) -> Vec<RecordBatch> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(view)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    parts.sort();
    parts
        .iter()
        .flat_map(|p| {
            ParquetRecordBatchReaderBuilder::try_new(File::open(p).unwrap())
                .unwrap()
                .build()
                .unwrap()
                .map(Result::unwrap)
        })
        .collect()
}

fn write(path: &Path, batches: &[RecordBatch]) {
    let mut w =
        ArrowWriter::try_new(File::create(path).unwrap(), batches[0].schema(), None).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

fn legacy(view: &Path, reference: &Path) -> (Option<i32>, Value, String) {
    let mut c = sluice!();
    c.args(["--json", "parity", "legacy", "--view"])
        .arg(view)
        .arg("--reference")
        .arg(reference);
    let o = output(c);
    let v = serde_json::from_str(stdout(&o).trim()).unwrap_or(Value::Null);
    (o.status.code(), v, stderr(&o))
}

#[test]
fn a_copy_passes_and_a_swap_is_reported_at_its_first_row() {
    let d = tempfile::tempdir().unwrap();
    let (_, view) = view_of(d.path());
    let batches = view_rows(&view);
    let same = d.path().join("same.parquet");
    write(&same, &batches);
    let (code, v, err) = legacy(&view, &same);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["view_rows"].as_u64(), Some(3000));
    assert_eq!(v["reference_rows"].as_u64(), Some(3000));
    assert!(v["first_difference"].is_null());

    // Rows 7 and 8 of the reference swapped; as small single-row batches in between so
    // batch boundaries on the two sides differ too.
    let all = &batches[0];
    assert!(all.num_rows() > 100);
    let swapped: Vec<RecordBatch> = [(0, 7), (8, 1), (7, 1), (9, all.num_rows() - 9)]
        .iter()
        .map(|&(f, n)| all.slice(f, n))
        .chain(batches[1..].iter().cloned())
        .collect();
    let other = d.path().join("swapped.parquet");
    write(&other, &swapped);
    let (code, v, err) = legacy(&view, &other);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("error[PARITY_FAILED]"), "{err}");
    let diff = &v["first_difference"];
    assert_eq!(diff["row"].as_u64(), Some(7), "{v}");
    assert_ne!(diff["view_value"], diff["reference_value"]);
    assert!(diff["column"].as_str().is_some_and(|c| !c.is_empty()));

    // A reference one row short: every row that exists matches, the counts do not.
    let mut short = batches.clone();
    let last = short.pop().unwrap();
    short.push(last.slice(0, last.num_rows() - 1));
    let short_path = d.path().join("short.parquet");
    write(&short_path, &short);
    let (code, v, _) = legacy(&view, &short_path);
    assert_eq!(code, Some(1));
    assert!(v["first_difference"].is_null());
    assert_eq!(v["reference_rows"].as_u64(), Some(2999));
}

const DUCKDB_SORT: &str = r#"
import sys, duckdb
src, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{src}')").fetchall()]
sel = ", ".join('"' + c + '"' for c in cols)
con.execute(f"""COPY (SELECT {sel} FROM read_parquet('{src}', filename=true, file_row_number=true)
  ORDER BY CAST(ts_utc AS TIMESTAMP), filename, file_row_number) TO '{out}' (FORMAT parquet)""")
"#;

#[test]
fn the_platforms_duckdb_sort_matches_row_for_row() {
    let has_duckdb = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_duckdb {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs python3 with duckdb"
        );
        eprintln!("skipped: python3 has no duckdb");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let (engine, view) = view_of(d.path());
    let glob = engine
        .join("data/layer3/6B")
        .join(TRAFFIC)
        .join("**/*.parquet");
    let reference = d.path().join("ref.parquet");
    let o = Command::new("python3")
        .args(["-c", DUCKDB_SORT])
        .arg(&glob)
        .arg(&reference)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, v, err) = legacy(&view, &reference);
    assert_eq!(code, Some(0), "{err} {v}");
    assert_eq!(v["view_rows"].as_u64(), Some(3000));
}
