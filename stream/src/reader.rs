//! Reading one stream view in order, from a resume position, inside a time window.
//!
//! ```text
//!   parts (receipt order) -> row groups (skipped by resume position and ts_utc statistics)
//!        -> one ParquetRecordBatchReader per row group (offset = resume row inside it)
//!        -> RecordBatch + parsed ts_utc micros -> window cut -> ViewBatch
//! ```
//!
//! 1. Parts are read in the receipt's order; each part's footer is read once.
//! 2. Row groups that end before the resume row are skipped without decoding; the first one
//!    read starts at the resume row (`with_offset`), so every emitted row has an exact
//!    `(part, row index)` for checkpoints and quarantine records.
//! 3. With `--from-ts`/`--until-ts` a row group is skipped when its `ts_utc` statistics lie
//!    wholly outside `[from, until)`. String statistics are byte-wise min/max, which equal
//!    the time order only for the platform's canonical form `YYYY-MM-DDTHH:MM:SS.ffffffZ`;
//!    a row group whose min or max is not canonical is never skipped, only filtered.
//! 4. Rows are filtered exactly: the view is in time order, so the window is one contiguous
//!    run of rows, from the first row with a valid `ts_utc >= from` to the first row with a
//!    valid `ts_utc >= until` (where the output stops). Rows whose `ts_utc` is missing or
//!    malformed inside that run are passed on (the gate quarantines them); their parsed time
//!    is `i64::MIN`.
//! 5. Where the bytes come from ([`PartSource`]): a local part is the open file, read by
//!    the parquet reader as always. An S3 part costs one suffix GET for its footer, then only
//!    the planned row groups' column chunks, as ranged GETs started
//!    [`READ_AHEAD_ROW_GROUPS`] row groups ahead of the one being decoded
//!    (`sluice_storage::object::RowGroupPrefetcher`), so the network overlaps decoding and
//!    skipped row groups are never downloaded.
//!
//! ```text
//!   S3 part:  GET footer ─► plan [g3 g4 g5 g6 …] (g0-g2 skipped: resume row / window)
//!   decode:                 take(g3) decode g3   take(g4) decode g4 …
//!   I/O:                    [g3][g4][g5]         [g6] …       (at most 1 + ahead per output)
//! ```

use std::collections::VecDeque;
use std::path::Path;

use std::sync::Arc;

use sluice_storage::object::file::{parquet_metadata, row_group_ranges};
use sluice_storage::object::prefetch::FetchItem;
use sluice_storage::object::{is_remote, ObjectFile, RowGroupPrefetcher};

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use sluice_storage::timefmt::parse_rfc3339_micros;

use crate::error::{ReplayError, Result};
use crate::view::{StreamView, ViewPart};

/// Row groups of an S3 part fetched beyond the one being decoded. With the one the reader
/// holds, at most `1 + READ_AHEAD_ROW_GROUPS` row groups of compressed bytes per output.
pub const READ_AHEAD_ROW_GROUPS: usize = 2;

/// Parsed time of a row whose `ts_utc` is null or malformed.
pub const NO_TS: i64 = i64::MIN;

/// A half-open time window `[from, until)` in UTC microseconds; `None` = unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWindow {
    pub from: Option<i64>,
    pub until: Option<i64>,
}

/// Where reading starts: the next row to emit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StartAt {
    pub part: u32,
    pub row: u64,
}

/// A run of consecutive view rows, all from one part.
#[derive(Debug, Clone)]
pub struct ViewBatch {
    pub part: u32,
    /// Row index, inside the part, of the batch's first row.
    pub first_row: u64,
    pub batch: RecordBatch,
    /// `ts_utc` of each row in UTC microseconds ([`NO_TS`] when null or malformed).
    pub ts: Vec<i64>,
}

impl ViewBatch {
    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }
    pub fn is_empty(&self) -> bool {
        self.batch.num_rows() == 0
    }
    /// The rows `[from, to)` as their own batch (zero-copy).
    pub fn slice(&self, from: usize, to: usize) -> ViewBatch {
        ViewBatch {
            part: self.part,
            first_row: self.first_row + from as u64,
            batch: self.batch.slice(from, to - from),
            ts: self.ts[from..to].to_vec(),
        }
    }
}

