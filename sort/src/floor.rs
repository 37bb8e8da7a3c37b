//! The copy floor: read and re-encode a source **without sorting**, with exactly the sort's
//! reader (same read schema, same column representation choices) and writer (same
//! properties, row-group size and part cutting), into its view directory (parts only, no
//! receipt). It is the benchmark's floor: the sort can approach it but not beat it.
//!
//! Row groups are decoded a wave at a time (two per thread) while the previous wave's row
//! groups are encoded, several row groups at once, each column-parallel: as parallel as the
//! sort's own writer, so the comparison is honest.

use std::time::Instant;

use arrow_array::{ArrayRef, RecordBatch};
use rayon::prelude::*;
use sluice_storage::view::view_dir;

use crate::build::{in_pool, Staging, ViewReport, ViewStatus};
use crate::config::SortConfig;
use crate::error::{Result, SortError};
use crate::output::{total_bytes, writer_properties, EncodedRowGroup, PartWriter, RowGroupEncoder};
use crate::plan::SourcePlan;
use crate::read::read_row_group;
use crate::source::SortSource;
use crate::view::{inspect, publish, ViewLock, ViewState};
use crate::Progress;

/// Read and re-encode `source` **without sorting**, with the sort's reader, column
/// representation and writer settings, into its view directory (parts only, no receipt).
/// A benchmark's floor: the sort can approach it but not beat it.
pub fn copy_floor(
    config: &SortConfig,
    source: &SortSource,
    progress: &dyn Progress,
) -> Result<ViewReport> {
    in_pool(config, || copy_in_pool(config, source, progress))
}

/// Row groups being assembled from decoded batches, cut every `rows` rows.
struct RowGroupCutter {
    rows: usize,
    pieces: Vec<Vec<ArrayRef>>,
    filled: usize,
}

impl RowGroupCutter {
    /// Split `batch` into pieces; return the row groups it completes.
    fn push(&mut self, batch: &RecordBatch) -> Vec<Vec<Vec<ArrayRef>>> {
        let mut done = Vec::new();
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (self.rows - self.filled).min(batch.num_rows() - offset);
            self.pieces.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| c.slice(offset, take))
                    .collect(),
            );
            self.filled += take;
            offset += take;
            if self.filled == self.rows {
                done.push(std::mem::take(&mut self.pieces));
                self.filled = 0;
            }
        }
        done
    }
}

fn copy_in_pool(
    config: &SortConfig,
    source: &SortSource,
    progress: &dyn Progress,
) -> Result<ViewReport> {
    let started = Instant::now();
    let _lock = ViewLock::acquire(&source.view_root, &source.output_id)?;
    let view_root = crate::view::canonical_view_root(&source.view_root)?;
    let dir = view_dir(&view_root, &source.output_id);
    if !config.force {
        // The floor writes parts without a receipt: it never replaces anything unasked, and
        // says what is there (a complete view is not a partial one).
        match inspect(&dir)? {
            ViewState::Absent | ViewState::Other => {}
            ViewState::Receipt(_) => {
                return Err(SortError::Config(format!(
                    "{}: a complete view exists; the copy floor would replace it: use --force \
                     or another --view-root",
                    dir.display()
                )))
            }
            ViewState::ManifestOnly => return Err(SortError::ReceiptMissing { view_dir: dir }),
            ViewState::PartsOnly => return Err(SortError::PartialExists { view_dir: dir }),
        }
    }
    let plan = SourcePlan::open(&source.output_id, &source.files, &config.sort_key)?;
    let mut staging = Staging::create(&view_root, &source.output_id)?;
    let props = writer_properties(&plan, config.zstd_level)?;
    let encoder = RowGroupEncoder::new(plan.schema.clone(), props.clone())?;
    let mut writer = PartWriter::new(&staging.path, plan.schema.clone(), props, config.part_size);
    let threads = rayon::current_num_threads().max(1);
    let waves: Vec<_> = plan.tasks.chunks(2 * threads).collect();
    let read_wave = |i: usize| -> Result<Vec<RecordBatch>> {
        let per_task: Vec<Vec<RecordBatch>> = waves[i]
            .par_iter()
            .map(|t| read_row_group(&plan, t))
            .collect::<Result<_>>()?;
        Ok(per_task.into_iter().flatten().collect())
    };
    let mut cutter = RowGroupCutter {
        rows: config.row_group_rows,
        pieces: Vec::new(),
        filled: 0,
    };
    let mut rows = 0u64;
    progress.phase("copy", plan.total_rows);
    let mut emit = |batches: Vec<RecordBatch>, last: bool| -> Result<()> {
        let mut groups = Vec::new();
        for b in &batches {
            groups.extend(cutter.push(b));
        }
        if last && !cutter.pieces.is_empty() {
            groups.push(std::mem::take(&mut cutter.pieces));
        }
        // Row groups of the wave encode in parallel (each column-parallel too), then go to
        // the part in order: the floor is as parallel as the sort's writer.
        let encoded: Vec<Result<(usize, Vec<_>)>> = groups
            .par_iter()
            .map(|pieces| {
                let n: usize = pieces.iter().map(|p| p[0].len()).sum();
                Ok((n, encoder.encode(pieces)?))
            })
            .collect();
        for e in encoded {
            let (n, chunks) = e?;
            writer.append(EncodedRowGroup {
                chunks,
                rows: n as u64,
                min_time: None,
                max_time: None,
            })?;
            rows += n as u64;
            progress.advance(n as u64);
        }
        Ok(())
    };
    let mut current = if waves.is_empty() {
        Vec::new()
    } else {
        read_wave(0)?
    };
    for i in 0..waves.len().max(1) {
        let last = i + 1 >= waves.len();
        let (next, emitted) = rayon::join(
            || (!last).then(|| read_wave(i + 1)).transpose(),
            || emit(std::mem::take(&mut current), last),
        );
        emitted?;
        current = next?.unwrap_or_default();
    }
    let parts = writer.finish()?;
    publish(&staging.path, &dir, dir.exists())?;
    staging.armed = false;
    Ok(ViewReport {
        output_id: source.output_id.clone(),
        status: ViewStatus::Built,
        rows,
        parts: parts.len(),
        bytes: total_bytes(&parts),
        view_dir: dir.to_string_lossy().into_owned(),
        elapsed_s: started.elapsed().as_secs_f64(),
        spilled_bytes: 0,
        runs: 0,
        merge_levels: 0,
    })
}
