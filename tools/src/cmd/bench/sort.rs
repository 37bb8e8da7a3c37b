//! `sluice bench sort`: sluice's sort against DuckDB's legacy query, Polars and sluice's own
//! copy floor, each as a child process on the same input (generated, or `--input`). The harness is
//! `sluice_benches::sort`; this module parses flags, shows progress and prints the report.

use std::path::PathBuf;

use sluice_benches::sort::{self as bench, SortBenchConfig};

use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rows of `s3_event_stream_with_fraud_6B` to generate.
    #[arg(long, default_value_t = bench::DEFAULT_ROWS)]
    pub rows: u64,
    /// Parquet files to spread them over.
    #[arg(long, default_value_t = bench::DEFAULT_FILES)]
    pub files: u32,
    /// Generator seed.
    #[arg(long, default_value_t = bench::DEFAULT_SEED)]
    pub seed: u64,
    /// Engine run root with the input; generated with `sluice gen` if it has no
    /// run_receipt.json [default: .bench/sort-<rows>-<files>-<seed>].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Instead of generated data: any local parquet dataset with a `ts_utc` column, as a
    /// glob or a directory (as `sluice sort --input` takes it); every contender sorts it.
    #[arg(long, conflicts_with_all = ["data", "rows", "files", "seed", "s3"])]
    pub input: Option<String>,
    /// The time column every contender sorts by (sluice's --sort-key, the CAST in DuckDB's
    /// query, the parsed column in Polars').
    #[arg(long, default_value = bench::DEFAULT_SORT_KEY, conflicts_with = "s3")]
    pub sort_key: String,
    /// Scratch directory (outputs, spill, scripts) and where bench-sort.json is written.
    #[arg(long, default_value = ".bench/sort-work")]
    pub work: PathBuf,
    /// sluice's --memory-limit, also DuckDB's memory_limit in its second run.
    #[arg(long, default_value = bench::DEFAULT_MEMORY_LIMIT)]
    pub memory_limit: String,
    /// Threads for every contender [default: each one's own default, all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Runs per contender (interleaved); the fastest is reported, all are kept in the JSON.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Do not run the DuckDB contenders.
    #[arg(long)]
    pub skip_duckdb: bool,
    /// Do not run the Polars contender.
    #[arg(long)]
    pub skip_polars: bool,
    /// Do not run sluice's copy floor.
    #[arg(long)]
    pub skip_copy: bool,
    /// The python interpreter that has duckdb and polars.
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
    /// Instead: the same sort from and to a local S3 server (moto) vs local disk
    /// (`docs/s3.md`; uses --rows/--files/--seed/--data/--work/--memory-limit/--threads/--repeat).
    #[arg(long)]
    pub s3: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    if args.s3 {
        return super::sort_s3::run(args, ctx);
    }
    let (exe, build) = super::driven_binary()?;
    let mut cfg = SortBenchConfig::new(exe);
    // The binary that runs the harness is the one it drives, so its build is ours.
    cfg.sluice_build = build;
    cfg.python = args.python;
    cfg.rows = args.rows;
    cfg.files = args.files;
    cfg.seed = args.seed;
    cfg.data_dir = args
        .data
        .unwrap_or_else(|| bench::default_data_dir(args.rows, args.files, args.seed));
    cfg.input = args.input;
    cfg.sort_key = args.sort_key;
    cfg.work_dir = args.work;
    cfg.memory_limit = args.memory_limit;
    cfg.threads = args.threads;
    cfg.repeat = args.repeat;
    cfg.skip_duckdb = args.skip_duckdb;
    cfg.skip_polars = args.skip_polars;
    cfg.skip_copy = args.skip_copy;

    let bar = crate::progress::bar(ctx, 1, "bench", "steps");
    let report = bench::run_sort_bench_observed(&cfg, &mut |step| {
        bar.set_length(step.total as u64);
        bar.set_position(step.index.saturating_sub(1) as u64);
        bar.set_prefix(step.what.to_string());
    })
    .map_err(super::harness_error)?;
    bar.finish_and_clear();

    let summary = serde_json::to_value(&report)?;
    ctx.emit(&summary, || bench::render_text(&report));
    Ok(())
}
