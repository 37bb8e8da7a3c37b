//! Shared by the `replay_*` end-to-end tests: engine roots (generated and sorted by the CLI,
//! or small hand-written views with chosen bad rows), running `sluice replay`, and reading
//! the bus back through `sluice bus tail --json`.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use serde_json::Value;
use sluice_storage::publish::write_json_atomic;
use sluice_storage::timefmt::format_rfc3339_micros;
use sluice_storage::view::{
    default_view_root, part_name, view_dir, PartInfo, SideStats, StreamSortReceipt, RECEIPT_FILE,
};
use sluice_tests::{output, stderr, stdout};

pub const TRAFFIC: &str = "s3_event_stream_with_fraud_6B";
pub const TRAFFIC_TOPIC: &str = "fp.bus.traffic.fraud.v1";
pub const RUN_ID: &str = "platform_e2e";
pub const T0: i64 = 1_767_601_813_260_000;

pub fn mf() -> String {
    "a1".repeat(32)
}
pub fn ph() -> String {
    "b2".repeat(32)
}

/// `sluice gen` + `sluice sort --all` into `dir/eng`.
pub fn gen_and_sort(cmd: impl Fn() -> Command, dir: &Path, rows: u64) -> PathBuf {
    let eng = dir.join("eng");
    let mut c = cmd();
    c.args(["gen", "--rows", &rows.to_string(), "--files", "3", "--out"])
        .arg(&eng);
    let o = output(c);
    assert!(o.status.success(), "gen failed: {}", stderr(&o));
    let mut c = cmd();
    c.args(["sort", "--all", "--engine-root"]).arg(&eng);
    let o = output(c);
    assert!(o.status.success(), "sort failed: {}", stderr(&o));
    eng
}

/// One traffic row; `None` is a null cell.
#[derive(Debug, Clone)]
pub struct Row {
    pub flow_id: Option<i64>,
    pub event_seq: i64,
    pub ts: i64,
    pub amount: Option<f64>,
}

pub fn good_rows(n: i64) -> Vec<Row> {
    (0..n)
        .map(|i| Row {
            flow_id: Some(1000 + i),
            event_seq: 1 + i % 3,
            ts: T0 + i * 1_500_000,
            amount: Some(i as f64 * 0.5 + 1.0),
        })
        .collect()
}

fn batch(rows: &[Row]) -> RecordBatch {
    let f = |n: &str, t: DataType| Field::new(n, t, true);
    let schema = Arc::new(Schema::new(vec![
        f("flow_id", DataType::Int64),
        f("event_seq", DataType::Int64),
        f("event_type", DataType::Utf8),
        f("ts_utc", DataType::Utf8),
        f("amount", DataType::Float64),
        f("fraud_flag", DataType::Boolean),
        f("campaign_id", DataType::Utf8),
        f("seed", DataType::Int64),
        f("manifest_fingerprint", DataType::Utf8),
        f("parameter_hash", DataType::Utf8),
        f("scenario_id", DataType::Utf8),
    ]));
    let n = rows.len();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.flow_id))),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.event_seq),
        )),
        Arc::new(StringArray::from_iter_values(
            (0..n).map(|_| "AUTH_REQUEST"),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| format_rfc3339_micros(r.ts)),
        )),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.amount))),
        Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(i % 4 == 0)))),
        Arc::new(StringArray::from_iter(
            (0..n).map(|i| (i % 3 == 0).then(|| format!("c{i}"))),
        )),
        Arc::new(Int64Array::from_iter_values((0..n).map(|_| 42))),
        Arc::new(StringArray::from_iter_values((0..n).map(|_| mf()))),
        Arc::new(StringArray::from_iter_values((0..n).map(|_| ph()))),
        Arc::new(StringArray::from_iter_values((0..n).map(|_| "baseline_v1"))),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

/// Write `run_receipt.json` and the traffic view (rows already in time order), parts of
/// `per_part` rows with row groups of 50, plus a receipt; replaces an existing view.
pub fn write_traffic_view(eng: &Path, rows: &[Row], per_part: usize) {
    write_view(eng, TRAFFIC, rows, per_part)
}

