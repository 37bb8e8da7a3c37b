//! Writing small stream views directly, for tests and benchmarks that must not depend on the
//! sort: the caller passes batches that are *already in view order*; this writes them as
//! `part-NNNNNN.parquet` files with the given row-group size and a receipt that opens with
//! [`crate::view::open_view`].
//!
//! It is not the sort: the receipt's row-hash sums are zeros (nothing here validates a
//! source), and nothing checks that the rows are in time order.

use std::fs;
use std::path::Path;

use arrow_array::RecordBatch;
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

fn min_max_ts(batch: &RecordBatch, path: &Path) -> Result<(Option<i64>, Option<i64>)> {
    let ts = ts_column(batch, path)?;
    let mut lo: Option<i64> = None;
    let mut hi: Option<i64> = None;
    for t in ts.into_iter().filter(|&t| t != i64::MIN) {
        lo = Some(lo.map_or(t, |v| v.min(t)));
        hi = Some(hi.map_or(t, |v| v.max(t)));
    }
    Ok((lo, hi))
}

/// Write `batches` (all with the same schema, already in view order) as the view of
/// `output_id` under `view_root`, replacing any existing one. Returns the view directory.
pub fn write_view(
    view_root: &Path,
    output_id: &str,
    batches: &[RecordBatch],
    layout: FixtureLayout,
) -> Result<std::path::PathBuf> {
    if layout.rows_per_part == 0 || layout.rows_per_row_group == 0 {
        return Err(ReplayError::InvalidArgument("fixture sizes must be positive".into()));
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
    // Concatenate logically, then cut into parts of rows_per_part rows.
    let mut rows: Vec<RecordBatch> = Vec::new();
    for b in batches {
        let mut off = 0;
        while off < b.num_rows() {
            let n = (b.num_rows() - off).min(layout.rows_per_part);
            rows.push(b.slice(off, n));
            off += n;
        }
    }
    let mut parts: Vec<PartInfo> = Vec::new();
    let mut total = 0u64;
    let (mut lo_all, mut hi_all): (Option<i64>, Option<i64>) = (None, None);
    let mut current: Option<(ArrowWriter<fs::File>, usize, Option<i64>, Option<i64>)> = None;
    let finish = |w: ArrowWriter<fs::File>,
                  n: usize,
                  lo: Option<i64>,
                  hi: Option<i64>,
                  parts: &mut Vec<PartInfo>|
     -> Result<()> {
        let name = part_name(parts.len());
        let path = dir.join(&name);
        w.close().map_err(|e| ReplayError::parquet(&path, e))?;
        let bytes = fs::metadata(&path).map_err(|e| ReplayError::io(&path, e))?.len();
        parts.push(PartInfo {
            name,
            row_count: n as u64,
            bytes,
            blake3: String::new(),
            min_ts_utc: lo.map(format_rfc3339_micros),
            max_ts_utc: hi.map(format_rfc3339_micros),
        });
        Ok(())
    };
    for b in rows {
        if current
            .as_ref()
            .is_some_and(|c| c.1 + b.num_rows() > layout.rows_per_part)
        {
            if let Some((w, n, lo, hi)) = current.take() {
                finish(w, n, lo, hi, &mut parts)?;
            }
        }
        if current.is_none() {
            let path = dir.join(part_name(parts.len()));
            let file = fs::File::create(&path).map_err(|e| ReplayError::io(&path, e))?;
            let w = ArrowWriter::try_new(file, b.schema(), Some(props.clone()))
                .map_err(|e| ReplayError::parquet(&path, e))?;
            current = Some((w, 0, None, None));
        }
        if let Some((w, n, lo, hi)) = current.as_mut() {
            w.write(&b).map_err(|e| ReplayError::parquet(&dir, e))?;
            *n += b.num_rows();
            let (blo, bhi) = min_max_ts(&b, &dir)?;
            *lo = match (*lo, blo) {
                (Some(a), Some(c)) => Some(a.min(c)),
                (a, c) => a.or(c),
            };
            *hi = match (*hi, bhi) {
                (Some(a), Some(c)) => Some(a.max(c)),
                (a, c) => a.or(c),
            };
            lo_all = match (lo_all, blo) {
                (Some(a), Some(c)) => Some(a.min(c)),
                (a, c) => a.or(c),
            };
            hi_all = match (hi_all, bhi) {
                (Some(a), Some(c)) => Some(a.max(c)),
                (a, c) => a.or(c),
            };
        }
        total += b.num_rows() as u64;
    }
    if let Some((w, n, lo, hi)) = current.take() {
        finish(w, n, lo, hi, &mut parts)?;
    }
    let stats = SideStats {
        row_count: total,
        row_hash_sum: "0".repeat(32),
        row_hash_xor: "0".repeat(32),
        min_ts_utc: lo_all.map(format_rfc3339_micros),
        max_ts_utc: hi_all.map(format_rfc3339_micros),
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
pub fn write_partial_view(view_root: &Path, output_id: &str) -> Result<std::path::PathBuf> {
    let dir = view_dir(view_root, output_id);
    fs::create_dir_all(&dir).map_err(|e| ReplayError::io(&dir, e))?;
    write_atomic(&dir.join(part_name(0)), b"PAR1 not really")?;
    Ok(dir)
}

/// Parse a `ts_utc` string the way the reader does (`None` when malformed).
pub fn ts_micros(s: &str) -> Option<i64> {
    parse_rfc3339_micros(s)
}
