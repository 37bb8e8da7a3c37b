//! Shared helpers of the `sort_*` end-to-end tests: generate data with `sluice gen` or by
//! hand, run `sluice sort`, read views back, check for leftovers.

#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

pub const OUTPUT: &str = "s3_event_stream_with_fraud_6B";

/// Generate an engine run root with the traffic output (`sluice gen`).
pub fn gen(mut cmd: Command, root: &Path, rows: u64, files: usize, seed: u64) {
    let out = cmd
        .args(["gen", "--out"])
        .arg(root)
        .args(["--rows", &rows.to_string()])
        .args(["--files", &files.to_string()])
        .args(["--seed", &seed.to_string()])
        .args(["--outputs", OUTPUT, "--json"])
        .output()
        .expect("spawn sluice gen");
    assert!(out.status.success(), "gen failed: {}", stderr(&out));
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run `cmd` (a `sluice sort …` command) and parse its `--json` summary; panics with the
/// stderr if it failed.
pub fn run_json(mut cmd: Command) -> serde_json::Value {
    let out = cmd.output().expect("spawn sluice");
    assert!(out.status.success(), "sluice failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

/// Run `cmd`, expect failure with `error[CODE]`; returns stderr.
pub fn expect_code(mut cmd: Command, code: &str) -> String {
    let out = cmd.output().expect("spawn sluice");
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "expected {code}, got success: {}",
        stdout(&out)
    );
    assert!(
        err.contains(&format!("error[{code}]")),
        "expected error[{code}], got: {err}"
    );
    err
}

/// The parts of a view directory in order.
pub fn parts(view_dir: &Path) -> Vec<PathBuf> {
    let mut p: Vec<PathBuf> = fs::read_dir(view_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    p.sort();
    p
}

/// Every batch of some parquet files, in order.
pub fn read_all(files: &[PathBuf]) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for f in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        out.extend(reader.map(|b| b.unwrap()));
    }
    out
}

/// `(flow_id, event_seq)` of every row of a view, in order.
pub fn view_pk(view_dir: &Path) -> Vec<(i64, i64)> {
    files_pk(&parts(view_dir))
}

/// `(flow_id, event_seq)` of every row of some parquet files, in order.
pub fn files_pk(files: &[PathBuf]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for b in read_all(files) {
        let f = b
            .column_by_name("flow_id")
            .unwrap()
            .as_primitive::<Int64Type>();
        let s = b
            .column_by_name("event_seq")
            .unwrap()
            .as_primitive::<Int64Type>();
        out.extend(f.values().iter().copied().zip(s.values().iter().copied()));
    }
    out
}

/// Names in a directory (sorted); empty if it does not exist.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(r) => r
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// No staging, trash or spill leftovers under the view root or the default temp root.
pub fn assert_no_leftovers(view_root: &Path) {
    for n in names(view_root) {
        assert!(
            !n.contains(".staging-") && !n.contains(".trash-"),
            "leftover {n} in {}",
            view_root.display()
        );
    }
    let tmp = view_root.parent().unwrap().join(".sluice-tmp");
    assert!(names(&tmp).is_empty(), "spill leftovers: {:?}", names(&tmp));
}

/// Write one parquet file of `columns`.
pub fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1000))
        .build();
    let mut w =
        ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// An `Int64Array` column.
pub fn ints(v: Vec<i64>) -> ArrayRef {
    Arc::new(arrow_array::Int64Array::from(v))
}

/// A `Utf8` column with nulls.
pub fn strs(v: Vec<Option<&str>>) -> ArrayRef {
    Arc::new(arrow_array::StringArray::from(v))
}

/// The view directory of `output` under `view_root`.
pub fn view_dir(view_root: &Path, output: &str) -> PathBuf {
    view_root.join(format!("output_id={output}"))
}
