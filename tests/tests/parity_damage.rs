//! `sluice parity view` and `sluice parity bus` end to end: a clean run passes, and each
//! kind of damage done on purpose (a row dropped from a part, two rows swapped, a receipt
//! deleted (the view's and the gate's), a bus byte flipped, a bus record duplicated) fails
//! `PARITY_FAILED` with a check whose place names where the damage is.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use serde_json::Value;
use sluice_tests::{output, sluice, stderr, stdout};

const TRAFFIC: &str = "s3_event_stream_with_fraud_6B";
const TOPIC: &str = "fp.bus.traffic.fraud.v1";
const RUN_ID: &str = "parity_test_run";

struct Fixture {
    _dir: tempfile::TempDir,
    engine: PathBuf,
    run_root: PathBuf,
}

fn run_ok(mut c: std::process::Command) -> Value {
    let o = output({
        c.arg("--json");
        c
    });
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(stdout(&o).trim()).unwrap_or(Value::Null)
}

/// gen -> sort -> replay --max of a small run.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let engine = dir.path().join("engine");
    let runs = dir.path().join("runs");
    let mut gen = sluice!();
    gen.args([
        "gen", "--rows", "4000", "--files", "2", "--seed", "7", "--out",
    ])
    .arg(&engine);
    run_ok(gen);
    let mut sort = sluice!();
    sort.args(["sort", "--all", "--engine-root"]).arg(&engine);
    run_ok(sort);
    let mut replay = sluice!();
    replay
        .env("PLATFORM_RUN_ID", RUN_ID)
        // Small batches: every partition gets several bus batches, so damage can sit in
        // the middle of a segment as well as at its tail.
        .args([
            "replay",
            "--all",
            "--max",
            "--batch-rows",
            "256",
            "--engine-root",
        ])
        .arg(&engine)
        .arg("--runs-dir")
        .arg(&runs);
    run_ok(replay);
    Fixture {
        run_root: runs.join("fraud-platform").join(RUN_ID),
        engine,
        _dir: dir,
    }
}

/// Run a parity command with `--json`: (exit code, report, stderr).
fn parity(args: &[&str], paths: &[(&str, &Path)]) -> (Option<i32>, Value, String) {
    let mut c = sluice!();
    c.args(["--json", "parity"]).args(args);
    for (flag, p) in paths {
        c.arg(flag).arg(p);
    }
    let o = output(c);
    let v = serde_json::from_str(stdout(&o).trim()).unwrap_or(Value::Null);
    (o.status.code(), v, stderr(&o))
}

fn view_parity(f: &Fixture) -> (Option<i32>, Value, String) {
    parity(
        &["view", "--output-id", TRAFFIC],
        &[("--engine-root", &f.engine)],
    )
}

fn bus_parity(f: &Fixture) -> (Option<i32>, Value, String) {
    parity(
        &["bus"],
        &[("--run-root", &f.run_root), ("--engine-root", &f.engine)],
    )
}

