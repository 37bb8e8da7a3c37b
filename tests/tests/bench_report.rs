//! `sluice bench report --quick`, end to end on tiny data: the driver runs the sort, bus and
//! replay harnesses (generating their inputs), and writes report.html, report.md and
//! report.json that each contain every benchmark. DuckDB and Polars are used when python has
//! them and reported as skipped when it does not; `--skip` leaves a benchmark out. Speed is
//! never asserted (the report is where speed is read).
//!
//! Tiny inputs (20k rows, 4 MiB per bus case): each run takes seconds in a debug build.

use std::fs;
use std::path::Path;

use serde_json::Value;
use sluice_tests::{output, sluice, stderr, stdout};

const BENCHES: [&str; 3] = ["sort", "bus", "replay"];

/// Run `sluice [--json] bench report --quick` into `dir`; return (exit ok, stdout, stderr).
fn report(dir: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut c = sluice!();
    c.args(["--json", "bench", "report", "--quick"])
        .arg("--out")
        .arg(dir.join("out"))
        .arg("--data")
        .arg(dir.join("data"))
        .args(extra)
        .current_dir(dir);
    let o = output(c);
    (o.status.success(), stdout(&o), stderr(&o))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn quick_report_writes_three_files_with_every_benchmark() {
    let tmp = tempfile::tempdir().unwrap();
    let (ok, out, err) = report(tmp.path(), &[]);
    assert!(ok, "bench report failed:\n{err}\n{out}");
    let summary: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    let statuses: Vec<(&str, &str)> = summary["sections"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|x| {
                    (
                        x["bench"].as_str().unwrap_or(""),
                        x["status"].as_str().unwrap_or(""),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        statuses,
        [("sort", "ran"), ("bus", "ran"), ("replay", "ran")],
        "{out}"
    );

    let dir = tmp.path().join("out");
    let json: Value = serde_json::from_str(&read(&dir.join("report.json"))).unwrap();
    let md = read(&dir.join("report.md"));
    let html = read(&dir.join("report.html"));

    // Machine facts and versions are recorded.
    assert!(json["machine"]["nproc"].as_u64().is_some_and(|n| n >= 1));
    assert!(json["loadavg_before"].is_array() || json["loadavg_before"].is_null());
    assert_eq!(json["quick"], true);
    assert_eq!(json["versions"]["sluice_build"], "debug");
    for module in ["duckdb", "polars"] {
        // Either a version, or a note saying why it did not run.
        let version = json["versions"][module].as_str();
        let noted = json["notes"].as_array().is_some_and(|n| {
            n.iter()
                .any(|n| n.as_str().is_some_and(|s| s.starts_with(module)))
        });
        assert!(version.is_some() || noted, "{module}: {}", json["notes"]);
    }

    // Every benchmark: raw results in the JSON, a section in each rendering.
    for bench in BENCHES {
        assert!(json["raw"][bench].is_object(), "raw {bench} missing");
        let section = json["sections"]
            .as_array()
            .and_then(|s| s.iter().find(|x| x["bench"] == bench))
            .unwrap_or_else(|| panic!("section {bench} missing"));
        assert_eq!(section["status"], "RAN", "{section}");
        assert!(section["table"]["rows"]
            .as_array()
            .is_some_and(|r| !r.is_empty()));
        assert!(
            html.contains(&format!("id=\"{bench}\"")),
            "html lacks {bench}"
        );
        let title = section["title"].as_str().unwrap_or("?");
        assert!(
            md.contains(&format!("## {title}")),
            "markdown lacks {title}"
        );
    }
    // The contenders of each benchmark are in the tables.
    for name in [
        "sluice copy floor",
        "dd conv=fsync",
        "legacy JSON line + fsync",
    ] {
        assert!(md.contains(name) && html.contains(name), "{name} missing");
    }
    assert!(md.contains("decode floor"));
    // Self-contained: inline SVG charts, no script, nothing fetched.
    assert!(html.matches("<svg ").count() >= 9);
    assert!(!html.contains("<script") && !html.contains("src="));
    // The raw sort report has sluice's own row with a time.
    let sluice_row = json["raw"]["sort"]["contenders"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["kind"] == "sluice"))
        .cloned()
        .unwrap_or(Value::Null);
    assert!(sluice_row["wall_s"].as_f64().is_some(), "{sluice_row}");
}

#[test]
fn skipped_benchmarks_are_reported_as_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let (ok, out, err) = report(tmp.path(), &["--skip", "sort,replay,duckdb,polars"]);
    assert!(ok, "bench report failed:\n{err}\n{out}");
    let dir = tmp.path().join("out");
    let json: Value = serde_json::from_str(&read(&dir.join("report.json"))).unwrap();
    assert!(json["raw"]["sort"].is_null() && json["raw"]["replay"].is_null());
    assert!(json["raw"]["bus"].is_object());
    assert!(json["versions"]["duckdb"].is_null());
    let md = read(&dir.join("report.md"));
    assert!(md.contains("- status: skipped: --skip sort"), "{md}");
    assert!(md.contains("- status: skipped: --skip replay"), "{md}");
    assert!(md.contains("duckdb: skipped (--skip duckdb)"), "{md}");
}

#[test]
fn bad_skip_value_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (ok, _, err) = report(tmp.path(), &["--skip", "nothing"]);
    assert!(!ok);
    assert!(err.contains("nothing"), "{err}");
    assert!(!tmp.path().join("out/report.json").exists());
}
