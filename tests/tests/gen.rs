//! `sluice gen`, end to end: the binary writes a run root whose files follow the contract
//! (schemas, hive layout, pins, key order, unsorted time with ties across files, nulls,
//! zstd row groups), byte-identically for the same arguments, and refuses to overwrite
//! existing data without `--force`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use arrow_array::{Array, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::ParquetMetaData;
use sluice_storage::layout::{discover_output, EngineRunReceipt};
use sluice_storage::outputs::{OutputSpec, Presence};
use sluice_tests::{output, sluice, stderr, stdout};

const DEFAULT_OUTPUTS: [&str; 4] = [
    "s3_event_stream_with_fraud_6B",
    "arrival_events_5B",
    "s1_arrival_entities_6B",
    "s3_flow_anchor_with_fraud_6B",
];

/// Run `sluice [--json] gen --out DIR ARGS...`.
fn gen(out: &Path, json: bool, args: &[&str]) -> std::process::Output {
    let mut c = sluice!();
    if json {
        c.arg("--json");
    }
    c.arg("gen").arg("--out").arg(out).args(args);
    output(c)
}

fn gen_ok(out: &Path, json: bool, args: &[&str]) -> String {
    let o = gen(out, json, args);
    assert!(o.status.success(), "gen failed: {}", stderr(&o));
    stdout(&o)
}

/// Every regular file under `root`, by relative path.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn read(path: &Path) -> (SchemaRef, Vec<RecordBatch>, ParquetMetaData) {
    let b = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(path).unwrap()).unwrap();
    let meta = b.metadata().as_ref().clone();
    let schema = b.schema().clone();
    let batches = b.build().unwrap().map(|r| r.unwrap()).collect();
    (schema, batches, meta)
}

fn ints(batches: &[RecordBatch], col: &str) -> Vec<Option<i64>> {
    let mut out = Vec::new();
    for b in batches {
        let a = b.column_by_name(col).unwrap();
        let a = a.as_any().downcast_ref::<Int64Array>().unwrap();
        out.extend((0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i))));
    }
    out
}

fn strs(batches: &[RecordBatch], col: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in batches {
        let a = b.column_by_name(col).unwrap();
        let a = a.as_any().downcast_ref::<StringArray>().unwrap();
        out.extend((0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i).to_string())));
    }
    out
}

fn bools(batches: &[RecordBatch], col: &str) -> Vec<bool> {
    let mut out = Vec::new();
    for b in batches {
        let a = b.column_by_name(col).unwrap();
        let a = a.as_any().downcast_ref::<BooleanArray>().unwrap();
        out.extend((0..a.len()).map(|i| a.value(i)));
    }
    out
}

/// The contract's schema restricted to the columns the file has: every required column
/// must be there, nothing outside the catalog, catalog order, catalog types and nullability.
fn assert_schema_matches_contract(spec: &OutputSpec, got: &SchemaRef, file: &Path) {
    let full = spec.arrow_schema(true);
    let present: HashSet<&str> = got.fields().iter().map(|f| f.name().as_str()).collect();
    for c in spec.all_columns() {
        if c.presence != Presence::Optional {
            assert!(
                present.contains(c.name),
                "{} lacks {}",
                file.display(),
                c.name
            );
        }
    }
    let expected: Vec<_> = full
        .fields()
        .iter()
        .filter(|f| present.contains(f.name().as_str()))
        .cloned()
        .collect();
    assert_eq!(
        expected.len(),
        got.fields().len(),
        "{} has unknown columns",
        file.display()
    );
    for (e, g) in expected.iter().zip(got.fields().iter()) {
        assert_eq!(
            (e.name(), e.data_type(), e.is_nullable()),
            (g.name(), g.data_type(), g.is_nullable()),
            "{}",
            file.display()
        );
    }
}

fn is_utc_text(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 27
        && b[10] == b'T'
        && b[19] == b'.'
        && b[26] == b'Z'
        && b[20..26].iter().all(u8::is_ascii_digit)
        && sluice_storage::timefmt::parse_rfc3339_micros(s).is_some()
}