/// The failed checks of a report: (name, place).
fn failures(checks: &Value) -> Vec<(String, String)> {
    checks
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == Value::Bool(false))
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["place"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn assert_failed(code: Option<i32>, err: &str) {
    assert_eq!(code, Some(1), "{err}");
    assert!(err.starts_with("error[PARITY_FAILED]"), "{err}");
}

fn part0(f: &Fixture) -> PathBuf {
    f.engine
        .join("stream_view/ts_utc")
        .join(format!("output_id={TRAFFIC}"))
        .join("part-000000.parquet")
}

/// Rewrite a parquet file as the given slices of its rows, in the given order.
fn rewrite(path: &Path, pieces: &[(usize, usize)]) -> usize {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .with_batch_size(1 << 20)
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    assert_eq!(batches.len(), 1, "the fixture part fits one batch");
    let b = &batches[0];
    let tmp = path.with_extension("tmp");
    let mut w = ArrowWriter::try_new(File::create(&tmp).unwrap(), b.schema(), None).unwrap();
    for &(from, len) in pieces {
        w.write(&b.slice(from, len)).unwrap();
    }
    w.close().unwrap();
    fs::rename(&tmp, path).unwrap();
    b.num_rows()
}

fn rows_of(path: &Path) -> usize {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .metadata()
        .file_metadata()
        .num_rows() as usize
}

#[test]
fn a_clean_run_passes_view_and_bus_parity() {
    let f = fixture();
    let (code, v, err) = parity(&["view", "--all"], &[("--engine-root", &f.engine)]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["ok"], Value::Bool(true));
    let views = v["views"].as_array().unwrap();
    assert_eq!(views.len(), 4);
    for view in views {
        assert!(failures(&view["checks"]).is_empty(), "{view}");
        assert_eq!(view["source_rows"], view["view_rows"]);
    }
    let (code, v, err) = bus_parity(&f);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["ok"], Value::Bool(true));
    let traffic = &v["outputs"][0];
    assert_eq!(traffic["output_id"], TRAFFIC);
    assert_eq!(traffic["view_rows"].as_u64(), Some(4000));
    assert_eq!(traffic["admitted"].as_u64(), Some(4000));
    let on_topic: u64 = v["topics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["topic"] == TOPIC)
        .map(|t| t["records"].as_u64().unwrap())
        .sum();
    assert_eq!(on_topic, 4000);

    // The run can also be named like `sluice replay` names it.
    let mut c = sluice!();
    c.env("PLATFORM_RUN_ID", RUN_ID)
        .args(["--json", "parity", "bus", "--engine-root"])
        .arg(&f.engine)
        .arg("--runs-dir")
        .arg(f.run_root.parent().unwrap().parent().unwrap());
    let o = output(c);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_dropped_row_is_found_in_its_part() {
    let f = fixture();
    let p = part0(&f);
    let n = rows_of(&p);
    rewrite(&p, &[(0, 10), (11, n - 11)]);
    let (code, v, err) = view_parity(&f);
    assert_failed(code, &err);
    let fails = failures(&v["views"][0]["checks"]);
    let names: Vec<&str> = fails.iter().map(|f| f.0.as_str()).collect();
    for want in ["row_count", "digest", "part_rows", "part_blake3"] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    let part_rows = fails.iter().find(|f| f.0 == "part_rows").unwrap();
    assert!(
        part_rows.1.contains("part-000000.parquet")
            && part_rows.1.contains(&format!("file {}", n - 1)),
        "{part_rows:?}"
    );
}

#[test]
fn swapped_rows_break_the_order_at_the_first_of_them() {
    let f = fixture();
    let p = part0(&f);
    let n = rows_of(&p);
    // Rows 5 and 900 have different times (the part spans weeks), so the swap shows.
    rewrite(&p, &[(0, 5), (900, 1), (6, 894), (5, 1), (901, n - 901)]);
    let (code, v, err) = view_parity(&f);
    assert_failed(code, &err);
    let fails = failures(&v["views"][0]["checks"]);
    let order = fails.iter().find(|f| f.0 == "order").expect("order fails");
    assert!(
        order.1.starts_with("part-000000.parquet row 6:"),
        "{order:?}"
    );
    // Same rows, other order: the multiset digest still agrees.
    assert!(!fails.iter().any(|f| f.0 == "digest"), "{fails:?}");
}

#[test]
fn a_deleted_receipt_is_named() {
    let f = fixture();
    let receipt = part0(&f).with_file_name("_stream_sort_receipt.json");
    fs::remove_file(&receipt).unwrap();
    let (code, v, err) = view_parity(&f);
    assert_failed(code, &err);
    let fails = failures(&v["views"][0]["checks"]);
    assert_eq!(fails[0].0, "receipt_present");
    assert!(
        fails[0].1.ends_with("_stream_sort_receipt.json"),
        "{fails:?}"
    );
}

#[test]
fn a_flipped_bus_byte_is_found_at_its_segment_and_byte() {
    let f = fixture();
    let seg = f
        .run_root
        .join("eb/topics")
        .join(TOPIC)
        .join("partition-00000/00000000000000000000.log");
    let clean = fs::read(&seg).unwrap();
    // Damage inside the first batch: the bus refuses it with the exact place.
    let mut bytes = clean.clone();
    bytes[200] ^= 0xff;
    fs::write(&seg, &bytes).unwrap();
    let (code, v, err) = bus_parity(&f);
    assert_failed(code, &err);
    let fails = failures(&v["checks"]);
    let unreadable = fails
        .iter()
        .find(|f| f.0 == "bus_readable")
        .unwrap_or_else(|| panic!("bus_readable passes: {fails:?}"));
    assert!(
        unreadable.1.starts_with(&format!("{TOPIC}/0 after"))
            && unreadable.1.contains("00000000000000000000.log at byte"),
        "{unreadable:?}"
    );
    assert!(fails.iter().any(|f| f.0 == "all_admitted_or_quarantined"));

    // Damage in the last batch reads as a torn tail (the bus's recovery policy): the
    // records after it are simply not there, and parity names the first lost view row.
    let mut bytes = clean;
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    fs::write(&seg, &bytes).unwrap();
    let (code, v, err) = bus_parity(&f);
    assert_failed(code, &err);
    let fails = failures(&v["checks"]);
    let missing = fails
        .iter()
        .find(|f| f.0 == "all_admitted_or_quarantined")
        .unwrap_or_else(|| panic!("nothing missing: {fails:?}"));
    assert!(
        missing
            .1
            .starts_with(&format!("{TRAFFIC} part-000000.parquet row ")),
        "{missing:?}"
    );
}

#[test]
fn a_duplicated_bus_record_is_found_twice_with_both_offsets() {
    let f = fixture();
    let eb = f.run_root.join("eb");
    let mut get = sluice!();
    get.args(["--json", "bus", "get", "--bus"])
        .arg(&eb)
        .args([TOPIC, "1", "3"]);
    let rec = run_ok_plain(get);
    let line = serde_json::json!({
        "key": rec["key"],
        "value": rec["value"],
        "ts": rec["ts_utc"],
        "partition": 1,
    });
    let mut produce = sluice!();
    produce
        .args(["bus", "produce", "--bus"])
        .arg(&eb)
        .arg(TOPIC)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = produce.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{line}").unwrap();
    }
    assert!(child.wait_with_output().unwrap().status.success());

    let (code, v, err) = bus_parity(&f);
    assert_failed(code, &err);
    let fails = failures(&v["checks"]);
    let twice = fails
        .iter()
        .find(|f| f.0 == "exactly_once")
        .expect("exactly_once fails");
    assert!(twice.1.contains(&format!("{TOPIC}/1@3,")), "{twice:?}");
    let receipts = fails
        .iter()
        .find(|f| f.0 == "receipts_match_bus")
        .expect("receipts_match_bus fails");
    assert!(receipts.1.ends_with("has no ADMIT receipt"), "{receipts:?}");
}

fn run_ok_plain(c: std::process::Command) -> Value {
    let o = output(c);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(stdout(&o).trim()).unwrap()
}

#[test]
fn a_deleted_gate_receipt_leaves_its_bus_record_unreceipted() {
    let f = fixture();
    // Receipts are fixed 64-byte records after a 128-byte header: cut the last one off.
    let log = f.run_root.join("ig/receipts.log");
    let len = fs::metadata(&log).unwrap().len();
    assert_eq!((len - 128) % 64, 0);
    let file = fs::OpenOptions::new().write(true).open(&log).unwrap();
    file.set_len(len - 64).unwrap();
    let (code, v, err) = bus_parity(&f);
    assert_failed(code, &err);
    let fails = failures(&v["checks"]);
    assert_eq!(fails.len(), 1, "{fails:?}");
    assert_eq!(fails[0].0, "receipts_match_bus");
    assert!(
        fails[0].1.contains('@') && fails[0].1.ends_with("has no ADMIT receipt"),
        "{fails:?}"
    );
}
