//! Sort keys of every supported kind and source column types that must survive unchanged:
//! native timestamps of each unit (with and without zone), dates, strings with offsets,
//! `LargeUtf8`, `Utf8View` and dictionary-typed columns; plus the receipt's part digests and
//! multi-level merges.

mod common;

use std::fs::{self, File};
use std::path::Path;
use std::sync::Arc;

use arrow_array::types::Int8Type;
use arrow_array::{
    ArrayRef, Date32Array, DictionaryArray, Int64Array, LargeStringArray, RecordBatch, StringArray,
    StringViewArray, TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray,
};
use arrow_schema::SchemaRef;
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use sluice_sort::key::nanos_to_micros;
use sluice_sort::{build_view, NoProgress, SortConfig, SortSource, ViewReport};
use sluice_storage::view::{view_dir, StreamSortReceipt, RECEIPT_FILE};

fn write(path: &Path, batch: &RecordBatch) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(7))
        .build();
    let mut w =
        ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

fn sort(data: &Path, views: &Path, key: &str, memory: u64) -> ViewReport {
    let pattern = format!("{}/*.parquet", data.display());
    let source = SortSource::glob(&pattern, "t", views, None).unwrap();
    let config = SortConfig {
        sort_key: key.to_string(),
        memory_limit: memory,
        row_group_rows: 5,
        part_size: 2048,
        force: true,
        ..SortConfig::default()
    };
    build_view(&config, &source, &NoProgress).unwrap()
}

fn file_schema(path: &Path) -> SchemaRef {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .schema()
        .clone()
}

/// Sort `files` (batches with an `id` column and key column `key`) and compare with the
/// oracle under the time conversion `time`; also check the view's schema is the source's.
fn check(files: Vec<RecordBatch>, key: &str, time: impl Fn(&ArrayRef, usize) -> i64) {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let mut paths = Vec::new();
    for (i, b) in files.iter().enumerate() {
        let p = data.join(format!("f{i}.parquet"));
        write(&p, b);
        paths.push(p);
    }
    let expected = oracle(&paths, key, time);
    for memory in [1 << 30, 64 << 10] {
        let views = d.path().join(format!("v{memory}"));
        let report = sort(&data, &views, key, memory);
        let dir = view_dir(&views, "t");
        assert_eq!(report.rows as usize, expected.len());
        assert_eq!(view_rows(&dir), expected, "key {key}, memory {memory}");
        for part in parts(&dir) {
            assert_eq!(
                file_schema(&part).as_ref(),
                file_schema(&paths[0]).as_ref(),
                "the view keeps the source's columns and types"
            );
        }
    }
}

fn ids(n: usize, base: i64) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(
        (0..n as i64).map(|i| base + i),
    ))
}

#[test]
fn nanosecond_timestamps_with_zone_round_to_micros() {
    let vals = [
        vec![1499i64, 1500, -1500, 2499, 500, 0, 7_000_000_123],
        vec![1500, 1501, -999, -1001, 2500, 499],
    ];
    let files = vals
        .iter()
        .enumerate()
        .map(|(f, v)| {
            let ts: ArrayRef =
                Arc::new(TimestampNanosecondArray::from(v.clone()).with_timezone("UTC"));
            RecordBatch::try_from_iter([("id", ids(v.len(), f as i64 * 100)), ("ts", ts)]).unwrap()
        })
        .collect();
    check(files, "ts", |a, i| {
        nanos_to_micros(
            a.as_any()
                .downcast_ref::<TimestampNanosecondArray>()
                .unwrap()
                .value(i),
        )
    });
}

#[test]
fn millisecond_second_and_date_keys() {
    let ms: Vec<RecordBatch> = (0..3)
        .map(|f| {
            let v: Vec<i64> = (0..20)
                .map(|i| ((i * 7 + f * 3) % 11) as i64 * 1000)
                .collect();
            let ts: ArrayRef = Arc::new(TimestampMillisecondArray::from(v));
            RecordBatch::try_from_iter([("id", ids(20, f as i64 * 100)), ("ts", ts)]).unwrap()
        })
        .collect();
    check(ms, "ts", |a, i| {
        a.as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap()
            .value(i)
            * 1000
    });
    let s: Vec<RecordBatch> = (0..2)
        .map(|f| {
            let v: Vec<i64> = (0..15).map(|i| ((i * 5 + f) % 6) as i64 - 3).collect();
            let ts: ArrayRef = Arc::new(TimestampSecondArray::from(v).with_timezone("+02:00"));
            RecordBatch::try_from_iter([("id", ids(15, f as i64 * 100)), ("ts", ts)]).unwrap()
        })
        .collect();
    check(s, "ts", |a, i| {
        a.as_any()
            .downcast_ref::<TimestampSecondArray>()
            .unwrap()
            .value(i)
            * 1_000_000
    });
    let days: Vec<RecordBatch> = (0..2)
        .map(|f| {
            let v: Vec<i32> = (0..12).map(|i| (i * 3 + f) % 4 + 20_000).collect();
            let d: ArrayRef = Arc::new(Date32Array::from(v));
            RecordBatch::try_from_iter([("id", ids(12, f as i64 * 100)), ("day", d)]).unwrap()
        })
        .collect();
    check(days, "day", |a, i| {
        a.as_any().downcast_ref::<Date32Array>().unwrap().value(i) as i64 * 86_400_000_000
    });
}

