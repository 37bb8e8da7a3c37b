//! End-to-end tests of `sluice sort`: the JSON summary, receipts and skips, the
//! environment knobs, `--input`, the copy floor, and every error code the command can
//! return (each leaving nothing published and nothing behind).

mod sort_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::cast::AsArray;
use sluice_storage::view::{
    source_locator_digest, stream_view_id, StreamSortReceipt, MANIFEST_FILE, RECEIPT_FILE,
};
use sluice_tests::sluice;
use sort_support::*;

const KNOBS: [&str; 4] = [
    "STREAM_SORT_MEMORY_LIMIT",
    "STREAM_SORT_TEMP_DIR",
    "STREAM_SORT_MAX_TEMP_SIZE",
    "STREAM_SORT_THREADS",
];

/// `sluice sort --json` with the platform's knobs cleared.
fn sort() -> Command {
    let mut c = sluice!();
    c.args(["sort", "--json"]);
    for v in KNOBS {
        c.env_remove(v);
    }
    c.env_remove("SLUICE_SORT_FAULT");
    c
}

fn sort_output(root: &Path) -> Command {
    let mut c = sort();
    c.arg("--engine-root")
        .arg(root)
        .args(["--output-id", OUTPUT]);
    c
}

fn view_root(root: &Path) -> PathBuf {
    root.join("stream_view/ts_utc")
}

fn default_view(root: &Path) -> PathBuf {
    view_dir(&view_root(root), OUTPUT)
}

fn engine(d: &Path, rows: u64, files: usize) -> PathBuf {
    let root = d.join("engine");
    gen(sluice!(), &root, rows, files, 7);
    root
}

fn read_receipt(dir: &Path) -> StreamSortReceipt {
    serde_json::from_slice(&fs::read(dir.join(RECEIPT_FILE)).unwrap()).unwrap()
}

fn view_times(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for b in read_all(&parts(dir)) {
        let t = b.column_by_name("ts_utc").unwrap().as_string::<i32>();
        out.extend(t.iter().map(|v| v.unwrap().to_string()));
    }
    out
}

fn part_bytes(dir: &Path) -> Vec<Vec<u8>> {
    parts(dir).iter().map(|p| fs::read(p).unwrap()).collect()
}

