//! `sluice sort`: build stream views (parquet parts + receipt) with `sluice-sort`.
//!
//! Thin: it resolves which outputs to sort, builds a `SortConfig` from flags (or the
//! platform's `STREAM_SORT_*` environment variables), calls `sluice_sort::build_view` (or the
//! hidden `--copy-floor`, the benchmark's floor) per output, and prints a summary.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::ProgressBar;
use sluice_sort::config::{DEFAULT_ROW_GROUP_ROWS, DEFAULT_SORT_KEY, DEFAULT_ZSTD_LEVEL};
use sluice_sort::{build_view, copy_floor, parse_size, SortConfig, SortSource, ViewReport};

use crate::cli::Ctx;
use crate::errors::CliError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Engine run root holding the outputs (hive layout, `run_receipt.json`).
    #[arg(long)]
    pub engine_root: Option<PathBuf>,
    /// Output(s) to sort (repeatable); with --input, the name of the view.
    #[arg(long = "output-id")]
    pub output_id: Vec<String>,
    /// Sort every catalog output present under --engine-root.
    #[arg(long, conflicts_with = "input")]
    pub all: bool,
    /// Sort any parquet dataset: a glob (`*`, `?`, `**`) or a directory.
    #[arg(long)]
    pub input: Option<String>,
    /// Where views go (default `<engine_root>/stream_view/ts_utc`).
    #[arg(long)]
    pub view_root: Option<PathBuf>,
    /// Whole-process memory target.
    #[arg(long, env = "STREAM_SORT_MEMORY_LIMIT", default_value = "1GiB")]
    pub memory_limit: String,
    /// Root for spill files (default `.sluice-tmp` beside the view root).
    #[arg(long, env = "STREAM_SORT_TEMP_DIR")]
    pub temp_dir: Option<PathBuf>,
    /// Cap on spill bytes (fails SORT_TEMP_FULL beyond it).
    #[arg(long, env = "STREAM_SORT_MAX_TEMP_SIZE")]
    pub max_temp_size: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long, env = "STREAM_SORT_THREADS")]
    pub threads: Option<usize>,
    /// The time column to sort on.
    #[arg(long, default_value = DEFAULT_SORT_KEY)]
    pub sort_key: String,
    /// Target size of an output part.
    #[arg(long, default_value = "256MiB")]
    pub part_size: String,
    /// Rows per output row group.
    #[arg(long, default_value_t = DEFAULT_ROW_GROUP_ROWS)]
    pub row_group_rows: usize,
    /// zstd level of the output.
    #[arg(long, default_value_t = DEFAULT_ZSTD_LEVEL)]
    pub zstd_level: i32,
    /// Rebuild even if a view exists (replaces it atomically).
    #[arg(long)]
    pub force: bool,
    /// Benchmark floor: read and re-encode without sorting (no receipt).
    #[arg(long, hide = true)]
    pub copy_floor: bool,
}

/// Progress bars for the library's phases.
struct Bars<'a> {
    ctx: &'a Ctx,
    bar: Mutex<Option<ProgressBar>>,
}

impl sluice_sort::Progress for Bars<'_> {
    fn phase(&self, name: &'static str, total: u64) {
        let mut slot = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = slot.take() {
            old.finish_and_clear();
        }
        *slot = Some(crate::progress::bar(self.ctx, total, name, "rows"));
    }
    fn advance(&self, n: u64) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            b.inc(n);
        }
    }
}

impl Drop for Bars<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            b.finish_and_clear();
        }
    }
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    CliError::new("USAGE", msg)
}

fn config(args: &Args) -> anyhow::Result<SortConfig> {
    Ok(SortConfig {
        memory_limit: parse_size(&args.memory_limit)?,
        temp_dir: args.temp_dir.clone(),
        max_temp_size: args.max_temp_size.as_deref().map(parse_size).transpose()?,
        threads: args.threads,
        sort_key: args.sort_key.clone(),
        part_size: parse_size(&args.part_size)?,
        row_group_rows: args.row_group_rows,
        zstd_level: args.zstd_level,
        force: args.force,
    })
}

