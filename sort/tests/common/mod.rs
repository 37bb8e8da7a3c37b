//! Shared fixtures of the sort's integration tests: a seeded generator of parquet datasets
//! shaped like the platform's event streams (every column type the contracts use), a reader
//! of views, and the oracle (a plain `sort_by` of the same rows).

#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use sluice_storage::timefmt::{format_rfc3339_micros, parse_rfc3339_micros};

/// splitmix64: a small seeded PRNG (no `rand` in this workspace).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// How string columns are encoded in the generated files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The writer's default: dictionary pages (the sort carries them as codes).
    Dictionary,
    /// Dictionary disabled: plain pages (the sort carries decoded strings).
    Plain,
    /// Alternating per file: the sort must treat the columns as plain.
    Mixed,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct DatasetSpec {
    pub seed: u64,
    /// Rows per file (0 makes an empty file).
    pub file_rows: Vec<usize>,
    pub row_group_rows: usize,
    /// Distinct time values (small = many ties).
    pub distinct_times: u64,
    pub encoding: Encoding,
    /// Odd-numbered files write about one `ts_utc` in 400 in another accepted form of the
    /// same instant (offsets, a space, no zone, 7 fraction digits, `z`): those chunks carry
    /// their strings through the sort instead of regenerating them from the key.
    pub odd_time_forms: bool,
}

impl DatasetSpec {
    pub fn new(seed: u64, file_rows: Vec<usize>) -> Self {
        DatasetSpec {
            seed,
            file_rows,
            row_group_rows: 500,
            distinct_times: 5_000,
            encoding: Encoding::Dictionary,
            odd_time_forms: false,
        }
    }
}

/// The event-stream schema of the fixtures: every type the contracts use, plus nullable
/// columns of each kind.
pub fn event_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("flow_id", DataType::Int64, false),
        Field::new("event_seq", DataType::Int64, false),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("ts_utc", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("fraud_flag", DataType::Boolean, false),
        Field::new("campaign_id", DataType::Utf8, true),
        Field::new("site_id", DataType::Int64, true),
        Field::new("note", DataType::Utf8, true),
        Field::new("seed", DataType::Int64, false),
        Field::new("manifest_fingerprint", DataType::Utf8, false),
        Field::new("scenario_id", DataType::Utf8, false),
    ]))
}

const EVENT_TYPES: [&str; 5] = [
    "AUTH_REQUEST",
    "AUTH_RESPONSE",
    "CLEARING",
    "REFUND",
    "CHARGEBACK",
];

/// A batch of `n` event rows.
pub fn event_batch(rng: &mut Rng, n: usize, first_flow: i64, distinct_times: u64) -> RecordBatch {
    let base = parse_rfc3339_micros("2026-01-05T00:00:00Z").unwrap();
    let mut flow = Vec::with_capacity(n);
    let mut seq = Vec::with_capacity(n);
    let mut etype = Vec::with_capacity(n);
    let mut ts = Vec::with_capacity(n);
    let mut amount = Vec::with_capacity(n);
    let mut fraud = Vec::with_capacity(n);
    let mut campaign = Vec::with_capacity(n);
    let mut site = Vec::with_capacity(n);
    let mut note = Vec::with_capacity(n);
    for i in 0..n {
        flow.push(first_flow + (i / 3) as i64);
        seq.push((i % 3) as i64);
        etype.push(EVENT_TYPES[rng.below(5) as usize]);
        ts.push(format_rfc3339_micros(
            base + rng.below(distinct_times) as i64 * 1_000_003,
        ));
        amount.push(rng.below(100_000) as f64 / 100.0);
        let is_fraud = rng.chance(10);
        fraud.push(is_fraud);
        campaign.push(is_fraud.then(|| format!("camp-{}", rng.below(4))));
        site.push((!rng.chance(30)).then(|| rng.below(1000) as i64));
        note.push((!rng.chance(50)).then(|| format!("note {}", rng.next())));
    }
    RecordBatch::try_new(
        event_schema(),
        vec![
            Arc::new(Int64Array::from(flow)),
            Arc::new(Int64Array::from(seq)),
            Arc::new(StringArray::from(etype)),
            Arc::new(StringArray::from(ts)),
            Arc::new(Float64Array::from(amount)),
            Arc::new(BooleanArray::from(fraud)),
            Arc::new(StringArray::from(campaign)),
            Arc::new(Int64Array::from(site)),
            Arc::new(StringArray::from(note)),
            Arc::new(Int64Array::from(vec![42i64; n])),
            Arc::new(StringArray::from(vec!["f".repeat(64); n])),
            Arc::new(StringArray::from(vec!["baseline_v1"; n])),
        ],
    )
    .unwrap()
}