/// [`write_traffic_view`] for any event-stream output id (the baseline variant gets the
/// fraud columns as extra payload fields, which its schema allows).
pub fn write_view(eng: &Path, output_id: &str, rows: &[Row], per_part: usize) {
    fs::create_dir_all(eng).unwrap();
    let receipt = serde_json::json!({
        "seed": 42, "manifest_fingerprint": mf(), "parameter_hash": ph(),
        "scenario_id": "baseline_v1", "outputs": [output_id], "producer": "e2e",
    });
    fs::write(eng.join("run_receipt.json"), receipt.to_string()).unwrap();
    let dir = view_dir(&default_view_root(eng), output_id);
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap();
    }
    fs::create_dir_all(&dir).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(50))
        .build();
    let mut parts = Vec::new();
    for (i, chunk) in rows.chunks(per_part).enumerate() {
        let path = dir.join(part_name(i));
        let b = batch(chunk);
        let mut w = ArrowWriter::try_new(
            fs::File::create(&path).unwrap(),
            b.schema(),
            Some(props.clone()),
        )
        .unwrap();
        w.write(&b).unwrap();
        w.close().unwrap();
        parts.push(PartInfo {
            name: part_name(i),
            row_count: chunk.len() as u64,
            bytes: fs::metadata(&path).unwrap().len(),
            blake3: String::new(),
            min_ts_utc: chunk.first().map(|r| format_rfc3339_micros(r.ts)),
            max_ts_utc: chunk.last().map(|r| format_rfc3339_micros(r.ts)),
        });
    }
    let stats = SideStats {
        row_count: rows.len() as u64,
        row_hash_sum: "0".repeat(32),
        row_hash_xor: "0".repeat(32),
        min_ts_utc: None,
        max_ts_utc: None,
    };
    let r = StreamSortReceipt {
        stream_view_id: "e2e".into(),
        engine_run_root: eng.display().to_string(),
        stream_view_root: dir.display().to_string(),
        output_id: output_id.into(),
        scenario_id: "baseline_v1".into(),
        sort_keys: vec!["ts_utc".into()],
        partition_granularity: "flat".into(),
        source_locator_digest: String::new(),
        source_fingerprint: String::new(),
        source_paths: Vec::new(),
        raw_stats: stats.clone(),
        sorted_stats: stats,
        parts,
        created_utc: format_rfc3339_micros(T0),
        status: "OK".into(),
        writer: Value::Null,
    };
    write_json_atomic(&dir.join(RECEIPT_FILE), &r).unwrap();
}

/// The documented event id string of a traffic row of [`write_traffic_view`].
pub fn event_id_string(r: &Row) -> String {
    format!(
        "{TRAFFIC}|{}|{}|{}|{}|42|baseline_v1",
        r.flow_id.unwrap(),
        r.event_seq,
        mf(),
        ph()
    )
}

/// `sluice replay ... --json` with a fixed run id under `runs`; returns (output, summary).
pub fn replay(
    cmd: impl Fn() -> Command,
    runs: &Path,
    eng: &Path,
    extra: &[&str],
) -> (Output, Value) {
    let mut c = cmd();
    c.env("PLATFORM_RUN_ID", RUN_ID)
        .args(["--json", "replay", "--engine-root"])
        .arg(eng)
        .arg("--runs-dir")
        .arg(runs)
        .args(extra);
    let o = output(c);
    let v = serde_json::from_str(stdout(&o).trim()).unwrap_or(Value::Null);
    (o, v)
}

pub fn run_root(runs: &Path) -> PathBuf {
    runs.join("fraud-platform").join(RUN_ID)
}

/// Every record of a topic: (partition, offset, envelope).
pub fn bus_records(cmd: impl Fn() -> Command, runs: &Path, topic: &str) -> Vec<(u64, u64, Value)> {
    let mut c = cmd();
    c.args(["bus", "tail", topic, "-n", "100000000", "--json", "--bus"])
        .arg(run_root(runs).join("eb"));
    let o = output(c);
    assert!(o.status.success(), "bus tail failed: {}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["partition"].as_u64().unwrap(),
                v["offset"].as_u64().unwrap(),
                v["value"].clone(),
            )
        })
        .collect()
}

/// `sluice ingest verify` passes.
pub fn assert_verified(cmd: impl Fn() -> Command, runs: &Path) -> Value {
    let mut c = cmd();
    c.args(["--json", "ingest", "verify", "--run-root"])
        .arg(run_root(runs));
    let o = output(c);
    assert!(
        o.status.success(),
        "verify failed: {}\n{}",
        stdout(&o),
        stderr(&o)
    );
    serde_json::from_str(stdout(&o).trim()).unwrap()
}

/// `sluice ingest lookup --event-id`.
pub fn lookup(cmd: impl Fn() -> Command, runs: &Path, event_id: &str) -> Value {
    let mut c = cmd();
    c.args([
        "--json",
        "ingest",
        "lookup",
        "--event-id",
        event_id,
        "--run-root",
    ])
    .arg(run_root(runs));
    let o = output(c);
    assert!(o.status.success(), "lookup failed: {}", stderr(&o));
    serde_json::from_str(stdout(&o).trim()).unwrap()
}
