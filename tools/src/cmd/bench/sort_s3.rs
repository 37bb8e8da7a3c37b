//! `sluice bench sort --s3`: the same sort against a local S3 server (moto) and local disk.
//! The harness is `sluice_benches::sort_s3`; this module maps flags and prints the report.

use sluice_benches::sort::default_data_dir;
use sluice_benches::sort_s3::{self as bench, S3BenchConfig};

use crate::cli::Ctx;

pub fn run(args: super::sort::Args, ctx: &Ctx) -> anyhow::Result<()> {
    let (exe, _build) = super::driven_binary()?;
    let cfg = S3BenchConfig {
        sluice: exe,
        python: args.python,
        data_dir: args
            .data
            .unwrap_or_else(|| default_data_dir(args.rows, args.files, args.seed)),
        work_dir: args.work.join("s3"),
        rows: args.rows,
        files: args.files,
        seed: args.seed,
        memory_limit: args.memory_limit,
        threads: args.threads,
        repeat: args.repeat,
    };
    let report = bench::run_s3_bench(&cfg).map_err(super::harness_error)?;
    let summary = serde_json::to_value(&report)?;
    ctx.emit(&summary, || bench::render_text(&report));
    Ok(())
}
