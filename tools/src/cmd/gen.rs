//! `sluice gen`: write a realistic engine run root (parquet outputs in the platform's hive
//! layout, plus `run_receipt.json`). All the work is `sluice_storage::gen`; this parses,
//! shows progress and prints the summary.

use std::path::PathBuf;

use sluice_storage::gen::{self, GenConfig, GenSummary, DEFAULT_OUTPUTS};

use crate::cli::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The engine run root to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Traffic rows (exact); context outputs get about one row per flow (rows / 3.8).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Files per traffic output; context outputs get proportionally fewer (at least one).
    #[arg(long, default_value_t = 8)]
    pub files: usize,
    /// Seed: the `seed` pin and the root of every random draw (same seed, same bytes).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Comma-separated output ids. Also supported: s2_event_stream_baseline_6B,
    /// s2_flow_anchor_baseline_6B.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_OUTPUTS.map(String::from))]
    pub outputs: Vec<String>,
    /// Rows per row group [default: a quarter of the largest file of each output].
    #[arg(long)]
    pub row_group_rows: Option<usize>,
    /// Replace existing data: removes the dataset directories of the outputs generated and
    /// run_receipt.json (nothing else) before writing.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let cfg = GenConfig {
        out: args.out,
        rows: args.rows,
        files: args.files,
        seed: args.seed,
        outputs: args.outputs,
        row_group_rows: args.row_group_rows,
        force: args.force,
    };
    let plan = gen::plan(&cfg)?;
    let bar = crate::progress::bar(ctx, plan.total_rows(), "gen", "rows");
    let summary = gen::execute(&plan, &|rows| bar.inc(rows))?;
    bar.finish_and_clear();
    let json = serde_json::to_value(&summary)?;
    ctx.emit(&json, || human(&summary));
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn human(s: &GenSummary) -> String {
    let mut lines = vec![
        format!(
            "generated {} (seed {}, scenario {}, manifest {})",
            s.out.display(),
            s.pins.seed,
            s.pins.scenario_id,
            &s.pins.manifest_fingerprint[..12.min(s.pins.manifest_fingerprint.len())]
        ),
        format!(
            "{:<32} {:>12} {:>6} {:>11} {:>10}",
            "output", "rows", "files", "row groups", "MiB"
        ),
    ];
    for o in &s.outputs {
        lines.push(format!(
            "{:<32} {:>12} {:>6} {:>11} {:>10.1}",
            o.output_id,
            o.rows,
            o.files,
            o.row_groups,
            mib(o.bytes)
        ));
    }
    lines.push(format!(
        "total {} rows, {:.1} MiB in {:.2} s ({:.0} rows/s)",
        s.total_rows,
        mib(s.total_bytes),
        s.elapsed_secs,
        s.rows_per_sec
    ));
    lines.join("\n")
}
