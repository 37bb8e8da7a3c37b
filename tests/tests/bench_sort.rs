//! `sluice bench sort`, end to end on tiny data: the harness generates its input, drives
//! sluice (and DuckDB when python has it) as child processes, and reports every contender
//! with numeric times and equal row counts; failing and unavailable contenders are reported,
//! not fatal. Speed is never asserted here (that is what the benchmark itself is for).
//!
//! Kept small (20k rows, 4 files, Polars skipped) so the whole file runs in well under 30 s
//! in a debug build on 2 cores.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sluice_tests::{output, sluice, stderr, stdout};

const ROWS: u64 = 20_000;

fn importable(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn duckdb_importable() -> bool {
    importable("duckdb")
}

/// Run `sluice --json bench sort` on tiny data; return its parsed report.
fn bench(data: &Path, work: &Path, extra: &[&str]) -> Value {
    let mut c = sluice!();
    c.args(["--json", "bench", "sort", "--rows", "20000", "--files", "4"])
        .arg("--data")
        .arg(data)
        .arg("--work")
        .arg(work)
        .args(extra);
    let o = output(c);
    assert!(o.status.success(), "bench sort failed: {}", stderr(&o));
    let text = stdout(&o);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn contender<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["contenders"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} contender in {report}"))
}

fn assert_ran(report: &Value, kind: &str) {
    let c = contender(report, kind);
    assert_eq!(c["status"], "OK", "{kind}: {c}");
    let wall = c["wall_s"].as_f64();
    assert!(wall.is_some_and(|w| w > 0.0), "{kind} wall time: {c}");
    assert!(c["rows_per_s"].as_f64().is_some(), "{kind}: {c}");
    assert!(c["ratio_vs_sluice"].as_f64().is_some(), "{kind}: {c}");
    assert_eq!(c["rows"].as_u64(), Some(ROWS), "{kind} rows: {c}");
    assert_eq!(c["rows_match_sluice"], true, "{kind}: {c}");
    assert!(c["command"].as_str().is_some_and(|s| !s.is_empty()));
}

#[test]
fn reports_every_contender_with_times_and_equal_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, work) = (tmp.path().join("data"), tmp.path().join("work"));
    let duckdb = duckdb_importable();
    let mut extra = vec!["--skip-polars"];
    if !duckdb {
        extra.push("--skip-duckdb");
    }
    let report = bench(&data, &work, &extra);

    assert_eq!(report["bench"], "sort");
    assert_eq!(report["input"]["generated"], true);
    assert_eq!(report["input"]["files"].as_array().map(Vec::len), Some(4));
    assert!(report["machine"]["nproc"].as_u64().is_some_and(|n| n >= 1));
    assert!(report["cache"].as_str().is_some_and(|s| s.contains("warm")));

    assert_ran(&report, "sluice");
    assert_ran(&report, "sluice_copy_floor");
    let sluice = contender(&report, "sluice");
    assert!(sluice["peak_rss_bytes"].as_u64().is_some_and(|b| b > 0));
    assert_eq!(sluice["ratio_vs_sluice"].as_f64(), Some(1.0));
    for kind in ["duckdb", "duckdb_memory_limited"] {
        if duckdb {
            assert_ran(&report, kind);
        } else {
            assert_eq!(contender(&report, kind)["status"], "SKIPPED");
        }
    }
    let polars = contender(&report, "polars");
    assert_eq!(polars["status"], "SKIPPED");
    assert!(polars["note"]
        .as_str()
        .is_some_and(|n| n.contains("--skip-polars")));
    if duckdb {
        assert_eq!(report["rows_comparable"], true);
    }

    // Every issue target is checked, each with a verdict (never a timing assertion here).
    let targets = report["targets"].as_array().cloned().unwrap_or_default();
    assert_eq!(targets.len(), 5, "{targets:?}");
    for t in &targets {
        let v = t["verdict"].as_str().unwrap_or("");
        assert!(["PASS", "FAIL", "UNMEASURED"].contains(&v), "{t}");
    }
    assert!(targets.iter().any(|t| {
        t["target"].as_str().is_some_and(|s| s.contains("Polars")) && t["verdict"] == "UNMEASURED"
    }));

    // The same report is on disk, and no contender's output outlives its run.
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(work.join("bench-sort.json")).unwrap()).unwrap();
    assert_eq!(on_disk, report);
    for dir in ["sluice", "copy-floor", "duckdb", "duckdb-limited"] {
        let d = work.join("bench-sort").join(dir);
        let left = std::fs::read_dir(&d).map(|r| r.count()).unwrap_or(0);
        assert_eq!(left, 0, "{} still holds files", d.display());
    }

    // Second run on the same data: the input is reused, not regenerated; a python without
    // the modules skips those contenders with the reason instead of failing the bench.
    let again = bench(
        &data,
        &work,
        &["--python", "/nonexistent/python3", "--skip-copy"],
    );
    assert_eq!(again["input"]["generated"], false);
    assert_ran(&again, "sluice");
    let duck = contender(&again, "duckdb");
    assert_eq!(duck["status"], "SKIPPED");
    assert!(duck["note"]
        .as_str()
        .is_some_and(|n| n.contains("/nonexistent/python3")));
    assert_eq!(contender(&again, "sluice_copy_floor")["status"], "SKIPPED");
}

