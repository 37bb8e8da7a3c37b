//! Whole-generator tests: write small runs, read them back with the parquet crate and check
//! them against the contract and against each other.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;

use super::*;
use crate::layout::discover_output;
use crate::outputs::OutputSpec;

fn cfg(out: &Path, rows: u64) -> GenConfig {
    GenConfig {
        rows,
        files: 4,
        seed: 7,
        ..GenConfig::new(out)
    }
}

fn files_under(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

fn read(path: &Path) -> (Vec<RecordBatch>, parquet::file::metadata::ParquetMetaData) {
    let b = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(path).unwrap()).unwrap();
    let meta = b.metadata().as_ref().clone();
    let batches = b.build().unwrap().map(|r| r.unwrap()).collect();
    (batches, meta)
}

fn ints(batches: &[RecordBatch], col: &str) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column_by_name(col).unwrap();
            let a = a.as_any().downcast_ref::<Int64Array>().unwrap();
            a.values().to_vec()
        })
        .collect()
}

fn strs(batches: &[RecordBatch], col: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column_by_name(col).unwrap();
            let a = a.as_any().downcast_ref::<StringArray>().unwrap();
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn same_config_same_bytes_whatever_the_thread_count() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    pool(1)
        .install(|| generate(&cfg(a.path(), 20_000), &|_| {}))
        .unwrap();
    pool(3)
        .install(|| generate(&cfg(b.path(), 20_000), &|_| {}))
        .unwrap();
    let (fa, fb) = (files_under(a.path()), files_under(b.path()));
    assert!(fa.len() > 4);
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(fb[k] == *v, "{} differs", k.display());
    }
}

#[test]
fn files_follow_the_contract_and_keep_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let total = std::sync::atomic::AtomicU64::new(0);
    let c = GenConfig {
        outputs: crate::outputs::OUTPUTS
            .iter()
            .map(|o| o.id.to_string())
            .collect(),
        ..cfg(dir.path(), 30_000)
    };
    let summary = generate(&c, &|n| {
        total.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(total.into_inner(), summary.total_rows);
    let receipt = EngineRunReceipt::read(dir.path()).unwrap();
    assert_eq!(receipt.pins(), summary.pins);
    let mut anchor_ts: HashMap<i64, String> = HashMap::new();
    let mut first_event_ts: HashMap<i64, String> = HashMap::new();
    for o in &summary.outputs {
        let spec = OutputSpec::get(&o.output_id).unwrap();
        let files = discover_output(dir.path(), spec.id).unwrap();
        assert_eq!(files.len() as u64, o.files);
        let mut rows = 0;
        for f in &files {
            let (batches, meta) = read(f);
            assert_eq!(batches[0].schema(), emitted_schema(spec), "{}", spec.id);
            assert!(
                meta.num_row_groups() >= 3,
                "{} has {}",
                f.display(),
                meta.num_row_groups()
            );
            let chunk = meta.row_group(0).column(0);
            assert!(matches!(chunk.compression(), Compression::ZSTD(_)));
            assert!(chunk.statistics().is_some());
            // Primary-key order inside the file.
            let keys: Vec<Vec<i64>> = spec.primary_key.iter().map(|k| ints(&batches, k)).collect();
            let n = keys[0].len();
            let key = |i: usize| keys.iter().map(|k| k[i]).collect::<Vec<_>>();
            assert!(
                (1..n).all(|i| key(i - 1) < key(i)),
                "{} not in key order",
                f.display()
            );
            let ts = strs(&batches, "ts_utc");
            assert!(
                ts.windows(2).any(|w| w[1] < w[0]),
                "time should be unsorted"
            );
            for (col, want) in [
                ("manifest_fingerprint", &summary.pins.manifest_fingerprint),
                ("parameter_hash", &summary.pins.parameter_hash),
            ] {
                assert!(strs(&batches, col)
                    .iter()
                    .all(|v| v.as_deref() == Some(want)));
            }
            if spec.id == "s3_flow_anchor_with_fraud_6B" {
                for (f, t) in ints(&batches, "flow_id").into_iter().zip(&ts) {
                    anchor_ts.insert(f, t.clone().unwrap());
                }
            }
            if spec.id == "s3_event_stream_with_fraud_6B" {
                let seq = ints(&batches, "event_seq");
                for ((f, s), t) in ints(&batches, "flow_id").into_iter().zip(seq).zip(&ts) {
                    if s == 1 {
                        first_event_ts.insert(f, t.clone().unwrap());
                    }
                }
                assert!(strs(&batches, "campaign_id").iter().any(|c| c.is_none()));
            }
            rows += n as u64;
        }
        assert_eq!(rows, o.rows, "{}", spec.id);
    }
    // One world: each flow's anchor has the time of its first event.
    assert_eq!(anchor_ts.len(), first_event_ts.len());
    assert!(anchor_ts
        .iter()
        .all(|(f, t)| first_event_ts.get(f) == Some(t)));
}

#[test]
fn existing_output_is_refused_unless_forced_and_force_touches_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 2_000);
    generate(&c, &|_| {}).unwrap();
    let err = generate(&c, &|_| {}).unwrap_err();
    assert_eq!(err.code(), "GEN_OUTPUT_EXISTS");
    // A stray temp file and a neighbour that gen does not own.
    let stray = discover_output(dir.path(), "arrival_events_5B").unwrap()[0]
        .with_file_name(".part-00000.parquet.tmp-1-1");
    fs::write(&stray, b"half").unwrap();
    let neighbour = dir.path().join("stream_view/keep.txt");
    fs::create_dir_all(neighbour.parent().unwrap()).unwrap();
    fs::write(&neighbour, b"keep").unwrap();
    let forced = GenConfig { force: true, ..c };
    generate(&forced, &|_| {}).unwrap();
    assert!(!stray.exists());
    assert_eq!(fs::read(&neighbour).unwrap(), b"keep");
    // The receipt alone also counts as existing data.
    let only_receipt = tempfile::tempdir().unwrap();
    fs::write(only_receipt.path().join("run_receipt.json"), b"{}").unwrap();
    let err = generate(&cfg(only_receipt.path(), 100), &|_| {}).unwrap_err();
    assert!(matches!(err, crate::StorageError::GenOutputExists { ref paths } if paths.len() == 1));
}

#[test]
fn another_seed_gives_other_data_and_pins() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sa = generate(&cfg(a.path(), 3_000), &|_| {}).unwrap();
    let sb = generate(
        &GenConfig {
            seed: 8,
            ..cfg(b.path(), 3_000)
        },
        &|_| {},
    )
    .unwrap();
    assert_ne!(sa.pins, sb.pins);
    let fa = discover_output(a.path(), "s3_event_stream_with_fraud_6B").unwrap();
    let fb = discover_output(b.path(), "s3_event_stream_with_fraud_6B").unwrap();
    let (ta, tb) = (
        strs(&read(&fa[0]).0, "ts_utc"),
        strs(&read(&fb[0]).0, "ts_utc"),
    );
    assert_ne!(ta, tb);
}