/// Parse the `ts_utc` column of a batch (string types only).
pub fn ts_column(batch: &RecordBatch, path: &Path) -> Result<Vec<i64>> {
    let missing = |reason: String| ReplayError::MissingTsUtc {
        path: path.to_path_buf(),
        reason,
    };
    let col = batch
        .column_by_name("ts_utc")
        .ok_or_else(|| missing("no column named ts_utc".into()))?;
    fn parse<'a>(it: impl Iterator<Item = Option<&'a str>>) -> Vec<i64> {
        it.map(|v| v.and_then(parse_rfc3339_micros).unwrap_or(NO_TS))
            .collect()
    }
    Ok(match col.data_type() {
        DataType::Utf8 => parse(col.as_string::<i32>().iter()),
        DataType::LargeUtf8 => parse(col.as_string::<i64>().iter()),
        DataType::Utf8View => parse(col.as_string_view().iter()),
        other => {
            return Err(missing(format!(
                "ts_utc has type {other}, expected a string"
            )))
        }
    })
}

/// True when `s` is exactly `YYYY-MM-DDTHH:MM:SS.ffffffZ` (byte order = time order).
fn canonical_ts(s: &[u8]) -> Option<i64> {
    if s.len() != 27 || s[10] != b'T' || s[19] != b'.' || s[26] != b'Z' {
        return None;
    }
    parse_rfc3339_micros(std::str::from_utf8(s).ok()?)
}

/// Statistics say the row group holds no row of the window.
fn outside_window(
    meta: &parquet::file::metadata::RowGroupMetaData,
    col: usize,
    w: &TimeWindow,
) -> bool {
    let Some(stats) = meta.column(col).statistics() else {
        return false;
    };
    let (Some(lo), Some(hi)) = (stats.min_bytes_opt(), stats.max_bytes_opt()) else {
        return false;
    };
    let (Some(lo), Some(hi)) = (canonical_ts(lo), canonical_ts(hi)) else {
        return false;
    };
    w.from.is_some_and(|f| hi < f) || w.until.is_some_and(|u| lo >= u)
}

/// A row group to read: index, first row in the part, rows to skip at its start.
struct PlannedGroup {
    index: usize,
    first_row: u64,
    skip: u64,
}

/// Where a part's row groups are read from.
enum PartSource {
    /// A local file (`ObjectFile::Local`): every row group reads from it directly.
    Whole(ObjectFile),
    /// An S3 object: item `k` of the prefetcher is the `k`-th planned row group.
    Ranged {
        prefetch: RowGroupPrefetcher,
        next: usize,
    },
}

impl PartSource {
    /// The bytes of the next planned row group, as a parquet source.
    fn next_group(&mut self) -> Result<ObjectFile> {
        match self {
            PartSource::Whole(file) => Ok(file.clone()),
            PartSource::Ranged { prefetch, next } => {
                let file = prefetch.take(*next)?;
                *next += 1;
                Ok(file)
            }
        }
    }
}

struct PartReader {
    part: ViewPart,
    source: PartSource,
    meta: ArrowReaderMetadata,
    plan: VecDeque<PlannedGroup>,
    active: Option<(ParquetRecordBatchReader, u64)>,
}

/// Counters for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReaderStats {
    pub row_groups_read: u64,
    pub row_groups_skipped: u64,
    pub rows_read: u64,
}

/// Iterates a view's rows in order as [`ViewBatch`]es.
pub struct ViewReader {
    view: Arc<StreamView>,
    window: TimeWindow,
    batch_rows: usize,
    next_part: usize,
    start_row: u64,
    current: Option<PartReader>,
    /// A row at or after `window.from` was seen: no more from-filtering.
    in_window: bool,
    done: bool,
    pub stats: ReaderStats,
}

impl ViewReader {
    pub fn new(
        view: Arc<StreamView>,
        start: StartAt,
        window: TimeWindow,
        batch_rows: usize,
    ) -> Self {
        ViewReader {
            view,
            window,
            batch_rows: batch_rows.max(1),
            next_part: start.part as usize,
            start_row: start.row,
            current: None,
            in_window: window.from.is_none(),
            done: false,
            stats: ReaderStats::default(),
        }
    }

    pub fn view(&self) -> &Arc<StreamView> {
        &self.view
    }