#[test]
fn builds_reports_and_then_skips() {
    let d = tempfile::tempdir().unwrap();
    let root = engine(d.path(), 30_000, 4);
    let j = run_json(sort_output(&root));
    let v = &j["views"][0];
    assert_eq!(v["status"], "built");
    assert_eq!(v["rows"], 30_000);
    assert_eq!(v["output_id"], OUTPUT);
    for key in [
        "parts",
        "bytes",
        "elapsed_s",
        "spilled_bytes",
        "runs",
        "merge_levels",
    ] {
        assert!(v[key].is_number(), "{key} in {v}");
    }
    assert!(j["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(j["elapsed_s"].is_number());

    let dir = default_view(&root);
    assert_eq!(v["view_dir"], dir.to_string_lossy().as_ref());
    let receipt = read_receipt(&dir);
    assert!(dir.join(MANIFEST_FILE).exists());
    let canon = fs::canonicalize(&root).unwrap();
    assert_eq!(receipt.engine_run_root, canon.to_string_lossy());
    assert_eq!(
        receipt.stream_view_id,
        stream_view_id(
            &receipt.engine_run_root,
            &receipt.scenario_id,
            OUTPUT,
            &["ts_utc".to_string()],
            "flat"
        )
    );
    assert_eq!(
        receipt.source_locator_digest,
        source_locator_digest(&receipt.source_paths)
    );
    assert_eq!(receipt.source_paths.len(), 4);
    assert_eq!(receipt.status, "OK");
    assert_eq!(receipt.partition_granularity, "flat");
    assert_eq!(receipt.raw_stats, receipt.sorted_stats);
    assert_eq!(receipt.raw_stats.row_count, 30_000);
    assert!(receipt.raw_stats.min_ts_utc <= receipt.raw_stats.max_ts_utc);
    let total: u64 = receipt.parts.iter().map(|p| p.row_count).sum();
    assert_eq!(total, 30_000);
    for p in &receipt.parts {
        assert_eq!(fs::metadata(dir.join(&p.name)).unwrap().len(), p.bytes);
        assert_eq!(p.blake3.len(), 64);
    }
    let times = view_times(&dir);
    assert_eq!(times.len(), 30_000);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "time order");

    // A matching receipt means done.
    let j = run_json(sort_output(&root));
    assert_eq!(j["views"][0]["status"], "skipped");
    assert_eq!(j["views"][0]["rows"], 30_000);
    let mut all = sort();
    all.arg("--all").arg("--engine-root").arg(&root);
    let j = run_json(all);
    assert_eq!(j["views"].as_array().unwrap().len(), 1);
    assert_eq!(j["views"][0]["status"], "skipped");
    assert_no_leftovers(&view_root(&root));
}

#[test]
fn environment_knobs_spill_and_give_identical_bytes() {
    let d = tempfile::tempdir().unwrap();
    let root = engine(d.path(), 40_000, 5);
    run_json(sort_output(&root));
    let reference = part_bytes(&default_view(&root));

    let temp = d.path().join("my-temp");
    let mut c = sort_output(&root);
    c.arg("--view-root")
        .arg(d.path().join("v2"))
        .env("STREAM_SORT_MEMORY_LIMIT", "1MiB")
        .env("STREAM_SORT_THREADS", "1")
        .env("STREAM_SORT_TEMP_DIR", &temp)
        .env("STREAM_SORT_MAX_TEMP_SIZE", "1GiB");
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // A limit the process cannot stay under is said so (JSON on stdout stays clean).
    assert!(
        stderr(&out).contains("warning: --memory-limit 1MiB"),
        "{}",
        stderr(&out)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &j["views"][0];
    assert!(v["runs"].as_u64().unwrap() > 1, "{v}");
    assert!(v["spilled_bytes"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(
        part_bytes(&view_dir(&d.path().join("v2"), OUTPUT)),
        reference,
        "bytes independent of memory limit and threads"
    );
    assert!(names(&temp).is_empty(), "temp dir left: {:?}", names(&temp));

    // Flags beat the environment.
    let mut c = sort_output(&root);
    c.arg("--view-root")
        .arg(d.path().join("v3"))
        .args(["--memory-limit", "2GiB", "--threads", "2"])
        .env("STREAM_SORT_MEMORY_LIMIT", "1MiB");
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["views"][0]["runs"], 1);
    assert_eq!(j["views"][0]["spilled_bytes"], 0);
}

#[test]
fn input_glob_matches_the_engine_view() {
    let d = tempfile::tempdir().unwrap();
    let root = engine(d.path(), 20_000, 3);
    run_json(sort_output(&root));
    let pattern = format!("{}/data/**/*.parquet", root.display());
    let vr = d.path().join("views");
    let mut c = sort();
    c.args(["--input", &pattern, "--output-id", "events", "--view-root"])
        .arg(&vr);
    let j = run_json(c);
    assert_eq!(j["views"][0]["rows"], 20_000);
    assert_eq!(
        view_pk(&view_dir(&vr, "events")),
        view_pk(&default_view(&root))
    );
    // --input needs the view's name and a place to put it.
    let mut c = sort();
    c.args(["--input", &pattern]).arg("--view-root").arg(&vr);
    expect_code(c, "USAGE");
    let mut c = sort();
    c.args(["--input", &pattern, "--output-id", "x"]);
    expect_code(c, "USAGE");
    let mut c = sort();
    c.arg("--engine-root").arg(&root);
    expect_code(c, "USAGE");
}

/// `n` seeded RFC 3339 instants within one day (an LCG; `seed` picks the sequence), and
/// the generator's state after each, for payloads that must differ per row.
fn seeded_times(n: usize, seed: u64) -> Vec<(String, u64)> {
    let base = sluice_storage::timefmt::parse_rfc3339_micros("2026-01-05T00:00:00Z").unwrap();
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let offset = (state >> 33) as i64 % (86_400 * 1_000_000);
            (
                sluice_storage::timefmt::format_rfc3339_micros(base + offset),
                state,
            )
        })
        .collect()
}

/// Write `columns` as one parquet file, at most `row_group_rows` rows a row group.
fn write_file(path: &Path, columns: Vec<(&str, arrow_array::ArrayRef)>, row_group_rows: usize) {
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    let batch = arrow_array::RecordBatch::try_from_iter(columns).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    let file = fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Sort the parquet files of `data` (`--input`) under `--memory-limit limit_mib`; check
/// the rows and that the peak RSS sluice reports stays within the limit. Returns the JSON.
fn sort_within(data: &Path, limit_mib: u64, rows: usize) -> serde_json::Value {
    let vr = data.with_file_name("views");
    let mut c = sort();
    c.arg("--input")
        .arg(data)
        .args([
            "--output-id",
            "v",
            "--memory-limit",
            &format!("{limit_mib}MiB"),
        ])
        .arg("--view-root")
        .arg(&vr);
    let j = run_json(c);
    assert_eq!(j["views"][0]["rows"], rows as u64);
    let peak = j["peak_rss_bytes"].as_u64().unwrap();
    eprintln!("peak RSS {} MiB", peak >> 20);
    assert!(
        peak <= limit_mib << 20,
        "peak RSS {} MiB over the {limit_mib} MiB limit",
        peak >> 20
    );
    j
}

/// A row group is decoded a batch at a time, each batch keyed, sorted and kept or spilled
/// before the next: one 6M-row row group (~260 MB decoded) sorts under `--memory-limit
/// 192MiB`. When a whole row group was decoded first, this test peaked at 303 MiB (131
/// since), and the peak grew with the row group.
#[test]
fn a_huge_row_group_is_streamed_within_the_memory_limit() {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};

    const ROWS: usize = 6_000_000;
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let ts: Vec<String> = seeded_times(ROWS, 0x9e37_79b9_7f4a_7c15)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    write_file(
        &data.join("one.parquet"),
        vec![
            ("ts_utc", Arc::new(StringArray::from(ts))),
            ("id", Arc::new(Int64Array::from_iter_values(0..ROWS as i64))),
        ],
        ROWS,
    );
    sort_within(&data, 192, ROWS);
}

/// Wide rows: phase 2's output row groups (one gathered, up to two being encoded) are
/// charged to the budget, not assumed to fit the fixed reserve. 1.2M rows of ~330 bytes
/// under `--memory-limit 512MiB`: 547 MiB before, 454 since.
#[test]
fn wide_rows_stay_within_the_memory_limit() {
    use std::sync::Arc;

    use arrow_array::StringArray;

    const ROWS: usize = 1_200_000;
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    fs::create_dir_all(&data).unwrap();
    for f in 0..4u64 {
        let (ts, payload): (Vec<String>, Vec<String>) =
            seeded_times(ROWS / 4, 0x2545_f491_4f6c_dd1d + f)
                .into_iter()
                .enumerate()
                .map(|(i, (t, state))| (t, format!("{f}-{i:012}-{state:016x}-").repeat(10)))
                .unzip();
        write_file(
            &data.join(format!("part-{f}.parquet")),
            vec![
                ("ts_utc", Arc::new(StringArray::from(ts))),
                ("payload", Arc::new(StringArray::from(payload))),
            ],
            1 << 20,
        );
    }
    let j = sort_within(&data, 512, ROWS);
    assert!(j["views"][0]["spilled_bytes"].as_u64() > Some(0), "{j}");
}

#[test]
fn copy_floor_writes_parts_without_receipt() {
    let d = tempfile::tempdir().unwrap();
    let root = engine(d.path(), 20_000, 3);
    let vr = d.path().join("floor");
    let mut c = sort_output(&root);
    // Small row groups: many encoded at once, appended in order.
    c.arg("--view-root").arg(&vr).args([
        "--copy-floor",
        "--threads",
        "2",
        "--row-group-rows",
        "700",
    ]);
    let j = run_json(c);
    assert_eq!(j["views"][0]["rows"], 20_000);
    let dir = view_dir(&vr, OUTPUT);
    assert!(!dir.join(RECEIPT_FILE).exists());
    // The source's rows, in the source's order (files bytewise by path, rows by position).
    let data = root.join("data");
    let sources = sluice_storage::layout::expand_glob(&data.to_string_lossy()).unwrap();
    assert_eq!(sources.len(), 3);
    assert_eq!(view_pk(&dir), files_pk(&sources));
    // Parts without a receipt: a real sort there refuses, a forced copy replaces them.
    let mut c = sort_output(&root);
    c.arg("--view-root").arg(&vr);
    expect_code(c, "STREAM_VIEW_PARTIAL_EXISTS");
    let mut c = sort_output(&root);
    c.arg("--view-root")
        .arg(&vr)
        .args(["--copy-floor", "--force"]);
    run_json(c);
    assert_no_leftovers(&vr);
    // Over a complete view the floor refuses with a usage error, not "partial", and leaves
    // the view as it was.
    let mut c = sort_output(&root);
    c.arg("--view-root").arg(&vr).arg("--force");
    run_json(c);
    let receipt = std::fs::read(dir.join(RECEIPT_FILE)).unwrap();
    let mut c = sort_output(&root);
    c.arg("--view-root").arg(&vr).arg("--copy-floor");
    expect_code(c, "INVALID_ARGUMENT");
    assert_eq!(std::fs::read(dir.join(RECEIPT_FILE)).unwrap(), receipt);
}

/// A dataset of hand-made files for the error cases: `files` is (name, columns).
fn dataset(dir: &Path, files: Vec<(&str, Vec<(&str, arrow_array::ArrayRef)>)>) -> String {
    for (name, cols) in files {
        write_parquet(&dir.join(name), cols);
    }
    format!("{}/*.parquet", dir.display())
}

fn good(n: usize) -> Vec<(&'static str, arrow_array::ArrayRef)> {
    let ts: Vec<String> = (0..n)
        .map(|i| format!("2026-01-05T08:30:{:02}.000000Z", i % 60))
        .collect();
    vec![
        ("flow_id", ints((0..n as i64).collect())),
        (
            "ts_utc",
            strs(ts.iter().map(|s| Some(s.as_str())).collect()),
        ),
    ]
}

/// Run `sort --input pattern --output-id x --view-root vr`, expect `code`; nothing may be
/// published and nothing left behind.
fn expect_input_error(pattern: &str, vr: &Path, extra: &[&str], code: &str) -> String {
    let mut c = sort();
    c.args(["--input", pattern, "--output-id", "x", "--view-root"])
        .arg(vr)
        .args(extra);
    let err = expect_code(c, code);
    assert!(!view_dir(vr, "x").exists(), "nothing published on {code}");
    assert_no_leftovers(vr);
    err
}

#[test]
fn data_errors_have_codes_and_leave_nothing() {
    let d = tempfile::tempdir().unwrap();
    let vr = d.path().join("views");

    let p = dataset(
        &d.path().join("no-ts"),
        vec![("a.parquet", vec![("flow_id", ints(vec![1, 2]))])],
    );
    let err = expect_input_error(&p, &vr, &[], "MISSING_TS_UTC");
    assert!(err.contains("a.parquet"), "{err}");

    let p = dataset(&d.path().join("good"), vec![("a.parquet", good(10))]);
    expect_input_error(&p, &vr, &["--sort-key", "event_time"], "MISSING_SORT_KEY");
    expect_input_error(
        &p,
        &vr,
        &["--sort-key", "flow_id"],
        "SORT_KEY_TYPE_UNSUPPORTED",
    );

    let p = dataset(
        &d.path().join("null"),
        vec![
            ("a.parquet", good(5)),
            (
                "b.parquet",
                vec![
                    ("flow_id", ints(vec![1, 2, 3])),
                    (
                        "ts_utc",
                        strs(vec![
                            Some("2026-01-05T08:30:00Z"),
                            Some("2026-01-05T08:30:01Z"),
                            None,
                        ]),
                    ),
                ],
            ),
        ],
    );
    let err = expect_input_error(&p, &vr, &[], "SORT_KEY_NULL");
    assert!(err.contains("b.parquet") && err.contains("row 2"), "{err}");

    let p = dataset(
        &d.path().join("garbage"),
        vec![(
            "a.parquet",
            vec![
                ("flow_id", ints(vec![1, 2])),
                (
                    "ts_utc",
                    strs(vec![Some("2026-01-05T08:30:00Z"), Some("yesterday")]),
                ),
            ],
        )],
    );
    let err = expect_input_error(&p, &vr, &[], "SORT_KEY_UNPARSEABLE");
    assert!(
        err.contains("a.parquet") && err.contains("row 1") && err.contains("yesterday"),
        "{err}"
    );

    let mut other = good(4);
    other[0] = ("flow_id", strs(vec![Some("x"); 4]));
    let p = dataset(
        &d.path().join("mismatch"),
        vec![("a.parquet", good(4)), ("b.parquet", other)],
    );
    let err = expect_input_error(&p, &vr, &[], "SCHEMA_MISMATCH");
    assert!(
        err.contains("a.parquet") && err.contains("b.parquet"),
        "{err}"
    );

    let p = dataset(
        &d.path().join("empty"),
        vec![("a.parquet", good(0)), ("b.parquet", good(0))],
    );
    expect_input_error(&p, &vr, &[], "STREAM_SORT_OUTPUT_EMPTY");

    // A nested column: the sort can neither carry nor digest it.
    let mut nested = good(3);
    let lists =
        arrow_array::ListArray::from_iter_primitive::<arrow_array::types::Int64Type, _, _>(vec![
            Some(vec![Some(1)]),
            None,
            Some(vec![]),
        ]);
    nested.push(("tags", std::sync::Arc::new(lists)));
    let p = dataset(&d.path().join("nested"), vec![("a.parquet", nested)]);
    let err = expect_input_error(&p, &vr, &[], "SORT_COLUMN_TYPE_UNSUPPORTED");
    assert!(err.contains("a.parquet") && err.contains("tags"), "{err}");

    let nothing = format!("{}/nothing-here/*.parquet", d.path().display());
    expect_input_error(&nothing, &vr, &[], "OUTPUT_PATHS_EMPTY");
    let mut c = sort();
    c.arg("--engine-root")
        .arg(d.path())
        .args(["--output-id", OUTPUT]);
    expect_code(c, "OUTPUT_PATHS_EMPTY");
}

#[test]
fn validation_and_temp_space_failures_publish_nothing() {
    let d = tempfile::tempdir().unwrap();
    let root = engine(d.path(), 30_000, 3);
    let mut c = sort_output(&root);
    c.env("SLUICE_SORT_FAULT", "drop-view-row");
    let err = expect_code(c, "STREAM_SORT_VALIDATION_FAILED");
    assert!(err.contains("row count"), "{err}");
    assert!(!default_view(&root).exists());
    assert_no_leftovers(&view_root(&root));

    let mut c = sort_output(&root);
    c.args(["--memory-limit", "1MiB", "--max-temp-size", "64KiB"]);
    expect_code(c, "SORT_TEMP_FULL");
    assert!(!default_view(&root).exists());
    assert_no_leftovers(&view_root(&root));

    let mut c = sort_output(&root);
    c.args(["--memory-limit", "lots"]);
    expect_code(c, "INVALID_ARGUMENT");
}

#[test]
fn receipt_rules_fail_closed_and_force_rebuilds() {
    let d = tempfile::tempdir().unwrap();
    let root = engine(d.path(), 20_000, 3);
    run_json(sort_output(&root));
    let dir = default_view(&root);
    let good_receipt = fs::read(dir.join(RECEIPT_FILE)).unwrap();
    let manifest = fs::read(dir.join(MANIFEST_FILE)).unwrap();

    // A receipt for other sources: mismatch, until --force replaces the view.
    let mut r: serde_json::Value = serde_json::from_slice(&good_receipt).unwrap();
    r["source_locator_digest"] = "0".repeat(64).into();
    fs::write(dir.join(RECEIPT_FILE), serde_json::to_vec(&r).unwrap()).unwrap();
    let err = expect_code(sort_output(&root), "STREAM_RECEIPT_MISMATCH");
    assert!(err.contains("source_locator_digest"), "{err}");
    let mut c = sort_output(&root);
    c.arg("--force");
    let j = run_json(c);
    assert_eq!(j["views"][0]["status"], "built");
    assert_eq!(
        fs::read(dir.join(RECEIPT_FILE)).unwrap().len(),
        good_receipt.len()
    );

    // A part that does not match the receipt: mismatch too.
    let first = parts(&dir)[0].clone();
    fs::write(&first, b"not parquet").unwrap();
    let err = expect_code(sort_output(&root), "STREAM_RECEIPT_MISMATCH");
    assert!(err.contains("bytes") || err.contains("missing"), "{err}");

    // A manifest without a receipt.
    fs::remove_file(dir.join(RECEIPT_FILE)).unwrap();
    expect_code(sort_output(&root), "STREAM_RECEIPT_MISSING");

    // Parquet without receipt or manifest.
    fs::remove_file(dir.join(MANIFEST_FILE)).unwrap();
    expect_code(sort_output(&root), "STREAM_VIEW_PARTIAL_EXISTS");
    let _ = manifest;

    let mut c = sort_output(&root);
    c.arg("--force");
    run_json(c);
    let j = run_json(sort_output(&root));
    assert_eq!(j["views"][0]["status"], "skipped");
    assert_no_leftovers(&view_root(&root));
}

#[test]
fn a_second_builder_of_the_same_view_is_refused_while_the_first_runs() {
    let d = tempfile::tempdir().unwrap();
    let root = engine(d.path(), 20_000, 2);
    let vr = view_root(&root);
    // The first build holds the view lock and sleeps after phase 1 (killed below, so the
    // long pause costs nothing).
    let mut first = sort_output(&root);
    first
        .env("SLUICE_SORT_FAULT", "pause-after-phase1=120000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = first.spawn().unwrap();
    // Its staging directory exists once it holds the lock.
    let staging = || {
        fs::read_dir(&vr).ok().is_some_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().contains(".staging-"))
        })
    };
    let started = std::time::Instant::now();
    while !staging() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the first build ended early"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the first build never staged"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let err = expect_code(sort_output(&root), "STREAM_VIEW_LOCKED");
    assert!(err.contains("lock"), "{err}");
    child.kill().unwrap();
    child.wait().unwrap();
    // The lock died with its holder: a rerun builds the whole view and cleans up.
    let j = run_json(sort_output(&root));
    assert_eq!(j["views"][0]["status"], "built");
    assert_eq!(j["views"][0]["rows"], 20_000);
    assert_no_leftovers(&vr);
}