#[test]
fn a_failing_contender_is_reported_failed_with_its_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, work) = (tmp.path().join("data"), tmp.path().join("work"));
    let report = bench(
        &data,
        &work,
        &[
            "--memory-limit",
            "not-a-size",
            "--skip-duckdb",
            "--skip-polars",
        ],
    );
    for kind in ["sluice", "sluice_copy_floor"] {
        let c = contender(&report, kind);
        assert_eq!(c["status"], "FAILED", "{c}");
        assert!(c["wall_s"].is_null());
        let tail = c["stderr_tail"].as_str().unwrap_or("");
        assert!(
            tail.contains("not-a-size"),
            "stderr tail names the bad flag: {tail}"
        );
    }
    let targets = report["targets"].as_array().cloned().unwrap_or_default();
    assert!(
        targets.iter().all(|t| t["verdict"] == "UNMEASURED"),
        "{targets:?}"
    );
}

#[test]
fn a_given_dataset_is_benchmarked_with_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, work) = (tmp.path().join("data"), tmp.path().join("work"));
    let mut gen = sluice!();
    gen.args(["gen", "--rows", "20000", "--files", "3", "--seed", "5"])
        .args(["--outputs", "s3_event_stream_with_fraud_6B", "--out"])
        .arg(&data);
    let o = output(gen);
    assert!(o.status.success(), "gen failed: {}", stderr(&o));

    // A directory: every parquet file below it, as `sluice sort --input` takes it.
    let mut c = sluice!();
    c.args(["--json", "bench", "sort", "--input"])
        .arg(&data)
        .arg("--work")
        .arg(&work)
        .args(["--skip-duckdb", "--skip-polars"]);
    let o = output(c);
    assert!(
        o.status.success(),
        "bench sort --input failed: {}",
        stderr(&o)
    );
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["input"]["rows"].as_u64(), Some(ROWS));
    assert_eq!(report["input"]["files"].as_array().map(Vec::len), Some(3));
    assert_eq!(report["input"]["generated"], false);
    assert_eq!(report["input"]["output_id"], "bench_input");
    assert!(report["config"]["input"]
        .as_str()
        .is_some_and(|p| Path::new(p).is_absolute()));
    assert_ran(&report, "sluice");
    assert_ran(&report, "sluice_copy_floor");
    let command = contender(&report, "sluice")["command"]
        .as_str()
        .unwrap_or("");
    assert!(command.contains("--input"), "{command}");

    // Generation flags make no sense with a given dataset; nor does a scratch directory
    // inside it (a directory input walks into it).
    let mut c = sluice!();
    c.args(["bench", "sort", "--rows", "5", "--input"])
        .arg(&data);
    assert!(!output(c).status.success());
    let mut c = sluice!();
    c.args(["bench", "sort", "--input"])
        .arg(tmp.path())
        .arg("--work")
        .arg(&work);
    let o = output(c);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("overlaps"), "{}", stderr(&o));
}

/// `--sort-key` reaches every contender: a dataset whose time column is `event time` (a
/// name that needs quoting in SQL) sorts to the same rows in sluice, DuckDB and Polars
/// (those two when python has them).
#[test]
fn another_time_column_is_sorted_by_every_contender() {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;

    let tmp = tempfile::tempdir().unwrap();
    let (data, work) = (tmp.path().join("data"), tmp.path().join("work"));
    std::fs::create_dir_all(&data).unwrap();
    for f in 0..2i64 {
        let times: Vec<String> = (0..1500i64)
            .map(|i| format!("2026-01-05T{:02}:{:02}:00Z", (i * 7 + f) % 24, i % 60))
            .collect();
        let batch = RecordBatch::try_from_iter([
            ("event time", Arc::new(StringArray::from(times)) as ArrayRef),
            ("id", Arc::new(Int64Array::from_iter_values(0..1500))),
        ])
        .unwrap();
        let file = std::fs::File::create(data.join(format!("{f}.parquet"))).unwrap();
        let mut w = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
    let (duckdb, polars) = (duckdb_importable(), importable("polars"));
    let mut c = sluice!();
    c.args(["--json", "bench", "sort", "--input"])
        .arg(&data)
        .arg("--work")
        .arg(&work)
        .args(["--sort-key", "event time", "--skip-copy"]);
    if !duckdb {
        c.arg("--skip-duckdb");
    }
    if !polars {
        c.arg("--skip-polars");
    }
    let o = output(c);
    assert!(o.status.success(), "bench sort failed: {}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["config"]["sort_key"], "event time");
    let mut ran = vec!["sluice"];
    if duckdb {
        ran.extend(["duckdb", "duckdb_memory_limited"]);
    }
    if polars {
        ran.push("polars");
    }
    for kind in ran {
        let c = contender(&report, kind);
        assert_eq!(c["status"], "OK", "{kind}: {c}");
        assert_eq!(c["rows"].as_u64(), Some(3000), "{kind}: {c}");
        let command = c["command"].as_str().unwrap_or("");
        assert!(command.contains("--sort-key 'event time'"), "{command}");
    }
}