    fn open_part(&mut self) -> Result<Option<PartReader>> {
        while let Some(part) = self.view.parts.get(self.next_part).cloned() {
            self.next_part += 1;
            let start = std::mem::take(&mut self.start_row);
            if start >= part.rows {
                continue;
            }
            // Local: the file, opened as always. S3: only the footer for now (one suffix GET).
            let (file, meta, remote_len) = if is_remote(&part.path) {
                let (meta, len) = parquet_metadata(&part.path, ArrowReaderOptions::new())?;
                (None, meta, len)
            } else {
                let file = ObjectFile::open(&part.path)?;
                let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
                    .map_err(|e| ReplayError::parquet(&part.path, e))?;
                (Some(file), meta, 0)
            };
            let md = meta.metadata();
            let ts_col = md
                .file_metadata()
                .schema_descr()
                .columns()
                .iter()
                .position(|c| c.path().string() == "ts_utc")
                .ok_or_else(|| ReplayError::MissingTsUtc {
                    path: part.path.clone(),
                    reason: "no column named ts_utc".into(),
                })?;
            let mut plan = VecDeque::new();
            let mut first = 0u64;
            for (i, rg) in md.row_groups().iter().enumerate() {
                let n = rg.num_rows().max(0) as u64;
                let end = first + n;
                if end <= start || outside_window(rg, ts_col, &self.window) {
                    self.stats.row_groups_skipped += 1;
                } else {
                    plan.push_back(PlannedGroup {
                        index: i,
                        first_row: first,
                        skip: start.saturating_sub(first),
                    });
                }
                first = end;
            }
            if first != part.rows {
                return Err(ReplayError::ReceiptMismatch {
                    path: part.path.clone(),
                    reason: format!("part has {first} rows, the receipt says {}", part.rows),
                });
            }
            let source = match file {
                Some(file) => PartSource::Whole(file),
                None => {
                    let items = plan
                        .iter()
                        .map(|g| {
                            Ok(FetchItem {
                                path: part.path.clone(),
                                len: remote_len,
                                ranges: row_group_ranges(
                                    &part.path,
                                    md.row_group(g.index),
                                    remote_len,
                                )?,
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    tracing::debug!(
                        part = %part.path.display(),
                        row_groups = items.len(),
                        bytes = items
                            .iter()
                            .flat_map(|i| &i.ranges)
                            .map(|r| r.end - r.start)
                            .sum::<u64>(),
                        object_bytes = remote_len,
                        "ranged reads of an S3 part"
                    );
                    PartSource::Ranged {
                        prefetch: RowGroupPrefetcher::new(items, READ_AHEAD_ROW_GROUPS),
                        next: 0,
                    }
                }
            };
            return Ok(Some(PartReader {
                part,
                source,
                meta,
                plan,
                active: None,
            }));
        }
        Ok(None)
    }

    /// The next raw batch (before the window cut), or `None` at the end of the view.
    fn next_raw(&mut self) -> Result<Option<ViewBatch>> {
        loop {
            if self.current.is_none() {
                self.current = self.open_part()?;
                if self.current.is_none() {
                    return Ok(None);
                }
            }
            let Some(pr) = self.current.as_mut() else {
                continue;
            };
            if pr.active.is_none() {
                let Some(g) = pr.plan.pop_front() else {
                    self.current = None;
                    continue;
                };
                let file = pr.source.next_group()?;
                let reader =
                    ParquetRecordBatchReaderBuilder::new_with_metadata(file, pr.meta.clone())
                        .with_row_groups(vec![g.index])
                        .with_offset(g.skip as usize)
                        .with_batch_size(self.batch_rows)
                        .build()
                        .map_err(|e| ReplayError::parquet(&pr.part.path, e))?;
                self.stats.row_groups_read += 1;
                pr.active = Some((reader, g.first_row + g.skip));
            }
            let Some((reader, next_row)) = pr.active.as_mut() else {
                continue;
            };
            match reader.next() {
                None => pr.active = None,
                Some(Err(e)) => return Err(ReplayError::parquet(&pr.part.path, e)),
                Some(Ok(batch)) if batch.num_rows() == 0 => {}
                Some(Ok(batch)) => {
                    let ts = ts_column(&batch, &pr.part.path)?;
                    let first_row = *next_row;
                    *next_row += batch.num_rows() as u64;
                    self.stats.rows_read += batch.num_rows() as u64;
                    return Ok(Some(ViewBatch {
                        part: pr.part.index,
                        first_row,
                        batch,
                        ts,
                    }));
                }
            }
        }
    }

    /// Apply the window to a raw batch: `None` if none of its rows are in it.
    fn cut(&mut self, b: ViewBatch) -> Option<ViewBatch> {
        let mut from = 0;
        if !self.in_window {
            let f = self.window.from.unwrap_or(i64::MIN);
            from = b.ts.iter().position(|&t| t != NO_TS && t >= f)?;
            self.in_window = true;
        }
        let mut to = b.len();
        if let Some(u) = self.window.until {
            if let Some(i) = b.ts[from..].iter().position(|&t| t != NO_TS && t >= u) {
                to = from + i;
                self.done = true;
            }
        }
        if from == 0 && to == b.len() {
            Some(b)
        } else if from < to {
            Some(b.slice(from, to))
        } else {
            None
        }
    }
}

impl Iterator for ViewReader {
    type Item = Result<ViewBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.next_raw() {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(None) => self.done = true,
                Ok(Some(b)) => {
                    if let Some(cut) = self.cut(b) {
                        return Some(Ok(cut));
                    }
                }
            }
        }
        None
    }
}
