//! The entry point of the sort, [`build_view`], and what it shares with the copy floor
//! (`floor.rs`): the report, the thread pool, the staging directory.
//!
//! `build_view`, numbered as in `docs/sort.md`:
//! 1. lock the view and repair leftovers of crashed builds ([`ViewLock::acquire`]);
//! 2. apply the receipt rules (skip, `STREAM_RECEIPT_MISMATCH`, ...) unless `--force`;
//! 3. plan the source from the footers ([`SourcePlan::open`]);
//! 4. phase 1: decode, key, digest, cut sorted runs, spill all but the last
//!    ([`generate_runs`]);
//! 5. phase 2: merge the runs into parts in a staging directory ([`write_view`]);
//! 6. validate: row count, digest and time range of source and view must agree;
//! 7. write receipt then manifest into the staging directory, publish it with one rename.
//!
//! On any error the staging directory and the spill directory are removed before the error
//! returns; a `SIGKILL` leaves them to the next build (step 1 and `spill::clean_stale`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use sluice_storage::publish::write_json_atomic;
use sluice_storage::timefmt::{format_rfc3339_micros, now_micros};
use sluice_storage::view::{
    source_fingerprint, source_locator_digest, stream_view_id, view_dir, StreamSortReceipt,
    StreamViewManifest, GRANULARITY_FLAT, MANIFEST_FILE, RECEIPT_FILE,
};

use crate::config::SortConfig;
use crate::error::{Result, SortError};
use crate::key::format_time;
use crate::output::sink::{write_view, ViewStats};
use crate::output::total_bytes;
use crate::plan::SourcePlan;
use crate::read::SourceStats;
use crate::runs::generate_runs;
use crate::source::SortSource;
use crate::spill::TempSpace;
use crate::view::{inspect, publish, receipt_matches, staging_dir, ViewLock, ViewState};
use crate::Progress;

/// Whether a view was built or an existing one kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewStatus {
    Built,
    Skipped,
}

/// What one `build_view` (or `copy_floor`) did; the CLI prints it as JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ViewReport {
    pub output_id: String,
    pub status: ViewStatus,
    pub rows: u64,
    pub parts: usize,
    pub bytes: u64,
    pub view_dir: String,
    pub elapsed_s: f64,
    /// Bytes written to spill files.
    pub spilled_bytes: u64,
    /// Sorted runs phase 1 left: spilled segments, plus one for the tail kept in memory
    /// (1 = the input fit in memory and nothing was spilled).
    pub runs: usize,
    /// Merge passes the deepest row went through (0 = no merge at all, 1 = the final
    /// merge only, more = intermediate merges because the fan-in was limited).
    pub merge_levels: u32,
}

/// CPU seconds (user + system) this process has used so far (`/proc/self/stat`), for the
/// phase timings logged at debug level; `None` where that is not available.
fn process_cpu_s() -> Option<f64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// A staging directory that is removed unless it was published.
pub(crate) struct Staging {
    pub(crate) path: PathBuf,
    pub(crate) armed: bool,
}