/// `batch` with about one `ts_utc` in 400 rewritten in another form of the same instant.
pub fn with_odd_time_forms(batch: &RecordBatch, rng: &mut Rng) -> RecordBatch {
    let k = batch.schema().index_of("ts_utc").unwrap();
    let ts = batch.column(k).as_string::<i32>();
    let odd: Vec<String> = (0..ts.len())
        .map(|i| {
            let s = ts.value(i).to_string();
            if rng.below(400) != 0 {
                return s;
            }
            let t = parse_rfc3339_micros(&s).unwrap();
            let zoneless = &s[..s.len() - 1];
            match rng.below(5) {
                0 => zoneless.replacen('T', " ", 1),
                1 => format!("{zoneless}+00:00"),
                2 => format!("{}+02:00", &format_rfc3339_micros(t + 7_200_000_000)[..26]),
                3 => format!("{zoneless}0Z"),
                _ => format!("{zoneless}z"),
            }
        })
        .collect();
    let mut columns = batch.columns().to_vec();
    columns[k] = Arc::new(StringArray::from(odd));
    RecordBatch::try_new(batch.schema(), columns).unwrap()
}

/// Write one parquet file of `batch` with `rg_rows` rows per row group.
pub fn write_parquet(path: &Path, batch: &RecordBatch, rg_rows: usize, dictionary: bool) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rg_rows.max(1)))
        .set_dictionary_enabled(dictionary);
    if dictionary {
        // A high-cardinality column still falls back to plain pages mid-chunk.
        props = props
            .set_dictionary_page_size_limit(2048)
            .set_column_dictionary_enabled(ColumnPath::from("ts_utc"), true);
    }
    let file = File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props.build())).unwrap();
    if batch.num_rows() > 0 {
        w.write(batch).unwrap();
    }
    w.close().unwrap();
}

/// Generate a dataset under `dir` as `part-NNNNN.parquet` files; returns the paths in
/// bytewise order.
pub fn generate(dir: &Path, spec: &DatasetSpec) -> Vec<PathBuf> {
    let mut rng = Rng(spec.seed);
    let mut paths = Vec::new();
    let mut flow = 0i64;
    for (i, &rows) in spec.file_rows.iter().enumerate() {
        let mut batch = event_batch(&mut rng, rows, flow, spec.distinct_times);
        if spec.odd_time_forms && i % 2 == 1 {
            batch = with_odd_time_forms(&batch, &mut rng);
        }
        flow += rows as i64;
        let path = dir.join(format!("part-{i:05}.parquet"));
        let dictionary = match spec.encoding {
            Encoding::Dictionary => true,
            Encoding::Plain => false,
            Encoding::Mixed => i % 2 == 0,
        };
        write_parquet(&path, &batch, spec.row_group_rows, dictionary);
        paths.push(path);
    }
    paths
}

/// Every row of a parquet file, as read.
pub fn read_file(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// One value as text (independent of the digest, for the oracle).
fn cell(a: &dyn Array, i: usize) -> String {
    if a.is_null(i) {
        return "∅".into();
    }
    match a.data_type() {
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Float64 => format!(
            "{:?}",
            a.as_primitive::<arrow_array::types::Float64Type>().value(i)
        ),
        DataType::Boolean => a.as_boolean().value(i).to_string(),
        DataType::Utf8 => format!("{:?}", a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => format!("{:?}", a.as_string::<i64>().value(i)),
        DataType::Dictionary(_, _) => {
            let d = a.as_any_dictionary();
            let k = d.normalized_keys()[i];
            cell(d.values().as_ref(), k)
        }
        other => format!("<{other}>{:?}", a.slice(i, 1)),
    }
}

/// All rows of batches as text lines.
pub fn rows_of(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            let cols: Vec<String> = b.columns().iter().map(|c| cell(c.as_ref(), i)).collect();
            out.push(cols.join("|"));
        }
    }
    out
}

/// The oracle: rows of `files` (bytewise order) sorted by (time, file, row) with a plain
/// `sort_by`; the time column is `key` and parses with `time`.
pub fn oracle(files: &[PathBuf], key: &str, time: impl Fn(&ArrayRef, usize) -> i64) -> Vec<String> {
    let mut rows: Vec<(i64, usize, usize, String)> = Vec::new();
    for (fi, path) in files.iter().enumerate() {
        let mut r = 0usize;
        for b in read_file(path) {
            let k = b.schema().index_of(key).unwrap();
            let text = rows_of(std::slice::from_ref(&b));
            for (i, t) in text.into_iter().enumerate() {
                rows.push((time(b.column(k), i), fi, r, t));
                r += 1;
            }
        }
    }
    rows.sort_by_key(|r| (r.0, r.1, r.2));
    rows.into_iter().map(|r| r.3).collect()
}

/// Time of a `ts_utc` string cell.
pub fn string_time(a: &ArrayRef, i: usize) -> i64 {
    let s = match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => a.as_string::<i64>().value(i).to_string(),
        _ => {
            let d = a.as_any_dictionary();
            d.values()
                .as_string::<i32>()
                .value(d.normalized_keys()[i])
                .to_string()
        }
    };
    parse_rfc3339_micros(&s).unwrap()
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

/// Rows of a view, in order, as text.
pub fn view_rows(view_dir: &Path) -> Vec<String> {
    let batches: Vec<RecordBatch> = parts(view_dir).iter().flat_map(|p| read_file(p)).collect();
    rows_of(&batches)
}

/// Bytes of every part of a view, in order.
pub fn view_bytes(view_dir: &Path) -> Vec<Vec<u8>> {
    parts(view_dir)
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect()
}

/// Names in a directory (sorted), for leftover checks.
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