fn sources(args: &Args) -> anyhow::Result<Vec<SortSource>> {
    if let Some(pattern) = &args.input {
        let [output_id] = args.output_id.as_slice() else {
            return Err(usage(
                "--input needs exactly one --output-id (the view's name)",
            ));
        };
        let view_root = match (&args.view_root, &args.engine_root) {
            (Some(v), _) => v.clone(),
            (None, Some(e)) => sluice_storage::view::default_view_root(e),
            (None, None) => return Err(usage("--input needs --view-root (or --engine-root)")),
        };
        let s = SortSource::glob(pattern, output_id, &view_root, args.engine_root.as_deref())?;
        return Ok(vec![s]);
    }
    let Some(root) = &args.engine_root else {
        return Err(usage(
            "give --engine-root with --output-id/--all, or --input GLOB",
        ));
    };
    let ids = match (args.all, args.output_id.is_empty()) {
        (true, true) => SortSource::all_outputs(root)?,
        (false, false) => args.output_id.clone(),
        (true, false) => return Err(usage("--all and --output-id exclude each other")),
        (false, true) => return Err(usage("give --output-id ID (repeatable) or --all")),
    };
    if ids.is_empty() {
        return Err(CliError::new(
            "OUTPUT_PATHS_EMPTY",
            format!("no catalog output has files under {}", root.display()),
        ));
    }
    ids.iter()
        .map(|id| {
            SortSource::engine_output(root, id, args.view_root.as_deref()).map_err(Into::into)
        })
        .collect()
}

fn human(r: &ViewReport) -> String {
    format!(
        "{:<32} {:<7} {:>12} rows {:>4} parts {:>8.1} MiB {:>7.2}s runs {} merge levels {} spilled {:.1} MiB\n  {}",
        r.output_id,
        serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        r.rows,
        r.parts,
        r.bytes as f64 / (1 << 20) as f64,
        r.elapsed_s,
        r.runs,
        r.merge_levels,
        r.spilled_bytes as f64 / (1 << 20) as f64,
        r.view_dir
    )
}

/// Keep freed memory in the process instead of returning it to the kernel after every large
/// free: the sort allocates and frees row-group-sized buffers continuously, and on the
/// platform's VMs a fresh page costs a fault and a zeroing (measured: 545k minor faults and
/// 4 s of system time for 20M rows without this, 196k and 1.6 s with it; docs/sort.md).
/// Peak RSS is unaffected (the budget bounds what is live at once). Applies to `--copy-floor`
/// too, so the comparison stays fair.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: `mallopt` is glibc's documented tuning call; these parameters only change
    // when memory is returned to the kernel, and it is called before any worker thread of
    // the sort exists.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

pub fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let started = Instant::now();
    tune_allocator();
    let config = config(&args)?;
    if config.memory_limit < sluice_sort::config::SMALLEST_KEPT_LIMIT {
        eprintln!(
            "warning: --memory-limit {}: the sort needs 100-120 MiB whatever its budget, so \
             below {} MiB peak memory exceeds the limit (docs/sort.md, \"Memory\")",
            args.memory_limit,
            sluice_sort::config::SMALLEST_KEPT_LIMIT >> 20
        );
    }
    let sources = sources(&args)?;
    let bars = Bars {
        ctx,
        bar: Mutex::new(None),
    };
    let mut views = Vec::with_capacity(sources.len());
    for source in &sources {
        let report = if args.copy_floor {
            copy_floor(&config, source, &bars)?
        } else {
            build_view(&config, source, &bars)?
        };
        views.push(report);
    }
    drop(bars);
    let elapsed_s = started.elapsed().as_secs_f64();
    let peak = sluice_storage::process::peak_rss_bytes();
    let summary = serde_json::json!({
        "views": views,
        "elapsed_s": elapsed_s,
        "peak_rss_bytes": peak,
    });
    ctx.emit(&summary, || {
        let mut lines: Vec<String> = views.iter().map(human).collect();
        lines.push(format!(
            "total {:.2}s, peak RSS {:.0} MiB",
            elapsed_s,
            peak.unwrap_or(0) as f64 / (1 << 20) as f64
        ));
        lines.join("\n")
    });
    Ok(())
}