#[test]
fn string_offsets_sort_as_utc_instants() {
    // 10:30+02:00 is 08:30Z: the same instant, so file and row order decide.
    let a = StringArray::from(vec![
        "2026-01-05T10:30:13+02:00",
        "2026-01-05T08:30:14Z",
        "2026-01-05T03:30:12-05:00",
        "2026-01-05 08:30:13",
    ]);
    let b = StringArray::from(vec![
        "2026-01-05T08:30:13.000000Z",
        "2026-01-05T09:30:12+0100",
    ]);
    let files = vec![
        RecordBatch::try_from_iter([("id", ids(4, 0)), ("ts_utc", Arc::new(a) as ArrayRef)])
            .unwrap(),
        RecordBatch::try_from_iter([("id", ids(2, 100)), ("ts_utc", Arc::new(b) as ArrayRef)])
            .unwrap(),
    ];
    check(files, "ts_utc", string_time);
}

#[test]
fn large_view_and_dictionary_string_types_survive() {
    let files = (0..3)
        .map(|f| {
            let n = 9;
            let ts: Vec<String> = (0..n)
                .map(|i| format!("2026-01-05T08:30:{:02}.000000Z", (i * 7 + f * 2) % 10))
                .collect();
            let large: ArrayRef = Arc::new(LargeStringArray::from_iter_values(
                ts.iter().map(|s| format!("large-{s}")),
            ));
            let view: ArrayRef =
                Arc::new(StringViewArray::from_iter_values((0..n).map(|i| {
                    format!("a view value long enough to be out of line {i}")
                })));
            let dict: ArrayRef = Arc::new(
                (0..n)
                    .map(|i| Some(["x", "y", "z"][i % 3]))
                    .collect::<DictionaryArray<Int8Type>>(),
            );
            RecordBatch::try_from_iter([
                ("id", ids(n, f as i64 * 100)),
                ("ts_utc", Arc::new(StringArray::from(ts)) as ArrayRef),
                ("large", large),
                ("view", view),
                ("dict", dict),
            ])
            .unwrap()
        })
        .collect();
    check(files, "ts_utc", string_time);
}

#[test]
fn receipt_part_digests_match_the_files_and_deep_merges_are_reported() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let mut spec = DatasetSpec::new(5, vec![3000; 8]);
    spec.row_group_rows = 300;
    // Some chunks carry their key strings, others regenerate them: the intermediate
    // merges mix both kinds of source.
    spec.odd_time_forms = true;
    let files = generate(&data, &spec);
    let views = d.path().join("views");
    let pattern = format!("{}/*.parquet", data.display());
    let source = SortSource::glob(&pattern, "t", &views, None).unwrap();
    let config = SortConfig {
        memory_limit: 300 << 10,
        part_size: 64 << 10,
        row_group_rows: 1000,
        threads: Some(1),
        ..SortConfig::default()
    };
    let report = build_view(&config, &source, &NoProgress).unwrap();
    assert!(
        report.merge_levels > 1,
        "tiny memory forces merge levels: {report:?}"
    );
    let dir = view_dir(&views, "t");
    let receipt: StreamSortReceipt =
        serde_json::from_slice(&fs::read(dir.join(RECEIPT_FILE)).unwrap()).unwrap();
    assert!(receipt.parts.len() > 1);
    let mut rows = 0;
    for p in &receipt.parts {
        let bytes = fs::read(dir.join(&p.name)).unwrap();
        assert_eq!(bytes.len() as u64, p.bytes);
        assert_eq!(p.blake3, blake3::hash(&bytes).to_hex().to_string());
        rows += p.row_count;
        assert!(p.min_ts_utc <= p.max_ts_utc);
    }
    assert_eq!(rows, 24_000);
    // Parts are in time order across their boundaries.
    for w in receipt.parts.windows(2) {
        assert!(w[0].max_ts_utc <= w[1].min_ts_utc);
    }
    assert!(view_rows(&dir) == oracle(&files, "ts_utc", string_time));
}

#[test]
fn constant_columns_are_planned_from_statistics_and_regenerated() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let mut spec = DatasetSpec::new(8, vec![500, 700]);
    spec.encoding = Encoding::Plain;
    let files = generate(&data, &spec);
    let plan = sluice_sort::plan::SourcePlan::open("t", &files, "ts_utc").unwrap();
    let repr = |name: &str| {
        let c = plan.columns.iter().find(|c| c.name == name).unwrap();
        match c.repr {
            sluice_sort::repr::Repr::Constant(_) => "constant",
            sluice_sort::repr::Repr::Codes(_) => "codes",
            sluice_sort::repr::Repr::Plain => "plain",
        }
    };
    for pin in ["seed", "manifest_fingerprint", "scenario_id"] {
        assert_eq!(repr(pin), "constant", "{pin}");
    }
    assert_eq!(repr("flow_id"), "plain");
    assert_eq!(repr("campaign_id"), "plain", "nullable: never constant");
    assert!(plan.key_text, "a Utf8 key is regenerated from the key");
    assert_eq!(
        plan.work_schema.fields().len(),
        plan.schema.fields().len() - 4,
        "constants and the key text are not carried"
    );
    assert_eq!(
        plan.text_schema.fields().len(),
        plan.work_schema.fields().len() + 1
    );
    let expected = oracle(&files, "ts_utc", string_time);
    let views = d.path().join("v");
    sort(&data, &views, "ts_utc", 64 << 10);
    assert_eq!(view_rows(&view_dir(&views, "t")), expected);

    // Every column constant, the key included: order is file, then row.
    let only = d.path().join("only");
    for f in 0..2 {
        let ts: ArrayRef = Arc::new(StringArray::from(vec!["2026-01-05T08:30:13Z"; 3]));
        let b = RecordBatch::try_from_iter([("ts_utc", ts)]).unwrap();
        write(&only.join(format!("f{f}.parquet")), &b);
    }
    let report = sort(&only, &d.path().join("v2"), "ts_utc", 1 << 30);
    assert_eq!(report.rows, 6);
}
