//! Writing small stream views directly, for tests and benchmarks that must not depend on the
//! sort: the caller passes batches that are *already in view order*; this writes them as
//! `part-NNNNNN.parquet` files with the given row-group size and a receipt that opens with
//! [`crate::view::open_view`].
//!
//! It is not the sort: the receipt's row-hash sums are zeros (nothing here validates a
//! source), and nothing checks that the rows are in time order.

use std::fs;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sluice_storage::publish::{write_atomic, write_json_atomic};
use sluice_storage::timefmt::{format_rfc3339_micros, now_micros, parse_rfc3339_micros};
use sluice_storage::view::{
    part_name, stream_view_id, view_dir, PartInfo, SideStats, StreamSortReceipt, GRANULARITY_FLAT,
    RECEIPT_FILE,
};

use crate::error::{ReplayError, Result};
use crate::reader::ts_column;

/// How to cut the rows into files.
#[derive(Debug, Clone, Copy)]
pub struct FixtureLayout {
    pub rows_per_part: usize,
    pub rows_per_row_group: usize,
}

impl Default for FixtureLayout {
    fn default() -> Self {
        FixtureLayout {
            rows_per_part: 1 << 20,
            rows_per_row_group: 64 << 10,
        }
    }
}

/// The earliest and latest valid time of a batch.
fn min_max_ts(batch: &RecordBatch, path: &Path) -> Result<(Option<i64>, Option<i64>)> {
    let ts = ts_column(batch, path)?;
    let valid = ts.into_iter().filter(|&t| t != i64::MIN);
    Ok(valid.fold((None, None), |(lo, hi), t| {
        (
            Some(lo.map_or(t, |v: i64| v.min(t))),
            Some(hi.map_or(t, |v: i64| v.max(t))),
        )
    }))
}

fn widen(
    a: (Option<i64>, Option<i64>),
    b: (Option<i64>, Option<i64>),
) -> (Option<i64>, Option<i64>) {
    let lo = match (a.0, b.0) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    let hi = match (a.1, b.1) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    (lo, hi)
}

/// A part being written.
struct OpenPart {
    name: String,
    path: PathBuf,
    writer: ArrowWriter<fs::File>,
    rows: usize,
    range: (Option<i64>, Option<i64>),
}

impl OpenPart {
    fn create(
        dir: &Path,
        index: usize,
        schema: SchemaRef,
        props: &WriterProperties,
    ) -> Result<Self> {
        let name = part_name(index);
        let path = dir.join(&name);
        let file = fs::File::create(&path).map_err(|e| ReplayError::io(&path, e))?;
        let writer = ArrowWriter::try_new(file, schema, Some(props.clone()))
            .map_err(|e| ReplayError::parquet(&path, e))?;
        Ok(OpenPart {
            name,
            path,
            writer,
            rows: 0,
            range: (None, None),
        })
    }

    fn write(&mut self, b: &RecordBatch) -> Result<()> {
        self.writer
            .write(b)
            .map_err(|e| ReplayError::parquet(&self.path, e))?;
        self.rows += b.num_rows();
        self.range = widen(self.range, min_max_ts(b, &self.path)?);
        Ok(())
    }

    fn finish(self) -> Result<PartInfo> {
        self.writer
            .close()
            .map_err(|e| ReplayError::parquet(&self.path, e))?;
        let bytes = fs::metadata(&self.path)
            .map_err(|e| ReplayError::io(&self.path, e))?
            .len();
        Ok(PartInfo {
            name: self.name,
            row_count: self.rows as u64,
            bytes,
            blake3: String::new(),
            min_ts_utc: self.range.0.map(format_rfc3339_micros),
            max_ts_utc: self.range.1.map(format_rfc3339_micros),
        })
    }
}

/// Write `batches` (all with the same schema, already in view order) as the view of
/// `output_id` under `view_root`, replacing any existing one. Returns the view directory.
pub fn write_view(
    view_root: &Path,
    output_id: &str,
    batches: &[RecordBatch],
    layout: FixtureLayout,
) -> Result<PathBuf> {
    if layout.rows_per_part == 0 || layout.rows_per_row_group == 0 {
        return Err(ReplayError::InvalidArgument(
            "fixture sizes must be positive".into(),
        ));
    }
    let dir = view_dir(view_root, output_id);
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| ReplayError::io(&dir, e))?;
    }
    fs::create_dir_all(&dir).map_err(|e| ReplayError::io(&dir, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(layout.rows_per_row_group))
        .build();
    let mut parts: Vec<PartInfo> = Vec::new();
    let mut total = 0u64;
    let mut range = (None, None);
    let mut current: Option<OpenPart> = None;
    for b in batches {
        let mut off = 0;
        while off < b.num_rows() {
            let open = match current.take() {
                Some(p) if p.rows < layout.rows_per_part => p,
                Some(full) => {
                    parts.push(full.finish()?);
                    OpenPart::create(&dir, parts.len(), b.schema(), &props)?
                }
                None => OpenPart::create(&dir, parts.len(), b.schema(), &props)?,
            };
            let n = (b.num_rows() - off).min(layout.rows_per_part - open.rows);
            let slice = b.slice(off, n);
            let mut open = open;
            open.write(&slice)?;
            range = widen(range, min_max_ts(&slice, &dir)?);
            total += n as u64;
            off += n;
            current = Some(open);
        }
    }
    if let Some(p) = current {
        parts.push(p.finish()?);
    }
    let stats = SideStats {
        row_count: total,
        row_hash_sum: "0".repeat(32),
        row_hash_xor: "0".repeat(32),
        min_ts_utc: range.0.map(format_rfc3339_micros),
        max_ts_utc: range.1.map(format_rfc3339_micros),
    };
    let keys = vec!["ts_utc".to_string()];
    let root = view_root.display().to_string();
    let receipt = StreamSortReceipt {
        stream_view_id: stream_view_id(&root, "fixture", output_id, &keys, GRANULARITY_FLAT),
        engine_run_root: root,
        stream_view_root: dir.display().to_string(),
        output_id: output_id.to_string(),
        scenario_id: "fixture".into(),
        sort_keys: keys,
        partition_granularity: GRANULARITY_FLAT.into(),
        source_locator_digest: String::new(),
        source_fingerprint: String::new(),
        source_paths: Vec::new(),
        raw_stats: stats.clone(),
        sorted_stats: stats,
        parts,
        created_utc: format_rfc3339_micros(now_micros()),
        status: "OK".into(),
        writer: serde_json::json!({"fixture": true}),
    };
    write_json_atomic(&dir.join(RECEIPT_FILE), &receipt)?;
    Ok(dir)
}

/// Write only parquet parts (no receipt): the state an interrupted sort leaves behind.
pub fn write_partial_view(view_root: &Path, output_id: &str) -> Result<PathBuf> {
    let dir = view_dir(view_root, output_id);
    fs::create_dir_all(&dir).map_err(|e| ReplayError::io(&dir, e))?;
    write_atomic(&dir.join(part_name(0)), b"PAR1 not really")?;
    Ok(dir)
}

/// Parse a `ts_utc` string the way the reader does (`None` when malformed).
pub fn ts_micros(s: &str) -> Option<i64> {
    parse_rfc3339_micros(s)
}