#[test]
fn same_arguments_give_byte_identical_runs() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    gen_ok(a.path(), false, &["--rows", "200000", "--seed", "7"]);
    gen_ok(b.path(), true, &["--rows", "200000", "--seed", "7"]);
    let (ta, tb) = (tree(a.path()), tree(b.path()));
    let parts = ta
        .keys()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"));
    assert!(parts.count() >= 8 + 3, "too few files: {:?}", ta.keys());
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (path, bytes) in &ta {
        assert!(
            tb[path] == *bytes,
            "{} differs between runs",
            path.display()
        );
    }
}

#[test]
fn generated_files_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let summary: serde_json::Value =
        serde_json::from_str(&gen_ok(root, true, &["--rows", "200000", "--seed", "7"])).unwrap();
    let receipt = EngineRunReceipt::read(root).unwrap();
    assert_eq!(receipt.seed, 7);
    assert_eq!(
        summary["pins"]["manifest_fingerprint"],
        receipt.manifest_fingerprint
    );
    assert!(summary["elapsed_secs"].as_f64().unwrap() > 0.0);
    assert!(summary["rows_per_sec"].as_f64().unwrap() > 0.0);
    let outs = summary["outputs"].as_array().unwrap();
    let ids: Vec<&str> = outs
        .iter()
        .map(|o| o["output_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, DEFAULT_OUTPUTS);
    let mut total = 0;

    for o in outs {
        let spec = OutputSpec::get(o["output_id"].as_str().unwrap()).unwrap();
        let files = discover_output(root, spec.id).unwrap();
        assert_eq!(files.len() as u64, o["files"].as_u64().unwrap());
        assert!(files[0].starts_with(root.join(spec.partition_dir(&receipt.pins()))));
        let bytes: u64 = files.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
        assert_eq!(bytes, o["bytes"].as_u64().unwrap());
        // ts_utc -> (files it appears in, rows), for ties across files.
        let mut ts_files: HashMap<String, (HashSet<usize>, u64)> = HashMap::new();
        let mut rows = 0u64;
        for (k, f) in files.iter().enumerate() {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(name, format!("part-{k:05}.parquet"));
            let (schema, batches, meta) = read(f);
            assert_schema_matches_contract(spec, &schema, f);
            assert!(
                meta.num_row_groups() >= 3,
                "{name}: {}",
                meta.num_row_groups()
            );
            for rg in meta.row_groups() {
                for c in rg.columns() {
                    assert!(matches!(c.compression(), Compression::ZSTD(_)), "{name}");
                    assert!(c.statistics().is_some(), "{name}: no statistics");
                }
            }
            // Rows in primary-key order.
            let keys: Vec<Vec<Option<i64>>> =
                spec.primary_key.iter().map(|k| ints(&batches, k)).collect();
            let n = keys[0].len();
            let key = |i: usize| keys.iter().map(|k| k[i].unwrap()).collect::<Vec<i64>>();
            assert!(
                (1..n).all(|i| key(i - 1) < key(i)),
                "{name} not in key order"
            );
            // Time: platform text, unsorted within the file.
            let ts: Vec<String> = strs(&batches, "ts_utc")
                .into_iter()
                .map(Option::unwrap)
                .collect();
            assert!(ts.iter().all(|t| is_utc_text(t)), "{name}: bad ts_utc");
            assert!(
                ts.windows(2).any(|w| w[1] < w[0]),
                "{name}: ts_utc is sorted"
            );
            for t in ts {
                let e = ts_files.entry(t).or_default();
                e.0.insert(k);
                e.1 += 1;
            }
            // Pins equal the receipt on every row.
            assert!(ints(&batches, "seed")
                .iter()
                .all(|s| *s == Some(receipt.seed)));
            for (col, want) in [
                ("manifest_fingerprint", &receipt.manifest_fingerprint),
                ("parameter_hash", &receipt.parameter_hash),
                ("scenario_id", &receipt.scenario_id),
            ] {
                assert!(
                    strs(&batches, col).iter().all(|v| v.as_ref() == Some(want)),
                    "{col}"
                );
            }
            match spec.id {
                "s3_event_stream_with_fraud_6B" | "s3_flow_anchor_with_fraud_6B" => {
                    let campaign = strs(&batches, "campaign_id");
                    let fraud = bools(&batches, "fraud_flag");
                    assert!(
                        campaign.iter().any(Option::is_none),
                        "{name}: no null campaign"
                    );
                    assert!(campaign.iter().zip(&fraud).all(|(c, f)| c.is_none() || *f));
                }
                "arrival_events_5B" => {
                    let local = strs(&batches, "ts_local_primary");
                    assert!(local
                        .iter()
                        .flatten()
                        .all(|t| t.len() == 26 && !t.ends_with('Z')));
                    let (site, edge) = (ints(&batches, "site_id"), ints(&batches, "edge_id"));
                    assert!(site.iter().any(Option::is_none) && edge.iter().any(Option::is_none));
                    assert!(site.iter().any(Option::is_some) && edge.iter().any(Option::is_some));
                }
                _ => {}
            }
            rows += n as u64;
        }
        assert_eq!(rows, o["rows"].as_u64().unwrap(), "{}", spec.id);
        total += rows;
        if spec.id == "s3_event_stream_with_fraud_6B" {
            assert_eq!(rows, 200_000);
            let tied: u64 = ts_files
                .values()
                .filter(|(f, _)| f.len() > 1)
                .map(|e| e.1)
                .sum();
            assert!(
                tied * 20 > rows,
                "only {tied} of {rows} rows tie across files"
            );
        }
    }
    assert_eq!(total, summary["total_rows"].as_u64().unwrap());
}

#[test]
fn existing_output_is_refused_without_force() {
    let dir = tempfile::tempdir().unwrap();
    gen_ok(dir.path(), false, &["--rows", "5000"]);
    let o = gen(dir.path(), false, &["--rows", "5000"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.starts_with("error[GEN_OUTPUT_EXISTS]: "), "{err}");
    assert!(err.contains("--force"), "{err}");
    let human = gen_ok(dir.path(), false, &["--rows", "5000", "--force"]);
    assert!(human.contains("s3_event_stream_with_fraud_6B") && human.contains("total"));
}

#[test]
fn another_seed_gives_other_data() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    gen_ok(
        a.path(),
        false,
        &["--rows", "20000", "--seed", "7", "--files", "2"],
    );
    gen_ok(
        b.path(),
        false,
        &["--rows", "20000", "--seed", "8", "--files", "2"],
    );
    let (ra, rb) = (
        EngineRunReceipt::read(a.path()).unwrap(),
        EngineRunReceipt::read(b.path()).unwrap(),
    );
    assert_ne!(ra.manifest_fingerprint, rb.manifest_fingerprint);
    let id = "s3_event_stream_with_fraud_6B";
    let (fa, fb) = (
        discover_output(a.path(), id).unwrap(),
        discover_output(b.path(), id).unwrap(),
    );
    let (ta, tb) = (
        strs(&read(&fa[0]).1, "ts_utc"),
        strs(&read(&fb[0]).1, "ts_utc"),
    );
    assert_ne!(ta, tb);
}

#[test]
fn baseline_outputs_and_row_group_override() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = "s2_event_stream_baseline_6B,s2_flow_anchor_baseline_6B";
    let args = [
        "--rows",
        "9000",
        "--files",
        "3",
        "--outputs",
        outputs,
        "--row-group-rows",
        "1000",
    ];
    let summary: serde_json::Value =
        serde_json::from_str(&gen_ok(dir.path(), true, &args)).unwrap();
    let receipt = EngineRunReceipt::read(dir.path()).unwrap();
    assert_eq!(receipt.outputs, outputs.split(',').collect::<Vec<_>>());
    for o in summary["outputs"].as_array().unwrap() {
        let spec = OutputSpec::get(o["output_id"].as_str().unwrap()).unwrap();
        for f in discover_output(dir.path(), spec.id).unwrap() {
            let (schema, _, meta) = read(&f);
            assert_eq!(schema, spec.arrow_schema(false));
            let expected = (meta.file_metadata().num_rows() as usize).div_ceil(1000);
            assert_eq!(meta.num_row_groups(), expected);
        }
    }
}

#[test]
fn bad_arguments_fail_with_codes() {
    let dir = tempfile::tempdir().unwrap();
    let o = gen(dir.path(), false, &["--outputs", "nope"]);
    assert!(
        stderr(&o).starts_with("error[UNKNOWN_OUTPUT_ID]"),
        "{}",
        stderr(&o)
    );
    let o = gen(dir.path(), false, &["--rows", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("error[INVALID_ARGUMENT]"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("run_receipt.json").exists());
}
