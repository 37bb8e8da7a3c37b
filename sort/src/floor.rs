//! The copy floor: read and re-encode a source **without sorting**, with exactly the sort's
//! reader (same read schema, same column representation choices) and writer (same
//! properties, row-group size and part cutting), into its view directory (parts only, no
//! receipt). It is the benchmark's floor: the sort can approach it but not beat it.
//! Like the sort, it checks every decoded batch against the plan's constant columns and
//! splices their encoded chunks (`output::encode`) instead of encoding them row by row.
//!
//! Row groups are decoded a wave at a time (two per thread, in parallel) while the previous
//! waves' row groups are encoded, each by a task of its own (column-parallel inside) and
//! appended in order, as the sort's writer does (`output::inflight`): as parallel as the
//! sort's own writer, so the comparison is honest.

use std::time::Instant;

use arrow_array::{ArrayRef, RecordBatch};
use rayon::prelude::*;
use sluice_storage::view::view_dir;

use crate::build::{in_pool, Staging, ViewReport, ViewStatus};
use crate::config::SortConfig;
use crate::error::{Result, SortError};
use crate::output::inflight::InFlight;
use crate::output::{total_bytes, writer_properties, EncodedRowGroup, PartWriter, RowGroupEncoder};
use crate::plan::SourcePlan;
use crate::read::read_row_group;
use crate::source::SortSource;
use crate::view::{inspect, publish, ViewLock, ViewState};
use crate::Progress;

/// Row groups of the floor being encoded at once (a wave holds about four).
const ROW_GROUPS_IN_FLIGHT: usize = 4;

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
    let encoder =
        RowGroupEncoder::new(plan.schema.clone(), props.clone(), plan.constant_columns())?;
    let mut writer = PartWriter::new(&staging.path, plan.schema.clone(), props, config.part_size);
    let threads = rayon::current_num_threads().max(1);
    let waves: Vec<_> = plan.tasks.chunks(2 * threads).collect();
    let read_wave = |wave: &[crate::plan::RowGroupTask]| -> Result<Vec<RecordBatch>> {
        let per_task: Vec<Vec<RecordBatch>> = wave
            .par_iter()
            .map(|t| {
                // The sort checks every decoded batch against its constants (and then
                // splices them): so does the floor.
                let batches = read_row_group(&plan, t)?;
                batches.iter().try_for_each(|b| plan.check_constants(b))?;
                Ok(batches)
            })
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
    let mut append = |done: Result<(usize, Vec<_>)>| -> Result<()> {
        let (n, chunks) = done?;
        writer.append(EncodedRowGroup {
            chunks,
            rows: n as u64,
            min_time: None,
            max_time: None,
        })?;
        rows += n as u64;
        progress.advance(n as u64);
        Ok(())
    };
    let encoder = &encoder;
    // The sort's writer pipeline: each row group is encoded by a task of its own while
    // the next wave is decoded (a wave: two row groups per thread, decoded in parallel),
    // and appended in order. As parallel as the sort's writer, so the comparison is honest.
    rayon::scope(|scope| -> Result<()> {
        let mut in_flight = InFlight::new();
        for (i, wave) in waves.iter().enumerate() {
            let mut groups = Vec::new();
            for b in read_wave(wave)? {
                groups.extend(cutter.push(&b));
            }
            if i + 1 == waves.len() && !cutter.pieces.is_empty() {
                groups.push(std::mem::take(&mut cutter.pieces));
            }
            for pieces in groups {
                in_flight.spawn(scope, move || {
                    let n: usize = pieces.iter().map(|p| p[0].len()).sum();
                    Ok((n, encoder.encode(&pieces)?))
                });
            }
            in_flight.settle(ROW_GROUPS_IN_FLIGHT, &mut append)?;
        }
        in_flight.settle(0, &mut append)
    })?;
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