impl Staging {
    pub(crate) fn create(view_root: &Path, output_id: &str) -> Result<Self> {
        let path = staging_dir(view_root, output_id);
        if path.exists() {
            fs::remove_dir_all(&path).map_err(|e| SortError::io(&path, e))?;
        }
        fs::create_dir_all(&path).map_err(|e| SortError::io(&path, e))?;
        Ok(Staging { path, armed: true })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

pub(crate) fn in_pool<T: Send>(
    config: &SortConfig,
    f: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    config.validate()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.thread_count())
        .thread_name(|i| format!("sluice-sort-{i}"))
        .build()
        .map_err(|e| SortError::Internal(format!("thread pool: {e}")))?;
    pool.install(f)
}

/// The default spill root: `.sluice-tmp` beside the view root (same disk as the view, and
/// never a RAM-backed `/tmp`); for a view root in S3, `.sluice-tmp` in the working
/// directory (set `STREAM_SORT_TEMP_DIR` to choose).
pub fn default_temp_root(view_root: &Path) -> PathBuf {
    if sluice_storage::object::is_remote(view_root) {
        return PathBuf::from(".sluice-tmp");
    }
    view_root.parent().unwrap_or(view_root).join(".sluice-tmp")
}

/// How the receipt identifies this build.
struct Identity {
    view_id: String,
    locator: String,
    fingerprint: String,
    sort_keys: Vec<String>,
    paths: Vec<String>,
}

fn identity(config: &SortConfig, source: &SortSource) -> Result<Identity> {
    let sort_keys = vec![config.sort_key.clone()];
    let paths = source.path_strings();
    Ok(Identity {
        view_id: stream_view_id(
            &source.engine_root_string(),
            &source.scenario_id,
            &source.output_id,
            &sort_keys,
            GRANULARITY_FLAT,
        ),
        locator: source_locator_digest(&paths),
        fingerprint: source_fingerprint(&paths)?,
        sort_keys,
        paths,
    })
}

/// Step 2: `Ok(Some(report))` to skip, `Ok(None)` to build, or the rule's error.
fn apply_rules(
    config: &SortConfig,
    source: &SortSource,
    id: &Identity,
    dir: &Path,
    started: Instant,
) -> Result<Option<ViewReport>> {
    let state = inspect(dir)?;
    if config.force {
        return Ok(None);
    }
    match state {
        ViewState::Absent | ViewState::Other => Ok(None),
        ViewState::ManifestOnly => Err(SortError::ReceiptMissing {
            view_dir: dir.to_path_buf(),
        }),
        ViewState::PartsOnly => Err(SortError::PartialExists {
            view_dir: dir.to_path_buf(),
        }),
        ViewState::Receipt(r) => {
            match receipt_matches(
                &r,
                &id.view_id,
                &id.locator,
                &id.fingerprint,
                &id.sort_keys,
                dir,
            ) {
                Ok(()) => Ok(Some(ViewReport {
                    output_id: source.output_id.clone(),
                    status: ViewStatus::Skipped,
                    rows: r.sorted_stats.row_count,
                    parts: r.parts.len(),
                    bytes: total_bytes(&r.parts),
                    view_dir: dir.to_string_lossy().into_owned(),
                    elapsed_s: started.elapsed().as_secs_f64(),
                    spilled_bytes: 0,
                    runs: 0,
                    merge_levels: 0,
                })),
                Err(detail) => Err(SortError::ReceiptMismatch {
                    view_dir: dir.to_path_buf(),
                    detail,
                }),
            }
        }
    }
}

/// Step 6.
fn validate(output_id: &str, raw: &SourceStats, view: &ViewStats) -> Result<()> {
    let fail = |detail: String| {
        Err(SortError::ValidationFailed {
            output_id: output_id.to_string(),
            detail,
        })
    };
    if raw.digest.row_count != view.digest.row_count {
        return fail(format!(
            "row count: source {} != view {}",
            raw.digest.row_count, view.digest.row_count
        ));
    }
    if raw.digest != view.digest {
        return fail(format!(
            "row digest: source sum {:032x} xor {:032x} != view sum {:032x} xor {:032x}",
            raw.digest.sum, raw.digest.xor, view.digest.sum, view.digest.xor
        ));
    }
    if raw.min_time != view.min_time || raw.max_time != view.max_time {
        return fail(format!(
            "time range: source {:?}..{:?} != view {:?}..{:?}",
            raw.min_time.map(format_time),
            raw.max_time.map(format_time),
            view.min_time.map(format_time),
            view.max_time.map(format_time)
        ));
    }
    Ok(())
}

/// Sort `source` into its stream view (see the module docs). Runs on a local rayon pool of
/// `config.threads` threads.
pub fn build_view(
    config: &SortConfig,
    source: &SortSource,
    progress: &dyn Progress,
) -> Result<ViewReport> {
    in_pool(config, || build_in_pool(config, source, progress))
}

fn build_in_pool(
    config: &SortConfig,
    source: &SortSource,
    progress: &dyn Progress,
) -> Result<ViewReport> {
    let started = Instant::now();
    // Step 1.
    let _lock = ViewLock::acquire(&source.view_root, &source.output_id)?;
    let view_root = crate::view::canonical_view_root(&source.view_root)?;
    let dir = view_dir(&view_root, &source.output_id);
    let temp_root = config
        .temp_dir
        .clone()
        .unwrap_or_else(|| default_temp_root(&view_root));
    // Spill directories of killed builds go even if this build turns out to be a skip.
    crate::spill::clean_stale(&temp_root);
    // Step 2.
    let id = identity(config, source)?;
    if let Some(skipped) = apply_rules(config, source, &id, &dir, started)? {
        return Ok(skipped);
    }
    // Step 3.
    let plan = SourcePlan::open(&source.output_id, &source.files, &config.sort_key)?;
    if plan.total_rows == 0 {
        return Err(SortError::OutputEmpty {
            output_id: source.output_id.clone(),
            files: plan.files.len(),
        });
    }
    let budget = config
        .budget()
        .with_output(plan.row_bytes_estimate() * config.row_group_rows as u64);
    let space = Arc::new(TempSpace::create(&temp_root, config.max_temp_size)?);
    let mut staging = Staging::create(&view_root, &source.output_id)?;
    // Step 4.
    let phase1 = generate_runs(&plan, &budget, &space, progress)?;
    let runs = phase1.sorted_runs();
    plan.freeze();
    crate::fault::pause("after-phase1");
    tracing::debug!(
        elapsed_s = started.elapsed().as_secs_f64(),
        cpu_s = process_cpu_s(),
        runs,
        spilled_bytes = space.total_written(),
        bytes_per_row = phase1.bytes_per_row,
        "phase 1 done"
    );
    // Step 5.
    let written = write_view(
        &plan,
        phase1.runs,
        config,
        &budget,
        phase1.bytes_per_row,
        &space,
        &staging.path,
        progress,
    )?;
    tracing::debug!(
        elapsed_s = started.elapsed().as_secs_f64(),
        cpu_s = process_cpu_s(),
        merge_levels = written.merge_levels,
        "phase 2 done"
    );
    // Step 6.
    validate(&source.output_id, &phase1.stats, &written.stats)?;
    // Step 7.
    let raw = &phase1.stats;
    let view = &written.stats;
    let created = format_rfc3339_micros(now_micros());
    let receipt = StreamSortReceipt {
        stream_view_id: id.view_id.clone(),
        engine_run_root: source.engine_root_string(),
        stream_view_root: view_root.to_string_lossy().into_owned(),
        output_id: source.output_id.clone(),
        scenario_id: source.scenario_id.clone(),
        sort_keys: id.sort_keys.clone(),
        partition_granularity: GRANULARITY_FLAT.to_string(),
        source_locator_digest: id.locator.clone(),
        source_fingerprint: id.fingerprint.clone(),
        source_paths: id.paths.clone(),
        raw_stats: raw
            .digest
            .to_side_stats(raw.min_time.map(format_time), raw.max_time.map(format_time)),
        sorted_stats: view.digest.to_side_stats(
            view.min_time.map(format_time),
            view.max_time.map(format_time),
        ),
        parts: written.parts.clone(),
        created_utc: created.clone(),
        status: "OK".to_string(),
        writer: serde_json::json!({
            "format_version": 1,
            "part_size": config.part_size,
            "row_group_rows": config.row_group_rows,
            "zstd_level": config.zstd_level,
            "digest": "sluice-digest-v1",
        }),
    };
    write_json_atomic(&staging.path.join(RECEIPT_FILE), &receipt)?;
    let manifest = StreamViewManifest {
        stream_view_id: id.view_id,
        output_id: source.output_id.clone(),
        row_count: view.digest.row_count,
        parts: written.parts.clone(),
        created_utc: created,
    };
    write_json_atomic(&staging.path.join(MANIFEST_FILE), &manifest)?;
    crate::fault::pause("before-publish");
    publish(&staging.path, &dir, dir.exists())?;
    staging.armed = false;
    Ok(ViewReport {
        output_id: source.output_id.clone(),
        status: ViewStatus::Built,
        rows: view.digest.row_count,
        parts: written.parts.len(),
        bytes: total_bytes(&written.parts),
        view_dir: dir.to_string_lossy().into_owned(),
        elapsed_s: started.elapsed().as_secs_f64(),
        spilled_bytes: space.total_written(),
        runs,
        merge_levels: written.merge_levels,
    })
}
